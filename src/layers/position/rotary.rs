//! `RotaryEmbedding`: rotary position embedding (RoPE), a rotation of feature pairs by an
//! angle that grows with the position.

use std::fmt;
use std::str::FromStr;

use ndarray::{ArrayD, ArrayView1, ArrayView2, ArrayViewMut1, Axis, Ix3, Zip};

use super::{check_gradient, float_values, try_zeros};
use crate::error::{Error, Result, Shape};
use crate::layer::{Backward, Layer, unique_name};
use crate::tensor::Tensor;

/// How a [`RotaryEmbedding`] scales its frequencies (KerasHub's `rope_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RopeType {
    /// `inv_freq / scaling_factor` (KerasHub's default, `"linear"`).
    #[default]
    Linear,
    /// `inv_freq / scaling_factor^(d / (d - 2))` (`"dynamic"`, NTK-aware scaling).
    Dynamic,
}

impl RopeType {
    /// KerasHub's name: `"linear"` or `"dynamic"`.
    pub fn name(self) -> &'static str {
        match self {
            RopeType::Linear => "linear",
            RopeType::Dynamic => "dynamic",
        }
    }
}

impl fmt::Display for RopeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RopeType {
    type Err = Error;

    /// `"linear"` or `"dynamic"`. KerasHub's `"yarn"` is not implemented yet, and an unknown
    /// name (which KerasHub silently treats as unscaled) is refused.
    fn from_str(name: &str) -> Result<Self> {
        match name {
            "linear" => Ok(RopeType::Linear),
            "dynamic" => Ok(RopeType::Dynamic),
            "yarn" => Err(Error::invalid_argument(
                "RotaryEmbedding",
                "rope_type",
                "\"yarn\"",
                "\"linear\" or \"dynamic\" (YaRN scaling is not implemented in ndkeras yet)",
            )),
            other => Err(Error::UnknownName {
                kind: "rope_type",
                name: other.to_string(),
                valid: vec!["linear", "dynamic"],
            }),
        }
    }
}

/// The settings of a [`RotaryEmbedding`], with KerasHub's names and defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct RotaryEmbeddingConfig {
    /// The longest wavelength (RoPE's base, `theta`). Default `10000`.
    pub max_wavelength: f64,
    /// Positions are divided by this (through the frequencies). Default `1.0`.
    pub scaling_factor: f64,
    /// How `scaling_factor` applies. Default [`RopeType::Linear`].
    pub rope_type: RopeType,
    /// The sequence axis of the input; negative counts from the end. Default `1`.
    pub sequence_axis: isize,
    /// The feature axis of the input; negative counts from the end. Default `-1`.
    pub feature_axis: isize,
    /// The `d` in `max_wavelength^(-2i/d)`, when it is not the feature dimension. Default
    /// `None` (the feature dimension).
    pub denominator_dim: Option<usize>,
}

impl Default for RotaryEmbeddingConfig {
    fn default() -> Self {
        RotaryEmbeddingConfig {
            max_wavelength: 10000.0,
            scaling_factor: 1.0,
            rope_type: RopeType::Linear,
            sequence_axis: 1,
            feature_axis: -1,
            denominator_dim: None,
        }
    }
}

