//! Typed buckets: a [`Table`] names a top-level bucket and the [`Codec`]s of its keys
//! and values (redb's `TableDefinition<K, V>`, heed's codecs). Optional: the byte API
//! underneath stays the same, and [`TypedBucket::untyped`] gives it back.
//!
//! ```
//! use untorn::typed::Table;
//!
//! const AGES: Table<str, u32> = Table::new("ages");
//! const EVENTS: Table<u64, [u8]> = Table::new("events");
//!
//! # let dir = tempfile::tempdir()?;
//! # let db = untorn::Database::create(dir.path().join("db"))?;
//! db.update(|tx| -> untorn::Result<()> {
//!     let ages = AGES.create(tx)?;
//!     ages.put("alice", &41)?;
//!     ages.put("bob", &7)?;
//!     let events = EVENTS.create(tx)?;
//!     for n in [300u64, 2, 1_000_000] {
//!         events.put(&n, b"tick")?;
//!     }
//!     Ok(())
//! })?;
//! db.view(|tx| -> untorn::Result<()> {
//!     let ages = AGES.open(tx)?.expect("created above");
//!     assert_eq!(ages.get("alice")?, Some(41));
//!     // Integers are stored big-endian, so they sort numerically.
//!     let events = EVENTS.open(tx)?.expect("created above");
//!     let ids: Vec<u64> = events.iter()?.map(|r| r.map(|(k, _)| k)).collect::<Result<_, _>>()?;
//!     assert_eq!(ids, [2, 300, 1_000_000]);
//!     assert_eq!(events.range(&100..&1_000)?.count(), 1);
//!     Ok(())
//! })?;
//! # Ok::<(), untorn::Error>(())
//! ```
//!
//! Codecs: the fixed-width integers (big-endian; signed ones with the sign bit flipped,
//! so that byte order is numeric order), `str` (UTF-8, read back as `String`), `[u8]`
//! (read back as `Vec<u8>`), `()` (empty value), and with the `serde` feature
//! `Json<T>` for any serde type (stored as JSON: it does not sort numerically; use it
//! for values). A value that does not decode is [`Error::Codec`], naming the bucket.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};

use crate::bucket::{Bucket, BucketMut, ReadBucket};
use crate::error::{Error, Result};
use crate::range::Range;
use crate::tx::{ReadTx, WriteTx};

/// How a key or value type is stored as bytes.
pub trait Codec {
    /// What `put` and `get` take (`u64`, `str`, `[u8]`, `T`).
    type Input: ?Sized;
    /// What reads return (`u64`, `String`, `Vec<u8>`, `T`).
    type Output;
    /// The bytes of `item`.
    fn encode(item: &Self::Input) -> Result<Cow<'_, [u8]>>;
    /// The item stored as `bytes`.
    fn decode(bytes: &[u8]) -> Result<Self::Output>;
}

fn wrong_width(ty: &str, want: usize, got: usize) -> Error {
    Error::Codec(format!("a {ty} is {want} bytes, found {got}"))
}

macro_rules! unsigned_codec {
    ($($t:ty),*) => {$(
        impl Codec for $t {
            type Input = $t;
            type Output = $t;
            fn encode(item: &$t) -> Result<Cow<'_, [u8]>> {
                Ok(Cow::Owned(item.to_be_bytes().to_vec()))
            }
            fn decode(bytes: &[u8]) -> Result<$t> {
                let b = bytes.try_into().map_err(|_| {
                    wrong_width(stringify!($t), std::mem::size_of::<$t>(), bytes.len())
                })?;
                Ok(<$t>::from_be_bytes(b))
            }
        }
    )*};
}

unsigned_codec!(u8, u16, u32, u64, u128);

