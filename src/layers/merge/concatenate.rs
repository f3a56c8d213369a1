//! `Concatenate`: inputs joined along one axis, masks joined as Keras joins them.

use ndarray::{ArrayD, Axis, IxDyn, Slice};

use super::{
    Arity, check_count, check_gradient, check_mask_fits, float_inputs, list_of_shapes, no_logits,
    owner, resolve_axis, single_input_error, try_zeros,
};
use crate::error::{Dims, Error, Result, Shape};
use crate::layer::{Backward, BackwardOf, Layer, unique_name};
use crate::tensor::Tensor;

/// Joins a list of inputs along one axis (Keras' `Concatenate`). No weights.
///
/// `axis` counts from the end when negative (the default `-1` joins the features); axis 0,
/// the batch axis, may be joined too, as in Keras.
///
/// # Shapes
/// inputs `f32` of one rank (with a batch axis), equal on every axis but `axis` -> output
/// of that shape with the lengths along `axis` added.
///
/// # Masks
/// As Keras' `Concatenate.compute_mask`: on the last axis the output mask is the AND of the
/// masks (an unmasked input counts as all true); on another axis the masks are joined along
/// it (a masked sequence of 3 steps and one of 2 give a mask of 5 steps). Like tf_keras, a
/// masked and an unmasked input cannot be joined on a non-last axis when the unmasked one has
/// more than one feature: an [`Error::InvalidArgument`] naming the masks.
///
/// # Example
/// ```
/// use ndarray::array;
/// use ndkeras::prelude::*;
///
/// let a = Tensor::from(array![[1.0f32, 2.0]]);
/// let b = Tensor::from(array![[3.0f32]]);
/// let joined = Concatenate::new().axis(-1).call_of(&[&a, &b])?;
/// assert_eq!(joined.as_float().unwrap(), &array![[1.0f32, 2.0, 3.0]].into_dyn());
/// assert_eq!(
///     Concatenate::new().compute_output_shape_of(&[vec![None, Some(2)], vec![None, Some(1)]])?,
///     vec![None, Some(3)]
/// );
/// # Ok::<(), ndkeras::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Concatenate {
    name: String,
    axis: isize,
}

impl Default for Concatenate {
    fn default() -> Self {
        Concatenate::new()
    }
}

impl Concatenate {
    /// A layer named `concatenate`, `concatenate_1`, ..., joining along the last axis.
    pub fn new() -> Self {
        Concatenate {
            name: unique_name("concatenate"),
            axis: -1,
        }
    }

    /// The axis to join along; negative counts from the end. Default: `-1`.
    pub fn axis(mut self, axis: isize) -> Self {
        self.axis = axis;
        self
    }

    /// The layer's name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The axis as configured (Keras' `axis`).
    pub fn axis_value(&self) -> isize {
        self.axis
    }

    /// `axis` as an index into a shape of `rank` axes.
    fn resolve(&self, rank: usize) -> Result<usize> {
        resolve_axis(self.axis, rank).ok_or_else(|| {
            Error::invalid_argument(
                owner(self),
                "axis",
                self.axis,
                format!("an axis of inputs of rank {rank}: in [-{rank}, {rank})"),
            )
        })
    }

    /// Keras' `Concatenate.build` check: one rank, equal lengths off `axis` (unknown ones
    /// match anything).
    fn check_shapes(&self, shapes: &[Shape]) -> Result<usize> {
        let rank = shapes.first().map_or(0, Vec::len);
        let axis = self.resolve(rank)?;
        let mismatch = || {
            Error::invalid_argument(
                owner(self),
                "inputs",
                format!("shapes {}", list_of_shapes(shapes)),
                format!(
                    "inputs of one rank with matching shapes except along axis {} (Keras: \"A `Concatenate` layer requires inputs with matching shapes except for the concatenation axis\")",
                    self.axis
                ),
            )
        };
        if shapes.iter().any(|s| s.len() != rank) {
            return Err(mismatch());
        }
        for other in 0..rank {
            if other == axis {
                continue;
            }
            let mut known = None;
            for d in shapes.iter().filter_map(|s| s[other]) {
                match known {
                    Some(k) if k != d => return Err(mismatch()),
                    _ => known = Some(d),
                }
            }
        }
        Ok(axis)
    }

