//! The elementwise merges: `Add`, `Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum`.

use ndarray::{ArrayD, ArrayViewD, Axis, IxDyn, Zip};

use super::{
    Arity, batch_error, check_count, check_gradient, check_mask_fits, float_inputs, list_of_shapes,
    no_logits, owner, single_input_error, try_zeros,
};
use crate::error::{Dims, Error, Result, Shape};
use crate::layer::{Backward, BackwardOf, Layer, unique_name};
use crate::tensor::Tensor;

/// The six elementwise merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elementwise {
    Add,
    Subtract,
    Multiply,
    Average,
    Maximum,
    Minimum,
}

/// Where each input sits in the broadcast output.
struct Broadcast {
    /// The output shape.
    output: Vec<usize>,
    /// Each input's shape with axes of length 1 inserted after the batch axis up to the
    /// output's rank (Keras' `expand_dims(x, axis=1)`).
    expanded: Vec<Vec<usize>>,
}

impl Elementwise {
    fn arity(self) -> Arity {
        match self {
            Elementwise::Subtract => Arity::Two,
            _ => Arity::AtLeastOne,
        }
    }

    /// Keras' `_Merge.compute_output_shape`: batch sizes agree, the other axes broadcast
    /// (right-aligned; an unknown dimension gives an unknown one). Two known dimensions
    /// that are neither equal nor 1 are an error even when an unknown one sits between them
    /// (Keras would only find out when called).
    fn output_shape(self, owner: &str, shapes: &[Shape]) -> Result<Shape> {
        let mut batch: Option<usize> = None;
        for (index, shape) in shapes.iter().enumerate() {
            let Some(&first) = shape.first() else {
                return Err(Error::IncompatibleShape {
                    context: format!("{owner}: input {index} needs a batch axis"),
                    expected: vec![None],
                    got: shape.clone(),
                });
            };
            match (batch, first) {
                (Some(b), Some(f)) if b != f => return Err(batch_error(owner, shapes)),
                (None, Some(f)) => batch = Some(f),
                _ => {}
            }
        }
        let rank = shapes.iter().map(Vec::len).max().unwrap_or(1);
        let mut output: Shape = vec![None; rank];
        output[0] = batch;
        for axis in 1..rank {
            let mut merged: Option<Option<usize>> = None;
            let mut known: Option<usize> = None;
            for shape in shapes {
                // Right-aligned: axis `axis` of the output is this input's axis
                // `axis - (rank - len)`, or an inserted 1.
                let offset = rank - shape.len();
                let dim = if axis > offset {
                    shape[axis - offset]
                } else {
                    Some(1)
                };
                if let Some(d) = dim.filter(|&d| d != 1) {
                    match known {
                        Some(k) if k != d => return Err(broadcast_error(owner, shapes)),
                        _ => known = Some(d),
                    }
                }
                merged = Some(match (merged, dim) {
                    (None, dim) => dim,
                    (Some(None), _) | (Some(_), None) => None,
                    (Some(Some(1)), Some(d)) => Some(d),
                    (Some(Some(m)), Some(_)) => Some(m),
                });
            }
            output[axis] = merged.flatten();
        }
        Ok(output)
    }

    /// The broadcast of concrete shapes, or the error Keras' `_Merge.build` raises.
    fn broadcast(self, owner: &str, arrays: &[&ArrayD<f32>]) -> Result<Broadcast> {
        let shapes: Vec<Shape> = arrays
            .iter()
            .map(|a| a.shape().iter().map(|&d| Some(d)).collect())
            .collect();
        let output: Vec<usize> = self
            .output_shape(owner, &shapes)?
            .into_iter()
            .map(|d| d.unwrap_or(0))
            .collect();
        let expanded = arrays
            .iter()
            .map(|a| {
                let mut shape = Vec::with_capacity(output.len());
                shape.push(a.shape()[0]);
                shape.resize(output.len() - a.ndim() + 1, 1);
                shape.extend_from_slice(&a.shape()[1..]);
                shape
            })
            .collect();
        Ok(Broadcast { output, expanded })
    }

