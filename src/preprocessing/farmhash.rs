//! FarmHash `Fingerprint64` (the `farmhashna::Hash64` of google/farmhash), the hash behind
//! TensorFlow's `tf.strings.to_hash_bucket_fast`: Keras' `Hashing` without a salt and the
//! choice among several OOV ids of `StringLookup`.
//!
//! A fingerprint is fixed forever and the same on every platform (the bytes are read as
//! little-endian words), so ids made in Rust equal the ids made by TensorFlow; the tests of
//! `tests/keras_lookups.rs` check it against TensorFlow 2.21 on strings of every length the
//! algorithm branches on (0 to 16, 17 to 32, 33 to 64 and longer).

use std::hash::{BuildHasherDefault, Hasher};

const K0: u64 = 0xc3a5_c85c_97cb_3127;
const K1: u64 = 0xb492_b66f_be98_f273;
const K2: u64 = 0x9ae1_6a3b_2f90_404f;

/// The 64-bit FarmHash fingerprint of `bytes`, as TensorFlow's `Fingerprint64` computes it.
///
/// ```
/// use ndkeras::preprocessing::fingerprint64;
///
/// // tf.strings.to_hash_bucket_fast(["A"], 3) == [1] (the `Hashing` docstring's example)
/// assert_eq!(fingerprint64(b"A") % 3, 1);
/// ```
pub fn fingerprint64(bytes: &[u8]) -> u64 {
    let len = bytes.len();
    if len <= 16 {
        hash_len_0_to_16(bytes)
    } else if len <= 32 {
        hash_len_17_to_32(bytes)
    } else if len <= 64 {
        hash_len_33_to_64(bytes)
    } else {
        hash_long(bytes)
    }
}

/// The little-endian word at `at` (callers guarantee `at + 8 <= s.len()`).
#[inline]
fn fetch64(s: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&s[at..at + 8]);
    u64::from_le_bytes(word)
}

#[inline]
fn fetch32(s: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&s[at..at + 4]);
    u64::from(u32::from_le_bytes(word))
}

#[inline]
fn shift_mix(value: u64) -> u64 {
    value ^ (value >> 47)
}

#[inline]
fn hash_len_16(u: u64, v: u64, mul: u64) -> u64 {
    let mut a = (u ^ v).wrapping_mul(mul);
    a ^= a >> 47;
    let mut b = (v ^ a).wrapping_mul(mul);
    b ^= b >> 47;
    b.wrapping_mul(mul)
}

fn hash_len_0_to_16(s: &[u8]) -> u64 {
    let len = s.len();
    let len64 = len as u64;
    if len >= 8 {
        let mul = K2.wrapping_add(len64 * 2);
        let a = fetch64(s, 0).wrapping_add(K2);
        let b = fetch64(s, len - 8);
        let c = b.rotate_right(37).wrapping_mul(mul).wrapping_add(a);
        let d = a.rotate_right(25).wrapping_add(b).wrapping_mul(mul);
        return hash_len_16(c, d, mul);
    }
    if len >= 4 {
        let mul = K2.wrapping_add(len64 * 2);
        let a = fetch32(s, 0);
        return hash_len_16(len64 + (a << 3), fetch32(s, len - 4), mul);
    }
    if len > 0 {
        // farmhash computes these in 32 bits, then widens them for the products.
        let a = u32::from(s[0]);
        let b = u32::from(s[len >> 1]);
        let c = u32::from(s[len - 1]);
        let y = a.wrapping_add(b << 8);
        let z = (len as u32).wrapping_add(c << 2);
        return shift_mix(u64::from(y).wrapping_mul(K2) ^ u64::from(z).wrapping_mul(K0))
            .wrapping_mul(K2);
    }
    K2
}

fn hash_len_17_to_32(s: &[u8]) -> u64 {
    let len = s.len();
    let mul = K2.wrapping_add(len as u64 * 2);
    let a = fetch64(s, 0).wrapping_mul(K1);
    let b = fetch64(s, 8);
    let c = fetch64(s, len - 8).wrapping_mul(mul);
    let d = fetch64(s, len - 16).wrapping_mul(K2);
    hash_len_16(
        a.wrapping_add(b)
            .rotate_right(43)
            .wrapping_add(c.rotate_right(30))
            .wrapping_add(d),
        a.wrapping_add(b.wrapping_add(K2).rotate_right(18))
            .wrapping_add(c),
        mul,
    )
}

fn hash_len_33_to_64(s: &[u8]) -> u64 {
    let len = s.len();
    let mul = K2.wrapping_add(len as u64 * 2);
    let a = fetch64(s, 0).wrapping_mul(K2);
    let b = fetch64(s, 8);
    let c = fetch64(s, len - 8).wrapping_mul(mul);
    let d = fetch64(s, len - 16).wrapping_mul(K2);
    let y = a
        .wrapping_add(b)
        .rotate_right(43)
        .wrapping_add(c.rotate_right(30))
        .wrapping_add(d);
    let z = hash_len_16(
        y,
        a.wrapping_add(b.wrapping_add(K2).rotate_right(18))
            .wrapping_add(c),
        mul,
    );
    let e = fetch64(s, 16).wrapping_mul(mul);
    let f = fetch64(s, 24);
    let g = y.wrapping_add(fetch64(s, len - 32)).wrapping_mul(mul);
    let h = z.wrapping_add(fetch64(s, len - 24)).wrapping_mul(mul);
    hash_len_16(
        e.wrapping_add(f)
            .rotate_right(43)
            .wrapping_add(g.rotate_right(30))
            .wrapping_add(h),
        e.wrapping_add(f.wrapping_add(a).rotate_right(18))
            .wrapping_add(g),
        mul,
    )
}