    /// Keras' mask: masks one rank short gain a last axis of 1, unmasked inputs count as all
    /// true over their full shape, then the masks are joined along `axis` and ANDed over
    /// their last axis.
    fn mask(&self, inputs: &[&Tensor], output: &[usize]) -> Result<Option<ArrayD<bool>>> {
        if inputs.iter().all(|t| t.mask().is_none()) {
            return Ok(None);
        }
        let owner = owner(self);
        let masks: Vec<(ArrayD<bool>, &str)> = inputs
            .iter()
            .map(|t| match t.mask() {
                None => (
                    ArrayD::from_elem(IxDyn(t.shape()), true),
                    "unmasked: all true",
                ),
                Some(m) if m.ndim() < t.ndim() => (
                    m.view().insert_axis(Axis(m.ndim())).to_owned(),
                    "its mask with a last axis of 1",
                ),
                Some(m) => (m.clone(), "its mask"),
            })
            .collect();
        let rank = masks.first().map_or(0, |(m, _)| m.ndim());
        let axis = resolve_axis(self.axis, rank);
        let describe = || {
            let parts: Vec<String> = masks
                .iter()
                .enumerate()
                .map(|(i, (m, what))| format!("{} for input {i} ({what})", Dims(m.shape())))
                .collect();
            parts.join(", ")
        };
        let Some(axis) = axis.filter(|_| masks.iter().all(|(m, _)| m.ndim() == rank)) else {
            return Err(Error::invalid_argument(
                owner,
                "masks",
                describe(),
                format!("masks of one rank with an axis {}", self.axis),
            ));
        };
        let first = masks[0].0.shape();
        let joinable = masks.iter().all(|(m, _)| {
            m.shape()
                .iter()
                .zip(first)
                .enumerate()
                .all(|(i, (a, b))| i == axis || a == b)
        });
        if !joinable {
            return Err(Error::invalid_argument(
                owner,
                "masks",
                describe(),
                format!(
                    "masks that match except along axis {} (tf_keras raises too: mask every input, or concatenate on the last axis)",
                    self.axis
                ),
            ));
        }
        let views: Vec<_> = masks.iter().map(|(m, _)| m.view()).collect();
        let joined = ndarray::concatenate(Axis(axis), &views).map_err(|_| {
            Error::invalid_argument(owner.clone(), "masks", describe(), "joinable masks")
        })?;
        let last = Axis(joined.ndim().saturating_sub(1));
        let mask = joined.map_axis(last, |lane| lane.iter().all(|&m| m));
        check_mask_fits(&owner, &mask, output)?;
        Ok(Some(mask))
    }
}

impl Layer for Concatenate {
    fn name(&self) -> &str {
        &self.name
    }

    fn class_name(&self) -> &'static str {
        "Concatenate"
    }

    /// Keras' `Concatenate.compute_output_shape`: the first input's shape with the lengths
    /// along `axis` added (unknown if one is unknown).
    fn compute_output_shape_of(&self, input_shapes: &[Shape]) -> Result<Shape> {
        check_count(self, Arity::AtLeastOne, input_shapes.len())?;
        let axis = self.check_shapes(input_shapes)?;
        let mut output = input_shapes[0].clone();
        let mut total = Some(0usize);
        for shape in input_shapes {
            total = match (total, shape[axis]) {
                (Some(t), Some(d)) => t.checked_add(d),
                _ => None,
            };
        }
        output[axis] = total;
        Ok(output)
    }

    fn call_of(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        check_count(self, Arity::AtLeastOne, inputs.len())?;
        let owner = owner(self);
        let arrays = float_inputs(&owner, inputs, 1)?;
        let shapes: Vec<Shape> = inputs.iter().map(|t| t.keras_shape()).collect();
        let axis = self.check_shapes(&shapes)?;
        let mut output_shape = arrays[0].shape().to_vec();
        output_shape[axis] = arrays
            .iter()
            .try_fold(0usize, |total, a| total.checked_add(a.shape()[axis]))
            .ok_or_else(|| Error::ShapeOverflow {
                context: format!("{owner}: output"),
                shape: arrays[0].shape().to_vec(),
            })?;
        let mask = self.mask(inputs, &output_shape)?;
        let mut output = try_zeros(&output_shape, || format!("{owner}: output"))?;
        let mut start = 0;
        for array in &arrays {
            let end = start + array.shape()[axis];
            output
                .slice_axis_mut(Axis(axis), Slice::from(start..end))
                .assign(*array);
            start = end;
        }
        Tensor::from(output).with_mask(mask)
    }

    fn backward_of(
        &mut self,
        inputs: &[&Tensor],
        output_gradient: ArrayD<f32>,
        from_logits: bool,
    ) -> Result<BackwardOf> {
        no_logits(self, from_logits)?;
        let output_shape = self
            .compute_output_shape_of(&inputs.iter().map(|t| t.keras_shape()).collect::<Vec<_>>())?;
        let owner = owner(self);
        float_inputs(&owner, inputs, 1)?;
        let expected: Vec<usize> = output_shape.iter().map(|d| d.unwrap_or(0)).collect();
        check_gradient(&owner, &output_gradient, &expected)?;
        let axis = self.resolve(expected.len())?;
        let mut start = 0;
        let input_gradients = inputs
            .iter()
            .map(|input| {
                let end = start + input.shape()[axis];
                let piece = output_gradient
                    .slice_axis(Axis(axis), Slice::from(start..end))
                    .to_owned();
                start = end;
                Some(piece)
            })
            .collect();
        Ok(BackwardOf {
            input_gradients,
            weight_gradients: Vec::new(),
        })
    }

    list_input_layer!(Arity::AtLeastOne);
}
