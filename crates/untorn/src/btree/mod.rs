//! Copy-on-write B+trees: read paths shared by read and write transactions, and the
//! write transaction's in-memory dirty nodes with splits, merges and bucket bookkeeping.
//!
//! A write transaction never modifies a page. Touching a node *materializes* it: the page
//! becomes an arena [`Node`] whose keys and values are spans into the page (no byte is
//! copied; see `node`), the parent's pointer becomes `Child::Dirty`, and the old page is
//! recorded as freed by this transaction. A branch stays its page until one of its
//! entries changes (`node::PageBranch`): descending through it only records the child
//! replaced. At commit the dirty nodes are encoded bottom-up into new pages (see
//! `commit.rs`; an unchanged branch is its page with the new child references patched
//! in), so a parent always knows each child's txid and checksum when it is encoded.
//!
//! - `node`: the arena's nodes, keys, values and child pointers.
//! - `read`: lookups and node views over verified pages or arena nodes.
//! - `state`: the write transaction's state: the arena and the bucket table.
//! - `mutate`: puts with splits, deletes with merges.
//! - `catalog`: the bucket table: open, create, delete, and bucket headers at commit.
//!
//! **Invariant:** separator `keys[i]` of a branch is a lower bound of every key in
//! child `i`, and child `i`'s keys are below `keys[i+1]`.
//! **Invariant:** the B+tree does I/O only through the pager.
//! **Invariant:** every page read on a descent carries the `tree_id` of the bucket being
//! descended (checked in `read::read_page`).
//! **Invariant:** a committed page is never modified; touching a node copies it into the
//! arena and records the old page as freed by this transaction.

mod catalog;
pub(crate) use catalog::checked_header;
mod mutate;
mod node;
mod read;
mod state;

pub(crate) use mutate::overflow_threshold;
pub(crate) use node::{Child, NodeValue};
pub(crate) use read::{load, lookup, read_page, too_deep, Handle, Pinned, Tree, ValRef};
pub(crate) use state::{BucketSlot, TxState};
