//! Bags of ids reduced to one vector each: PyTorch's [`EmbeddingBag`] (sum, mean, max;
//! offsets, `per_sample_weights`, `padding_idx`) and keras-rs' [`EmbedReduce`] (mean, sum,
//! sqrtn; weights, masks, `divide_no_nan`).
//!
//! Both layers gather and reduce in one pass: each bag's rows are read from the table and
//! folded into the bag's output row, so the `(bags, length, dim)` lookup that `Embedding`
//! followed by `GlobalAveragePooling1D` builds never exists. Large batches are split across
//! threads (the `rayon` feature). The table's gradient is row-sparse
//! ([`Gradient::Rows`](crate::layer::Gradient::Rows)), so training costs what the bags
//! touch, through every optimizer (including the lazy catch-up of untouched rows and
//! [`SparseAdam`](crate::optimizers::SparseAdam)).
//!
//! What is guaranteed: outputs and table gradients match PyTorch 2 on CPU (float32) for
//! every mode, 2-D and offsets inputs, `include_last_offset`, `per_sample_weights`,
//! `padding_idx` (positive and negative), empty bags and ties in max mode, checked against
//! `tests/data/pytorch_embedding_bag.json` (relative tolerance 1e-6); `EmbedReduce` follows
//! keras-rs' `embed_reduce.py` formula for formula.
//!
//! Deliberate differences from PyTorch, each an error where PyTorch would compute something
//! inconsistent or undefined:
//! - decreasing offsets are refused (PyTorch's CPU kernel does not check them);
//! - with `include_last_offset`, the last offset must be the number of ids (PyTorch accepts a
//!   smaller one, and then sums the bag to the last offset but divides `mean` by the count
//!   to the end of the ids);
//! - non-finite `per_sample_weights` are refused, naming the position;
//! - max mode has a row-sparse gradient too (PyTorch refuses `sparse=True` with `max`).
//!
//! Not implemented: PyTorch's `max_norm`, `scale_grad_by_freq` and the gradient with respect
//! to `per_sample_weights`.

use ndarray::ArrayD;

use crate::error::{Error, Result};
use crate::tensor::Tensor;

mod embed_reduce;
mod embedding_bag;
mod reduce;
mod table;

pub use embed_reduce::{Combiner, EmbedReduce, EmbedReduceConfig};
pub use embedding_bag::{BagMode, EmbeddingBag, EmbeddingBagConfig};

/// Checks that an output gradient has the output's shape.
fn check_output_gradient(gradient: &ArrayD<f32>, expected: &[usize], context: &str) -> Result<()> {
    if gradient.shape() == expected {
        return Ok(());
    }
    Err(Error::IncompatibleShape {
        context: format!("{context}: output gradient"),
        expected: expected.iter().map(|&d| Some(d)).collect(),
        got: gradient.shape().iter().map(|&d| Some(d)).collect(),
    })
}

/// Per-id weights checked (finite) and in standard layout (copied only when they are not).
///
/// # Errors
/// [`Error::InvalidArgument`] naming `what` and the position of a non-finite weight;
/// [`Error::Allocation`].
fn standard_weights<'w>(
    weights: ndarray::ArrayViewD<'w, f32>,
    context: &str,
    what: &str,
) -> Result<ndarray::CowArray<'w, f32, ndarray::IxDyn>> {
    finite_weights(&weights, context, what)?;
    if weights.is_standard_layout() {
        return Ok(ndarray::CowArray::from(weights));
    }
    let owned = crate::storage::try_to_owned(weights, || format!("{context}: {what}"))?;
    Ok(ndarray::CowArray::from(owned))
}

/// Refuses a non-finite weight, naming `what` and its position.
fn finite_weights(weights: &ndarray::ArrayViewD<'_, f32>, context: &str, what: &str) -> Result<()> {
    match weights.iter().position(|w| !w.is_finite()) {
        None => Ok(()),
        Some(flat) => {
            let value = weights.iter().nth(flat).copied().unwrap_or(f32::NAN);
            let position = crate::tensor::unravel(flat, weights.shape());
            Err(Error::invalid_argument(
                context,
                what,
                format!("{value} at position {position:?}"),
                "finite values",
            ))
        }
    }
}