    fn call<L: Layer + ?Sized>(self, layer: &L, inputs: &[&Tensor]) -> Result<Tensor> {
        check_count(layer, self.arity(), inputs.len())?;
        let owner = owner(layer);
        let arrays = float_inputs(&owner, inputs, 1)?;
        let plan = self.broadcast(&owner, &arrays)?;
        let mask = self.mask(&owner, inputs, &plan.output)?;
        let expanded = expanded_views(&arrays, plan.output.len());
        let mut output = try_zeros(&plan.output, || format!("{owner}: output"))?;
        for (index, view) in expanded.iter().enumerate() {
            let view = broadcast_to(&owner, index, view, &plan.output)?;
            if index == 0 {
                output.assign(&view);
                continue;
            }
            let zip = Zip::from(&mut output).and(&view);
            match self {
                Elementwise::Add | Elementwise::Average => zip.for_each(|o, &x| *o += x),
                Elementwise::Subtract => zip.for_each(|o, &x| *o -= x),
                Elementwise::Multiply => zip.for_each(|o, &x| *o *= x),
                // `tf.maximum(output, x)` left to right, keeping the earlier input on a tie
                // (the one the gradient goes to).
                Elementwise::Maximum | Elementwise::Minimum => zip.for_each(|o, &x| {
                    if !self.keeps(*o, x) {
                        *o = x;
                    }
                }),
            }
        }
        if self == Elementwise::Average {
            let count = expanded.len() as f32;
            output.mapv_inplace(|v| v / count);
        }
        Tensor::from(output).with_mask(mask)
    }

    /// Keras' `_Merge.compute_mask`: the AND of the masks given (masks of one shape).
    fn mask(
        self,
        owner: &str,
        inputs: &[&Tensor],
        output: &[usize],
    ) -> Result<Option<ArrayD<bool>>> {
        let mut combined: Option<(usize, ArrayD<bool>)> = None;
        for (index, mask) in inputs
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.mask().map(|m| (i, m)))
        {
            match &mut combined {
                None => combined = Some((index, mask.clone())),
                Some((first, acc)) => {
                    if acc.shape() != mask.shape() {
                        return Err(Error::invalid_argument(
                            owner,
                            "masks",
                            format!(
                                "{} for input {first} and {} for input {index}",
                                Dims(acc.shape()),
                                Dims(mask.shape())
                            ),
                            "masks of one shape (they are combined with AND, as in Keras)",
                        ));
                    }
                    Zip::from(acc).and(mask).for_each(|a, &m| *a = *a && m);
                }
            }
        }
        let Some((_, mask)) = combined else {
            return Ok(None);
        };
        check_mask_fits(owner, &mask, output)?;
        Ok(Some(mask))
    }

    fn backward<L: Layer + ?Sized>(
        self,
        layer: &L,
        inputs: &[&Tensor],
        gradient: ArrayD<f32>,
    ) -> Result<BackwardOf> {
        check_count(layer, self.arity(), inputs.len())?;
        let owner = owner(layer);
        let arrays = float_inputs(&owner, inputs, 1)?;
        let plan = self.broadcast(&owner, &arrays)?;
        check_gradient(&owner, &gradient, &plan.output)?;
        let views = expanded_views(&arrays, plan.output.len());
        let winners = match self {
            Elementwise::Maximum | Elementwise::Minimum => {
                Some(self.winners(&owner, &views, &plan.output)?)
            }
            _ => None,
        };
        let count = views.len();
        let mut input_gradients = Vec::with_capacity(count);
        for (index, array) in arrays.iter().enumerate() {
            let full = match self {
                Elementwise::Add => gradient.clone(),
                Elementwise::Subtract if index == 0 => gradient.clone(),
                Elementwise::Subtract => gradient.mapv(|g| -g),
                Elementwise::Average => gradient.mapv(|g| g / count as f32),
                Elementwise::Multiply => {
                    let mut full = gradient.clone();
                    for (other, view) in views.iter().enumerate() {
                        if other != index {
                            let view = broadcast_to(&owner, other, view, &plan.output)?;
                            Zip::from(&mut full).and(&view).for_each(|g, &x| *g *= x);
                        }
                    }
                    full
                }
                Elementwise::Maximum | Elementwise::Minimum => {
                    let mut full = gradient.clone();
                    if let Some(winners) = &winners {
                        Zip::from(&mut full)
                            .and(winners)
                            .for_each(|g, &w| *g = if w == index { *g } else { 0.0 });
                    }
                    full
                }
            };
            let expanded = plan.expanded.get(index).map_or(&[][..], Vec::as_slice);
            input_gradients.push(Some(sum_to(&owner, full, expanded, array.shape())?));
        }
        Ok(BackwardOf {
            input_gradients,
            weight_gradients: Vec::new(),
        })
    }

    /// For `Maximum` (`Minimum`): whether the value so far stays against the next input's
    /// `candidate`. TensorFlow's gradient of `tf.maximum(x, y)` goes to `x` where `x >= y`
    /// (of `tf.minimum` where `x <= y`), so the earlier input keeps a tie.
    fn keeps(self, current: f32, candidate: f32) -> bool {
        match self {
            Elementwise::Minimum => current <= candidate,
            _ => current >= candidate,
        }
    }

    /// For `Maximum` and `Minimum`: the input each output element came from, the first on a
    /// tie (TensorFlow's gradient of `tf.maximum(x, y)` goes to `x` where `x >= y`, of
    /// `tf.minimum` where `x <= y`; Keras folds the inputs left to right).
    fn winners(
        self,
        owner: &str,
        views: &[ArrayViewD<'_, f32>],
        output: &[usize],
    ) -> Result<ArrayD<usize>> {
        let mut winners = ArrayD::<usize>::zeros(IxDyn(output));
        let Some((first, rest)) = views.split_first() else {
            return Ok(winners);
        };
        let mut best = broadcast_to(owner, 0, first, output)?.to_owned();
        for (offset, view) in rest.iter().enumerate() {
            let view = broadcast_to(owner, offset + 1, view, output)?;
            Zip::from(&mut best)
                .and(&mut winners)
                .and(&view)
                .for_each(|b, w, &x| {
                    if !self.keeps(*b, x) {
                        *b = x;
                        *w = offset + 1;
                    }
                });
        }
        Ok(winners)
    }
}

