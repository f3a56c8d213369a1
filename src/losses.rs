//! Keras losses, by the names `compile` accepts.
//!
//! # Cross-entropy from logits
//!
//! After a sigmoid output, `binary_crossentropy` is computed from the sigmoid's logits
//! (`tf.nn.sigmoid_cross_entropy_with_logits`), and after a softmax output,
//! `categorical_crossentropy` and `sparse_categorical_crossentropy` from the softmax's
//! logits, as Keras does: this is exact where the probabilities would round to 0 or 1.
//!
//! **A deliberate difference from tf_keras:** tf_keras uses the cached logits of *any*
//! sigmoid or softmax output, whatever the cross-entropy (`_get_logits` in
//! `tf_keras/backend.py` only asks whether logits were cached). A sigmoid output compiled with
//! `categorical_crossentropy` then gets the *softmax* cross-entropy of the sigmoid's logits,
//! and a softmax output with `binary_crossentropy` the sigmoid cross-entropy of the softmax's
//! logits: losses of outputs the model does not produce. For these mismatched pairs ndkeras
//! computes the loss of the probabilities the model outputs (Keras' probability formula,
//! clipped to `[1e-7, 1 - 1e-7]`), as Keras 3 does on its JAX, PyTorch and NumPy backends
//! (Keras 3 on TensorFlow keeps tf_keras' behaviour). Example, with one sample: tf_keras
//! 2.21 reports 0.0196 where ndkeras reports 0.4615 (`tests/keras_parity.rs`).
//!
//! ```
//! use ndkeras::prelude::*;
//!
//! assert_eq!("mse".parse::<Loss>()?, Loss::MeanSquaredError);
//! assert_eq!("binary_crossentropy".parse::<Loss>()?, Loss::BinaryCrossentropy);
//! # Ok::<(), ndkeras::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use ndarray::{ArrayD, Axis, IxDyn};

use crate::activations::{Activation, sigmoid};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Keras' `backend.epsilon()`, the clipping bound of cross-entropies on probabilities.
const EPSILON: f32 = 1e-7;

/// A Keras loss, reduced as Keras' default `sum_over_batch_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Loss {
    /// `mean((y_pred - y_true)^2)` (`"mse"`, `"mean_squared_error"`).
    MeanSquaredError,
    /// `mean(|y_pred - y_true|)` (`"mae"`, `"mean_absolute_error"`).
    MeanAbsoluteError,
    /// Binary cross-entropy on probabilities (`"binary_crossentropy"`).
    BinaryCrossentropy,
    /// Cross-entropy on one-hot targets (`"categorical_crossentropy"`).
    CategoricalCrossentropy,
    /// Cross-entropy on integer class targets (`"sparse_categorical_crossentropy"`).
    SparseCategoricalCrossentropy,
}

impl Loss {
    /// Keras' function name (`"mean_squared_error"`).
    pub fn keras_name(self) -> &'static str {
        match self {
            Loss::MeanSquaredError => "mean_squared_error",
            Loss::MeanAbsoluteError => "mean_absolute_error",
            Loss::BinaryCrossentropy => "binary_crossentropy",
            Loss::CategoricalCrossentropy => "categorical_crossentropy",
            Loss::SparseCategoricalCrossentropy => "sparse_categorical_crossentropy",
        }
    }
}

/// The value of a loss on a batch and its gradient.
#[derive(Debug, Clone, PartialEq)]
pub struct LossGradient {
    /// The loss, reduced as Keras' `sum_over_batch_size` (masked positions excluded).
    pub value: f32,
    /// The gradient with respect to the predictions, or to the logits when
    /// `with_respect_to_logits`.
    pub gradient: ArrayD<f32>,
    /// Whether `gradient` is with respect to the logits of the last layer (a sigmoid before
    /// `binary_crossentropy`, a softmax before a categorical cross-entropy; see the
    /// [module docs](self) for the mismatched pairs).
    pub with_respect_to_logits: bool,
}