macro_rules! signed_codec {
    ($($t:ty => $u:ty),*) => {$(
        impl Codec for $t {
            type Input = $t;
            type Output = $t;
            fn encode(item: &$t) -> Result<Cow<'_, [u8]>> {
                // Flipping the sign bit maps MIN..=MAX onto 0..=MAX of the unsigned type
                // in order, so the big-endian bytes sort numerically.
                let flipped = item.cast_unsigned() ^ (1 << (<$u>::BITS - 1));
                Ok(Cow::Owned(flipped.to_be_bytes().to_vec()))
            }
            fn decode(bytes: &[u8]) -> Result<$t> {
                let b = bytes.try_into().map_err(|_| {
                    wrong_width(stringify!($t), std::mem::size_of::<$t>(), bytes.len())
                })?;
                Ok((<$u>::from_be_bytes(b) ^ (1 << (<$u>::BITS - 1))).cast_signed())
            }
        }
    )*};
}

signed_codec!(i8 => u8, i16 => u16, i32 => u32, i64 => u64, i128 => u128);

impl Codec for str {
    type Input = str;
    type Output = String;
    fn encode(item: &str) -> Result<Cow<'_, [u8]>> {
        Ok(Cow::Borrowed(item.as_bytes()))
    }
    fn decode(bytes: &[u8]) -> Result<String> {
        String::from_utf8(bytes.to_vec())
            .map_err(|e| Error::Codec(format!("not UTF-8: {}", e.utf8_error())))
    }
}

impl Codec for [u8] {
    type Input = [u8];
    type Output = Vec<u8>;
    fn encode(item: &[u8]) -> Result<Cow<'_, [u8]>> {
        Ok(Cow::Borrowed(item))
    }
    fn decode(bytes: &[u8]) -> Result<Vec<u8>> {
        Ok(bytes.to_vec())
    }
}

impl Codec for () {
    type Input = ();
    type Output = ();
    fn encode(_: &()) -> Result<Cow<'_, [u8]>> {
        Ok(Cow::Borrowed(&[]))
    }
    fn decode(bytes: &[u8]) -> Result<()> {
        if bytes.is_empty() {
            Ok(())
        } else {
            Err(wrong_width("()", 0, bytes.len()))
        }
    }
}

/// Any serde type, stored as JSON (`serde` feature). JSON does not sort numerically:
/// use it for values, and integers or strings for keys.
#[cfg(feature = "serde")]
pub struct Json<T>(PhantomData<T>);

#[cfg(feature = "serde")]
impl<T: serde::Serialize + serde::de::DeserializeOwned> Codec for Json<T> {
    type Input = T;
    type Output = T;
    fn encode(item: &T) -> Result<Cow<'_, [u8]>> {
        serde_json::to_vec(item)
            .map(Cow::Owned)
            .map_err(|e| Error::Codec(format!("cannot encode as JSON: {e}")))
    }
    fn decode(bytes: &[u8]) -> Result<T> {
        serde_json::from_slice(bytes)
            .map_err(|e| Error::Codec(format!("not the JSON expected: {e}")))
    }
}

/// The key and value types a table carries without holding any (`fn` pointers: neither
/// owned nor borrowed, so the table stays `Send + Sync + Copy` for any codec).
type Types<K, V> = PhantomData<(fn(&K), fn(&V))>;

/// A top-level bucket with typed keys and values: `const USERS: Table<str, Json<User>> =
/// Table::new("users");`.
pub struct Table<K: ?Sized, V: ?Sized> {
    name: &'static str,
    types: Types<K, V>,
}

impl<K: ?Sized, V: ?Sized> Clone for Table<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K: ?Sized, V: ?Sized> Copy for Table<K, V> {}

impl<K: ?Sized, V: ?Sized> fmt::Debug for Table<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table").field("name", &self.name).finish()
    }
}

impl<K: Codec + ?Sized, V: Codec + ?Sized> Table<K, V> {
    /// A table stored as the top-level bucket `name`.
    pub const fn new(name: &'static str) -> Self {
        Table {
            name,
            types: PhantomData,
        }
    }

    /// The bucket's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Opens the table in a read transaction (`None` if its bucket does not exist).
    pub fn open<'t>(&self, tx: &'t ReadTx<'_>) -> Result<Option<TypedBucket<Bucket<'t>, K, V>>> {
        Ok(tx
            .bucket(self.name)?
            .map(|b| TypedBucket::new(b, self.name)))
    }

