//! `SinePositionEncoding`: the fixed sinusoids of "Attention is all you need".

use ndarray::ArrayD;

use super::{check_gradient, float_values, sequence_and_features, try_zeros};
use crate::error::{Error, Result, Shape};
use crate::layer::{Backward, Layer, unique_name};
use crate::tensor::Tensor;

/// Sinusoidal position encoding (KerasHub's `keras_hub.layers.SinePositionEncoding`).
///
/// For position `p = start_index + i` and feature `j` of `d`:
/// `angle = p · (1 / max_wavelength)^(2·floor(j/2) / d)`, output `sin(angle)` at even `j`
/// and `cos(angle)` at odd `j` (interleaved), broadcast to the input's shape. Computed in
/// `f32` in KerasHub's order of operations. The layer has no weights and looks only at the
/// input's shape.
///
/// # Shapes
/// input `(..., length, features)` `f32`, rank 2 or more -> output of the same shape. A
/// masked input is accepted and the output carries no mask (see the [module docs](super)).
///
/// # Example
/// ```
/// use ndarray::Array3;
/// use ndkeras::prelude::*;
///
/// let mut sine = SinePositionEncoding::new();
/// let out = sine.apply(&Tensor::from(Array3::<f32>::zeros((1, 3, 4))))?;
/// let out = out.as_float().unwrap();
/// assert_eq!(out[[0, 0, 0]], 0.0); // sin(0)
/// assert_eq!(out[[0, 0, 1]], 1.0); // cos(0)
/// assert!((out[[0, 2, 0]] - 2.0f32.sin()).abs() < 1e-6);
/// # Ok::<(), ndkeras::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct SinePositionEncoding {
    name: String,
    config: SinePositionEncodingConfig,
}

/// The settings of a [`SinePositionEncoding`], with KerasHub's names.
#[derive(Debug, Clone, PartialEq)]
pub struct SinePositionEncodingConfig {
    /// The longest wavelength of the sinusoids (default `10000`).
    pub max_wavelength: f64,
}

impl Default for SinePositionEncoding {
    fn default() -> Self {
        SinePositionEncoding::new()
    }
}

impl SinePositionEncoding {
    /// An encoding with KerasHub's default `max_wavelength = 10000`, named
    /// `sine_position_encoding`, `sine_position_encoding_1`, ...
    pub fn new() -> Self {
        SinePositionEncoding {
            name: unique_name("sine_position_encoding"),
            config: SinePositionEncodingConfig {
                max_wavelength: 10000.0,
            },
        }
    }

    /// The longest wavelength of the sinusoids (KerasHub's `max_wavelength`). Default:
    /// `10000`. Must be positive and finite.
    pub fn max_wavelength(mut self, max_wavelength: f64) -> Self {
        self.config.max_wavelength = max_wavelength;
        self
    }

    /// The layer's name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The settings.
    pub fn config(&self) -> &SinePositionEncodingConfig {
        &self.config
    }

    /// KerasHub's `layer(inputs, start_index=start_index)`: the encoding of positions
    /// `start_index ..`, broadcast to the input's shape.
    ///
    /// # Errors
    /// The errors of [`Layer::check_input`] and [`Layer::validate`].
    pub fn call_with_start_index(&self, inputs: &Tensor, start_index: usize) -> Result<Tensor> {
        self.validate()?;
        self.check_input(inputs)?;
        let context = self.context();
        let shape = inputs.shape();
        let (length, features) = sequence_and_features(shape, &context)?;
        let mut output = try_zeros(shape, || format!("{context}: output"))?;
        let block = length * features;
        if block == 0 {
            return Ok(Tensor::from(output));
        }
        let mut encoding = try_zeros(&[length, features], || format!("{context}: encoding"))?;
        let rows = encoding.as_slice_mut().unwrap_or_default();
        // KerasHub, in float32: min_freq = 1 / max_wavelength (a Python float, then cast),
        // timescale_j = min_freq ** (2 * (j // 2) / d), angle = position * timescale_j.
        let min_freq = (1.0 / self.config.max_wavelength) as f32;
        let timescales: Vec<f32> = (0..features)
            .map(|j| min_freq.powf((2 * (j / 2)) as f32 / features as f32))
            .collect();
        for (i, row) in rows.chunks_exact_mut(features).enumerate() {
            // `arange(length) + start_index` in int32, then cast to float32.
            let position = start_index.saturating_add(i) as f32;
            for (j, (value, timescale)) in row.iter_mut().zip(&timescales).enumerate() {
                let angle = position * timescale;
                *value = if j % 2 == 0 { angle.sin() } else { angle.cos() };
            }
        }
        let flat = output.as_slice_mut().unwrap_or_default();
        for chunk in flat.chunks_exact_mut(block) {
            chunk.copy_from_slice(rows);
        }
        Ok(Tensor::from(output))
    }

    fn context(&self) -> String {
        format!("layer \"{}\" (SinePositionEncoding)", self.name)
    }
}

impl Layer for SinePositionEncoding {
    fn name(&self) -> &str {
        &self.name
    }

    fn class_name(&self) -> &'static str {
        "SinePositionEncoding"
    }

    /// A positive, finite `max_wavelength` (KerasHub divides by it and raises it to powers:
    /// 0 fails there, a negative one gives NaN).
    fn validate(&self) -> Result<()> {
        let max_wavelength = self.config.max_wavelength;
        if max_wavelength.is_finite() && max_wavelength > 0.0 {
            return Ok(());
        }
        Err(Error::invalid_argument(
            self.context(),
            "max_wavelength",
            max_wavelength,
            "a positive, finite wavelength",
        ))
    }

    /// `f32`, rank 2 or more.
    fn check_input(&self, inputs: &Tensor) -> Result<()> {
        let context = self.context();
        let values = float_values(inputs, &context)?;
        sequence_and_features(values.shape(), &context).map(|_| ())
    }

    fn call(&self, inputs: &Tensor) -> Result<Tensor> {
        self.call_with_start_index(inputs, 0)
    }

    /// The input's shape.
    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        if input_shape.len() < 2 {
            return Err(Error::IncompatibleShape {
                context: format!(
                    "{}: the input needs a sequence axis and a feature axis",
                    self.context()
                ),
                expected: vec![None, None, None],
                got: input_shape.to_vec(),
            });
        }
        Ok(input_shape.to_vec())
    }

    /// No mask (Keras 3 drops it too).
    fn compute_mask(
        &self,
        _inputs: &Tensor,
        _mask: Option<&ArrayD<bool>>,
    ) -> Result<Option<ArrayD<bool>>> {
        Ok(None)
    }

    /// `true`: a masked input is accepted (its mask is not passed on).
    fn supports_masking(&self) -> bool {
        true
    }

    /// The output does not depend on the input's values: its gradient is zero.
    fn backward(&mut self, inputs: &Tensor, output_gradient: ArrayD<f32>) -> Result<Backward> {
        self.check_input(inputs)?;
        check_gradient(&output_gradient, inputs.shape(), &self.context())?;
        let input_gradient = try_zeros(inputs.shape(), || {
            format!("{}: input gradient", self.context())
        })?;
        Ok(Backward {
            input_gradient: Some(input_gradient),
            weight_gradients: Vec::new(),
        })
    }

    weightless_layer!();
}
