//! Keras' metrics for `compile(metrics=[...])`: accuracies, top-k accuracies, mean errors.
//!
//! A metric is computed on each batch's predictions (before the batch's update, as Keras'
//! `train_step` does) and averaged over the epoch's samples, weighted by batch size (Keras'
//! `MeanMetricWrapper`). `"accuracy"` is resolved as Keras' `compile` resolves it, from the
//! shapes alone: binary accuracy for a one-unit output, sparse categorical accuracy for
//! integer targets (one rank less than the output, or a last axis of 1), categorical accuracy
//! otherwise (so a one-unit regression's "accuracy" is binary accuracy, as in Keras).
//!
//! ```
//! use ndkeras::metrics::Metric;
//!
//! let accuracy: Metric = "accuracy".parse()?;
//! assert_eq!(accuracy.name(), "accuracy");
//! let top2 = Metric::sparse_top_k_categorical_accuracy(2).with_name("top2");
//! assert_eq!(top2.name(), "top2");
//! # Ok::<(), ndkeras::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use ndarray::{ArrayD, Axis};

use crate::error::{Error, Result};

/// What a metric computes.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum MetricKind {
    /// Keras' `"accuracy"`: resolved from the loss and the output (see the module docs).
    Accuracy,
    /// `mean(y_true == (y_pred > threshold))` (Keras' default threshold 0.5).
    BinaryAccuracy {
        /// Predictions above it count as 1.
        threshold: f32,
    },
    /// `argmax(y_true) == argmax(y_pred)` (ties: the first index, as `tf.argmax`).
    CategoricalAccuracy,
    /// `y_true == argmax(y_pred)`.
    SparseCategoricalAccuracy,
    /// Whether the true class (one-hot) is among the `k` highest predictions (ties at the
    /// boundary count as in, as `tf.math.in_top_k`).
    TopKCategoricalAccuracy {
        /// How many of the highest predictions count.
        k: usize,
    },
    /// [`MetricKind::TopKCategoricalAccuracy`] with integer targets.
    SparseTopKCategoricalAccuracy {
        /// How many of the highest predictions count.
        k: usize,
    },
    /// `mean(|y_true - y_pred|)`.
    MeanAbsoluteError,
    /// `mean((y_true - y_pred)^2)`.
    MeanSquaredError,
}

/// A named metric (Keras reports it under its name in `History` and `evaluate`).
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    name: String,
    kind: MetricKind,
}

impl Metric {
    /// A metric of `kind` under Keras' name for it.
    pub fn new(kind: MetricKind) -> Metric {
        let name = match kind {
            MetricKind::Accuracy => "accuracy",
            MetricKind::BinaryAccuracy { .. } => "binary_accuracy",
            MetricKind::CategoricalAccuracy => "categorical_accuracy",
            MetricKind::SparseCategoricalAccuracy => "sparse_categorical_accuracy",
            MetricKind::TopKCategoricalAccuracy { .. } => "top_k_categorical_accuracy",
            MetricKind::SparseTopKCategoricalAccuracy { .. } => "sparse_top_k_categorical_accuracy",
            MetricKind::MeanAbsoluteError => "mean_absolute_error",
            MetricKind::MeanSquaredError => "mean_squared_error",
        };
        Metric {
            name: name.to_string(),
            kind,
        }
    }

    /// Keras' `TopKCategoricalAccuracy(k=k)`.
    pub fn top_k_categorical_accuracy(k: usize) -> Metric {
        Metric::new(MetricKind::TopKCategoricalAccuracy { k })
    }

    /// Keras' `SparseTopKCategoricalAccuracy(k=k)`.
    pub fn sparse_top_k_categorical_accuracy(k: usize) -> Metric {
        Metric::new(MetricKind::SparseTopKCategoricalAccuracy { k })
    }

    /// The same metric under another name (Keras' `name=`).
    pub fn with_name(mut self, name: impl Into<String>) -> Metric {
        self.name = name.into();
        self
    }