impl Loss {
    /// Checks the targets `y` against predictions of shape `prediction_shape` and returns
    /// them as `f32`, shaped as the predictions (class ids shaped as the positions for
    /// `SparseCategoricalCrossentropy`). As in Keras, targets one axis short of predictions
    /// whose last axis is 1 get that axis, and a trailing axis of 1 on class ids is dropped.
    ///
    /// # Errors
    /// [`Error::IncompatibleShape`] naming both shapes; [`Error::InvalidArgument`] for a
    /// class id that is not a whole number in `[0, classes)`, with its position.
    pub fn check_targets(self, y: Tensor, prediction_shape: &[usize]) -> Result<ArrayD<f32>> {
        let given = y.keras_shape();
        let mut targets = y.into_f32();
        let positions = &prediction_shape[..prediction_shape.len().saturating_sub(1)];
        let expected: &[usize] = if self == Loss::SparseCategoricalCrossentropy {
            positions
        } else {
            prediction_shape
        };
        if targets.ndim() + 1 == expected.len() && expected.last() == Some(&1) {
            let last = Axis(targets.ndim());
            targets = targets.insert_axis(last);
        } else if targets.ndim() == expected.len() + 1 && targets.shape().last() == Some(&1) {
            let last = Axis(targets.ndim() - 1);
            targets = targets.index_axis_move(last, 0);
        }
        if targets.shape() != expected {
            return Err(Error::IncompatibleShape {
                context: format!(
                    "loss {}: targets `y` do not fit the model output of shape {:?}",
                    self.keras_name(),
                    prediction_shape
                ),
                expected: expected.iter().map(|&d| Some(d)).collect(),
                got: given,
            });
        }
        if self == Loss::SparseCategoricalCrossentropy {
            let classes = prediction_shape.last().copied().unwrap_or(0);
            if let Some((flat, &bad)) = targets
                .iter()
                .enumerate()
                .find(|&(_, &c)| !(c.fract() == 0.0 && c >= 0.0 && (c as usize) < classes))
            {
                return Err(Error::invalid_argument(
                    "loss sparse_categorical_crossentropy",
                    "y",
                    format!("label {bad} at sample position {flat}"),
                    format!("class ids in [0, {classes})"),
                ));
            }
        }
        Ok(targets)
    }

    /// The loss of `prediction` against checked `targets` and its gradient, averaged over the
    /// positions where `mask` is true (all positions without a mask), as Keras does.
    ///
    /// # Errors
    /// [`Error::IncompatibleShape`] when the targets, mask or logits do not fit the
    /// predictions.
    ///
    /// `logits` are the values before the last layer's activation: with a sigmoid (binary) or
    /// softmax (categorical) output, the cross-entropy is computed from them, as Keras does.
    /// Logits of the other activation (a sigmoid before `categorical_crossentropy`, ...) are
    /// not used: the loss is that of the probabilities, a deliberate difference from tf_keras
    /// explained in the [module docs](self).
    pub fn compute(
        self,
        prediction: &ArrayD<f32>,
        targets: &ArrayD<f32>,
        mask: Option<&ArrayD<bool>>,
        logits: Option<(Activation, &ArrayD<f32>)>,
    ) -> Result<LossGradient> {
        let shape_error =
            |what: &str, expected: &[usize], got: &[usize]| Error::IncompatibleShape {
                context: format!("loss {}: {what}", self.keras_name()),
                expected: expected.iter().map(|&d| Some(d)).collect(),
                got: got.iter().map(|&d| Some(d)).collect(),
            };
        let positions_shape = &prediction.shape()[..prediction.ndim().saturating_sub(1)];
        let targets_shape = if self == Loss::SparseCategoricalCrossentropy {
            positions_shape
        } else {
            prediction.shape()
        };
        if targets.shape() != targets_shape {
            return Err(shape_error("targets", targets_shape, targets.shape()));
        }
        if let Some(m) = mask
            && m.shape() != positions_shape
        {
            return Err(shape_error("mask", positions_shape, m.shape()));
        }
        if let Some((_, z)) = logits
            && z.shape() != prediction.shape()
        {
            return Err(shape_error("logits", prediction.shape(), z.shape()));
        }
        let fused = match (self, logits) {
            (Loss::BinaryCrossentropy, Some((Activation::Sigmoid, z))) => Some(z),
            (
                Loss::CategoricalCrossentropy | Loss::SparseCategoricalCrossentropy,
                Some((Activation::Softmax, z)),
            ) => Some(z),
            _ => None,
        };
        let source = fused.unwrap_or(prediction);
        let classes = source.shape().last().copied().unwrap_or(1).max(1);
        let positions = source.len() / classes;
        let weights: Vec<f32> = match mask {
            Some(m) if m.len() == positions => {
                m.iter().map(|&k| if k { 1.0 } else { 0.0 }).collect()
            }
            _ => vec![1.0; positions],
        };
        let total: f32 = weights.iter().sum();
        let src = source.as_standard_layout();
        let src = src.as_slice().unwrap_or_default();
        let tgt = targets.as_standard_layout();
        let tgt = tgt.as_slice().unwrap_or_default();
        let mut gradient = vec![0.0f32; source.len()];
        let mut value = 0.0f32;
        for p in 0..positions {
            let w = weights[p];
            if w == 0.0 {
                continue;
            }
            let row = &src[p * classes..(p + 1) * classes];
            let grad = &mut gradient[p * classes..(p + 1) * classes];
            let scale = w / total;
            let loss = match self {
                Loss::SparseCategoricalCrossentropy => {
                    let label = tgt.get(p).copied().unwrap_or(0.0) as usize;
                    sparse_cross_entropy(row, label, fused.is_some(), grad)
                }
                _ => {
                    let y = &tgt[p * classes..(p + 1) * classes];
                    self.position_loss(row, y, fused.is_some(), grad)
                }
            };
            value += loss * w;
            grad.iter_mut().for_each(|g| *g *= scale);
        }
        Ok(LossGradient {
            value: value / total,
            gradient: ArrayD::from_shape_vec(IxDyn(source.shape()), gradient)
                .unwrap_or_else(|_| ArrayD::zeros(source.raw_dim())),
            with_respect_to_logits: fused.is_some(),
        })
    }

