//! [`Value`] and [`Key`]: bytes read from the database, borrowed from the verified page
//! that holds them (never copied out of a page), and [`Entry`]: what a cursor position
//! holds.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use crate::format::PageSlice;

/// Where the bytes of a [`Key`] or [`Value`] live.
#[derive(Clone)]
enum Bytes {
    /// Bytes inside a verified page (a key, an inline value or an overflow extent's
    /// payload): a reference count on the cached page, no copy.
    Page(PageSlice),
    /// Bytes a write transaction holds (not yet in a page).
    Owned(Arc<[u8]>),
}

impl Bytes {
    fn as_bytes(&self) -> &[u8] {
        match self {
            Bytes::Page(slice) => slice.bytes(),
            Bytes::Owned(b) => b,
        }
    }
}

/// The methods and traits `Key` and `Value` share: both are `[u8]` to the user.
macro_rules! byte_handle {
    ($name:ident) => {
        impl $name {
            pub(crate) fn in_page(slice: PageSlice) -> $name {
                $name {
                    inner: Bytes::Page(slice),
                }
            }

            pub(crate) fn owned(bytes: impl Into<Arc<[u8]>>) -> $name {
                $name {
                    inner: Bytes::Owned(bytes.into()),
                }
            }

            /// The bytes.
            pub fn as_bytes(&self) -> &[u8] {
                self.inner.as_bytes()
            }

            /// The bytes (the name `Vec<u8>` uses, for code that held keys as vectors).
            pub fn as_slice(&self) -> &[u8] {
                self.inner.as_bytes()
            }

            /// A copy of the bytes.
            pub fn to_vec(&self) -> Vec<u8> {
                self.as_bytes().to_vec()
            }
        }

        impl Deref for $name {
            type Target = [u8];
            fn deref(&self) -> &[u8] {
                self.as_bytes()
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                self.as_bytes()
            }
        }

        impl Borrow<[u8]> for $name {
            fn borrow(&self) -> &[u8] {
                self.as_bytes()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.as_bytes())
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &$name) -> bool {
                self.as_bytes() == other.as_bytes()
            }
        }

        impl Eq for $name {}

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &$name) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &$name) -> Ordering {
                self.as_bytes().cmp(other.as_bytes())
            }
        }

        impl Hash for $name {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.as_bytes().hash(state)
            }
        }

        impl PartialEq<[u8]> for $name {
            fn eq(&self, other: &[u8]) -> bool {
                self.as_bytes() == other
            }
        }

        impl PartialEq<&[u8]> for $name {
            fn eq(&self, other: &&[u8]) -> bool {
                self.as_bytes() == *other
            }
        }

        impl<const N: usize> PartialEq<[u8; N]> for $name {
            fn eq(&self, other: &[u8; N]) -> bool {
                self.as_bytes() == other
            }
        }

        impl<const N: usize> PartialEq<&[u8; N]> for $name {
            fn eq(&self, other: &&[u8; N]) -> bool {
                self.as_bytes() == *other
            }
        }

        impl PartialEq<Vec<u8>> for $name {
            fn eq(&self, other: &Vec<u8>) -> bool {
                self.as_bytes() == other.as_slice()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_bytes() == other.as_bytes()
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_bytes() == other.as_bytes()
            }
        }

        impl From<$name> for Vec<u8> {
            fn from(b: $name) -> Vec<u8> {
                b.to_vec()
            }
        }
    };
}

/// A value read from the database. Dereferences to `&[u8]`; a value in a page is not
/// copied (the handle keeps the cached page alive).
#[derive(Clone)]
pub struct Value {
    inner: Bytes,
}

byte_handle!(Value);

/// A key read from the database (cursors, ranges, iterators). Dereferences to `&[u8]`;
/// like a [`Value`], a key in a page is not copied, so a scan allocates nothing per key.
#[derive(Clone)]
pub struct Key {
    inner: Bytes,
}

byte_handle!(Key);

/// What a cursor position holds.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A key/value pair.
    Value(Value),
    /// A nested bucket (open it with `bucket(key)`).
    Bucket,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_compare_as_their_bytes() {
        let k = Key::owned(b"abc".to_vec());
        assert_eq!(k, *b"abc");
        assert_eq!(k, "abc");
        assert_eq!(k, b"abc".to_vec());
        assert!(Key::owned(b"abb".to_vec()) < k);
        let v = Value::owned(b"x".to_vec());
        assert_eq!(Vec::from(v.clone()), b"x".to_vec());
        assert_eq!(format!("{v:?}"), "Value([120])");
    }
}
