//! The report vocabulary shared by the native checker, the bbolt checker, both formats'
//! inspection and salvage, and the CLI that renders them.
//!
//! A checker produces a [`Report`]: a list of [`Finding`]s (kind, page, path from the
//! root, message) plus counters. Both formats use the same [`FindingKind`] names so that
//! `untorn check --json` has one schema (documented in `docs/check.md`). Page-level
//! summaries for `untorn pages` and `untorn map` use [`PageInfo`], `untorn page` a
//! [`PageDescription`], `untorn stats` one [`Stats`], and salvage a [`SalvageSummary`].

mod findings;
mod pages;
mod salvage;
mod stats;

pub use crate::words::{count, plural};
pub use findings::{Finding, FindingKind, FindingSink, Report, RootCause};
pub use pages::{
    MetaView, PageDescription, PageElement, PageHeaderView, PageInfo, PageKind, PageState,
};
pub use salvage::{DumpItem, Lost, Pair, SalvageSummary, Stale};
pub use stats::Stats;