    /// The name `History` and `evaluate` report it under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it computes.
    pub fn kind(&self) -> MetricKind {
        self.kind
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for `k == 0` or a threshold that is not finite.
    pub fn validate(&self) -> Result<()> {
        match self.kind {
            MetricKind::TopKCategoricalAccuracy { k: 0 }
            | MetricKind::SparseTopKCategoricalAccuracy { k: 0 } => Err(Error::invalid_argument(
                format!("metric \"{}\"", self.name),
                "k",
                0,
                "a positive number of classes",
            )),
            MetricKind::BinaryAccuracy { threshold } if !threshold.is_finite() => {
                Err(Error::invalid_argument(
                    format!("metric \"{}\"", self.name),
                    "threshold",
                    threshold,
                    "a finite number",
                ))
            }
            _ => Ok(()),
        }
    }

    /// The metric `"accuracy"` stands for with these predictions and targets (Keras'
    /// `compile_utils.get_metric_function`, from the shapes); other metrics are themselves.
    pub(crate) fn resolved(
        &self,
        prediction_shape: &[usize],
        target_shape: &[usize],
    ) -> MetricKind {
        match self.kind {
            MetricKind::Accuracy => {
                let output_last = prediction_shape.last().copied();
                let sparse_targets = target_shape.len() < prediction_shape.len()
                    || (target_shape.last() == Some(&1) && output_last != Some(1));
                if output_last == Some(1) {
                    MetricKind::BinaryAccuracy { threshold: 0.5 }
                } else if sparse_targets {
                    MetricKind::SparseCategoricalAccuracy
                } else {
                    MetricKind::CategoricalAccuracy
                }
            }
            kind => kind,
        }
    }
}

impl Metric {
    /// Checks that targets of `target_shape` fit predictions of `prediction_shape` for this
    /// metric, without computing anything (so `fit` can refuse before its first step).
    ///
    /// # Errors
    /// [`Error::IncompatibleShape`] as [`Metric::values`] would return it.
    pub(crate) fn check_shapes(
        &self,
        prediction_shape: &[usize],
        target_shape: &[usize],
    ) -> Result<()> {
        let zeros = |shape: &[usize]| -> Option<ArrayD<f32>> {
            let mut small = shape.to_vec();
            if let Some(first) = small.first_mut() {
                *first = (*first).min(1);
            }
            let len: usize = small.iter().product();
            (len <= 1 << 16).then(|| ArrayD::zeros(small))
        };
        match (zeros(prediction_shape), zeros(target_shape)) {
            (Some(p), Some(t)) => self.values(&p, &t).map(|_| ()),
            // Too large a sample to probe cheaply: the first batch reports it.
            _ => Ok(()),
        }
    }

    /// The metric's value for each sample (each position of the predictions without their
    /// last axis), as Keras' metric functions return them (`keras.metrics.binary_accuracy(
    /// y_true, y_pred)`); `"accuracy"` is resolved from the shapes first.
    ///
    /// # Errors
    /// [`Error::IncompatibleShape`] when the targets do not fit the predictions.
    pub fn values(&self, prediction: &ArrayD<f32>, targets: &ArrayD<f32>) -> Result<ArrayD<f32>> {
        values(
            self.resolved(prediction.shape(), targets.shape()),
            prediction,
            targets,
        )
    }
}

impl FromStr for Metric {
    type Err = Error;