/// Rotary position embedding (KerasHub's `keras_hub.layers.RotaryEmbedding`, RoFormer).
///
/// With `d` features split in halves `x = [x1, x2]` (KerasHub's half-split layout, not
/// interleaved pairs), `inv_freq_k = max_wavelength^(-2k / d) / scaling_factor` for
/// `k < d/2`, and `angle = position · inv_freq_k` (the same angle for feature `k` and
/// `k + d/2`):
/// `output = x · cos(angle) + [-x2, x1] · sin(angle)`. Positions are `start_index + i` along
/// `sequence_axis`; every other axis (batch, heads) is rotated alike. Computed in `f32` in
/// KerasHub's order of operations. No weights; the backward pass is the inverse rotation.
///
/// # Shapes
/// input of any rank with a sequence axis and an even-sized feature axis (typically
/// `(batch, length, features)` or `(batch, length, heads, features)`), `f32` -> output of the
/// same shape.
///
/// # Errors
/// An odd feature dimension ("rotary dimension must be even"), axes out of range or equal,
/// and a masked input ([`Error::MaskNotSupported`]: Keras 3 drops the mask with a warning).
///
/// # Example
/// ```
/// use ndarray::array;
/// use ndkeras::prelude::*;
///
/// let mut rope = RotaryEmbedding::new();
/// // Position 0 is not rotated; position 1 turns (x1, x2) by 1 radian (d = 2: inv_freq = 1).
/// let x = Tensor::from(array![[[1.0f32, 0.0], [1.0, 0.0]]]);
/// let out = rope.apply(&x)?;
/// let out = out.as_float().unwrap();
/// assert_eq!((out[[0, 0, 0]], out[[0, 0, 1]]), (1.0, 0.0));
/// assert!((out[[0, 1, 0]] - 1.0f32.cos()).abs() < 1e-6);
/// assert!((out[[0, 1, 1]] - 1.0f32.sin()).abs() < 1e-6);
///
/// let odd = rope.apply(&Tensor::from(array![[[1.0f32, 2.0, 3.0]]])).unwrap_err();
/// assert!(odd.to_string().contains("even"));
/// # Ok::<(), ndkeras::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RotaryEmbedding {
    name: String,
    config: RotaryEmbeddingConfig,
}

impl Default for RotaryEmbedding {
    fn default() -> Self {
        RotaryEmbedding::new()
    }
}

impl RotaryEmbedding {
    /// A rotary embedding with KerasHub's defaults (`max_wavelength = 10000`,
    /// `scaling_factor = 1.0`, `"linear"`, `sequence_axis = 1`, `feature_axis = -1`), named
    /// `rotary_embedding`, `rotary_embedding_1`, ...
    pub fn new() -> Self {
        RotaryEmbedding {
            name: unique_name("rotary_embedding"),
            config: RotaryEmbeddingConfig::default(),
        }
    }

    /// RoPE's base (KerasHub's `max_wavelength`). Default: `10000`. Positive and finite.
    pub fn max_wavelength(mut self, max_wavelength: f64) -> Self {
        self.config.max_wavelength = max_wavelength;
        self
    }

    /// Position scaling (KerasHub's `scaling_factor`). Default: `1.0`. Positive and finite.
    pub fn scaling_factor(mut self, scaling_factor: f64) -> Self {
        self.config.scaling_factor = scaling_factor;
        self
    }

    /// How `scaling_factor` applies (KerasHub's `rope_type`). Default: [`RopeType::Linear`].
    pub fn rope_type(mut self, rope_type: RopeType) -> Self {
        self.config.rope_type = rope_type;
        self
    }

    /// The sequence axis (negative counts from the end). Default: `1`.
    pub fn sequence_axis(mut self, axis: isize) -> Self {
        self.config.sequence_axis = axis;
        self
    }

    /// The feature axis (negative counts from the end). Default: `-1`.
    pub fn feature_axis(mut self, axis: isize) -> Self {
        self.config.feature_axis = axis;
        self
    }

    /// The `d` of the frequencies when it differs from the feature dimension (KerasHub's
    /// `denominator_dim`). Default: none.
    pub fn denominator_dim(mut self, denominator_dim: Option<usize>) -> Self {
        self.config.denominator_dim = denominator_dim;
        self
    }

    /// The layer's name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The settings.
    pub fn config(&self) -> &RotaryEmbeddingConfig {
        &self.config
    }

    /// KerasHub's `layer(inputs, start_index=start_index)`: positions start at
    /// `start_index` (cached decoding).
    ///
    /// # Errors
    /// The errors of [`Layer::validate`] and [`Layer::check_input`].
    pub fn call_with_start_index(&self, inputs: &Tensor, start_index: usize) -> Result<Tensor> {
        self.validate()?;
        let values = float_values(inputs, &self.context())?;
        Ok(Tensor::from(self.rotate(values, start_index, false)?))
    }

    /// The gradient with respect to the input of [`RotaryEmbedding::call_with_start_index`]
    /// for `output_gradient`: the inverse rotation (the layer has no weights, so this is its
    /// whole backward pass).
    ///
    /// # Errors
    /// Those of [`RotaryEmbedding::call_with_start_index`], and [`Error::IncompatibleShape`]
    /// when the gradient's shape is not the input's.
    pub fn input_gradient(
        &self,
        inputs: &Tensor,
        output_gradient: &ArrayD<f32>,
        start_index: usize,
    ) -> Result<ArrayD<f32>> {
        self.validate()?;
        float_values(inputs, &self.context())?;
        check_gradient(output_gradient, inputs.shape(), &self.context())?;
        self.rotate(output_gradient, start_index, true)
    }

