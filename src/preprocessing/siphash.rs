//! SipHash-2-4, the keyed hash behind TensorFlow's `tf.strings.to_hash_bucket_strong`: Keras'
//! `Hashing` with a `salt`. TensorFlow keys it with the pair of 64-bit integers given as
//! `key` (Keras passes its `salt`, a single integer `k` meaning `[k, k]`): the first is
//! SipHash's `k0`, the second `k1`, as in the reference implementation reading a 16-byte key
//! as two little-endian words.

/// SipHash-2-4 of `bytes` under the key `(k0, k1)`.
///
/// ```
/// use ndkeras::preprocessing::siphash24;
///
/// // Keras `Hashing(num_bins=3, salt=[133, 137])` on "A" gives bin 1 (its docstring).
/// assert_eq!(siphash24([133, 137], b"A") % 3, 1);
/// ```
pub fn siphash24(key: [u64; 2], bytes: &[u8]) -> u64 {
    let mut state = [
        key[0] ^ 0x736f_6d65_7073_6575,
        key[1] ^ 0x646f_7261_6e64_6f6d,
        key[0] ^ 0x6c79_6765_6e65_7261,
        key[1] ^ 0x7465_6462_7974_6573,
    ];
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut le = [0u8; 8];
        le.copy_from_slice(word);
        compress(&mut state, u64::from_le_bytes(le), 2);
    }
    // The last word: the remaining bytes, and the length's low byte on top.
    let mut last = (bytes.len() as u64 & 0xff) << 56;
    for (i, &byte) in words.remainder().iter().enumerate() {
        last |= u64::from(byte) << (8 * i);
    }
    compress(&mut state, last, 2);
    state[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut state);
    }
    state[0] ^ state[1] ^ state[2] ^ state[3]
}

#[inline]
fn compress(state: &mut [u64; 4], word: u64, rounds: usize) {
    state[3] ^= word;
    for _ in 0..rounds {
        round(state);
    }
    state[0] ^= word;
}

#[inline]
fn round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference vectors of the SipHash paper (Aumasson and Bernstein, appendix A):
    /// key 00 01 .. 0f, messages 00 01 .. (n-1).
    #[test]
    fn paper_test_vectors() {
        let key = [0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908];
        let message: Vec<u8> = (0..15).collect();
        assert_eq!(siphash24(key, &message), 0xa129_ca61_49be_45e5);
        assert_eq!(siphash24(key, &[]), 0x726f_db47_dd0e_0e31);
    }

    #[test]
    fn keras_hashing_docstring() {
        let bins = |key| -> Vec<u64> {
            ["A", "B", "C", "D", "E"]
                .iter()
                .map(|s| siphash24(key, s.as_bytes()) % 3)
                .collect()
        };
        assert_eq!(bins([133, 137]), [1, 2, 1, 0, 2]);
        assert_eq!(bins([133, 133]), [0, 0, 2, 1, 0]);
    }
}
