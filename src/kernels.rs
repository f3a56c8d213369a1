//! Loops over large float32 buffers that a training step runs once per batch, written so
//! that the compiler vectorises them and, with the `rayon` feature, split across threads
//! when the buffer is large enough for a second thread to pay.

/// Values from which a loop is split across threads: 1 MB, about 100 us of work, against
/// the few microseconds it costs to wake a second thread.
#[cfg(feature = "rayon")]
const PARALLEL_ELEMENTS: usize = 1 << 18;

/// Values per vectorised block of [`all_finite`]: 16 KB, checked without a branch.
const FINITE_BLOCK: usize = 4096;

/// Whether a loop over `len` values is worth splitting across threads.
#[cfg(feature = "rayon")]
pub(crate) fn in_parallel(len: usize) -> bool {
    len >= PARALLEL_ELEMENTS && rayon::current_num_threads() > 1
}

/// Whether every value is finite (neither NaN nor infinite): the largest absolute bit
/// pattern of each block against the exponent of infinity, which vectorises, instead of a
/// test and a branch per value.
pub(crate) fn all_finite(values: &[f32]) -> bool {
    let block_is_finite = |block: &[f32]| {
        let largest = block
            .iter()
            .fold(0u32, |largest, v| largest.max(v.to_bits() & 0x7fff_ffff));
        largest < 0x7f80_0000
    };
    #[cfg(feature = "rayon")]
    if in_parallel(values.len()) {
        use rayon::prelude::*;
        return values.par_chunks(FINITE_BLOCK).all(block_is_finite);
    }
    values.chunks(FINITE_BLOCK).all(block_is_finite)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_finite_finds_one_bad_value_anywhere() {
        let mut values = vec![1.5f32; 3 * FINITE_BLOCK + 7];
        assert!(all_finite(&values));
        assert!(all_finite(&[]));
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -f32::NAN] {
            for position in [0, FINITE_BLOCK - 1, FINITE_BLOCK, values.len() - 1] {
                let kept = values[position];
                values[position] = bad;
                assert!(!all_finite(&values), "{bad} at {position}");
                values[position] = kept;
            }
        }
        // The largest finite values and the smallest subnormals are finite.
        values[3] = f32::MAX;
        values[4] = -f32::MAX;
        values[5] = f32::from_bits(1);
        values[6] = -0.0;
        assert!(all_finite(&values));
    }
}