/// farmhash's `WeakHashLen32WithSeeds` on the four words at `at` and the seeds `a`, `b`.
#[inline]
fn weak_hash_32(s: &[u8], at: usize, a: u64, b: u64) -> (u64, u64) {
    let (w, x, y, z) = (
        fetch64(s, at),
        fetch64(s, at + 8),
        fetch64(s, at + 16),
        fetch64(s, at + 24),
    );
    let mut a = a.wrapping_add(w);
    let mut b = b.wrapping_add(a).wrapping_add(z).rotate_right(21);
    let c = a;
    a = a.wrapping_add(x).wrapping_add(y);
    b = b.wrapping_add(a.rotate_right(44));
    (a.wrapping_add(z), b.wrapping_add(c))
}

/// Strings over 64 bytes: 64-byte blocks, then the last 64 bytes (which may overlap).
fn hash_long(s: &[u8]) -> u64 {
    const SEED: u64 = 81;
    let len = s.len();
    let mut x = SEED;
    let mut y = SEED.wrapping_mul(K1).wrapping_add(113);
    let mut z = shift_mix(y.wrapping_mul(K2).wrapping_add(113)).wrapping_mul(K2);
    let mut v = (0u64, 0u64);
    let mut w = (0u64, 0u64);
    x = x.wrapping_mul(K2).wrapping_add(fetch64(s, 0));
    let end = ((len - 1) / 64) * 64;
    let last64 = len - 64;
    let mut at = 0;
    loop {
        x = x
            .wrapping_add(y)
            .wrapping_add(v.0)
            .wrapping_add(fetch64(s, at + 8))
            .rotate_right(37)
            .wrapping_mul(K1);
        y = y
            .wrapping_add(v.1)
            .wrapping_add(fetch64(s, at + 48))
            .rotate_right(42)
            .wrapping_mul(K1);
        x ^= w.1;
        y = y.wrapping_add(v.0).wrapping_add(fetch64(s, at + 40));
        z = z.wrapping_add(w.0).rotate_right(33).wrapping_mul(K1);
        v = weak_hash_32(s, at, v.1.wrapping_mul(K1), x.wrapping_add(w.0));
        w = weak_hash_32(
            s,
            at + 32,
            z.wrapping_add(w.1),
            y.wrapping_add(fetch64(s, at + 16)),
        );
        std::mem::swap(&mut z, &mut x);
        at += 64;
        if at == end {
            break;
        }
    }
    let mul = K1.wrapping_add((z & 0xff) << 1);
    at = last64;
    w.0 = w.0.wrapping_add(((len - 1) & 63) as u64);
    v.0 = v.0.wrapping_add(w.0);
    w.0 = w.0.wrapping_add(v.0);
    x = x
        .wrapping_add(y)
        .wrapping_add(v.0)
        .wrapping_add(fetch64(s, at + 8))
        .rotate_right(37)
        .wrapping_mul(mul);
    y = y
        .wrapping_add(v.1)
        .wrapping_add(fetch64(s, at + 48))
        .rotate_right(42)
        .wrapping_mul(mul);
    x ^= w.1.wrapping_mul(9);
    y = y
        .wrapping_add(v.0.wrapping_mul(9))
        .wrapping_add(fetch64(s, at + 40));
    z = z.wrapping_add(w.0).rotate_right(33).wrapping_mul(mul);
    v = weak_hash_32(s, at, v.1.wrapping_mul(mul), x.wrapping_add(w.0));
    w = weak_hash_32(
        s,
        at + 32,
        z.wrapping_add(w.1),
        y.wrapping_add(fetch64(s, at + 16)),
    );
    std::mem::swap(&mut z, &mut x);
    hash_len_16(
        hash_len_16(v.0, w.0, mul)
            .wrapping_add(shift_mix(y).wrapping_mul(K0))
            .wrapping_add(z),
        hash_len_16(v.1, w.1, mul).wrapping_add(x),
        mul,
    )
}

/// A `Hasher` for the lookup tables' keys: the fingerprint of what is written. A `str` key
/// is written as its bytes then one `0xff` byte; the second write only mixes a constant in.
///
/// Not keyed: a vocabulary made to collide on purpose would slow lookups down (never make
/// them wrong). Vocabularies come from the user's own data or files.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FingerprintHasher(u64);

impl Hasher for FingerprintHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.0 = self.0.rotate_left(5) ^ fingerprint64(bytes);
    }

    #[inline]
    fn write_u8(&mut self, byte: u8) {
        self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(K2);
    }

    #[inline]
    fn write_u64(&mut self, value: u64) {
        self.0 = hash_len_16(self.0, value, K2);
    }

    #[inline]
    fn write_i64(&mut self, value: i64) {
        self.write_u64(value as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The `BuildHasher` of the lookup tables.
pub(crate) type FingerprintState = BuildHasherDefault<FingerprintHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_length_branch_runs_and_differs() {
        let text: Vec<u8> = (0..300u32).map(|i| (i * 31 % 251) as u8).collect();
        let mut seen = std::collections::HashSet::new();
        for len in 0..=text.len() {
            assert!(seen.insert(fingerprint64(&text[..len])), "length {len}");
        }
    }

    #[test]
    fn docstring_buckets_of_keras_hashing() {
        // tf_keras Hashing(num_bins=3) on A..E gives [1, 0, 1, 1, 2].
        let bins: Vec<u64> = ["A", "B", "C", "D", "E"]
            .iter()
            .map(|s| fingerprint64(s.as_bytes()) % 3)
            .collect();
        assert_eq!(bins, [1, 0, 1, 1, 2]);
    }
}
