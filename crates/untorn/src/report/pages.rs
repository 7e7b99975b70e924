//! Pages as the page commands show them: one [`PageInfo`] row per page id for `pages`
//! and `map`, and one [`PageDescription`] of a page's contents for `page`.

/// What a page is, for `pages` and `map`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PageKind {
    /// A meta page.
    Meta,
    /// A branch (interior) node.
    Branch,
    /// A leaf node.
    Leaf,
    /// A continuation page of a multi-page node or overflow value.
    Overflow,
    /// The freelist.
    Freelist,
    /// A free page (content irrelevant).
    Free,
    /// Unreadable or unrecognised.
    Unknown,
}

impl PageKind {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            PageKind::Meta => "meta",
            PageKind::Branch => "branch",
            PageKind::Leaf => "leaf",
            PageKind::Overflow => "overflow",
            PageKind::Freelist => "freelist",
            PageKind::Free => "free",
            PageKind::Unknown => "unknown",
        }
    }
}

/// Where a page stands relative to the tree and the freelist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PageState {
    /// Reachable from the active meta exactly once (or is a meta page).
    Reachable,
    /// In the freelist (or pending free).
    Free,
    /// Neither reachable nor free.
    Leaked,
    /// Reachable but failed verification, or referenced in a conflicting way.
    Corrupt,
}

impl PageState {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            PageState::Reachable => "reachable",
            PageState::Free => "free",
            PageState::Leaked => "leaked",
            PageState::Corrupt => "corrupt",
        }
    }
}

/// One row of `untorn pages`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageInfo {
    /// Page id.
    pub id: u64,
    /// What the page is.
    pub kind: PageKind,
    /// Elements in the page (keys, children or free ids).
    pub items: u64,
    /// Extra pages after this one belonging to it (multi-page node or overflow value).
    pub overflow: u64,
    /// Reachability state.
    pub state: PageState,
}

/// One page as `untorn page` shows it, for either format: the header as read, whether
/// the page verifies, its decoded elements and its raw bytes. Made by
/// [`crate::check::describe_page`] and by `untorn_bbolt::describe_page`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageDescription {
    /// The page id asked for.
    pub id: u64,
    /// Why the page could not be read at all (then nothing else is set).
    pub read_error: Option<String>,
    /// The header fields, when the bytes hold a recognisable header.
    pub header: Option<PageHeaderView>,
    /// `"ok"`, or why the page does not verify (or why no header was recognised).
    pub verify: String,
    /// The decoded elements (keys and values, children, free runs).
    pub elements: Vec<PageElement>,
    /// Why the elements could not be decoded, if they could not.
    pub elements_error: Option<String>,
    /// The decoded meta of a meta page.
    pub meta: Option<MetaView>,
    /// The page's bytes (its whole extent when the header names one).
    pub raw: Vec<u8>,
}

impl PageDescription {
    /// A page that could not be read.
    pub fn unreadable(id: u64, why: impl Into<String>) -> Self {
        PageDescription {
            id,
            read_error: Some(why.into()),
            header: None,
            verify: String::new(),
            elements: Vec::new(),
            elements_error: None,
            meta: None,
            raw: Vec::new(),
        }
    }
}

/// The header fields of a page as read (unverified). Fields a format does not have are
/// `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageHeaderView {
    /// What the header says the page is.
    pub kind: PageKind,
    /// The id the page says it has.
    pub page_id: u64,
    /// The txid that wrote the page (untorn).
    pub txid: Option<u64>,
    /// The stored checksum (untorn).
    pub checksum: Option<u32>,
    /// The raw type flags (bbolt).
    pub flags: Option<u16>,
    /// Pages in the extent (untorn).
    pub extent_pages: Option<u32>,
    /// Extra pages after this one (bbolt).
    pub overflow: Option<u32>,
    /// Element count.
    pub count: u32,
    /// Payload bytes after the header (untorn).
    pub payload_len: Option<u64>,
}

/// One decoded element of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageElement {
    /// A key and its value.
    Value {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// A key whose value lives in an overflow extent (untorn).
    Overflow {
        /// The key.
        key: Vec<u8>,
        /// The extent's first page.
        page: u64,
        /// The txid that wrote the extent.
        txid: u64,
        /// Pages in the extent.
        extent_pages: u32,
        /// The value's length.
        len: u64,
    },
    /// A key naming a nested bucket.
    Bucket {
        /// The bucket's name.
        key: Vec<u8>,
        /// Its root page (0: empty, or inline in bbolt).
        root: u64,
        /// The txid that wrote its root (untorn).
        root_txid: Option<u64>,
        /// Its sequence counter.
        sequence: u64,
        /// Key/value pairs directly in it (untorn).
        count: Option<u64>,
        /// Whether it is stored inline in the leaf (bbolt).
        inline: Option<bool>,
    },
    /// A separator key and the child page it leads to.
    Child {
        /// The separator key.
        key: Vec<u8>,
        /// The child page.
        page: u64,
        /// The txid the parent expects of the child (untorn).
        txid: Option<u64>,
        /// The checksum the parent expects of the child (untorn).
        checksum: Option<u32>,
        /// The child's extent length (untorn).
        extent_pages: Option<u32>,
    },
    /// A run of free pages.
    FreeRun {
        /// The first free page.
        start: u64,
        /// Pages in the run.
        len: u64,
    },
    /// An element that could not be decoded.
    Error {
        /// Its key, if that could be read.
        key: Option<Vec<u8>>,
        /// What is wrong.
        message: String,
    },
}

/// The decoded meta of a meta page. Fields a format does not have are `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaView {
    /// The commit the meta describes.
    pub txid: u64,
    /// The file's page size.
    pub page_size: u32,
    /// The root bucket's root page.
    pub root: u64,
    /// The freelist page (`None`: bbolt's freelist is not synced).
    pub freelist: Option<u64>,
    /// The high-water mark.
    pub high_water: u64,
    /// The root bucket's sequence (bbolt).
    pub sequence: Option<u64>,
    /// The meta's stored checksum (bbolt's FNV-1a).
    pub checksum: Option<u64>,
}