    fn context(&self) -> String {
        format!("layer \"{}\" (RotaryEmbedding)", self.name)
    }

    /// `(sequence axis, feature axis)` for an input of `rank` (KerasHub's
    /// `_normalize_axes`).
    fn axes(&self, rank: usize) -> Result<(usize, usize)> {
        let normalize = |axis: isize, parameter: &str| {
            let resolved = if axis < 0 {
                rank.checked_sub(axis.unsigned_abs())
            } else {
                Some(axis.unsigned_abs()).filter(|&a| a < rank)
            };
            resolved.ok_or_else(|| {
                Error::invalid_argument(
                    self.context(),
                    parameter,
                    axis,
                    format!("an axis of the input, which has rank {rank}"),
                )
            })
        };
        let sequence = normalize(self.config.sequence_axis, "sequence_axis")?;
        let feature = normalize(self.config.feature_axis, "feature_axis")?;
        if sequence == feature {
            return Err(Error::invalid_argument(
                self.context(),
                "sequence_axis",
                self.config.sequence_axis,
                format!(
                    "an axis other than feature_axis = {} (both are axis {sequence} of a rank-{rank} input)",
                    self.config.feature_axis
                ),
            ));
        }
        Ok((sequence, feature))
    }

    fn odd_dimension(&self, features: usize, shape: Shape, feature: usize) -> Error {
        let mut expected = vec![None; shape.len()];
        if let Some(axis) = expected.get_mut(feature) {
            *axis = Some(features + 1);
        }
        Error::IncompatibleShape {
            context: format!(
                "{}: rotary dimension must be even, got {features} features on axis {feature} (the rotation pairs the two halves of the features)",
                self.context()
            ),
            expected,
            got: shape,
        }
    }

    /// KerasHub's `_get_inverse_freq`, in `f32`.
    fn inverse_frequencies(&self, features: usize) -> Vec<f32> {
        let denominator = self.config.denominator_dim.unwrap_or(features) as f32;
        let base = self.config.max_wavelength as f32;
        let scaling = self.config.scaling_factor as f32;
        let divisor = match self.config.rope_type {
            RopeType::Linear => scaling,
            RopeType::Dynamic => {
                let exponent = features as f32 / features.saturating_sub(2).max(1) as f32;
                scaling.powf(exponent)
            }
        };
        (0..features / 2)
            .map(|k| base.powf(-((2 * k) as f32 / denominator)) / divisor)
            .collect()
    }

    /// Rotates `values` by the angles of positions `start_index ..` (backwards with
    /// `inverse`: the transpose, which is the gradient).
    fn rotate(
        &self,
        values: &ArrayD<f32>,
        start_index: usize,
        inverse: bool,
    ) -> Result<ArrayD<f32>> {
        let context = self.context();
        let shape = values.shape();
        let (sequence, feature) = self.axes(shape.len())?;
        let features = shape.get(feature).copied().unwrap_or(0);
        if features % 2 != 0 {
            return Err(self.odd_dimension(
                features,
                shape.iter().map(|&d| Some(d)).collect(),
                feature,
            ));
        }
        let half = features / 2;
        let length = shape.get(sequence).copied().unwrap_or(0);
        let inverse_frequencies = self.inverse_frequencies(features);
        let mut angles = try_zeros(&[length, half, 2], || format!("{context}: angles"))?
            .into_dimensionality::<Ix3>()
            .map_err(|_| Error::ShapeOverflow {
                context: format!("{context}: angles"),
                shape: vec![length, half, 2],
            })?;
        for (i, mut row) in angles.outer_iter_mut().enumerate() {
            // `arange(length, float32) + float32(start_index)`.
            let position = i as f32 + start_index as f32;
            for (mut pair, frequency) in row.outer_iter_mut().zip(&inverse_frequencies) {
                let angle = position * frequency;
                let sin = if inverse { -angle.sin() } else { angle.sin() };
                pair[0] = angle.cos();
                pair[1] = sin;
            }
        }
        let mut output = try_zeros(shape, || format!("{context}: output"))?;
        // After removing the sequence axis, the feature axis moves down by one if it was after.
        let lane_axis = Axis(if feature > sequence {
            feature - 1
        } else {
            feature
        });
        for ((mut out, input), cos_sin) in output
            .axis_iter_mut(Axis(sequence))
            .zip(values.axis_iter(Axis(sequence)))
            .zip(angles.outer_iter())
        {
            Zip::from(out.lanes_mut(lane_axis))
                .and(input.lanes(lane_axis))
                .for_each(|out, x| rotate_lane(out, x, cos_sin, half));
        }
        Ok(output)
    }
}

