//! `Dot`: the dot product of two inputs along one axis of each, optionally of their
//! L2-normalised values (cosine similarity).

use ndarray::{ArrayD, ArrayView2, ArrayView3, ArrayViewMut2, Axis, IxDyn, Zip};

use super::{
    Arity, batch_error, check_count, check_gradient, float_inputs, list_of_shapes, no_logits,
    owner, resolve_axis, single_input_error, try_zeros,
};
use crate::error::{Error, Result, Shape};
use crate::layer::{Backward, BackwardOf, Layer, unique_name};
use crate::tensor::{Tensor, checked_size};

/// The axes a [`Dot`] contracts, in the form Keras' `axes` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DotAxes {
    /// The same axis of both inputs (Keras' `axes=1`); negative counts from the end of each.
    Same(isize),
    /// One axis of each input (Keras' `axes=(1, 2)`); negative counts from the end.
    Pair(isize, isize),
}

/// The dot product of two inputs along one axis of each, sample by sample (Keras' `Dot`,
/// `backend.batch_dot`). No weights. With [`Dot::normalize`], each input is first
/// L2-normalised along its axis (`tf.math.l2_normalize`, epsilon `1e-12`), so the output is
/// the cosine similarity (0 for a zero vector).
///
/// # Shapes
/// two inputs `f32` of rank 2 or more and one batch size; the contracted axes (never the
/// batch axis) have one length. Output `(batch, rest of the first..., rest of the
/// second...)`, or `(batch, 1)` when both inputs are `(batch, n)`.
///
/// # Masks
/// Masked inputs are accepted; the output has no mask (as in Keras).
///
/// # Example
/// A recommender's score: user and item vectors, one dot product per sample.
/// ```
/// use ndarray::array;
/// use ndkeras::prelude::*;
///
/// let users = Tensor::from(array![[1.0f32, 2.0], [0.0, 1.0]]);
/// let items = Tensor::from(array![[3.0f32, 4.0], [0.0, 5.0]]);
/// let score = Dot::new(1).call_of(&[&users, &items])?;
/// assert_eq!(score.as_float().unwrap(), &array![[11.0f32], [5.0]].into_dyn());
///
/// let cosine = Dot::new(1).normalize(true).call_of(&[&users, &items])?;
/// assert!((cosine.as_float().unwrap()[[1, 0]] - 1.0).abs() < 1e-6);
///
/// // (batch, 3, 4) . (batch, 5, 4) along the features: (batch, 3, 5)
/// assert_eq!(
///     Dot::with_axes(2, 2).compute_output_shape_of(&[
///         vec![None, Some(3), Some(4)],
///         vec![None, Some(5), Some(4)],
///     ])?,
///     vec![None, Some(3), Some(5)]
/// );
/// # Ok::<(), ndkeras::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Dot {
    name: String,
    axes: DotAxes,
    normalize: bool,
}

/// `tf.math.l2_normalize`'s default epsilon: the squared norm is at least this.
const L2_EPSILON: f32 = 1e-12;

/// The inputs of a `Dot` laid out for products: `(batch, rows, n)` with the contracted axis
/// last, in standard layout.
struct DotOperands {
    /// The first input as `(batch, m, n)`, normalised if asked.
    x: ArrayD<f32>,
    /// The second input as `(batch, k, n)`, normalised if asked.
    y: ArrayD<f32>,
    /// The resolved axes.
    axes: [usize; 2],
    /// The output shape.
    output: Vec<usize>,
}

impl Dot {
    /// A layer named `dot`, `dot_1`, ... contracting axis `axes` of both inputs (Keras'
    /// `Dot(axes=1)`); negative counts from the end.
    pub fn new(axes: isize) -> Self {
        Dot {
            name: unique_name("dot"),
            axes: DotAxes::Same(axes),
            normalize: false,
        }
    }

    /// A layer contracting axis `first` of the first input with axis `second` of the second
    /// (Keras' `Dot(axes=(1, 2))`).
    pub fn with_axes(first: isize, second: isize) -> Self {
        Dot {
            axes: DotAxes::Pair(first, second),
            ..Dot::new(0)
        }
    }

