//! What a lookup table is keyed by: strings (`StringLookup`) or 64-bit integers
//! (`IntegerLookup`), and how each picks one of several OOV ids as Keras does.

use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;

use super::farmhash::fingerprint64;

mod sealed {
    pub trait Sealed {}
    impl Sealed for String {}
    impl Sealed for i64 {}
}

/// A vocabulary entry of an [`IndexLookup`](super::IndexLookup): `String` for
/// [`StringLookup`](super::StringLookup), `i64` for [`IntegerLookup`](super::IntegerLookup).
/// Sealed: only these two.
pub trait LookupKey:
    sealed::Sealed
    + Borrow<Self::Query>
    + Clone
    + Eq
    + Hash
    + Ord
    + fmt::Debug
    + fmt::Display
    + Send
    + Sync
    + 'static
{
    /// What a lookup is asked with: `str` or `i64`.
    type Query: ?Sized + Hash + Eq + fmt::Debug;

    /// The Keras class name, for messages: `"StringLookup"` or `"IntegerLookup"`.
    const CLASS_NAME: &'static str;

    /// The base of the layer's default names: `"string_lookup"` or `"integer_lookup"`.
    const BASE_NAME: &'static str;

    /// The owned key of a query.
    fn from_query(query: &Self::Query) -> Self;

    /// The OOV bucket in `[0, buckets)` of a query that is not in the vocabulary, as
    /// `IndexLookup._lookup_dense` picks it: `tf.strings.to_hash_bucket_fast` (FarmHash
    /// fingerprint modulo `buckets`) for strings, `tf.math.floormod` for integers.
    fn oov_bucket(query: &Self::Query, buckets: u64) -> u64;

    /// The key as a line of the vocabulary file Keras writes (`str(token)`).
    fn to_line(&self) -> String;

    /// The key from a line of a vocabulary file (`int(line)` for integers), or what was
    /// expected.
    fn from_line(line: &str) -> Result<Self, &'static str>;
}

impl LookupKey for String {
    type Query = str;
    const CLASS_NAME: &'static str = "StringLookup";
    const BASE_NAME: &'static str = "string_lookup";

    fn from_query(query: &str) -> Self {
        query.to_string()
    }

    #[inline]
    fn oov_bucket(query: &str, buckets: u64) -> u64 {
        fingerprint64(query.as_bytes()) % buckets
    }

    fn to_line(&self) -> String {
        self.clone()
    }

    fn from_line(line: &str) -> Result<Self, &'static str> {
        Ok(line.to_string())
    }
}

impl LookupKey for i64 {
    type Query = i64;
    const CLASS_NAME: &'static str = "IntegerLookup";
    const BASE_NAME: &'static str = "integer_lookup";

    fn from_query(query: &i64) -> Self {
        *query
    }

    #[inline]
    fn oov_bucket(query: &i64, buckets: u64) -> u64 {
        // floormod: the sign of the divisor, so negative ids land in [0, buckets) too.
        i128::from(*query).rem_euclid(i128::from(buckets)) as u64
    }

    fn to_line(&self) -> String {
        self.to_string()
    }

    fn from_line(line: &str) -> Result<Self, &'static str> {
        // Python's int(): surrounding whitespace, a leading `+` or `-`, and single
        // underscores between digits (`1_000`). (It also reads non-ASCII decimal digits,
        // such as `٣`; these are refused here.)
        const EXPECTED: &str =
            "a decimal 64-bit integer (ASCII digits, single underscores between digits)";
        let text = line.trim();
        let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
        let well_formed = digits.starts_with(|c: char| c.is_ascii_digit())
            && digits.ends_with(|c: char| c.is_ascii_digit())
            && digits.chars().all(|c| c.is_ascii_digit() || c == '_')
            && !digits.contains("__");
        if !well_formed {
            return Err(EXPECTED);
        }
        let plain: String = text.chars().filter(|&c| c != '_').collect();
        plain.parse::<i64>().map_err(|_| EXPECTED)
    }
}

/// An input element a lookup accepts: anything that reads as a `str` for string keys, `i64`
/// (or `&i64`) for integer keys.
pub trait AsQuery<Q: ?Sized> {
    /// The element as a query.
    fn as_query(&self) -> &Q;
}

impl<S: AsRef<str> + ?Sized> AsQuery<str> for S {
    #[inline]
    fn as_query(&self) -> &str {
        self.as_ref()
    }
}

impl AsQuery<i64> for i64 {
    #[inline]
    fn as_query(&self) -> &i64 {
        self
    }
}

impl AsQuery<i64> for &i64 {
    #[inline]
    fn as_query(&self) -> &i64 {
        self
    }
}