    /// Opens the table in the write transaction (`None` if its bucket does not exist).
    pub fn open_mut<'t>(
        &self,
        tx: &'t WriteTx<'_>,
    ) -> Result<Option<TypedBucket<BucketMut<'t>, K, V>>> {
        Ok(tx
            .bucket(self.name)?
            .map(|b| TypedBucket::new(b, self.name)))
    }

    /// Opens the table in the write transaction, creating its bucket if missing.
    pub fn create<'t>(&self, tx: &'t WriteTx<'_>) -> Result<TypedBucket<BucketMut<'t>, K, V>> {
        Ok(TypedBucket::new(
            tx.create_bucket_if_not_exists(self.name)?,
            self.name,
        ))
    }
}

/// A bucket read and written through codecs: `B` is a [`Bucket`] or a [`BucketMut`].
pub struct TypedBucket<B, K: ?Sized, V: ?Sized> {
    bucket: B,
    name: &'static str,
    types: Types<K, V>,
}

impl<B, K: ?Sized, V: ?Sized> fmt::Debug for TypedBucket<B, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedBucket")
            .field("name", &self.name)
            .finish()
    }
}

/// A codec error said about bucket `name`.
fn in_bucket(name: &str, e: Error) -> Error {
    match e {
        Error::Codec(detail) => Error::Codec(format!("bucket {name:?}: {detail}")),
        e => e,
    }
}

impl<'t, B: ReadBucket<'t>, K: Codec + ?Sized, V: Codec + ?Sized> TypedBucket<B, K, V> {
    fn new(bucket: B, name: &'static str) -> Self {
        TypedBucket {
            bucket,
            name,
            types: PhantomData,
        }
    }

    /// The bucket underneath, for the byte API.
    pub fn untyped(&self) -> &B {
        &self.bucket
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &K::Input) -> Result<Option<V::Output>> {
        let k = K::encode(key).map_err(|e| in_bucket(self.name, e))?;
        match self.bucket.get(k)? {
            None => Ok(None),
            Some(v) => V::decode(&v).map(Some).map_err(|e| in_bucket(self.name, e)),
        }
    }

    /// Key/value pairs in the bucket (O(1)).
    pub fn len(&self) -> Result<u64> {
        self.bucket.len()
    }

    /// Whether the bucket holds no key/value pairs.
    pub fn is_empty(&self) -> Result<bool> {
        self.bucket.is_empty()
    }

    /// Every pair, decoded, in key order.
    pub fn iter(&self) -> Result<TypedRange<'t, K, V>> {
        Ok(TypedRange::new(self.bucket.iter()?, self.name))
    }

    /// The pairs with keys in `r` (`&lo..&hi`, `"a".."c"`), in key order.
    pub fn range<'a>(&self, r: impl RangeBounds<&'a K::Input>) -> Result<TypedRange<'t, K, V>>
    where
        K::Input: 'a,
    {
        let bound = |b: Bound<&&'a K::Input>| -> Result<Bound<Vec<u8>>> {
            Ok(match b {
                Bound::Included(k) => Bound::Included(K::encode(k)?.into_owned()),
                Bound::Excluded(k) => Bound::Excluded(K::encode(k)?.into_owned()),
                Bound::Unbounded => Bound::Unbounded,
            })
        };
        let lo = bound(r.start_bound()).map_err(|e| in_bucket(self.name, e))?;
        let hi = bound(r.end_bound()).map_err(|e| in_bucket(self.name, e))?;
        Ok(TypedRange::new(self.bucket.range((lo, hi))?, self.name))
    }
}

impl<'t, K: Codec + ?Sized, V: Codec + ?Sized> TypedBucket<BucketMut<'t>, K, V> {
    /// Stores `value` under `key`.
    pub fn put(&self, key: &K::Input, value: &V::Input) -> Result<()> {
        let k = K::encode(key).map_err(|e| in_bucket(self.name, e))?;
        let v = V::encode(value).map_err(|e| in_bucket(self.name, e))?;
        self.bucket.put(k, v)
    }

