//! Merge layers: Keras 2's `Add`, `Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum`,
//! `Concatenate` and `Dot`, which take a list of inputs.
//!
//! A merge layer is called through the list methods of [`Layer`]:
//! [`Layer::call_of`] (the output with its mask), [`Layer::compute_output_shape_of`],
//! [`Layer::forward_of`] and [`Layer::backward_of`] (one exact gradient per input). Its
//! single-input methods ([`Layer::call`], [`Layer::check_input`],
//! [`Layer::compute_output_shape`], [`Layer::backward`]) return an
//! [`Error::InvalidArgument`] saying that the layer takes a list, so a merge layer added to a
//! [`Sequential`](crate::model::Sequential) is refused cleanly when the model learns its
//! input shape (it has one input per layer).
//!
//! What is guaranteed, as in tf_keras 2.21 (`tf_keras/layers/merging/`):
//! - **Shapes.** The elementwise merges take inputs of the same batch size whose other axes
//!   broadcast as NumPy's do, after an input of lower rank is given axes of length 1 right
//!   after its batch axis (`_Merge.call` expands at axis 1). `Concatenate` takes inputs of
//!   one rank that agree on every axis but `axis` (the batch axis may be joined too, as in
//!   Keras). `Dot` contracts one axis of each of two inputs of rank 2 or more, sample by
//!   sample (`backend.batch_dot`). Every case Keras refuses is an error here too.
//! - **Masks.** Every merge layer accepts masked inputs (Keras' `supports_masking`).
//!   Elementwise merges AND the masks they receive (an unmasked input counts as all true);
//!   masks of different shapes are an error, as Keras' `tf.concat` of them is.
//!   `Concatenate` builds Keras' mask exactly (`Concatenate.compute_mask`): a mask one rank
//!   below its input gains a last axis of 1, an unmasked input counts as all true over its
//!   full shape, the masks are joined along `axis` and ANDed over their last axis. On the
//!   last axis this is the AND of the masks; on another axis it joins them (and, as in Keras,
//!   a masked and an unmasked input with more than one feature cannot be joined on a
//!   non-last axis: an error). `Dot` returns no mask.
//! - **Gradients.** `Maximum` and `Minimum` send the gradient of each element to the first
//!   input that holds the maximum (minimum), as TensorFlow's `Maximum` gradient does for
//!   `tf.maximum(x, y)` (`x >= y` takes it) applied left to right. `Dot(normalize=true)`
//!   differentiates through `tf.math.l2_normalize` (epsilon `1e-12`) exactly, including its
//!   constant branch for vectors of squared norm below epsilon. Gradients of broadcast
//!   inputs are summed over the broadcast axes.
//!
//! Where ndkeras refuses more than Keras, on purpose:
//! - merge layers take `float32` inputs only (Keras merges integer tensors too; an integer
//!   input here is an [`Error::IncompatibleDtype`] naming it);
//! - a `Dot` axis below `-rank` is an error (Keras takes it modulo the rank);
//! - a combined mask must cover the leading axes of the output: an elementwise merge whose
//!   masked input is the one broadcast (mask `(batch, 1)` for an output `(batch, 3, d)`) is
//!   an error (Keras attaches the short mask to the output);
//! - `compute_output_shape_of` refuses two known lengths that cannot broadcast even when an
//!   unknown one sits between them (Keras finds out only when called).
//!
//! One file per concern: `elementwise` (the six elementwise merges), `concatenate`, `dot`;
//! this file holds what they share (input counts, the list-only single-input methods).

use ndarray::{ArrayD, IxDyn};

use crate::error::{Dims, Error, OptDims, Result, Shape};
use crate::layer::Layer;
use crate::tensor::{Tensor, checked_size};

// ----- shared by every merge layer ----------------------------------------------------------

/// How many inputs a merge layer takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arity {
    /// One or more (Keras' `_Merge` and `Concatenate` accept a list of one).
    AtLeastOne,
    /// Exactly two (`Subtract`, `Dot`).
    Two,
}

impl Arity {
    fn describe(self) -> &'static str {
        match self {
            Arity::AtLeastOne => "a list of at least 1 input",
            Arity::Two => "a list of exactly 2 inputs",
        }
    }

    fn accepts(self, count: usize) -> bool {
        match self {
            Arity::AtLeastOne => count >= 1,
            Arity::Two => count == 2,
        }
    }
}

/// `layer "add" (Add)`, the owner named in every error.
fn owner<L: Layer + ?Sized>(layer: &L) -> String {
    format!("layer \"{}\" ({})", layer.name(), layer.class_name())
}

/// The error of a merge layer given a single tensor (a single-input method, or a
/// `Sequential`).
fn single_input_error<L: Layer + ?Sized>(layer: &L, arity: Arity) -> Error {
    Error::invalid_argument(
        owner(layer),
        "inputs",
        "a single tensor",
        format!(
            "{}: call it with `call_of(&[&a, &b])` (a merge layer cannot be used in a Sequential)",
            arity.describe()
        ),
    )
}

