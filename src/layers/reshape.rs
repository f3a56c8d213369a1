//! The `Reshape` layer: `(batch, ...)` -> `(batch, *target_shape)`, one length inferable.

use ndarray::{ArrayD, IxDyn};

use crate::error::{Dims, Error, Result, Shape};
use crate::layer::{Backward, Layer, unique_name};
use crate::tensor::{Tensor, TensorData, checked_size};

/// Gives every sample a new shape with the same number of values, in row-major order (Keras'
/// `Reshape`). One length of `target_shape` may be `-1`: it is inferred from the input, as
/// NumPy's `reshape` does. No weights.
///
/// Takes `f32` values or integer ids (ids keep their type; they have no gradient).
///
/// # Shapes
/// input `(batch, d1, ..., dn)` -> output `(batch, *target_shape)`, where the product of
/// `target_shape` (the `-1` inferred) is `d1 * ... * dn`.
///
/// # Masks: a deliberate difference from Keras
/// Like [`Flatten`](crate::layers::Flatten), `Reshape` refuses a masked input
/// ([`Error::MaskNotSupported`]). tf_keras 2's `Reshape` does not support masking and drops
/// the mask silently, so the padded positions would flow on unnoticed.
///
/// # Example
/// ```
/// use ndarray::{Array, IxDyn};
/// use ndkeras::prelude::*;
///
/// let x = Tensor::from(Array::from_shape_fn(IxDyn(&[2, 3, 4]), |i| i[2] as f32));
/// let mut reshape = Reshape::new(&[-1, 2]);
/// let y = reshape.apply(&x)?;
/// assert_eq!(y.shape(), &[2, 6, 2]);
/// assert_eq!(reshape.compute_output_shape(&[None, Some(12)])?, vec![None, Some(6), Some(2)]);
/// assert!(Reshape::new(&[5, -1]).apply(&x).is_err()); // 12 values do not fill rows of 5
/// # Ok::<(), ndkeras::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Reshape {
    name: String,
    target_shape: Vec<isize>,
}

impl Reshape {
    /// A layer named `reshape`, `reshape_1`, ... giving each sample the shape
    /// `target_shape` (without the batch axis; at most one `-1`, inferred). Checked by
    /// [`Layer::validate`], when the layer is added to a model or first called.
    pub fn new(target_shape: &[isize]) -> Self {
        Reshape {
            name: unique_name("reshape"),
            target_shape: target_shape.to_vec(),
        }
    }

    /// The layer's name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The target shape as configured (Keras' `target_shape`), `-1` for the inferred length.
    pub fn target_shape(&self) -> &[isize] {
        &self.target_shape
    }

    fn owner(&self) -> String {
        format!("layer \"{}\" (Reshape)", self.name)
    }

    fn target_text(&self) -> String {
        let parts: Vec<String> = self.target_shape.iter().map(ToString::to_string).collect();
        match parts.as_slice() {
            [one] => format!("({one},)"),
            _ => format!("({})", parts.join(", ")),
        }
    }

    /// The lengths of `target_shape` for samples of shape `sample` (Keras'
    /// `_fix_unknown_dimension`).
    fn fix_unknown(&self, sample: &[usize]) -> Result<Vec<usize>> {
        self.validate()?;
        let size = checked_size(sample, || self.owner())?;
        let mut known = 1usize;
        let mut unknown = None;
        let mut lengths = Vec::with_capacity(self.target_shape.len());
        for (index, &d) in self.target_shape.iter().enumerate() {
            match usize::try_from(d) {
                Ok(d) => {
                    known = known
                        .checked_mul(d)
                        .ok_or_else(|| self.size_error(sample))?;
                    lengths.push(d);
                }
                Err(_) => {
                    unknown = Some(index);
                    lengths.push(0);
                }
            }
        }
        match unknown {
            Some(index) => {
                if known == 0 || size % known != 0 {
                    return Err(self.size_error(sample));
                }
                lengths[index] = size / known;
            }
            None if known != size => return Err(self.size_error(sample)),
            None => {}
        }
        Ok(lengths)
    }

    fn size_error(&self, sample: &[usize]) -> Error {
        let size = sample
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .map_or_else(|| "too many".to_string(), |n| n.to_string());
        Error::invalid_argument(
            self.owner(),
            "target_shape",
            self.target_text(),
            format!(
                "a shape holding the {size} values of each sample of shape {} (Keras: \"total size of new array must be unchanged\")",
                Dims(sample)
            ),
        )
    }

    /// The output shape of a concrete input, or why there is none.
    fn output_dims(&self, inputs: &Tensor) -> Result<Vec<usize>> {
        let Some((&batch, sample)) = inputs.shape().split_first() else {
            return Err(Error::IncompatibleShape {
                context: format!("{}: needs a batch axis", self.owner()),
                expected: vec![None],
                got: Vec::new(),
            });
        };
        let mut dims = vec![batch];
        dims.extend(self.fix_unknown(sample)?);
        Ok(dims)
    }
}

