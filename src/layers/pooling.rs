//! `GlobalAveragePooling1D`: the mean over the steps of a sequence, mask-aware.

use ndarray::{Array2, Array3, ArrayD, ArrayView3, Ix2, Ix3};

use crate::error::{Error, Result, Shape};
use crate::layer::{Backward, Layer, unique_name};
use crate::tensor::Tensor;

/// Averages a sequence over its steps (Keras' `GlobalAveragePooling1D`, `channels_last`).
///
/// With a mask (from an `Embedding` with `mask_zero`), only the unmasked steps are averaged:
/// `sum(x * mask) / sum(mask)`, as in Keras. A sequence made only of padding gives `0 / 0 =
/// NaN`, as in Keras; the mask is consumed (the output has none).
///
/// # Shapes
/// input `(batch, steps, features)` `f32`, mask `(batch, steps)` -> output
/// `(batch, features)`.
///
/// # Example
/// ```
/// use ndarray::array;
/// use ndkeras::prelude::*;
///
/// let x = Tensor::from(array![[[1.0f32], [3.0], [100.0]]])
///     .with_mask(Some(array![[true, true, false]].into_dyn()))?;
/// let mut pool = GlobalAveragePooling1D::new();
/// assert_eq!(pool.apply(&x)?.as_float().unwrap(), &array![[2.0f32]].into_dyn());
/// # Ok::<(), ndkeras::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct GlobalAveragePooling1D {
    name: String,
}

impl Default for GlobalAveragePooling1D {
    fn default() -> Self {
        GlobalAveragePooling1D::new()
    }
}

impl GlobalAveragePooling1D {
    /// A pooling layer named `global_average_pooling1d`, `..._1`, ...
    pub fn new() -> Self {
        GlobalAveragePooling1D {
            name: unique_name("global_average_pooling1d"),
        }
    }

    /// The layer's name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    fn context(&self) -> String {
        format!("layer \"{}\" (GlobalAveragePooling1D)", self.name)
    }

    /// The input as `(batch, steps, features)`, the mask as 0/1 per step `(batch, steps)`
    /// (all ones without a mask) and the number of unmasked steps per sample.
    fn prepare<'a>(
        &self,
        inputs: &'a Tensor,
    ) -> Result<(ArrayView3<'a, f32>, Array2<f32>, Vec<f32>)> {
        let values = inputs.as_float().ok_or_else(|| Error::IncompatibleDtype {
            context: self.context(),
            expected: "float32".into(),
            got: inputs.dtype().to_string(),
        })?;
        let values =
            values
                .view()
                .into_dimensionality::<Ix3>()
                .map_err(|_| Error::IncompatibleShape {
                    context: self.context(),
                    expected: vec![None, None, None],
                    got: inputs.keras_shape(),
                })?;
        let (batch, steps, _) = values.dim();
        let mask = match inputs.mask() {
            Some(mask) => mask
                .view()
                .into_dimensionality::<Ix2>()
                .ok()
                .filter(|m| m.dim() == (batch, steps))
                .ok_or_else(|| Error::IncompatibleShape {
                    context: format!("{}: mask", self.context()),
                    expected: vec![Some(batch), Some(steps)],
                    got: mask.shape().iter().map(|&d| Some(d)).collect(),
                })?
                .mapv(|m| if m { 1.0f32 } else { 0.0 }),
            None => Array2::ones((batch, steps)),
        };
        let counts = mask.rows().into_iter().map(|row| row.sum()).collect();
        Ok((values, mask, counts))
    }
}

impl Layer for GlobalAveragePooling1D {
    fn name(&self) -> &str {
        &self.name
    }

    fn class_name(&self) -> &'static str {
        "GlobalAveragePooling1D"
    }

    fn check_input(&self, inputs: &Tensor) -> Result<()> {
        self.prepare(inputs).map(|_| ())
    }

    /// `sum(x * mask) / sum(mask)` over the steps, in Keras' order of operations.
    fn call(&self, inputs: &Tensor) -> Result<Tensor> {
        let (values, mask, counts) = self.prepare(inputs)?;
        let (batch, _, features) = values.dim();
        let mut out = Array2::<f32>::zeros((batch, features));
        for (((mut out_row, sample), sample_mask), count) in out
            .rows_mut()
            .into_iter()
            .zip(values.outer_iter())
            .zip(mask.rows())
            .zip(&counts)
        {
            for (step, &m) in sample.outer_iter().zip(sample_mask) {
                out_row.zip_mut_with(&step, |acc, &x| *acc += x * m);
            }
            // An all-padding sequence gives 0 / 0 = NaN, as in Keras.
            out_row.mapv_inplace(|sum| sum / count);
        }
        Ok(Tensor::from(out))
    }

    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        match input_shape {
            [batch, _, features] => Ok(vec![*batch, *features]),
            _ => Err(Error::IncompatibleShape {
                context: self.context(),
                expected: vec![None, None, None],
                got: input_shape.to_vec(),
            }),
        }
    }

    fn compute_mask(
        &self,
        _inputs: &Tensor,
        _mask: Option<&ArrayD<bool>>,
    ) -> Result<Option<ArrayD<bool>>> {
        Ok(None)
    }

    fn supports_masking(&self) -> bool {
        true
    }

    /// Each step receives `gradient * mask / sum(mask)`.
    fn backward(&mut self, inputs: &Tensor, output_gradient: ArrayD<f32>) -> Result<Backward> {
        let (values, mask, counts) = self.prepare(inputs)?;
        let (batch, steps, features) = values.dim();
        let gradient = output_gradient
            .into_dimensionality::<Ix2>()
            .ok()
            .filter(|g| g.dim() == (batch, features))
            .ok_or_else(|| Error::IncompatibleShape {
                context: format!("{}: output gradient", self.context()),
                expected: vec![Some(batch), Some(features)],
                got: Vec::new(),
            })?;
        let mut input_gradient = Array3::<f32>::zeros((batch, steps, features));
        for (((mut sample, g), sample_mask), count) in input_gradient
            .outer_iter_mut()
            .zip(gradient.rows())
            .zip(mask.rows())
            .zip(&counts)
        {
            for (mut step, &m) in sample.outer_iter_mut().zip(sample_mask) {
                if m != 0.0 {
                    step.zip_mut_with(&g, |d, &g| *d = g * m / count);
                }
            }
        }
        Ok(Backward {
            input_gradient: Some(input_gradient.into_dyn()),
            weight_gradients: Vec::new(),
        })
    }

    weightless_layer!();
}
