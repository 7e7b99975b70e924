//! Surgery on untorn files (the repair ladder's third rung, for experts): the bbolt set
//! — revert the meta, copy a page, clear a page, clear a page's elements, rebuild the
//! freelist, update the meta — on a data file and its journal.
//!
//! Every operation works on the storages it is given, **which must be a copy** (the
//! `untorn surgery` command stages one and renames it into place): pages are rewritten
//! at their own ids, not copy-on-write. Each result is re-sealed: the changed page and
//! every ancestor up to the meta get new checksums and new parent references, the bucket
//! counts on the path are recounted, the freelist is rebuilt by a walk when the tree has
//! no unreadable page, and both meta slots and the journal's generation marker are
//! rewritten to the new state (state `clean`, nothing to replay). Each returns an
//! [`Outcome`] that says what the operation dropped.

mod error;
mod freelist;
mod metas;
mod outcome;
mod pages;
mod staged;
mod tree;

pub use error::SurgeryError;
pub use freelist::{freelist_abandon, freelist_rebuild};
pub use metas::{meta_update, revert_meta, MetaUpdate};
pub use outcome::{Dropped, Outcome};
pub use pages::{clear_page, clear_page_elements, copy_page};