/// Each input with axes of length 1 inserted after its batch axis up to `rank` axes (Keras'
/// `expand_dims(x, axis=1)`).
fn expanded_views<'a>(arrays: &[&'a ArrayD<f32>], rank: usize) -> Vec<ArrayViewD<'a, f32>> {
    arrays
        .iter()
        .map(|array| {
            let mut view = array.view();
            while view.ndim() < rank {
                view = view.insert_axis(Axis(1));
            }
            view
        })
        .collect()
}

/// An expanded input as a view of the output's shape.
fn broadcast_to<'v>(
    owner: &str,
    index: usize,
    view: &'v ArrayViewD<'_, f32>,
    output: &[usize],
) -> Result<ArrayViewD<'v, f32>> {
    view.broadcast(IxDyn(output))
        .ok_or_else(|| Error::IncompatibleShape {
            context: format!("{owner}: input {index} does not broadcast to the output"),
            expected: output.iter().map(|&d| Some(d)).collect(),
            got: view.shape().iter().map(|&d| Some(d)).collect(),
        })
}

/// A gradient of the output's shape summed over the axes an input was broadcast along, in
/// the input's own shape.
fn sum_to(
    owner: &str,
    full: ArrayD<f32>,
    expanded: &[usize],
    shape: &[usize],
) -> Result<ArrayD<f32>> {
    let mut gradient = full;
    for (axis, &dim) in expanded.iter().enumerate() {
        if dim == 1 && gradient.shape()[axis] != 1 {
            gradient = gradient.sum_axis(Axis(axis)).insert_axis(Axis(axis));
        }
    }
    let gradient = gradient.as_standard_layout().into_owned();
    gradient
        .into_shape_with_order(IxDyn(shape))
        .map_err(|_| Error::IncompatibleShape {
            context: format!("{owner}: input gradient"),
            expected: shape.iter().map(|&d| Some(d)).collect(),
            got: expanded.iter().map(|&d| Some(d)).collect(),
        })
}

