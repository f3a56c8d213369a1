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

use ndarray::{ArrayD, Axis};

use crate::activations::{Activation, sigmoid};
use crate::error::{Error, Result};
use crate::storage::try_zeroed;
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
    /// Binary cross-entropy on logits (Keras' `BinaryCrossentropy(from_logits=True)`): the
    /// output is `z`, the loss that of `sigmoid(z)`, computed stably.
    BinaryCrossentropyFromLogits,
    /// Categorical cross-entropy on logits (Keras' `CategoricalCrossentropy(from_logits=True)`):
    /// the loss of `softmax(z)` over the last axis, computed stably.
    CategoricalCrossentropyFromLogits,
    /// Sparse categorical cross-entropy on logits (Keras'
    /// `SparseCategoricalCrossentropy(from_logits=True)`), the loss of language models whose
    /// output is a tied embedding's reverse call.
    SparseCategoricalCrossentropyFromLogits,
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
            other => other.on_probabilities().keras_name(),
        }
    }

    /// Whether the loss takes logits (Keras' `from_logits=True`).
    pub fn from_logits(self) -> bool {
        self != self.on_probabilities()
    }

    /// The same loss on probabilities (itself for a loss without `from_logits`).
    pub fn on_probabilities(self) -> Loss {
        match self {
            Loss::BinaryCrossentropyFromLogits => Loss::BinaryCrossentropy,
            Loss::CategoricalCrossentropyFromLogits => Loss::CategoricalCrossentropy,
            Loss::SparseCategoricalCrossentropyFromLogits => Loss::SparseCategoricalCrossentropy,
            other => other,
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
        if y.dtype() == crate::tensor::DType::String {
            return Err(Error::IncompatibleDtype {
                context: format!("loss {}: targets `y`", self.keras_name()),
                expected: "numbers (float or integer targets; map text labels to numbers first)"
                    .into(),
                got: y.dtype().to_string(),
            });
        }
        let given = y.keras_shape();
        let mut targets = y.into_f32();
        let positions = &prediction_shape[..prediction_shape.len().saturating_sub(1)];
        let sparse = self.on_probabilities() == Loss::SparseCategoricalCrossentropy;
        let expected: &[usize] = if sparse { positions } else { prediction_shape };
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
        if sparse {
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
        self.compute_into(prediction, targets, mask, logits, Vec::new())
    }

    /// [`Loss::compute`] writing the gradient into `buffer` (its values are overwritten; a
    /// buffer kept from an earlier step saves allocating, and faulting in, fresh memory).
    pub(crate) fn compute_into(
        self,
        prediction: &ArrayD<f32>,
        targets: &ArrayD<f32>,
        mask: Option<&ArrayD<bool>>,
        logits: Option<(Activation, &ArrayD<f32>)>,
        buffer: Vec<f32>,
    ) -> Result<LossGradient> {
        let shape_error =
            |what: &str, expected: &[usize], got: &[usize]| Error::IncompatibleShape {
                context: format!("loss {}: {what}", self.keras_name()),
                expected: expected.iter().map(|&d| Some(d)).collect(),
                got: got.iter().map(|&d| Some(d)).collect(),
            };
        let positions_shape = &prediction.shape()[..prediction.ndim().saturating_sub(1)];
        // The loss of the probabilities, from the output's own logits with `from_logits`.
        let own_logits = self.from_logits();
        let base = self.on_probabilities();
        let targets_shape = if base == Loss::SparseCategoricalCrossentropy {
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
        let fused = match (base, logits.filter(|_| !own_logits)) {
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
        let mask = mask.map(|m| m.as_standard_layout());
        let kept = mask.as_ref().and_then(|m| m.as_slice());
        let total = kept.map_or(positions, |k| k.iter().filter(|&&keep| keep).count()) as f32;
        let src = source.as_standard_layout();
        let src = src.as_slice().unwrap_or_default();
        let tgt = targets.as_standard_layout();
        let tgt = tgt.as_slice().unwrap_or_default();
        let context = || format!("loss {}: gradient", self.keras_name());
        let from_logits = own_logits || fused.is_some();
        let (sum, gradient) = match base {
            Loss::CategoricalCrossentropy | Loss::SparseCategoricalCrossentropy => {
                base.per_position(src, tgt, classes, kept, total, from_logits, buffer, context)?
            }
            _ => base.elementwise(src, tgt, classes, kept, total, from_logits, buffer, context)?,
        };
        let gradient = ArrayD::from_shape_vec(source.raw_dim(), gradient).map_err(|_| {
            Error::ShapeOverflow {
                context: context(),
                shape: source.shape().to_vec(),
            }
        })?;
        Ok(LossGradient {
            value: (sum / f64::from(total)) as f32,
            gradient,
            with_respect_to_logits: fused.is_some(),
        })
    }

    /// The losses that are a mean over the last axis of one term per element (mse, mae,
    /// binary cross-entropy): the sum of the kept positions' losses and the gradient, in one
    /// pass over the values that writes each gradient element once.
    ///
    /// Unmasked, the values are taken in blocks of [`BLOCK`] whatever the positions (every
    /// element weighs `1 / (classes * total)`); masked, position by position. Each block is
    /// summed in 8 lanes (vectorised), and the blocks' sums in `f64`: more accurate than one
    /// running `f32` sum, whose error grows with the number of values.
    #[allow(clippy::too_many_arguments)]
    fn elementwise(
        self,
        src: &[f32],
        tgt: &[f32],
        classes: usize,
        kept: Option<&[bool]>,
        total: f32,
        from_logits: bool,
        buffer: Vec<f32>,
        context: impl FnOnce() -> String,
    ) -> Result<(f64, Vec<f32>)> {
        let mut gradient = reuse(buffer, src.len(), context)?;
        // The gradient of each element's term is scaled by its weight in the mean.
        let scale = 1.0 / (classes as f32 * total);
        let mut sum = 0.0f64;
        match kept {
            None => {
                // Each block's sum, then their sum in order: the same on any number of
                // threads.
                let mut sums = vec![0.0f32; src.len().div_ceil(BLOCK)];
                let blocks = |((g, sums), (p, t)): BlockTask<'_>| {
                    let parts = g
                        .chunks_mut(BLOCK)
                        .zip(p.chunks(BLOCK).zip(t.chunks(BLOCK)));
                    for (sum, (g, (p, t))) in sums.iter_mut().zip(parts) {
                        *sum = self.block(p, t, scale, from_logits, g);
                    }
                };
                let task = BLOCK * 64;
                #[cfg(feature = "rayon")]
                let done = crate::kernels::in_parallel(src.len()) && {
                    use rayon::prelude::*;
                    gradient
                        .par_chunks_mut(task)
                        .zip(sums.par_chunks_mut(64))
                        .zip(src.par_chunks(task).zip(tgt.par_chunks(task)))
                        .for_each(blocks);
                    true
                };
                #[cfg(not(feature = "rayon"))]
                let done = false;
                if !done {
                    gradient
                        .chunks_mut(task)
                        .zip(sums.chunks_mut(64))
                        .zip(src.chunks(task).zip(tgt.chunks(task)))
                        .for_each(blocks);
                }
                sum = sums.iter().map(|&s| f64::from(s)).sum();
            }
            Some(kept) => {
                let positions = gradient
                    .chunks_mut(classes)
                    .zip(kept)
                    .zip(src.chunks(classes).zip(tgt.chunks(classes)));
                for ((g, &keep), (p, t)) in positions {
                    if !keep {
                        g.fill(0.0);
                        continue;
                    }
                    let parts = g
                        .chunks_mut(BLOCK)
                        .zip(p.chunks(BLOCK).zip(t.chunks(BLOCK)));
                    for (g, (p, t)) in parts {
                        sum += f64::from(self.block(p, t, scale, from_logits, g));
                    }
                }
            }
        }
        Ok((sum / classes as f64, gradient))
    }

    /// One block of [`Loss::elementwise`]: writes the gradient of every element into
    /// `gradient` (as long as the block) and returns the sum of the elements' terms.
    #[inline]
    fn block(
        self,
        p: &[f32],
        t: &[f32],
        scale: f32,
        from_logits: bool,
        gradient: &mut [f32],
    ) -> f32 {
        let pairs = gradient.iter_mut().zip(p.iter().zip(t));
        match (self, from_logits) {
            (Loss::MeanSquaredError, _) => {
                let twice = 2.0 * scale;
                pairs.for_each(|(g, (&p, &t))| *g = twice * (p - t));
                lane_sum(p, t, |p, t| (p - t) * (p - t))
            }
            (Loss::MeanAbsoluteError, _) => {
                pairs.for_each(|(g, (&p, &t))| {
                    *g = if p > t {
                        scale
                    } else if p < t {
                        -scale
                    } else {
                        0.0
                    }
                });
                lane_sum(p, t, |p, t| (p - t).abs())
            }
            (Loss::BinaryCrossentropy, true) => {
                // tf.nn.sigmoid_cross_entropy_with_logits
                pairs.for_each(|(g, (&z, &t))| *g = (sigmoid(z) - t) * scale);
                lane_sum(p, t, |z, t| z.max(0.0) - z * t + (-z.abs()).exp().ln_1p())
            }
            (Loss::BinaryCrossentropy, false) => {
                pairs.for_each(|(g, (&p, &t))| {
                    let q = p.clamp(EPSILON, 1.0 - EPSILON);
                    *g = if (EPSILON..=1.0 - EPSILON).contains(&p) {
                        -(t / (q + EPSILON) - (1.0 - t) / (1.0 - q + EPSILON)) * scale
                    } else {
                        0.0
                    }
                });
                lane_sum(p, t, |p, t| {
                    let q = p.clamp(EPSILON, 1.0 - EPSILON);
                    -(t * (q + EPSILON).ln() + (1.0 - t) * (1.0 - q + EPSILON).ln())
                })
            }
            // Taken position by position (`per_position`); the `from_logits` variants are
            // turned into these before.
            _ => 0.0,
        }
    }

    /// The cross-entropies over classes, position by position: the sum of the kept
    /// positions' losses and the gradient (zero at masked positions).
    #[allow(clippy::too_many_arguments)]
    fn per_position(
        self,
        src: &[f32],
        tgt: &[f32],
        classes: usize,
        kept: Option<&[bool]>,
        total: f32,
        from_logits: bool,
        buffer: Vec<f32>,
        context: impl FnOnce() -> String,
    ) -> Result<(f64, Vec<f32>)> {
        let mut gradient = if buffer.capacity() >= src.len() {
            let mut gradient = buffer;
            gradient.clear();
            gradient.resize(src.len(), 0.0);
            gradient
        } else {
            try_zeroed(src.len(), context)?
        };
        let scale = 1.0 / total;
        let mut sum = 0.0f64;
        for (p, (row, grad)) in src
            .chunks(classes)
            .zip(gradient.chunks_mut(classes))
            .enumerate()
        {
            if kept.is_some_and(|k| !k.get(p).copied().unwrap_or(false)) {
                continue;
            }
            let loss = if self == Loss::SparseCategoricalCrossentropy {
                let label = tgt.get(p).copied().unwrap_or(0.0) as usize;
                sparse_cross_entropy(row, label, from_logits, grad)
            } else {
                let y = tgt.get(p * classes..(p + 1) * classes).unwrap_or_default();
                categorical_cross_entropy(row, y, from_logits, grad)
            };
            sum += f64::from(loss);
            grad.iter_mut().for_each(|g| *g *= scale);
        }
        Ok((sum, gradient))
    }
}

/// One task of [`Loss::elementwise`]: gradient values and block sums to write, predictions
/// and targets to read.
type BlockTask<'a> = ((&'a mut [f32], &'a mut [f32]), (&'a [f32], &'a [f32]));

/// Values per block of [`Loss::elementwise`]: 4 KB of predictions, which stay in the L1
/// cache between the gradient's pass and the sum's.
const BLOCK: usize = 1024;

/// `sum(term(p[i], t[i]))` in 8 lanes, which the compiler vectorises, added pairwise at the
/// end.
#[inline]
fn lane_sum(p: &[f32], t: &[f32], term: impl Fn(f32, f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (p8, t8) = (p.chunks_exact(8), t.chunks_exact(8));
    let tail: f32 = p8
        .remainder()
        .iter()
        .zip(t8.remainder())
        .map(|(&p, &t)| term(p, t))
        .sum();
    for (p8, t8) in p8.zip(t8) {
        for ((lane, &p), &t) in lanes.iter_mut().zip(p8).zip(t8) {
            *lane += term(p, t);
        }
    }
    let [a, b, c, d, e, f, g, h] = lanes;
    ((a + b) + (c + d)) + ((e + f) + (g + h)) + tail
}

/// `len` floats in `buffer` when it has room (its values are to be overwritten), else fresh
/// zeroed ones; [`Error::Allocation`] when they do not fit.
fn reuse(buffer: Vec<f32>, len: usize, context: impl FnOnce() -> String) -> Result<Vec<f32>> {
    if buffer.capacity() < len {
        return try_zeroed(len, context);
    }
    let mut values = buffer;
    values.truncate(len);
    values.resize(len, 0.0);
    Ok(values)
}

/// Categorical cross-entropy of one position (one-hot or soft targets `y`), its gradient
/// written into `grad`.
fn categorical_cross_entropy(row: &[f32], y: &[f32], from_logits: bool, grad: &mut [f32]) -> f32 {
    if from_logits {
        let (probabilities, log_sum) = softmax(row);
        let y_sum: f32 = y.iter().sum();
        let mut loss = 0.0;
        for ((g, (&z, &t)), &s) in grad.iter_mut().zip(row.iter().zip(y)).zip(&probabilities) {
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
            if (EPSILON..=1.0 - EPSILON).contains(&(p / total)) {
                unclipped_y += t;
            }
        }
        for ((g, &p), &t) in grad.iter_mut().zip(row).zip(y) {
            let q = p / total;
            let own = if (EPSILON..=1.0 - EPSILON).contains(&q) {
                -t / q
            } else {
                0.0
            };
            *g = (own + unclipped_y) / total;
        }
        loss
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
            let inside = (EPSILON..=1.0 - EPSILON).contains(&row[j]);
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
    use ndarray::{Dimension, IxDyn, array};

    /// A loss, predictions (or logits), targets and the activation the logits feed.
    type Case = (Loss, ArrayD<f32>, ArrayD<f32>, Option<Activation>);

    #[test]
    fn text_targets_are_refused_before_they_become_nan() {
        let err = Loss::BinaryCrossentropy
            .check_targets(Tensor::from(vec!["yes", "no"]), &[2, 1])
            .unwrap_err();
        assert!(matches!(err, Error::IncompatibleDtype { .. }), "{err}");
        assert!(err.to_string().contains("binary_crossentropy"), "{err}");
        assert!(err.to_string().contains("string"), "{err}");
    }

    /// A `from_logits` loss on an output `z` gives the value and gradient that the loss on
    /// probabilities gives when fused with the logits `z` of a softmax or sigmoid output
    /// (the Keras-checked path), with the gradient now with respect to the output itself.
    #[test]
    fn from_logits_losses_are_the_fused_cross_entropies_of_their_output() {
        let z = array![[[2.0f32, -1.0, 0.5], [0.0, 30.0, -30.0]]].into_dyn();
        let cases = [
            (
                Loss::SparseCategoricalCrossentropyFromLogits,
                array![[2.0f32, 1.0]].into_dyn(),
                Activation::Softmax,
            ),
            (
                Loss::CategoricalCrossentropyFromLogits,
                array![[[0.0f32, 0.0, 1.0], [0.2, 0.8, 0.0]]].into_dyn(),
                Activation::Softmax,
            ),
            (
                Loss::BinaryCrossentropyFromLogits,
                array![[[0.0f32, 1.0, 1.0], [1.0, 0.0, 1.0]]].into_dyn(),
                Activation::Sigmoid,
            ),
        ];
        let mask = array![[true, false]].into_dyn();
        for (loss, targets, activation) in cases {
            assert!(loss.from_logits());
            assert_eq!(loss.keras_name(), loss.on_probabilities().keras_name());
            let mut probabilities = z.clone();
            activation.apply(&mut probabilities);
            for mask in [None, Some(&mask)] {
                let ours = loss.compute(&z, &targets, mask, None).unwrap();
                let fused = loss
                    .on_probabilities()
                    .compute(&probabilities, &targets, mask, Some((activation, &z)))
                    .unwrap();
                assert_eq!(ours.value, fused.value, "{loss:?}");
                assert_eq!(ours.gradient, fused.gradient, "{loss:?}");
                assert!(fused.with_respect_to_logits && !ours.with_respect_to_logits);
            }
        }
        // Two equal logits: ln 2.
        let even = Loss::SparseCategoricalCrossentropyFromLogits
            .compute(
                &array![[0.0f32, 0.0]].into_dyn(),
                &array![1.0f32].into_dyn(),
                None,
                None,
            )
            .unwrap();
        assert!((even.value - std::f32::consts::LN_2).abs() < 1e-7);
    }

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

    /// The value against an `f64` reference, unmasked (blocks across positions) and masked
    /// (position by position, positions longer than a block): one running `f32` sum over a
    /// million terms would be off by percents.
    #[test]
    fn sums_are_accurate_over_many_values() {
        let reference = |p: &ArrayD<f32>, t: &ArrayD<f32>, keep: &dyn Fn(usize) -> bool| {
            let classes = p.shape()[p.ndim() - 1];
            let (mut sum, mut kept) = (0.0f64, 0usize);
            for (k, (p, t)) in p
                .as_slice()
                .unwrap()
                .chunks(classes)
                .zip(t.as_slice().unwrap().chunks(classes))
                .enumerate()
            {
                if keep(k) {
                    kept += 1;
                    let row: f64 = p
                        .iter()
                        .zip(t)
                        .map(|(&p, &t)| (f64::from(p) - f64::from(t)).powi(2))
                        .sum();
                    sum += row / classes as f64;
                }
            }
            sum / kept as f64
        };
        let values = |shape: &[usize]| {
            ArrayD::from_shape_fn(IxDyn(shape), |ix| {
                (ix.slice().iter().sum::<usize>() % 97) as f32 * 0.013
            })
        };
        let p = values(&[1 << 20, 1]);
        let t = ArrayD::zeros(p.raw_dim());
        let got = Loss::MeanSquaredError.compute(&p, &t, None, None).unwrap();
        let expected = reference(&p, &t, &|_| true);
        assert!(
            (f64::from(got.value) - expected).abs() <= 1e-6 * expected,
            "{} vs {expected}",
            got.value
        );
        let p = values(&[6, 1500]);
        let t = ArrayD::from_elem(p.raw_dim(), 0.25f32);
        let mask = ArrayD::from_shape_fn(IxDyn(&[6]), |ix| ix[0] % 3 != 1);
        let got = Loss::MeanSquaredError
            .compute(&p, &t, Some(&mask), None)
            .unwrap();
        let expected = reference(&p, &t, &|k| k % 3 != 1);
        assert!(
            (f64::from(got.value) - expected).abs() <= 1e-6 * expected,
            "{} vs {expected}",
            got.value
        );
        // Masked positions: a zero gradient; kept ones: 2 (p - t) / (classes * kept).
        let gradient = got.gradient.as_slice().unwrap();
        assert!(gradient[1500..3000].iter().all(|&g| g == 0.0));
        let expected = 2.0 * (p[[0, 7]] - 0.25) / (1500.0 * 4.0);
        assert!((gradient[7] - expected).abs() <= 1e-6 * expected.abs());
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