    /// Keras' metric names: `"accuracy"` (`"acc"`), `"binary_accuracy"`,
    /// `"categorical_accuracy"`, `"sparse_categorical_accuracy"`,
    /// `"top_k_categorical_accuracy"` (k = 5), `"sparse_top_k_categorical_accuracy"` (k = 5),
    /// `"mae"` / `"mean_absolute_error"`, `"mse"` / `"mean_squared_error"`; the name given is
    /// the name reported, as in Keras.
    fn from_str(name: &str) -> Result<Metric> {
        let kind = match name {
            "accuracy" | "acc" => MetricKind::Accuracy,
            "binary_accuracy" => MetricKind::BinaryAccuracy { threshold: 0.5 },
            "categorical_accuracy" => MetricKind::CategoricalAccuracy,
            "sparse_categorical_accuracy" => MetricKind::SparseCategoricalAccuracy,
            "top_k_categorical_accuracy" => MetricKind::TopKCategoricalAccuracy { k: 5 },
            "sparse_top_k_categorical_accuracy" => {
                MetricKind::SparseTopKCategoricalAccuracy { k: 5 }
            }
            "mae" | "mean_absolute_error" => MetricKind::MeanAbsoluteError,
            "mse" | "mean_squared_error" => MetricKind::MeanSquaredError,
            _ => {
                return Err(Error::UnknownName {
                    kind: "metric",
                    name: name.to_string(),
                    valid: vec![
                        "accuracy",
                        "binary_accuracy",
                        "categorical_accuracy",
                        "sparse_categorical_accuracy",
                        "top_k_categorical_accuracy",
                        "sparse_top_k_categorical_accuracy",
                        "mae",
                        "mse",
                    ],
                });
            }
        };
        Ok(Metric::new(kind).with_name(name))
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// The per-sample (per-position) values of a metric on one batch: one value per position of
/// the predictions without their last axis.
///
/// # Errors
/// [`Error::IncompatibleShape`] when the targets do not fit the predictions.
pub(crate) fn values(
    kind: MetricKind,
    prediction: &ArrayD<f32>,
    targets: &ArrayD<f32>,
) -> Result<ArrayD<f32>> {
    let last = Axis(prediction.ndim().saturating_sub(1));
    let mismatch = || Error::IncompatibleShape {
        context: "metric: targets".into(),
        expected: prediction.shape().iter().map(|&d| Some(d)).collect(),
        got: targets.shape().iter().map(|&d| Some(d)).collect(),
    };
    let sparse = matches!(
        kind,
        MetricKind::SparseCategoricalAccuracy | MetricKind::SparseTopKCategoricalAccuracy { .. }
    );
    // Sparse targets: one class per position (a trailing axis of 1 allowed).
    let classes: Option<ArrayD<f32>> = if sparse {
        let positions = &prediction.shape()[..prediction.ndim().saturating_sub(1)];
        let flat = targets
            .to_shape(ndarray::IxDyn(positions))
            .map_err(|_| mismatch())?
            .to_owned();
        Some(flat)
    } else {
        if targets.shape() != prediction.shape() {
            return Err(mismatch());
        }
        None
    };
    let lanes = prediction.lanes(last);
    let values: Vec<f32> = match kind {
        MetricKind::BinaryAccuracy { threshold } => lanes
            .into_iter()
            .zip(targets.lanes(last))
            .map(|(p, t)| {
                let hits = p
                    .iter()
                    .zip(t)
                    .filter(|&(p, t)| (f32::from(u8::from(*p > threshold))) == *t)
                    .count();
                hits as f32 / p.len().max(1) as f32
            })
            .collect(),
        MetricKind::CategoricalAccuracy => lanes
            .into_iter()
            .zip(targets.lanes(last))
            .map(|(p, t)| f32::from(u8::from(argmax(p.iter()) == argmax(t.iter()))))
            .collect(),
        MetricKind::TopKCategoricalAccuracy { k } => lanes
            .into_iter()
            .zip(targets.lanes(last))
            .map(|(p, t)| f32::from(u8::from(in_top_k(&p.to_vec(), argmax(t.iter()), k))))
            .collect(),
        MetricKind::SparseCategoricalAccuracy
        | MetricKind::SparseTopKCategoricalAccuracy { .. } => {
            let classes = classes.ok_or_else(mismatch)?;
            lanes
                .into_iter()
                .zip(classes.iter())
                .map(|(p, &class)| {
                    let hit = match kind {
                        MetricKind::SparseTopKCategoricalAccuracy { k } => {
                            class >= 0.0 && in_top_k(&p.to_vec(), class as usize, k)
                        }
                        _ => argmax(p.iter()) as f32 == class,
                    };
                    f32::from(u8::from(hit))
                })
                .collect()
        }
        MetricKind::MeanAbsoluteError | MetricKind::MeanSquaredError => lanes
            .into_iter()
            .zip(targets.lanes(last))
            .map(|(p, t)| {
                let sum: f32 = p
                    .iter()
                    .zip(t)
                    .map(|(p, t)| {
                        let d = p - t;
                        if kind == MetricKind::MeanAbsoluteError {
                            d.abs()
                        } else {
                            d * d
                        }
                    })
                    .sum();
                sum / p.len().max(1) as f32
            })
            .collect(),
        MetricKind::Accuracy => {
            return Err(Error::Model {
                model: "(metrics)".into(),
                message: "internal: \"accuracy\" must be resolved before it is computed".into(),
            });
        }
    };
    let positions = prediction.shape()[..prediction.ndim().saturating_sub(1)].to_vec();
    ArrayD::from_shape_vec(positions, values).map_err(|_| mismatch())
}

/// The index of the first largest value (`tf.argmax`'s tie rule).
fn argmax<'a>(values: impl Iterator<Item = &'a f32>) -> usize {
    let mut best = (0, f32::NEG_INFINITY);
    for (index, &value) in values.enumerate() {
        if value > best.1 {
            best = (index, value);
        }
    }
    best.0
}

/// Whether `target` is among the `k` largest `values`: fewer than `k` values are strictly
/// larger (`tf.math.in_top_k`: ties at the boundary count as in; a row with a NaN or an
/// infinity, or a target out of range, is never in).
fn in_top_k(values: &[f32], target: usize, k: usize) -> bool {
    let Some(&score) = values.get(target) else {
        return false;
    };
    values.iter().all(|v| v.is_finite()) && values.iter().filter(|&&v| v > score).count() < k
}

/// A metric's running state over an epoch: what `fit` and `evaluate` accumulate batch by
/// batch for one metric on one output.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MetricState {
    /// A mean of per-sample values (every metric but AUC).
    Mean(Mean),
}

impl MetricState {
    /// The empty state for `metric`.
    pub(crate) fn new(metric: &Metric) -> MetricState {
        let _ = metric;
        MetricState::Mean(Mean::default())
    }