/// The bag boundaries of 1-D ids of length `len` cut by PyTorch-style `offsets`: bag `b` is
/// `offsets[b] .. offsets[b + 1]`, the last bag running to `len` (with `include_last`, the
/// last offset closes the last bag and must be `len`).
///
/// # Errors
/// [`Error::IncompatibleShape`] for offsets that are not 1-D; [`Error::InvalidArgument`]
/// naming `offsets[i]` for a negative or fractional offset, a first offset other than 0,
/// a decreasing one, one past `len`, and with `include_last` no offset or a last one other
/// than `len`.
fn offsets_of(
    offsets: &Tensor,
    len: usize,
    include_last: bool,
    context: &str,
) -> Result<Vec<usize>> {
    if offsets.ndim() != 1 {
        return Err(Error::IncompatibleShape {
            context: format!(
                "{context}: offsets must be 1-D, one start position per bag (PyTorch: \"offsets has to be a 1D Tensor\")"
            ),
            expected: vec![None],
            got: offsets.keras_shape(),
        });
    }
    let bad = |i: usize, value: &dyn std::fmt::Display, expected: String| {
        Error::invalid_argument(
            context,
            "offsets",
            format!("{value} at offsets[{i}]"),
            expected,
        )
    };
    let mut bounds = offsets
        .row_indices(usize::MAX, "offsets")
        .map_err(|err| match err {
            Error::IndexOutOfRange {
                index, position, ..
            } => bad(
                position.first().copied().unwrap_or(0),
                &index,
                "positions in the ids, which are never negative".into(),
            ),
            Error::NonIntegerIndex {
                value, position, ..
            } => bad(
                position.first().copied().unwrap_or(0),
                &value,
                "whole numbers (positions in the ids)".into(),
            ),
            other => other,
        })?;
    if include_last && bounds.is_empty() {
        return Err(Error::invalid_argument(
            context,
            "offsets",
            "[]",
            "at least one offset with include_last_offset (PyTorch: \"include_last_offset: number of offset should be at least 1\")",
        ));
    }
    if let Some(&first) = bounds.first()
        && first != 0
    {
        return Err(bad(
            0,
            &first,
            "0: the first bag starts at position 0 (PyTorch: \"offsets[0] has to be 0\")".into(),
        ));
    }
    for i in 1..bounds.len() {
        if bounds[i] < bounds[i - 1] {
            return Err(bad(
                i,
                &bounds[i],
                format!(
                    "non-decreasing offsets: offsets[{}] = {} comes before it",
                    i - 1,
                    bounds[i - 1]
                ),
            ));
        }
    }
    if let Some(i) = bounds.iter().position(|&o| o > len) {
        return Err(bad(
            i,
            &bounds[i],
            format!(
                "positions within the {len} ids (PyTorch: \"offsets[-1] can not be greater than input's length\")"
            ),
        ));
    }
    if include_last {
        let last = bounds.len() - 1;
        if bounds[last] != len {
            return Err(bad(
                last,
                &bounds[last],
                format!(
                    "the number of ids, {len}, as the last offset with include_last_offset (it closes the last bag)"
                ),
            ));
        }
    } else {
        bounds.try_reserve_exact(1).map_err(|_| Error::Allocation {
            context: format!("{context}: bag bounds"),
            bytes: 8,
        })?;
        bounds.push(len);
    }
    Ok(bounds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_bounds_ending_at_the_ids_end() {
        let offsets = Tensor::from(vec![0i64, 2, 2]);
        assert_eq!(
            offsets_of(&offsets, 5, false, "b").unwrap(),
            vec![0, 2, 2, 5]
        );
        let closed = Tensor::from(vec![0i32, 2, 5]);
        assert_eq!(offsets_of(&closed, 5, true, "b").unwrap(), vec![0, 2, 5]);
    }

    #[test]
    fn bad_offsets_name_their_position() {
        for (offsets, include_last, words) in [
            (vec![1i64, 2], false, "offsets[0]"),
            (vec![0, 3, 2], false, "offsets[2]"),
            (vec![0, 6], false, "within the 5 ids"),
            (vec![0, -1], false, "-1 at offsets[1]"),
            (vec![0, 4], true, "4 at offsets[1]"),
            (vec![], true, "at least one"),
        ] {
            let err = offsets_of(&Tensor::from(offsets), 5, include_last, "b").unwrap_err();
            assert!(err.to_string().contains(words), "{err}");
        }
    }
}
