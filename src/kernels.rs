//! Loops over large float32 buffers that a training step runs once per batch, written so
//! that the compiler vectorises them and, with the `rayon` feature, split across threads
//! when the buffer is large enough for a second thread to pay; and the prefetch hint that
//! loops over scattered rows use.

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

/// Asks the CPU to bring the cache lines of `values` into its caches (a hint: nothing is read
/// or written, no value changes). A loop over rows scattered in a large table calls it for a
/// row it will reach soon. A no-op on targets other than x86_64.
#[allow(unsafe_code)]
#[inline]
pub(crate) fn prefetch<T>(values: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let start = values.as_ptr().cast::<i8>();
        for offset in (0..std::mem::size_of_val(values)).step_by(64) {
            // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 CPU has (it is part of the
            // target's baseline features, enabled at compile time). A prefetch is a hint that
            // never faults and accesses no memory; the address is inside the live slice
            // `values` anyway (`offset < size_of_val(values)`, `wrapping_add` computes it
            // without assuming more).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = values;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetch_is_a_hint_that_changes_nothing() {
        let values: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        prefetch(&values);
        prefetch(&values[999..]);
        prefetch::<f32>(&[]);
        prefetch(&[7u64]);
        assert!(values.iter().enumerate().all(|(i, &v)| v == i as f32));
    }

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