fn broadcast_error(owner: &str, shapes: &[Shape]) -> Error {
    Error::invalid_argument(
        owner,
        "inputs",
        format!("shapes {}", list_of_shapes(shapes)),
        "shapes that broadcast after the batch axis: each axis equal or 1 (Keras: \"Inputs have incompatible shapes\")",
    )
}

/// Defines one elementwise merge layer.
macro_rules! elementwise_layer {
    ($(#[$doc:meta])* $type:ident, $base:literal, $op:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $type {
            name: String,
        }

        impl Default for $type {
            fn default() -> Self {
                $type::new()
            }
        }

        impl $type {
            #[doc = concat!("A layer named `", $base, "`, `", $base, "_1`, ...")]
            pub fn new() -> Self {
                $type {
                    name: unique_name($base),
                }
            }

            /// The layer's name.
            pub fn with_name(mut self, name: impl Into<String>) -> Self {
                self.name = name.into();
                self
            }
        }

        impl Layer for $type {
            fn name(&self) -> &str {
                &self.name
            }

            fn class_name(&self) -> &'static str {
                stringify!($type)
            }

            fn compute_output_shape_of(&self, input_shapes: &[Shape]) -> Result<Shape> {
                check_count(self, $op.arity(), input_shapes.len())?;
                $op.output_shape(&owner(self), input_shapes)
            }

            fn call_of(&self, inputs: &[&Tensor]) -> Result<Tensor> {
                $op.call(self, inputs)
            }

            fn backward_of(
                &mut self,
                inputs: &[&Tensor],
                output_gradient: ArrayD<f32>,
                from_logits: bool,
            ) -> Result<BackwardOf> {
                no_logits(self, from_logits)?;
                $op.backward(self, inputs, output_gradient)
            }

            list_input_layer!($op.arity());
        }
    };
}

elementwise_layer!(
    /// Adds a list of inputs elementwise (Keras' `Add`). No weights.
    ///
    /// # Shapes
    /// inputs `(batch, d1, ..., dn)` `f32`, one or more, of one batch size; the other axes
    /// broadcast (an input of lower rank gets axes of 1 after its batch axis) -> output of
    /// the broadcast shape. Masks are ANDed.
    ///
    /// # Example
    /// ```
    /// use ndarray::array;
    /// use ndkeras::prelude::*;
    ///
    /// let a = Tensor::from(array![[1.0f32, 2.0], [3.0, 4.0]]);
    /// let b = Tensor::from(array![[10.0f32], [20.0]]); // broadcast along the features
    /// let add = Add::new();
    /// let sum = add.call_of(&[&a, &b])?;
    /// assert_eq!(sum.as_float().unwrap(), &array![[11.0f32, 12.0], [23.0, 24.0]].into_dyn());
    /// assert!(add.call(&a).is_err()); // a merge layer takes a list
    /// # Ok::<(), ndkeras::Error>(())
    /// ```
    Add,
    "add",
    Elementwise::Add
);

elementwise_layer!(
    /// Subtracts the second input from the first, elementwise (Keras' `Subtract`). No
    /// weights.
    ///
    /// # Shapes
    /// exactly two inputs `(batch, ...)` `f32` of one batch size whose other axes broadcast
    /// -> output of the broadcast shape. Masks are ANDed.
    ///
    /// # Example
    /// ```
    /// use ndarray::array;
    /// use ndkeras::prelude::*;
    ///
    /// let a = Tensor::from(array![[5.0f32, 7.0]]);
    /// let b = Tensor::from(array![[1.0f32, 2.0]]);
    /// let difference = Subtract::new().call_of(&[&a, &b])?;
    /// assert_eq!(difference.as_float().unwrap(), &array![[4.0f32, 5.0]].into_dyn());
    /// # Ok::<(), ndkeras::Error>(())
    /// ```
    Subtract,
    "subtract",
    Elementwise::Subtract
);