/// A row-major copy of `array` in `shape` (same number of elements), allocated fallibly.
fn reshaped<T: Clone>(
    array: &ArrayD<T>,
    shape: &[usize],
    context: impl Fn() -> String,
) -> Result<ArrayD<T>> {
    let mut values = Vec::new();
    values
        .try_reserve_exact(array.len())
        .map_err(|_| Error::Allocation {
            context: context(),
            bytes: array.len().saturating_mul(std::mem::size_of::<T>()),
        })?;
    values.extend(array.iter().cloned());
    ArrayD::from_shape_vec(IxDyn(shape), values).map_err(|_| Error::IncompatibleShape {
        context: context(),
        expected: shape.iter().map(|&d| Some(d)).collect(),
        got: array.shape().iter().map(|&d| Some(d)).collect(),
    })
}

impl Layer for Reshape {
    fn name(&self) -> &str {
        &self.name
    }

    fn class_name(&self) -> &'static str {
        "Reshape"
    }

    /// `target_shape` has at most one negative length, and it is `-1`.
    fn validate(&self) -> Result<()> {
        let negatives = self.target_shape.iter().filter(|&&d| d < 0).count();
        if negatives > 1 || self.target_shape.iter().any(|&d| d < -1) {
            return Err(Error::invalid_argument(
                self.owner(),
                "target_shape",
                self.target_text(),
                "non-negative lengths with at most one -1 (the length to infer)",
            ));
        }
        Ok(())
    }

    fn check_input(&self, inputs: &Tensor) -> Result<()> {
        self.output_dims(inputs).map(|_| ())
    }

    fn call(&self, inputs: &Tensor) -> Result<Tensor> {
        let shape = self.output_dims(inputs)?;
        let context = || format!("{}: output", self.owner());
        let data = match inputs.data() {
            TensorData::Int8(a) => TensorData::Int8(reshaped(a, &shape, context)?),
            TensorData::Int16(a) => TensorData::Int16(reshaped(a, &shape, context)?),
            TensorData::Int32(a) => TensorData::Int32(reshaped(a, &shape, context)?),
            TensorData::Int64(a) => TensorData::Int64(reshaped(a, &shape, context)?),
            TensorData::UInt8(a) => TensorData::UInt8(reshaped(a, &shape, context)?),
            TensorData::UInt16(a) => TensorData::UInt16(reshaped(a, &shape, context)?),
            TensorData::UInt32(a) => TensorData::UInt32(reshaped(a, &shape, context)?),
            TensorData::UInt64(a) => TensorData::UInt64(reshaped(a, &shape, context)?),
            TensorData::Usize(a) => TensorData::Usize(reshaped(a, &shape, context)?),
            TensorData::Float32(a) => TensorData::Float32(reshaped(a, &shape, context)?),
            TensorData::String(a) => TensorData::String(reshaped(a, &shape, context)?),
        };
        Ok(Tensor::new(data))
    }

    /// Keras' `Reshape.compute_output_shape`: with an unknown length in the sample, `-1`
    /// stays unknown; otherwise it is inferred, and a size mismatch is an error.
    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        self.validate()?;
        let Some((&batch, sample)) = input_shape.split_first() else {
            return Err(Error::IncompatibleShape {
                context: format!("{}: needs a batch axis", self.owner()),
                expected: vec![None],
                got: Vec::new(),
            });
        };
        let mut output = vec![batch];
        match sample.iter().copied().collect::<Option<Vec<usize>>>() {
            Some(known) => output.extend(self.fix_unknown(&known)?.into_iter().map(Some)),
            None => output.extend(self.target_shape.iter().map(|&d| usize::try_from(d).ok())),
        }
        Ok(output)
    }

    fn compute_mask(
        &self,
        _inputs: &Tensor,
        _mask: Option<&ArrayD<bool>>,
    ) -> Result<Option<ArrayD<bool>>> {
        Ok(None)
    }

    fn backward(&mut self, inputs: &Tensor, output_gradient: ArrayD<f32>) -> Result<Backward> {
        let expected = self.output_dims(inputs)?;
        if output_gradient.shape() != expected.as_slice() {
            return Err(Error::IncompatibleShape {
                context: format!("{}: output gradient", self.owner()),
                expected: expected.iter().map(|&d| Some(d)).collect(),
                got: output_gradient.shape().iter().map(|&d| Some(d)).collect(),
            });
        }
        let input_gradient = match inputs.as_float() {
            Some(_) => Some(reshaped(&output_gradient, inputs.shape(), || {
                format!("{}: input gradient", self.owner())
            })?),
            None => None,
        };
        Ok(Backward {
            input_gradient,
            weight_gradients: Vec::new(),
        })
    }

    weightless_layer!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_the_unknown_length_and_names_the_sizes() {
        let layer = Reshape::new(&[-1, 2]);
        assert_eq!(layer.fix_unknown(&[3, 4]).unwrap(), vec![6, 2]);
        let err = Reshape::new(&[5, -1]).fix_unknown(&[3, 4]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("(5, -1)") && text.contains("12 values") && text.contains("(3, 4)"),
            "{text}"
        );
        assert!(Reshape::new(&[-1, -1]).validate().is_err());
        assert!(Reshape::new(&[-2]).validate().is_err());
    }
}