    /// L2-normalise both inputs along their axes first, making the output a cosine
    /// similarity. Default: `false`.
    pub fn normalize(mut self, normalize: bool) -> Self {
        self.normalize = normalize;
        self
    }

    /// The layer's name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The axes as configured (Keras' `axes`).
    pub fn axes(&self) -> DotAxes {
        self.axes
    }

    /// Whether the inputs are normalised (Keras' `normalize`).
    pub fn is_normalized(&self) -> bool {
        self.normalize
    }

    /// The contracted axis of each input, for inputs of ranks `ranks`; the batch axis and
    /// axes out of range are refused (`backend.batch_dot`).
    fn resolve(&self, ranks: [usize; 2]) -> Result<[usize; 2]> {
        let (first, second) = match self.axes {
            DotAxes::Same(a) => (a, a),
            DotAxes::Pair(a, b) => (a, b),
        };
        let mut resolved = [0; 2];
        for (index, (axis, rank)) in [first, second].into_iter().zip(ranks).enumerate() {
            resolved[index] = resolve_axis(axis, rank).filter(|&a| a > 0).ok_or_else(|| {
                Error::invalid_argument(
                    owner(self),
                    "axes",
                    axis,
                    format!(
                        "an axis of input {index} (rank {rank}) other than the batch axis: in [1, {rank}) or [-{}, -1]",
                        rank.saturating_sub(1)
                    ),
                )
            })?;
        }
        Ok(resolved)
    }

    /// Keras' `Dot.build` and `compute_output_shape`: ranks, batch sizes, axes and the
    /// contracted lengths checked; the output shape.
    fn shapes(&self, shapes: &[Shape]) -> Result<([usize; 2], Shape)> {
        check_count(self, Arity::Two, shapes.len())?;
        let (first, second) = (&shapes[0], &shapes[1]);
        if first.len() < 2 || second.len() < 2 {
            return Err(Error::invalid_argument(
                owner(self),
                "inputs",
                format!("shapes {}", list_of_shapes(shapes)),
                "inputs of rank 2 or more: (batch, ...) (Keras: \"Cannot do batch_dot on inputs with rank < 2\")",
            ));
        }
        if let (Some(a), Some(b)) = (first[0], second[0])
            && a != b
        {
            return Err(batch_error(&owner(self), shapes));
        }
        let axes = self.resolve([first.len(), second.len()])?;
        if let (Some(a), Some(b)) = (first[axes[0]], second[axes[1]])
            && a != b
        {
            return Err(Error::invalid_argument(
                owner(self),
                "inputs",
                format!("shapes {}", list_of_shapes(shapes)),
                format!(
                    "the same length along axis {} of the first input and axis {} of the second (Keras: \"Incompatible input shapes\")",
                    axes[0], axes[1]
                ),
            ));
        }
        let mut output: Shape = first.clone();
        output.remove(axes[0]);
        output.extend(
            second
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != 0 && i != axes[1])
                .map(|(_, &d)| d),
        );
        if output.len() == 1 {
            output.push(Some(1));
        }
        Ok((axes, output))
    }

    /// Checks the inputs and lays them out as `(batch, rows, n)`, normalised if asked.
    fn operands(&self, inputs: &[&Tensor]) -> Result<DotOperands> {
        check_count(self, Arity::Two, inputs.len())?;
        let owner = owner(self);
        let arrays = float_inputs(&owner, inputs, 2)?;
        let shapes: Vec<Shape> = inputs.iter().map(|t| t.keras_shape()).collect();
        let (axes, output) = self.shapes(&shapes)?;
        let output: Vec<usize> = output.into_iter().map(|d| d.unwrap_or(0)).collect();
        let mut x = rows_along(&owner, arrays[0], axes[0])?;
        let mut y = rows_along(&owner, arrays[1], axes[1])?;
        if self.normalize {
            for rows in [&mut x, &mut y] {
                for mut row in rows.lanes_mut(Axis(2)) {
                    let inverse = 1.0
                        / row
                            .iter()
                            .map(|v| v * v)
                            .sum::<f32>()
                            .max(L2_EPSILON)
                            .sqrt();
                    row.mapv_inplace(|v| v * inverse);
                }
            }
        }
        Ok(DotOperands { x, y, axes, output })
    }
}