    /// Adds one batch: `prediction` and `targets` as the model and the data give them,
    /// `mask` over the prediction's positions (without its last axis), if any.
    ///
    /// # Errors
    /// [`Error::IncompatibleShape`] when the targets do not fit the predictions.
    pub(crate) fn update(
        &mut self,
        metric: &Metric,
        prediction: &ArrayD<f32>,
        targets: &ArrayD<f32>,
        mask: Option<&ArrayD<bool>>,
    ) -> Result<()> {
        match self {
            MetricState::Mean(mean) => {
                let values = metric.values(prediction, targets)?;
                // A mask over the output's positions weighs the metric as Keras' sample
                // weights.
                mean.add(&values, mask)
            }
        }
    }

    /// The metric's value so far.
    pub(crate) fn result(&self) -> f32 {
        match self {
            MetricState::Mean(mean) => mean.result(),
        }
    }
}

/// A metric's running mean over an epoch: the sum of its values and how many (Keras'
/// `MeanMetricWrapper` with the mask as sample weights).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Mean {
    total: f64,
    count: f64,
}

impl Mean {
    /// Adds one batch's values; masked positions (`false`) are left out.
    ///
    /// # Errors
    /// An internal [`Error::Model`] for a mask that does not cover the values.
    pub(crate) fn add(&mut self, values: &ArrayD<f32>, mask: Option<&ArrayD<bool>>) -> Result<()> {
        if let Some(mask) = mask
            && mask.shape() != values.shape()
        {
            return Err(Error::Model {
                model: "(metrics)".into(),
                message: format!(
                    "internal: a mask of shape {:?} over metric values of shape {:?}",
                    mask.shape(),
                    values.shape()
                ),
            });
        }
        match mask {
            Some(mask) => {
                for (v, &keep) in values.iter().zip(mask) {
                    if keep {
                        self.total += f64::from(*v);
                        self.count += 1.0;
                    }
                }
            }
            None => {
                self.total += values.iter().map(|&v| f64::from(v)).sum::<f64>();
                self.count += values.len() as f64;
            }
        }
        Ok(())
    }

    /// The mean so far (0 before any value, as Keras' `divide_no_nan`).
    pub(crate) fn result(&self) -> f32 {
        if self.count == 0.0 {
            0.0
        } else {
            (self.total / self.count) as f32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn accuracies_follow_tensorflow_tie_rules() {
        let p = array![[0.5f32], [0.7], [0.2]].into_dyn();
        let t = array![[0.0f32], [1.0], [0.0]].into_dyn();
        let binary = values(MetricKind::BinaryAccuracy { threshold: 0.5 }, &p, &t).unwrap();
        assert_eq!(
            binary,
            array![1.0f32, 1.0, 1.0].into_dyn(),
            "0.5 is not above 0.5"
        );
        let p = array![[0.25f32, 0.25, 0.5], [0.4, 0.4, 0.2]].into_dyn();
        let t = array![[0.0f32, 0.0, 1.0], [0.0, 1.0, 0.0]].into_dyn();
        let categorical = values(MetricKind::CategoricalAccuracy, &p, &t).unwrap();
        assert_eq!(
            categorical,
            array![1.0f32, 0.0].into_dyn(),
            "ties: the first index"
        );
        let sparse = values(
            MetricKind::SparseCategoricalAccuracy,
            &p,
            &array![2.0f32, 0.0].into_dyn(),
        )
        .unwrap();
        assert_eq!(sparse, array![1.0f32, 1.0].into_dyn());
        let top1 = values(
            MetricKind::SparseTopKCategoricalAccuracy { k: 1 },
            &p,
            &array![0.0f32, 1.0].into_dyn(),
        )
        .unwrap();
        assert_eq!(
            top1,
            array![0.0f32, 1.0].into_dyn(),
            "a tie at the boundary is in"
        );
    }

    #[test]
    fn names_parse_and_unknown_ones_list_the_valid() {
        assert_eq!("acc".parse::<Metric>().unwrap().name(), "acc");
        assert_eq!(
            "mae".parse::<Metric>().unwrap().kind(),
            MetricKind::MeanAbsoluteError
        );
        let err = "auc".parse::<Metric>().unwrap_err();
        assert!(err.to_string().contains("binary_accuracy"), "{err}");
        assert!(Metric::top_k_categorical_accuracy(0).validate().is_err());
    }
}
