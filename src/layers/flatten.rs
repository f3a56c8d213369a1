//! The `Flatten` layer: `(batch, d1, ..., dn)` -> `(batch, d1 * ... * dn)`.

use ndarray::{ArrayD, IxDyn};

use crate::error::{Error, Result, Shape};
use crate::layer::{Backward, Layer, unique_name};
use crate::tensor::{Tensor, checked_size};

/// Flattens every sample into a vector (Keras' `Flatten`). No weights.
///
/// # Shapes
/// input `(batch, d1, ..., dn)` `f32` -> output `(batch, d1 * ... * dn)`; a rank-1 input
/// becomes `(batch, 1)`.
///
/// # Masks: a deliberate difference from Keras
/// `Flatten` does not support masking: a masked input (e.g. after an `Embedding` with
/// `mask_zero(true)`) is an [`Error::MaskNotSupported`]. tf_keras 2 instead drops the mask
/// silently and flattens the padded positions in with the rest, so a model that relied on the
/// mask quietly trains on padding. ndkeras refuses on purpose: put a layer that consumes the
/// mask (e.g. `GlobalAveragePooling1D`) before `Flatten`, or turn `mask_zero` off.
#[derive(Debug, Clone)]
pub struct Flatten {
    name: String,
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten::new()
    }
}

impl Flatten {
    /// A flatten layer named `flatten`, `flatten_1`, ...
    pub fn new() -> Self {
        Flatten {
            name: unique_name("flatten"),
        }
    }

    /// The layer's name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    fn float<'a>(&self, inputs: &'a Tensor) -> Result<&'a ArrayD<f32>> {
        inputs
            .as_float()
            .filter(|v| v.ndim() >= 1)
            .ok_or_else(|| Error::IncompatibleDtype {
                context: format!("layer \"{}\" (Flatten)", self.name),
                expected: "float32 with a batch axis".into(),
                got: format!("{} of rank {}", inputs.dtype(), inputs.ndim()),
            })
    }
}

impl Layer for Flatten {
    fn name(&self) -> &str {
        &self.name
    }

    fn class_name(&self) -> &'static str {
        "Flatten"
    }

    fn check_input(&self, inputs: &Tensor) -> Result<()> {
        self.float(inputs).map(|_| ())
    }

    fn call(&self, inputs: &Tensor) -> Result<Tensor> {
        let values = self.float(inputs)?;
        let batch = values.shape()[0];
        let rest = checked_size(&values.shape()[1..], || format!("layer \"{}\"", self.name))?;
        let flat = values
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order(IxDyn(&[batch, rest]))
            .map_err(|_| Error::ShapeOverflow {
                context: self.name.clone(),
                shape: values.shape().to_vec(),
            })?;
        Ok(Tensor::from(flat))
    }

    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        let Some((batch, rest)) = input_shape.split_first() else {
            return Err(Error::IncompatibleShape {
                context: format!("layer \"{}\" (Flatten): needs a batch axis", self.name),
                expected: vec![None],
                got: Vec::new(),
            });
        };
        let size = rest
            .iter()
            .try_fold(1usize, |acc, d| d.and_then(|d| acc.checked_mul(d)));
        Ok(vec![*batch, size])
    }

    fn compute_mask(
        &self,
        _inputs: &Tensor,
        _mask: Option<&ArrayD<bool>>,
    ) -> Result<Option<ArrayD<bool>>> {
        Ok(None)
    }

    fn backward(&mut self, inputs: &Tensor, output_gradient: ArrayD<f32>) -> Result<Backward> {
        let shape = inputs.shape().to_vec();
        let gradient = output_gradient
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order(IxDyn(&shape))
            .map_err(|_| Error::IncompatibleShape {
                context: format!("layer \"{}\" (Flatten): output gradient", self.name),
                expected: shape.iter().map(|&d| Some(d)).collect(),
                got: Vec::new(),
            })?;
        Ok(Backward {
            input_gradient: Some(gradient),
            weight_gradients: Vec::new(),
        })
    }

    weightless_layer!();
}