/// `array` with axis `axis` moved last, as `(batch, rows, n)` in standard layout (the other
/// axes keep their order, as `batch_dot`'s transposes do).
fn rows_along(owner: &str, array: &ArrayD<f32>, axis: usize) -> Result<ArrayD<f32>> {
    let permutation = moved_last(array.ndim(), axis);
    let moved = array.view().permuted_axes(IxDyn(&permutation));
    let batch = moved.shape()[0];
    let n = moved.shape()[moved.ndim() - 1];
    let rows = checked_size(&moved.shape()[1..moved.ndim() - 1], || owner.to_string())?;
    let copy = crate::storage::try_to_owned(moved, || format!("{owner}: input"))?;
    copy.into_shape_with_order(IxDyn(&[batch, rows, n]))
        .map_err(|_| Error::ShapeOverflow {
            context: owner.to_string(),
            shape: array.shape().to_vec(),
        })
}

/// The permutation moving `axis` of `rank` axes to the end.
fn moved_last(rank: usize, axis: usize) -> Vec<usize> {
    let mut permutation: Vec<usize> = (0..rank).filter(|&a| a != axis).collect();
    permutation.push(axis);
    permutation
}

/// The inverse of [`rows_along`] for a gradient: `(batch, rows, n)` back to `shape`.
fn rows_back(owner: &str, rows: ArrayD<f32>, shape: &[usize], axis: usize) -> Result<ArrayD<f32>> {
    let permutation = moved_last(shape.len(), axis);
    let moved_shape: Vec<usize> = permutation.iter().map(|&a| shape[a]).collect();
    let moved = rows
        .into_shape_with_order(IxDyn(&moved_shape))
        .map_err(|_| Error::ShapeOverflow {
            context: owner.to_string(),
            shape: shape.to_vec(),
        })?;
    let mut inverse = vec![0; permutation.len()];
    for (position, &a) in permutation.iter().enumerate() {
        inverse[a] = position;
    }
    Ok(moved
        .permuted_axes(IxDyn(&inverse))
        .as_standard_layout()
        .into_owned())
}

/// A 3-D view of a `(batch, rows, n)` array built by this module.
fn as3<'a>(owner: &str, array: &'a ArrayD<f32>) -> Result<ArrayView3<'a, f32>> {
    array
        .view()
        .into_dimensionality()
        .map_err(|_| Error::IncompatibleShape {
            context: owner.to_string(),
            expected: vec![None; 3],
            got: array.shape().iter().map(|&d| Some(d)).collect(),
        })
}

