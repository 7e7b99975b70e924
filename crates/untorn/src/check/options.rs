//! Options and progress reporting for a check.

use std::fmt;

/// Progress of a running check, passed to [`CheckOptions::progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckProgress {
    /// Pages examined so far.
    pub pages_done: u64,
    /// Pages the check expects to examine (the high-water mark).
    pub pages_total: u64,
}

/// How a check runs.
pub struct CheckOptions {
    /// Findings kept in the report; more are counted as `truncated`. Default 1000.
    pub max_findings: usize,
    /// Check only the subtree rooted at this page (no leak or freelist accounting).
    pub from_page: Option<u64>,
    /// Called every few hundred pages; returning `false` cancels the check with
    /// [`Error::Cancelled`](crate::Error::Cancelled).
    pub progress: Option<Box<dyn FnMut(CheckProgress) -> bool + Send>>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            max_findings: 1000,
            from_page: None,
            progress: None,
        }
    }
}

impl fmt::Debug for CheckOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckOptions")
            .field("max_findings", &self.max_findings)
            .field("from_page", &self.from_page)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}