    /// The loss of one position (mean over its last axis for element-wise losses) and its
    /// gradient written into `grad`.
    fn position_loss(self, row: &[f32], y: &[f32], from_logits: bool, grad: &mut [f32]) -> f32 {
        let n = row.len() as f32;
        match self {
            Loss::MeanSquaredError => {
                let mut sum = 0.0;
                for ((g, &p), &t) in grad.iter_mut().zip(row).zip(y) {
                    sum += (p - t) * (p - t);
                    *g = 2.0 * (p - t) / n;
                }
                sum / n
            }
            Loss::MeanAbsoluteError => {
                let mut sum = 0.0;
                for ((g, &p), &t) in grad.iter_mut().zip(row).zip(y) {
                    sum += (p - t).abs();
                    let sign = if p > t {
                        1.0
                    } else if p < t {
                        -1.0
                    } else {
                        0.0
                    };
                    *g = sign / n;
                }
                sum / n
            }
            Loss::BinaryCrossentropy => {
                let mut sum = 0.0;
                for ((g, &p), &t) in grad.iter_mut().zip(row).zip(y) {
                    if from_logits {
                        // tf.nn.sigmoid_cross_entropy_with_logits
                        sum += p.max(0.0) - p * t + (-p.abs()).exp().ln_1p();
                        *g = (sigmoid(p) - t) / n;
                    } else {
                        let q = p.clamp(EPSILON, 1.0 - EPSILON);
                        sum += -(t * (q + EPSILON).ln() + (1.0 - t) * (1.0 - q + EPSILON).ln());
                        let inside = p > EPSILON && p < 1.0 - EPSILON;
                        *g = if inside {
                            -(t / (q + EPSILON) - (1.0 - t) / (1.0 - q + EPSILON)) / n
                        } else {
                            0.0
                        };
                    }
                }
                sum / n
            }
            Loss::CategoricalCrossentropy => {
                if from_logits {
                    let (probabilities, log_sum) = softmax(row);
                    let y_sum: f32 = y.iter().sum();
                    let mut loss = 0.0;
                    for ((g, (&z, &t)), &s) in
                        grad.iter_mut().zip(row.iter().zip(y)).zip(&probabilities)
                    {
                        loss += t * (log_sum - z);
                        *g = s * y_sum - t;
                    }
                    loss
                } else {
                    let total: f32 = row.iter().sum();
                    let mut loss = 0.0;
                    let mut unclipped_y = 0.0;
                    for (&p, &t) in row.iter().zip(y) {
                        let q = (p / total).clamp(EPSILON, 1.0 - EPSILON);
                        loss -= t * q.ln();
                        if p / total > EPSILON && p / total < 1.0 - EPSILON {
                            unclipped_y += t;
                        }
                    }
                    for ((g, &p), &t) in grad.iter_mut().zip(row).zip(y) {
                        let q = p / total;
                        let own = if q > EPSILON && q < 1.0 - EPSILON {
                            -t / q
                        } else {
                            0.0
                        };
                        *g = (own + unclipped_y) / total;
                    }
                    loss
                }
            }
            Loss::SparseCategoricalCrossentropy => 0.0,
        }
    }
}

