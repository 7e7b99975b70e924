//! [`Value`]: bytes read from the database, borrowed from the verified page that holds
//! them (never copied out of a page), and [`Entry`]: what a cursor position holds.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use crate::format::PageSlice;

/// A value read from the database. Dereferences to `&[u8]`; values in a page are not
/// copied.
#[derive(Clone)]
pub struct Value {
    inner: ValueInner,
}

#[derive(Clone)]
enum ValueInner {
    /// Bytes inside a verified page (an inline value or an overflow extent's payload).
    Page(PageSlice),
    /// Bytes a write transaction holds (not yet in a page).
    Owned(Arc<[u8]>),
}

impl Value {
    pub(crate) fn in_page(slice: PageSlice) -> Value {
        Value {
            inner: ValueInner::Page(slice),
        }
    }

    pub(crate) fn owned(bytes: impl Into<Arc<[u8]>>) -> Value {
        Value {
            inner: ValueInner::Owned(bytes.into()),
        }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.inner {
            ValueInner::Page(slice) => slice.bytes(),
            ValueInner::Owned(b) => b,
        }
    }

    /// A copy of the bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}

impl Deref for Value {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for Value {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value({:?})", self.as_bytes())
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Value {}

impl PartialEq<[u8]> for Value {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_bytes() == other
    }
}

impl PartialEq<&[u8]> for Value {
    fn eq(&self, other: &&[u8]) -> bool {
        self.as_bytes() == *other
    }
}

/// What a cursor position holds.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A key/value pair.
    Value(Value),
    /// A nested bucket (open it with `bucket(key)`).
    Bucket,
}