/// `out[b] = a[b] . c[b]^T` for every sample (or `a[b]^T . c[b]` with `transpose_a`).
fn batched_product(
    a: ArrayView3<'_, f32>,
    c: ArrayView3<'_, f32>,
    out: &mut ArrayD<f32>,
    products: impl Fn(ArrayView2<'_, f32>, ArrayView2<'_, f32>, ArrayViewMut2<'_, f32>),
) {
    for ((a, c), out) in a.outer_iter().zip(c.outer_iter()).zip(out.outer_iter_mut()) {
        if let Ok(out) = out.into_dimensionality() {
            products(a, c, out);
        }
    }
}

impl Layer for Dot {
    fn name(&self) -> &str {
        &self.name
    }

    fn class_name(&self) -> &'static str {
        "Dot"
    }

    fn compute_output_shape_of(&self, input_shapes: &[Shape]) -> Result<Shape> {
        self.shapes(input_shapes).map(|(_, output)| output)
    }

    fn call_of(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        let owner = owner(self);
        let operands = self.operands(inputs)?;
        let (x, y) = (as3(&owner, &operands.x)?, as3(&owner, &operands.y)?);
        let (batch, m, _) = x.dim();
        let k = y.dim().1;
        let mut output = try_zeros(&[batch, m, k], || format!("{owner}: output"))?;
        batched_product(x, y, &mut output, |x, y, mut out| {
            ndarray::linalg::general_mat_mul(1.0, &x, &y.t(), 0.0, &mut out);
        });
        let output = output
            .into_shape_with_order(IxDyn(&operands.output))
            .map_err(|_| Error::ShapeOverflow {
                context: owner.clone(),
                shape: operands.output.clone(),
            })?;
        // Keras' `Dot.compute_mask` returns None whatever the inputs carry.
        Ok(Tensor::from(output))
    }

    fn backward_of(
        &mut self,
        inputs: &[&Tensor],
        output_gradient: ArrayD<f32>,
        from_logits: bool,
    ) -> Result<BackwardOf> {
        no_logits(self, from_logits)?;
        let owner = owner(self);
        let operands = self.operands(inputs)?;
        check_gradient(&owner, &output_gradient, &operands.output)?;
        let (x, y) = (as3(&owner, &operands.x)?, as3(&owner, &operands.y)?);
        let (batch, m, n) = x.dim();
        let k = y.dim().1;
        let gradient = output_gradient
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order(IxDyn(&[batch, m, k]))
            .map_err(|_| Error::ShapeOverflow {
                context: owner.clone(),
                shape: operands.output.clone(),
            })?;
        let g = as3(&owner, &gradient)?;
        // out = x . y^T per sample: dx = g . y, dy = g^T . x.
        let mut dx = try_zeros(&[batch, m, n], || format!("{owner}: gradient"))?;
        batched_product(g, y, &mut dx, |g, y, mut out| {
            ndarray::linalg::general_mat_mul(1.0, &g, &y, 0.0, &mut out);
        });
        let mut dy = try_zeros(&[batch, k, n], || format!("{owner}: gradient"))?;
        batched_product(g, x, &mut dy, |g, x, mut out| {
            ndarray::linalg::general_mat_mul(1.0, &g.t(), &x, 0.0, &mut out);
        });
        let arrays = float_inputs(&owner, inputs, 2)?;
        let mut input_gradients = Vec::with_capacity(2);
        for ((mut rows, array), axis) in [dx, dy].into_iter().zip(arrays).zip(operands.axes) {
            if self.normalize {
                let original = rows_along(&owner, array, axis)?;
                l2_normalize_backward(&mut rows, &original);
            }
            input_gradients.push(Some(rows_back(&owner, rows, array.shape(), axis)?));
        }
        Ok(BackwardOf {
            input_gradients,
            weight_gradients: Vec::new(),
        })
    }

    list_input_layer!(Arity::Two);
}

/// Turns the gradient with respect to `x / sqrt(max(sum(x^2), eps))` (each row along the
/// last axis) into the gradient with respect to `x`. With `s = sum(x^2) >= eps` and
/// `r = s^(-1/2)`: `dx = r g - r^3 x (g . x)`. Below eps the norm is the constant
/// `sqrt(eps)` and `dx = g / sqrt(eps)`: TensorFlow's gradient of `maximum(s, eps)` goes
/// to `s` where `s >= eps`, so a tie takes the first branch too.
fn l2_normalize_backward(gradient: &mut ArrayD<f32>, original: &ArrayD<f32>) {
    for (mut g, x) in gradient
        .lanes_mut(Axis(2))
        .into_iter()
        .zip(original.lanes(Axis(2)))
    {
        let squares: f32 = x.iter().map(|v| v * v).sum();
        let inverse = 1.0 / squares.max(L2_EPSILON).sqrt();
        if squares >= L2_EPSILON {
            let projection: f32 = g.iter().zip(x.iter()).map(|(g, x)| g * x).sum();
            let correction = inverse * inverse * inverse * projection;
            Zip::from(&mut g)
                .and(&x)
                .for_each(|g, &x| *g = *g * inverse - x * correction);
        } else {
            g.mapv_inplace(|g| g * inverse);
        }
    }
}