/// Softmax of `z` and `log(sum(exp(z)))`, stable.
fn softmax(z: &[f32]) -> (Vec<f32>, f32) {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = z.iter().map(|&v| (v - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    (exps.iter().map(|e| e / sum).collect(), max + sum.ln())
}

/// Sparse categorical cross-entropy of one position with class `label`.
fn sparse_cross_entropy(row: &[f32], label: usize, from_logits: bool, grad: &mut [f32]) -> f32 {
    if from_logits {
        let (probabilities, log_sum) = softmax(row);
        for (j, (g, s)) in grad.iter_mut().zip(probabilities).enumerate() {
            *g = s - if j == label { 1.0 } else { 0.0 };
        }
        log_sum - row.get(label).copied().unwrap_or(0.0)
    } else {
        // Keras: log(clip(p)) used as logits of a softmax cross-entropy.
        let clipped: Vec<f32> = row
            .iter()
            .map(|p| p.clamp(EPSILON, 1.0 - EPSILON))
            .collect();
        let logs: Vec<f32> = clipped.iter().map(|q| q.ln()).collect();
        let (probabilities, log_sum) = softmax(&logs);
        for (j, (g, s)) in grad.iter_mut().zip(probabilities).enumerate() {
            let d_logit = s - if j == label { 1.0 } else { 0.0 };
            let inside = row[j] > EPSILON && row[j] < 1.0 - EPSILON;
            *g = if inside { d_logit / clipped[j] } else { 0.0 };
        }
        log_sum - logs.get(label).copied().unwrap_or(0.0)
    }
}

impl FromStr for Loss {
    type Err = Error;

    /// Keras' names and aliases: function names (`"mean_squared_error"`), short names
    /// (`"mse"`, `"mae"`) and class names (`"MeanSquaredError"`).
    ///
    /// # Errors
    /// [`Error::UnknownName`] listing the accepted names.
    fn from_str(name: &str) -> Result<Self> {
        let key: String = name
            .trim()
            .chars()
            .filter(|c| *c != '_')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        match key.as_str() {
            "mse" | "meansquarederror" => Ok(Loss::MeanSquaredError),
            "mae" | "meanabsoluteerror" => Ok(Loss::MeanAbsoluteError),
            "binarycrossentropy" => Ok(Loss::BinaryCrossentropy),
            "categoricalcrossentropy" => Ok(Loss::CategoricalCrossentropy),
            "sparsecategoricalcrossentropy" => Ok(Loss::SparseCategoricalCrossentropy),
            _ => Err(Error::UnknownName {
                kind: "loss",
                name: name.to_string(),
                valid: vec![
                    "mse",
                    "mean_squared_error",
                    "mae",
                    "mean_absolute_error",
                    "binary_crossentropy",
                    "categorical_crossentropy",
                    "sparse_categorical_crossentropy",
                ],
            }),
        }
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keras_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// A loss, predictions (or logits), targets and the activation the logits feed.
    type Case = (Loss, ArrayD<f32>, ArrayD<f32>, Option<Activation>);

    /// The analytic gradient of every loss (on probabilities and from logits, with a mask)
    /// against a central difference of the loss value.
    #[test]
    fn gradients_match_finite_differences() {
        let mask = array![[true, false], [true, true]].into_dyn();
        let cases: Vec<Case> = vec![
            (
                Loss::MeanSquaredError,
                array![[[0.2f32, -0.4], [0.1, 0.3]], [[0.5, 0.5], [-0.2, 0.0]]].into_dyn(),
                array![[[0.0f32, 0.1], [0.4, -0.3]], [[0.2, 0.9], [0.3, 0.1]]].into_dyn(),
                None,
            ),
            (
                Loss::MeanAbsoluteError,
                array![[[0.2f32, -0.4], [0.1, 0.3]], [[0.5, 0.5], [-0.2, 0.0]]].into_dyn(),
                array![[[0.0f32, 0.1], [0.4, -0.3]], [[0.2, 0.9], [0.3, 0.1]]].into_dyn(),
                None,
            ),
            (
                Loss::BinaryCrossentropy,
                array![[[0.2f32, 0.6], [0.1, 0.3]], [[0.5, 0.7], [0.8, 0.4]]].into_dyn(),
                array![[[0.0f32, 1.0], [1.0, 0.0]], [[1.0, 1.0], [0.0, 0.0]]].into_dyn(),
                None,
            ),
            (
                Loss::BinaryCrossentropy,
                array![[[0.2f32, -0.6], [1.1, 0.3]], [[-0.5, 0.7], [0.8, -2.4]]].into_dyn(),
                array![[[0.0f32, 1.0], [1.0, 0.0]], [[1.0, 1.0], [0.0, 0.0]]].into_dyn(),
                Some(Activation::Sigmoid),
            ),
            (
                Loss::CategoricalCrossentropy,
                array![[[0.2f32, 0.8], [0.6, 0.4]], [[0.3, 0.7], [0.9, 0.1]]].into_dyn(),
                array![[[0.0f32, 1.0], [1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]].into_dyn(),
                None,
            ),
            (
                Loss::CategoricalCrossentropy,
                array![[[0.2f32, -0.8], [1.6, 0.4]], [[0.3, 0.7], [-0.9, 0.1]]].into_dyn(),
                array![[[0.0f32, 1.0], [1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]].into_dyn(),
                Some(Activation::Softmax),
            ),
            (
                Loss::SparseCategoricalCrossentropy,
                array![[[0.2f32, 0.8], [0.6, 0.4]], [[0.3, 0.7], [0.9, 0.1]]].into_dyn(),
                array![[1.0f32, 0.0], [0.0, 1.0]].into_dyn(),
                None,
            ),
            (
                Loss::SparseCategoricalCrossentropy,
                array![[[0.2f32, -0.8], [1.6, 0.4]], [[0.3, 0.7], [-0.9, 0.1]]].into_dyn(),
                array![[1.0f32, 0.0], [0.0, 1.0]].into_dyn(),
                Some(Activation::Softmax),
            ),
        ];
        for (loss, input, targets, activation) in cases {
            for mask in [None, Some(&mask)] {
                let value = |values: &ArrayD<f32>| -> f64 {
                    let logits = activation.map(|a| (a, values));
                    f64::from(loss.compute(values, &targets, mask, logits).unwrap().value)
                };
                let logits = activation.map(|a| (a, &input));
                let analytic = loss.compute(&input, &targets, mask, logits).unwrap();
                assert_eq!(analytic.with_respect_to_logits, activation.is_some());
                let h = 1e-3f32;
                for i in 0..input.len() {
                    let (mut plus, mut minus) = (input.clone(), input.clone());
                    plus.as_slice_mut().unwrap()[i] += h;
                    minus.as_slice_mut().unwrap()[i] -= h;
                    let numeric = (value(&plus) - value(&minus)) / (2.0 * f64::from(h));
                    let got = f64::from(analytic.gradient.as_slice().unwrap()[i]);
                    assert!(
                        (numeric - got).abs() < 2e-3,
                        "{loss} {activation:?} mask={}: {numeric} vs {got} at {i}",
                        mask.is_some()
                    );
                }
            }
        }
    }

    #[test]
    fn masked_positions_are_left_out_of_the_mean() {
        let prediction = array![[[1.0f32], [5.0]]].into_dyn();
        let targets = array![[[0.0f32], [0.0]]].into_dyn();
        let mask = array![[true, false]].into_dyn();
        let masked = Loss::MeanSquaredError
            .compute(&prediction, &targets, Some(&mask), None)
            .unwrap();
        assert!(
            Loss::MeanSquaredError
                .compute(&prediction, &array![[1.0f32]].into_dyn(), None, None)
                .is_err()
        );
        assert_eq!(masked.value, 1.0);
        assert_eq!(masked.gradient, array![[[2.0f32], [0.0]]].into_dyn());
        assert_eq!(
            Loss::MeanSquaredError
                .compute(&prediction, &targets, None, None)
                .unwrap()
                .value,
            13.0
        );
    }

    #[test]
    fn aliases_parse_to_the_same_loss() {
        for name in ["mse", "mean_squared_error", "MeanSquaredError"] {
            assert_eq!(
                name.parse::<Loss>().ok(),
                Some(Loss::MeanSquaredError),
                "{name}"
            );
        }
        assert_eq!("mae".parse::<Loss>().ok(), Some(Loss::MeanAbsoluteError));
        let err = "hinge".parse::<Loss>().unwrap_err();
        assert!(err.to_string().contains("binary_crossentropy"), "{err}");
    }
}