elementwise_layer!(
    /// Multiplies a list of inputs elementwise (Keras' `Multiply`). No weights.
    ///
    /// # Shapes
    /// inputs `(batch, ...)` `f32`, one or more, of one batch size whose other axes
    /// broadcast -> output of the broadcast shape. Masks are ANDed.
    ///
    /// # Example
    /// ```
    /// use ndarray::array;
    /// use ndkeras::prelude::*;
    ///
    /// let a = Tensor::from(array![[2.0f32, 3.0]]);
    /// let b = Tensor::from(array![[4.0f32, 5.0]]);
    /// let product = Multiply::new().call_of(&[&a, &b])?;
    /// assert_eq!(product.as_float().unwrap(), &array![[8.0f32, 15.0]].into_dyn());
    /// # Ok::<(), ndkeras::Error>(())
    /// ```
    Multiply,
    "multiply",
    Elementwise::Multiply
);

elementwise_layer!(
    /// Averages a list of inputs elementwise (Keras' `Average`: the sum, then divided by the
    /// number of inputs). No weights.
    ///
    /// # Shapes
    /// inputs `(batch, ...)` `f32`, one or more, of one batch size whose other axes
    /// broadcast -> output of the broadcast shape. Masks are ANDed.
    ///
    /// # Example
    /// ```
    /// use ndarray::array;
    /// use ndkeras::prelude::*;
    ///
    /// let a = Tensor::from(array![[1.0f32, 1.0]]);
    /// let b = Tensor::from(array![[0.0f32, 3.0]]);
    /// let mean = Average::new().call_of(&[&a, &b])?;
    /// assert_eq!(mean.as_float().unwrap(), &array![[0.5f32, 2.0]].into_dyn());
    /// # Ok::<(), ndkeras::Error>(())
    /// ```
    Average,
    "average",
    Elementwise::Average
);

elementwise_layer!(
    /// The elementwise maximum of a list of inputs (Keras' `Maximum`). No weights.
    ///
    /// The gradient of each element goes to the first input holding the maximum, as
    /// TensorFlow's gradient of `tf.maximum` folded left to right does.
    ///
    /// # Shapes
    /// inputs `(batch, ...)` `f32`, one or more, of one batch size whose other axes
    /// broadcast -> output of the broadcast shape. Masks are ANDed.
    ///
    /// # Example
    /// ```
    /// use ndarray::array;
    /// use ndkeras::prelude::*;
    ///
    /// let a = Tensor::from(array![[1.0f32, 5.0]]);
    /// let b = Tensor::from(array![[3.0f32, 2.0]]);
    /// let largest = Maximum::new().call_of(&[&a, &b])?;
    /// assert_eq!(largest.as_float().unwrap(), &array![[3.0f32, 5.0]].into_dyn());
    /// # Ok::<(), ndkeras::Error>(())
    /// ```
    Maximum,
    "maximum",
    Elementwise::Maximum
);

elementwise_layer!(
    /// The elementwise minimum of a list of inputs (Keras' `Minimum`). No weights.
    ///
    /// The gradient of each element goes to the first input holding the minimum, as
    /// TensorFlow's gradient of `tf.minimum` folded left to right does.
    ///
    /// # Shapes
    /// inputs `(batch, ...)` `f32`, one or more, of one batch size whose other axes
    /// broadcast -> output of the broadcast shape. Masks are ANDed.
    ///
    /// # Example
    /// ```
    /// use ndarray::array;
    /// use ndkeras::prelude::*;
    ///
    /// let a = Tensor::from(array![[1.0f32, 5.0]]);
    /// let b = Tensor::from(array![[3.0f32, 2.0]]);
    /// let smallest = Minimum::new().call_of(&[&a, &b])?;
    /// assert_eq!(smallest.as_float().unwrap(), &array![[1.0f32, 2.0]].into_dyn());
    /// # Ok::<(), ndkeras::Error>(())
    /// ```
    Minimum,
    "minimum",
    Elementwise::Minimum
);