    /// Removes `key`; returns whether it existed.
    pub fn delete(&self, key: &K::Input) -> Result<bool> {
        let k = K::encode(key).map_err(|e| in_bucket(self.name, e))?;
        self.bucket.delete(k)
    }
}

/// Decoded pairs of a [`TypedBucket`], in key order (double-ended).
pub struct TypedRange<'t, K: ?Sized, V: ?Sized> {
    inner: Range<'t>,
    name: &'static str,
    types: Types<K, V>,
}

impl<'t, K: Codec + ?Sized, V: Codec + ?Sized> TypedRange<'t, K, V> {
    fn new(inner: Range<'t>, name: &'static str) -> Self {
        TypedRange {
            inner,
            name,
            types: PhantomData,
        }
    }

    fn decode(&self, item: Result<(crate::Key, crate::Value)>) -> Result<(K::Output, V::Output)> {
        let (k, v) = item?;
        let k = K::decode(&k).map_err(|e| in_bucket(self.name, e))?;
        let v = V::decode(&v).map_err(|e| in_bucket(self.name, e))?;
        Ok((k, v))
    }
}

impl<K: Codec + ?Sized, V: Codec + ?Sized> Iterator for TypedRange<'_, K, V> {
    type Item = Result<(K::Output, V::Output)>;
    fn next(&mut self) -> Option<Self::Item> {
        let item = self.inner.next()?;
        Some(self.decode(item))
    }
}

impl<K: Codec + ?Sized, V: Codec + ?Sized> DoubleEndedIterator for TypedRange<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let item = self.inner.next_back()?;
        Some(self.decode(item))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<C: Codec<Input = C, Output = C> + Copy + Ord + fmt::Debug>(xs: &[C]) {
        let mut enc: Vec<(Vec<u8>, C)> = xs
            .iter()
            .map(|x| (C::encode(x).unwrap().into_owned(), *x))
            .collect();
        for (b, x) in &enc {
            assert_eq!(C::decode(b).unwrap(), *x);
        }
        // Byte order is numeric order.
        enc.sort();
        let by_bytes: Vec<C> = enc.iter().map(|(_, x)| *x).collect();
        let mut by_value = xs.to_vec();
        by_value.sort();
        assert_eq!(by_bytes, by_value);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_values_round_trip_through_a_table() {
        #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        struct User {
            name: String,
            admin: bool,
        }
        const USERS: Table<u32, Json<User>> = Table::new("users");
        let db = crate::Database::builder()
            .open_storage(
                std::sync::Arc::new(crate::MemoryStorage::new()),
                std::sync::Arc::new(crate::MemoryStorage::new()),
                true,
            )
            .unwrap();
        let alice = User {
            name: "alice".into(),
            admin: true,
        };
        db.update(|tx| USERS.create(tx)?.put(&7, &alice)).unwrap();
        let got = db
            .view(|tx| USERS.open(tx)?.expect("created").get(&7))
            .unwrap();
        assert_eq!(got, Some(alice));
        // Bytes that are not a User: a codec error naming the bucket.
        db.update(|tx| {
            tx.bucket("users")?
                .expect("users")
                .put(8u32.to_be_bytes(), "{}")
        })
        .unwrap();
        let e = db
            .view(|tx| USERS.open(tx)?.expect("created").get(&8))
            .unwrap_err();
        assert!(e.to_string().contains("bucket \"users\""), "{e}");
    }

    #[test]
    fn integer_codecs_sort_numerically_and_round_trip() {
        round_trip(&[0u64, 1, 255, 256, u64::MAX, 70_000]);
        round_trip(&[i64::MIN, -300, -1, 0, 1, 300, i64::MAX]);
        round_trip(&[i8::MIN, -1, 0, 1, i8::MAX]);
        round_trip(&[u16::MAX, 0, 9]);
        assert!(u32::decode(&[1, 2, 3]).is_err());
        assert!(<()>::decode(&[1]).is_err());
        assert!(str::decode(&[0xff]).is_err());
        assert_eq!(str::decode(b"hi").unwrap(), "hi");
    }
}