/// One lane of features: `out = x · cos + [-x2, x1] · sin`, in KerasHub's order.
fn rotate_lane(
    mut out: ArrayViewMut1<'_, f32>,
    x: ArrayView1<'_, f32>,
    cos_sin: ArrayView2<'_, f32>,
    half: usize,
) {
    for (k, pair) in cos_sin.outer_iter().enumerate().take(half) {
        let (cos, sin) = (pair[0], pair[1]);
        let (x1, x2) = (x[k], x[k + half]);
        out[k] = x1 * cos + (-x2) * sin;
        out[k + half] = x2 * cos + x1 * sin;
    }
}

impl Layer for RotaryEmbedding {
    fn name(&self) -> &str {
        &self.name
    }

    fn class_name(&self) -> &'static str {
        "RotaryEmbedding"
    }

    /// Positive, finite `max_wavelength` and `scaling_factor`, a positive `denominator_dim`
    /// (KerasHub computes NaN or infinite angles from the others).
    fn validate(&self) -> Result<()> {
        let c = &self.config;
        for (parameter, value) in [
            ("max_wavelength", c.max_wavelength),
            ("scaling_factor", c.scaling_factor),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return Err(Error::invalid_argument(
                    self.context(),
                    parameter,
                    value,
                    "a positive, finite number",
                ));
            }
        }
        if c.denominator_dim == Some(0) {
            return Err(Error::invalid_argument(
                self.context(),
                "denominator_dim",
                0,
                "a positive dimension, or None",
            ));
        }
        Ok(())
    }

    /// `f32`, both axes within the input's rank and different, an even feature dimension.
    fn check_input(&self, inputs: &Tensor) -> Result<()> {
        let values = float_values(inputs, &self.context())?;
        let (_, feature) = self.axes(values.ndim())?;
        let features = values.shape().get(feature).copied().unwrap_or(0);
        if features % 2 != 0 {
            return Err(self.odd_dimension(features, inputs.keras_shape(), feature));
        }
        Ok(())
    }

    fn call(&self, inputs: &Tensor) -> Result<Tensor> {
        self.call_with_start_index(inputs, 0)
    }

    /// The input's shape, after checking the axes and (when known) an even feature axis.
    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        let (_, feature) = self.axes(input_shape.len())?;
        if let Some(Some(features)) = input_shape.get(feature)
            && features % 2 != 0
        {
            return Err(self.odd_dimension(*features, input_shape.to_vec(), feature));
        }
        Ok(input_shape.to_vec())
    }

    /// The inverse rotation of the output gradient.
    fn backward(&mut self, inputs: &Tensor, output_gradient: ArrayD<f32>) -> Result<Backward> {
        Ok(Backward {
            input_gradient: Some(self.input_gradient(inputs, &output_gradient, 0)?),
            weight_gradients: Vec::new(),
        })
    }

    weightless_layer!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn the_backward_pass_undoes_the_rotation() {
        let layer = RotaryEmbedding::new().sequence_axis(0);
        let x = array![[0.5f32, -1.0, 2.0, 0.25], [1.5, 2.0, -0.5, 1.0]].into_dyn();
        let rotated = layer.rotate(&x, 3, false).unwrap();
        let back = layer.rotate(&rotated, 3, true).unwrap();
        for (a, b) in back.iter().zip(x.iter()) {
            assert!((a - b).abs() < 1e-6, "{back} vs {x}");
        }
    }

    #[test]
    fn rope_type_names_round_trip() {
        for rope in [RopeType::Linear, RopeType::Dynamic] {
            assert_eq!(rope.name().parse::<RopeType>().unwrap(), rope);
        }
        assert!("yarn".parse::<RopeType>().is_err());
    }
}
