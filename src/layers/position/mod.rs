//! KerasHub's position layers: [`PositionEmbedding`] (a learned table of positions),
//! [`SinePositionEncoding`] (fixed sinusoids), [`RotaryEmbedding`] (RoPE, a rotation of the
//! features by position) and [`TokenAndPositionEmbedding`] (an [`Embedding`] of the ids plus
//! a [`PositionEmbedding`]).
//!
//! What is guaranteed: forward values, masks, gradients and `get_config` keys match KerasHub
//! 0.32.0 on Keras 3.15.1 (JAX backend, float32), checked against the vectors in
//! `tests/data/keras_hub_position.json` (relative tolerance 1e-5, absolute 1e-6). KerasHub's
//! `start_index` call argument is [`PositionEmbedding::call_with_start_index`] (and the same
//! method on the three other layers); the plain [`Layer::call`] starts at 0, as KerasHub's
//! default does.
//!
//! [`TokenAndPositionEmbedding`]'s token embedding is a
//! [`ReversibleEmbedding`](crate::layers::ReversibleEmbedding), as in KerasHub: the layer
//! takes its reverse call (logits against the token table, or against an untied
//! `reverse_embeddings` with `tie_weights(false)`), whose logits, input gradient and tied
//! gradient (the lookup's row-sparse part plus the reverse call's dense part) match KerasHub's
//! `layer.token_embedding(x, reverse=True)`, checked with the same tolerances, and a
//! functional language model trained three steps matches Keras' weights to 1e-5.
//!
//! Not implemented yet: KerasHub's `positions` call argument (explicit positions per
//! token) and `RotaryEmbedding`'s `"yarn"` rope type (refused by name).
//!
//! Deliberate differences from KerasHub, each an error where KerasHub (on JAX) would give
//! silently wrong numbers or a late backend error:
//! - a sequence longer than `sequence_length`, or `start_index + length > sequence_length`, is
//!   an [`Error::IncompatibleShape`] naming the layer and both lengths (JAX's `dynamic_slice`
//!   clamps the start, so positions `sequence_length - length ..` come out instead);
//! - a zero `sequence_length`, `vocabulary_size` or `embedding_dim`, a non-positive or
//!   non-finite `max_wavelength` or `scaling_factor` are refused by `validate()`;
//! - [`RotaryEmbedding`] refuses a masked input ([`Error::MaskNotSupported`], the crate's
//!   rule); Keras 3 drops the mask with a warning.
//!
//! Masks: [`PositionEmbedding`] and [`SinePositionEncoding`] accept a masked input and return
//! no mask, as Keras 3 does (it drops the mask, with a warning): their output holds
//! positions, not tokens, and the mask stays on the token tensor they are added to (an
//! [`Add`](crate::layers::Add) passes it on), which is KerasHub's documented pattern.
//! [`TokenAndPositionEmbedding`] outputs `ids != 0` with `mask_zero`, and no mask otherwise.
//!
//! [`Embedding`]: crate::layers::Embedding
//! [`Layer::call`]: crate::layer::Layer::call
//! [`Error::IncompatibleShape`]: crate::Error::IncompatibleShape
//! [`Error::MaskNotSupported`]: crate::Error::MaskNotSupported

use ndarray::{ArrayD, IxDyn};

use crate::error::{Error, Result, Shape};
use crate::storage::try_zeroed;
use crate::tensor::Tensor;

mod position_embedding;
mod rotary;
mod sine;
mod token_and_position;

pub use position_embedding::{PositionEmbedding, PositionEmbeddingConfig};
pub use rotary::{RopeType, RotaryEmbedding, RotaryEmbeddingConfig};
pub use sine::{SinePositionEncoding, SinePositionEncodingConfig};
pub use token_and_position::{TokenAndPositionEmbedding, TokenAndPositionEmbeddingConfig};

/// The `f32` values of `inputs`, or [`Error::IncompatibleDtype`].
fn float_values<'a>(inputs: &'a Tensor, context: &str) -> Result<&'a ArrayD<f32>> {
    inputs.as_float().ok_or_else(|| Error::IncompatibleDtype {
        context: context.to_string(),
        expected: "float32".into(),
        got: inputs.dtype().to_string(),
    })
}

/// `(sequence length, features)`: the last two axes of a shape of rank 2 or more (KerasHub
/// reads `shape[-2]` and `shape[-1]`).
fn sequence_and_features(shape: &[usize], context: &str) -> Result<(usize, usize)> {
    match shape {
        [.., sequence, features] => Ok((*sequence, *features)),
        _ => Err(Error::IncompatibleShape {
            context: format!(
                "{context}: the input needs a sequence axis and a feature axis (rank 2 or more, usually (batch, sequence, features))"
            ),
            expected: vec![None, None, None],
            got: shape.iter().map(|&d| Some(d)).collect(),
        }),
    }
}

/// A zero-filled array of `shape`, allocated fallibly.
fn try_zeros(shape: &[usize], context: impl Fn() -> String) -> Result<ArrayD<f32>> {
    let len = crate::tensor::checked_size(shape, &context)?;
    let values = try_zeroed(len, &context)?;
    ArrayD::from_shape_vec(IxDyn(shape), values).map_err(|_| Error::ShapeOverflow {
        context: context(),
        shape: shape.to_vec(),
    })
}

/// Checks that an output gradient has the output's shape.
fn check_gradient(gradient: &ArrayD<f32>, expected: &[usize], context: &str) -> Result<()> {
    if gradient.shape() == expected {
        return Ok(());
    }
    Err(Error::IncompatibleShape {
        context: format!("{context}: output gradient"),
        expected: expected.iter().map(|&d| Some(d)).collect(),
        got: gradient.shape().iter().map(|&d| Some(d)).collect(),
    })
}

/// The error of a sequence (from `start_index`) that does not fit in `sequence_length`.
fn too_long(
    context: &str,
    start_index: usize,
    length: usize,
    sequence_length: usize,
    got: Shape,
) -> Error {
    let what = if start_index == 0 {
        format!(
            "the input sequence has {length} positions, more than the layer's sequence_length = {sequence_length}"
        )
    } else {
        format!(
            "start_index {start_index} + the input's {length} positions run past the layer's sequence_length = {sequence_length}"
        )
    };
    let mut expected = vec![None; got.len()];
    if let Some(axis) = got.len().checked_sub(2) {
        expected[axis] = Some(sequence_length.saturating_sub(start_index));
    }
    Error::IncompatibleShape {
        context: format!("{context}: {what}"),
        expected,
        got,
    }
}