/// Checks the length of the list.
fn check_count<L: Layer + ?Sized>(layer: &L, arity: Arity, count: usize) -> Result<()> {
    if arity.accepts(count) {
        return Ok(());
    }
    Err(Error::invalid_argument(
        owner(layer),
        "inputs",
        format!("a list of {count}"),
        arity.describe(),
    ))
}

/// The `f32` values of every input, each with a batch axis (`min_rank` axes at least).
fn float_inputs<'a>(
    owner: &str,
    inputs: &[&'a Tensor],
    min_rank: usize,
) -> Result<Vec<&'a ArrayD<f32>>> {
    inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let values = input.as_float().ok_or_else(|| Error::IncompatibleDtype {
                context: format!("{owner}: input {index}"),
                expected: "float32".into(),
                got: input.dtype().to_string(),
            })?;
            if values.ndim() < min_rank {
                return Err(Error::IncompatibleShape {
                    context: format!(
                        "{owner}: input {index} needs a batch axis and rank {min_rank} or more"
                    ),
                    expected: vec![None; min_rank],
                    got: input.keras_shape(),
                });
            }
            Ok(values)
        })
        .collect()
}

/// A zero-filled array of `shape`, allocated fallibly (an output's size can be far larger
/// than its inputs': a broadcast, or a `Dot` of two long sequences).
fn try_zeros(shape: &[usize], context: impl Fn() -> String) -> Result<ArrayD<f32>> {
    let len = checked_size(shape, &context)?;
    let values = crate::storage::try_zeroed(len, &context)?;
    ArrayD::from_shape_vec(IxDyn(shape), values).map_err(|_| Error::ShapeOverflow {
        context: context(),
        shape: shape.to_vec(),
    })
}

/// Checks that the output gradient has the output's shape.
fn check_gradient(owner: &str, gradient: &ArrayD<f32>, expected: &[usize]) -> Result<()> {
    if gradient.shape() == expected {
        return Ok(());
    }
    Err(Error::IncompatibleShape {
        context: format!("{owner}: output gradient"),
        expected: expected.iter().map(|&d| Some(d)).collect(),
        got: gradient.shape().iter().map(|&d| Some(d)).collect(),
    })
}

/// Merge layers have no activation, so no logits to start a backward pass from.
fn no_logits<L: Layer + ?Sized>(layer: &L, from_logits: bool) -> Result<()> {
    if !from_logits {
        return Ok(());
    }
    Err(Error::NotBuilt {
        context: owner(layer),
        what: "logits".into(),
        hint: "only layers with an activation expose logits".into(),
    })
}

/// Checks that a combined mask covers the leading axes of the output (a mask that does not
/// would not say which output positions it keeps).
fn check_mask_fits(owner: &str, mask: &ArrayD<bool>, output: &[usize]) -> Result<()> {
    if output.starts_with(mask.shape()) {
        return Ok(());
    }
    Err(Error::invalid_argument(
        owner,
        "masks",
        format!(
            "a combined mask of shape {} for an output of shape {}",
            Dims(mask.shape()),
            Dims(output)
        ),
        "a mask over the leading axes of the output (mask the input that is not broadcast)",
    ))
}

/// The single-input methods of a merge layer, which refuse, and the list methods that need
/// no layer-specific code.
macro_rules! list_input_layer {
    ($arity:expr) => {
        fn check_input(&self, _inputs: &Tensor) -> Result<()> {
            Err(single_input_error(self, $arity))
        }

        fn call(&self, _inputs: &Tensor) -> Result<Tensor> {
            Err(single_input_error(self, $arity))
        }

        fn compute_output_shape(&self, _input_shape: &[Option<usize>]) -> Result<Shape> {
            Err(single_input_error(self, $arity))
        }

        fn backward(
            &mut self,
            _inputs: &Tensor,
            _output_gradient: ArrayD<f32>,
        ) -> Result<Backward> {
            Err(single_input_error(self, $arity))
        }

        fn supports_masking(&self) -> bool {
            true
        }

        /// The same as [`Layer::call_of`]: a merge layer has no state and behaves the same in
        /// training.
        fn forward_of(&mut self, inputs: &[&Tensor], _training: bool) -> Result<Tensor> {
            self.call_of(inputs)
        }

        weightless_layer!();
    };
}

fn batch_error(owner: &str, shapes: &[Shape]) -> Error {
    Error::invalid_argument(
        owner,
        "inputs",
        format!("shapes {}", list_of_shapes(shapes)),
        "inputs of one batch size (Keras: \"Cannot merge tensors with different batch sizes\")",
    )
}

fn list_of_shapes(shapes: &[Shape]) -> String {
    let parts: Vec<String> = shapes.iter().map(|s| OptDims(s).to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// A Keras axis (negative from the end) as an index into `rank` axes.
fn resolve_axis(axis: isize, rank: usize) -> Option<usize> {
    let rank_signed = isize::try_from(rank).ok()?;
    let resolved = if axis < 0 { axis + rank_signed } else { axis };
    usize::try_from(resolved).ok().filter(|&a| a < rank)
}

mod concatenate;
mod dot;
mod elementwise;

pub use concatenate::Concatenate;
pub use dot::{Dot, DotAxes};
pub use elementwise::{Add, Average, Maximum, Minimum, Multiply, Subtract};
