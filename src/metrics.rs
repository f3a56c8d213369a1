//! Keras' metrics for `compile(metrics=[...])`: accuracies, top-k accuracies, mean errors, AUC.
//!
//! A metric is computed on each batch's predictions (before the batch's update, as Keras'
//! `train_step` does) and accumulated over the epoch in a [`MetricState`]. Every metric but
//! AUC is averaged over the epoch's samples, weighted by batch size (Keras'
//! `MeanMetricWrapper`). `"accuracy"` is resolved as Keras' `compile` resolves it, from the
//! shapes alone: binary accuracy for a one-unit output, sparse categorical accuracy for
//! integer targets (one rank less than the output, or a last axis of 1), categorical accuracy
//! otherwise (so a one-unit regression's "accuracy" is binary accuracy, as in Keras).
//!
//! Targets of the element-wise metrics (`binary_accuracy`, `mae`, `mse`) may be one axis
//! short of the predictions or have a last axis of 1: they are broadcast against the
//! predictions' last axis, as Keras does (`mae` of integer labels against softmax
//! probabilities). The categorical ones need one-hot targets of the predictions' shape; Keras
//! would compare the argmax of a one-column label (always 0) and report a number that means
//! nothing, ndkeras refuses before training.
//!
//! AUC ([`Metric::auc`], `"AUC"`) is tf_keras 2.21's `tf.keras.metrics.AUC` with
//! `multi_label=False` and `from_logits=False` (predictions are probabilities): predictions
//! and labels are flattened; the weighted true/false positive/negative counts at
//! `num_thresholds` evenly spaced thresholds (`-1e-7`, `i / (num_thresholds - 1)`, `1 + 1e-7`)
//! are accumulated in float32 over every batch of the epoch, and the area under the ROC or
//! precision-recall curve is computed from them at the end, with Keras' summation methods
//! (interpolation, including Keras' interpolated PR-AUC; minoring; majoring). Predictions
//! are bucketed exactly as Keras does (clipped to `[0, 1]`; a prediction counts as above
//! threshold `i` when `p * (num_thresholds - 1) > i` in float32; a NaN prediction is below
//! every threshold), so the counts equal Keras' and the result matches to float32 rounding.
//! A mask leaves positions out (Keras' sample weights of 0). Differences from Keras, on
//! purpose: a label outside `[0, 1]` (or NaN) is refused with an error naming it, where Keras
//! silently counts any label that is not 0 as a positive (soft labels in `(0, 1]` are
//! positives in both); `"auc"` is accepted as well as `"AUC"` (tf_keras 2.21 fails on it);
//! Keras' `thresholds=`, `multi_label=True`, `label_weights`, `from_logits=True` and the
//! `PR_GAIN` curve are not supported. A second AUC needs its own name ([`Metric::with_name`]),
//! where Keras would call it `auc_1`.
//!
//! ```
//! use ndkeras::metrics::Metric;
//!
//! let accuracy: Metric = "accuracy".parse()?;
//! assert_eq!(accuracy.name(), "accuracy");
//! let top2 = Metric::sparse_top_k_categorical_accuracy(2).with_name("top2");
//! assert_eq!(top2.name(), "top2");
//! let auc: Metric = "AUC".parse()?;
//! assert_eq!(auc.name(), "auc");
//! # Ok::<(), ndkeras::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use ndarray::{ArrayD, Axis, Dimension};

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
    /// Keras' `AUC`: the area under the ROC or precision-recall curve, estimated from
    /// confusion counts at `num_thresholds` thresholds accumulated over every sample seen
    /// (see the module docs). Not a mean of per-sample values.
    Auc {
        /// How many thresholds (Keras' default 200; more than 1): `-1e-7`,
        /// `i / (num_thresholds - 1)` for `i` in `1..num_thresholds - 1`, and `1 + 1e-7`.
        num_thresholds: usize,
        /// The curve whose area is reported (Keras' default ROC).
        curve: Curve,
        /// How the area between two thresholds is estimated (Keras' default interpolation).
        summation_method: SummationMethod,
    },
}

/// The curve [`MetricKind::Auc`] integrates (Keras' `curve`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Curve {
    /// `"ROC"`: true positive rate (recall) against false positive rate.
    #[default]
    Roc,
    /// `"PR"`: precision against recall.
    Pr,
}

impl FromStr for Curve {
    type Err = Error;

    /// Keras' names: `"ROC"` (`"roc"`), `"PR"` (`"pr"`). Keras' `"PR_GAIN"` is not
    /// supported.
    fn from_str(name: &str) -> Result<Curve> {
        match name {
            "ROC" | "roc" => Ok(Curve::Roc),
            "PR" | "pr" => Ok(Curve::Pr),
            _ => Err(Error::UnknownName {
                kind: "AUC curve",
                name: name.to_string(),
                valid: vec!["ROC", "PR"],
            }),
        }
    }
}

/// How [`MetricKind::Auc`] estimates the area between two neighbouring thresholds (Keras'
/// `summation_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SummationMethod {
    /// `"interpolation"`: the trapezoidal rule for ROC; for PR, Keras' interpolation of the
    /// positives (Davis & Goadrich 2006), not of the precision.
    #[default]
    Interpolation,
    /// `"minoring"`: the lower of the two heights.
    Minoring,
    /// `"majoring"`: the higher of the two heights.
    Majoring,
}

impl FromStr for SummationMethod {
    type Err = Error;

    /// Keras' names: `"interpolation"`, `"minoring"`, `"majoring"` (or capitalized).
    fn from_str(name: &str) -> Result<SummationMethod> {
        match name {
            "interpolation" | "Interpolation" => Ok(SummationMethod::Interpolation),
            "minoring" | "Minoring" => Ok(SummationMethod::Minoring),
            "majoring" | "Majoring" => Ok(SummationMethod::Majoring),
            _ => Err(Error::UnknownName {
                kind: "AUC summation method",
                name: name.to_string(),
                valid: vec!["interpolation", "minoring", "majoring"],
            }),
        }
    }
}

/// A named metric (Keras reports it under its name in `History` and `evaluate`).
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    name: String,
    kind: MetricKind,
    /// An AUC setter called on another metric: [`Metric::validate`] refuses it rather than
    /// ignore it.
    misapplied: Option<&'static str>,
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
            MetricKind::Auc { .. } => "auc",
        };
        Metric {
            name: name.to_string(),
            kind,
            misapplied: None,
        }
    }

    /// Keras' `AUC()` with its defaults: 200 thresholds, the ROC curve, interpolation,
    /// named `"auc"`; change them with [`Metric::num_thresholds`], [`Metric::curve`] and
    /// [`Metric::summation_method`].
    ///
    /// ```
    /// use ndkeras::metrics::{Curve, Metric};
    ///
    /// let pr_auc = Metric::auc().curve(Curve::Pr).with_name("pr_auc");
    /// assert_eq!(pr_auc.name(), "pr_auc");
    /// ```
    pub fn auc() -> Metric {
        Metric::new(MetricKind::Auc {
            num_thresholds: 200,
            curve: Curve::Roc,
            summation_method: SummationMethod::Interpolation,
        })
    }

    /// AUC's number of thresholds (default 200; Keras requires more than 1, checked by
    /// [`Metric::validate`]). On a metric other than AUC, [`Metric::validate`] reports it.
    pub fn num_thresholds(mut self, num_thresholds: usize) -> Metric {
        match &mut self.kind {
            MetricKind::Auc {
                num_thresholds: n, ..
            } => *n = num_thresholds,
            _ => self.misapplied = Some("num_thresholds"),
        }
        self
    }

    /// AUC's curve (default [`Curve::Roc`]). On a metric other than AUC,
    /// [`Metric::validate`] reports it.
    pub fn curve(mut self, curve: Curve) -> Metric {
        match &mut self.kind {
            MetricKind::Auc { curve: c, .. } => *c = curve,
            _ => self.misapplied = Some("curve"),
        }
        self
    }

    /// AUC's summation method (default [`SummationMethod::Interpolation`]). On a metric
    /// other than AUC, [`Metric::validate`] reports it.
    pub fn summation_method(mut self, summation_method: SummationMethod) -> Metric {
        match &mut self.kind {
            MetricKind::Auc {
                summation_method: m,
                ..
            } => *m = summation_method,
            _ => self.misapplied = Some("summation_method"),
        }
        self
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
    /// [`Error::InvalidArgument`] for `k == 0`, a threshold that is not finite, AUC's
    /// `num_thresholds` below 2, or an AUC parameter set on another metric.
    pub fn validate(&self) -> Result<()> {
        let owner = || format!("metric \"{}\"", self.name);
        if let Some(parameter) = self.misapplied {
            return Err(Error::invalid_argument(
                owner(),
                parameter,
                "a setting for AUC",
                "a metric made with Metric::auc() (only AUC has this parameter)",
            ));
        }
        match self.kind {
            MetricKind::Auc { num_thresholds, .. } if num_thresholds <= 1 => {
                Err(Error::invalid_argument(
                    owner(),
                    "num_thresholds",
                    num_thresholds,
                    "an integer > 1 (as Keras requires)",
                ))
            }
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
        if let MetricKind::Auc { .. } = self.kind {
            return check_auc_shapes(prediction_shape, target_shape);
        }
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
    /// AUC has no per-sample values (it is computed from confusion counts over every
    /// sample): accumulate it with [`MetricState::update`] and read [`MetricState::result`].
    ///
    /// # Errors
    /// [`Error::IncompatibleShape`] when the targets do not fit the predictions;
    /// [`Error::InvalidArgument`] for AUC.
    pub fn values(&self, prediction: &ArrayD<f32>, targets: &ArrayD<f32>) -> Result<ArrayD<f32>> {
        if let MetricKind::Auc { .. } = self.kind {
            return Err(Error::invalid_argument(
                format!("metric \"{}\"", self.name),
                "values",
                "AUC",
                "a metric that is a mean of per-sample values (AUC is computed from confusion \
                 counts over all the samples: use MetricState::update and MetricState::result)",
            ));
        }
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
    /// the name reported, as in Keras. `"AUC"` is Keras' `AUC()` reported as `"auc"`, as in
    /// Keras; `"auc"` is accepted too (tf_keras 2.21 does not know it and fails on the first
    /// batch of `fit`).
    fn from_str(name: &str) -> Result<Metric> {
        if name == "AUC" || name == "auc" {
            return Ok(Metric::auc());
        }
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
                        "AUC",
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
        None
    };
    // Keras gives targets one axis short the predictions' rank (integer labels of shape
    // (n,) against (n, 3) probabilities) and broadcasts a last axis of 1 against the
    // predictions' (tf_keras `match_dtype_and_rank`, then broadcasting in the metric
    // function); the element-wise metrics do the same. The categorical ones need targets of
    // the predictions' shape (a one-hot row per position).
    let broadcast;
    let targets: &ArrayD<f32> = if sparse || targets.shape() == prediction.shape() {
        targets
    } else {
        let elementwise = matches!(
            kind,
            MetricKind::BinaryAccuracy { .. }
                | MetricKind::MeanAbsoluteError
                | MetricKind::MeanSquaredError
        );
        let mut shape = targets.shape().to_vec();
        if shape.len() + 1 == prediction.ndim() {
            shape.push(1);
        }
        let fits = shape.len() == prediction.ndim()
            && shape.last() == Some(&1)
            && shape[..shape.len() - 1] == prediction.shape()[..prediction.ndim() - 1];
        if !(elementwise && fits) {
            return Err(mismatch());
        }
        let column = targets
            .to_shape(ndarray::IxDyn(&shape))
            .map_err(|_| mismatch())?;
        broadcast = column
            .broadcast(prediction.raw_dim())
            .ok_or_else(mismatch)?
            .to_owned();
        &broadcast
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
        MetricKind::Auc { .. } => {
            return Err(Error::Model {
                model: "(metrics)".into(),
                message: "internal: AUC has no per-sample values".into(),
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

/// A metric's running state (the variables of a Keras metric object): what `fit` and
/// `evaluate` accumulate batch by batch for one metric on one output, and what Keras'
/// `update_state` / `result` do outside a model.
///
/// ```
/// use ndarray::array;
/// use ndkeras::metrics::{Metric, MetricState};
///
/// let auc = Metric::auc();
/// let mut state = MetricState::new(&auc);
/// let y_true = array![[0.0f32], [0.0], [1.0], [1.0]].into_dyn();
/// let y_pred = array![[0.1f32], [0.4], [0.35], [0.8]].into_dyn();
/// state.update(&auc, &y_pred, &y_true, None)?;
/// assert!((state.result() - 0.75).abs() < 1e-6);
/// # Ok::<(), ndkeras::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MetricState {
    /// A mean of per-sample values (every metric but AUC).
    Mean(Mean),
    /// AUC's confusion counts at each threshold.
    Auc(ConfusionCounts),
}

impl MetricState {
    /// The empty state for `metric` (Keras' metric object after `reset_state`).
    pub fn new(metric: &Metric) -> MetricState {
        match metric.kind {
            MetricKind::Auc {
                num_thresholds,
                curve,
                summation_method,
            } => MetricState::Auc(ConfusionCounts {
                num_thresholds,
                curve,
                summation_method,
                true_positives: Vec::new(),
                false_positives: Vec::new(),
                true_negatives: Vec::new(),
                false_negatives: Vec::new(),
            }),
            _ => MetricState::Mean(Mean::default()),
        }
    }

    /// Adds one batch (Keras' `update_state`): `prediction` and `targets` as the model and
    /// the data give them, `mask` over the prediction's positions (its shape without the
    /// last axis) or over every element, if any: masked positions (`false`) are left out, as
    /// Keras' sample weights of 0. `metric` is the one the state was made for.
    ///
    /// On an error the state is unchanged.
    ///
    /// # Errors
    /// [`Error::IncompatibleShape`] when the targets do not fit the predictions;
    /// for AUC, [`Error::InvalidArgument`] naming the metric, the label and its position in
    /// `targets` for a label outside `[0, 1]` (NaN included) at a position the mask keeps
    /// (Keras does not check: it counts any label that is not 0 as a positive), or when
    /// `metric` is not the AUC the state was made for, and [`Error::Allocation`] when the
    /// counts (four times `num_thresholds` floats) cannot be allocated.
    pub fn update(
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
            MetricState::Auc(counts) => counts.add(metric, prediction, targets, mask),
        }
    }

    /// The metric's value so far (Keras' `result`; 0 before any batch, as Keras).
    pub fn result(&self) -> f32 {
        match self {
            MetricState::Mean(mean) => mean.result(),
            MetricState::Auc(counts) => counts.result(),
        }
    }
}

/// A metric's running mean over an epoch: the sum of its values and how many (Keras'
/// `MeanMetricWrapper` with the mask as sample weights).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Mean {
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
    pub fn result(&self) -> f32 {
        if self.count == 0.0 {
            0.0
        } else {
            (self.total / self.count) as f32
        }
    }
}

/// AUC's state: the weighted true/false positive/negative counts at each threshold, in
/// float32 as Keras' variables (`true_positives`, ...), with the curve and summation method
/// that turn them into the area. Empty until the first batch (Keras' zeros).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfusionCounts {
    num_thresholds: usize,
    curve: Curve,
    summation_method: SummationMethod,
    true_positives: Vec<f32>,
    false_positives: Vec<f32>,
    true_negatives: Vec<f32>,
    false_negatives: Vec<f32>,
}

/// Checks that AUC's targets fit its predictions: the same shape, or shapes that differ by
/// a trailing axis of 1 (Keras' `squeeze_or_expand_dimensions`); both are then flattened.
///
/// # Errors
/// [`Error::IncompatibleShape`] otherwise.
fn check_auc_shapes(prediction: &[usize], targets: &[usize]) -> Result<()> {
    let squeezable = |longer: &[usize], shorter: &[usize]| {
        longer.len() == shorter.len() + 1
            && longer.last() == Some(&1)
            && &longer[..shorter.len()] == shorter
    };
    if prediction == targets || squeezable(prediction, targets) || squeezable(targets, prediction) {
        Ok(())
    } else {
        Err(Error::IncompatibleShape {
            context: "metric: targets".into(),
            expected: prediction.iter().map(|&d| Some(d)).collect(),
            got: targets.iter().map(|&d| Some(d)).collect(),
        })
    }
}

/// `len` zeros, or [`Error::Allocation`] naming `what`.
fn zeros(len: usize, what: &str) -> Result<Vec<f32>> {
    let mut values = Vec::new();
    values
        .try_reserve_exact(len)
        .map_err(|_| Error::Allocation {
            context: what.to_string(),
            bytes: len.saturating_mul(std::mem::size_of::<f32>()),
        })?;
    values.resize(len, 0.0);
    Ok(values)
}

/// Keras' `divide_no_nan`: 0 where the denominator is 0.
fn divide_no_nan(numerator: f32, denominator: f32) -> f32 {
    if denominator == 0.0 {
        0.0
    } else {
        numerator / denominator
    }
}

impl ConfusionCounts {
    /// How many thresholds.
    pub fn num_thresholds(&self) -> usize {
        self.num_thresholds
    }

    /// The weighted count of positive labels predicted above each threshold (empty before
    /// the first batch).
    pub fn true_positives(&self) -> &[f32] {
        &self.true_positives
    }

    /// The weighted count of negative labels predicted above each threshold.
    pub fn false_positives(&self) -> &[f32] {
        &self.false_positives
    }

    /// The weighted count of negative labels predicted at or below each threshold.
    pub fn true_negatives(&self) -> &[f32] {
        &self.true_negatives
    }

    /// The weighted count of positive labels predicted at or below each threshold.
    pub fn false_negatives(&self) -> &[f32] {
        &self.false_negatives
    }

    /// Adds one batch as Keras' `update_confusion_matrix_variables` does with evenly spaced
    /// thresholds (`_update_confusion_matrix_variables_optimized`, the path every AUC built
    /// from `num_thresholds` takes): predictions clipped to `[0, 1]`, each put in bucket
    /// `max(ceil(p * (n - 1)) - 1, 0)` (float32), counts at threshold `i` the sum of the
    /// buckets from `i` on. A NaN prediction is in no bucket: below every threshold.
    fn add(
        &mut self,
        metric: &Metric,
        prediction: &ArrayD<f32>,
        targets: &ArrayD<f32>,
        mask: Option<&ArrayD<bool>>,
    ) -> Result<()> {
        let expected = MetricKind::Auc {
            num_thresholds: self.num_thresholds,
            curve: self.curve,
            summation_method: self.summation_method,
        };
        metric.validate()?;
        if metric.kind != expected {
            return Err(Error::invalid_argument(
                format!("metric \"{}\"", metric.name),
                "metric",
                format!("{:?}", metric.kind),
                format!("the metric this state was made for ({expected:?})"),
            ));
        }
        check_auc_shapes(prediction.shape(), targets.shape())?;
        let n = self.num_thresholds;
        // The mask's weight of each flattened element: one per position, repeated over the
        // last axis (Keras expands a (batch,) weight to (batch, 1) and broadcasts it).
        let lane = prediction.shape().last().copied().unwrap_or(1).max(1);
        let positions = &prediction.shape()[..prediction.ndim().saturating_sub(1)];
        let per_element = match mask {
            None => false,
            Some(mask) if mask.shape() == prediction.shape() => true,
            Some(mask) if mask.shape() == positions => false,
            Some(mask) => {
                return Err(Error::Model {
                    model: "(metrics)".into(),
                    message: format!(
                        "internal: a mask of shape {:?} over predictions of shape {:?}",
                        mask.shape(),
                        prediction.shape()
                    ),
                });
            }
        };
        let mask: Option<Vec<bool>> = mask.map(|m| m.iter().copied().collect());
        let kept = |index: usize| match &mask {
            None => true,
            Some(mask) => {
                let at = if per_element { index } else { index / lane };
                mask.get(at).copied().unwrap_or(false)
            }
        };
        // Labels first, so that a refused batch leaves the state as it was.
        for (index, (position, &label)) in targets.indexed_iter().enumerate() {
            if kept(index) && !(0.0..=1.0).contains(&label) {
                return Err(Error::invalid_argument(
                    format!("metric \"{}\"", metric.name),
                    "y_true",
                    format!("{label} at position {:?} of the batch", position.slice()),
                    "labels in [0, 1] (AUC counts a label that is not 0 as a positive; \
                     Keras would silently count this one as a positive)",
                ));
            }
        }
        if self.true_positives.is_empty() {
            let what = format!("metric \"{}\": confusion counts", metric.name);
            self.true_positives = zeros(n, &what)?;
            self.false_positives = zeros(n, &what)?;
            self.true_negatives = zeros(n, &what)?;
            self.false_negatives = zeros(n, &what)?;
        }
        let what = format!("metric \"{}\": one batch's buckets", metric.name);
        let mut positive_buckets = zeros(n, &what)?;
        let mut negative_buckets = zeros(n, &what)?;
        let scale = n.saturating_sub(1) as f32;
        let (mut positives, mut negatives) = (0.0f32, 0.0f32);
        for (index, (&p, &label)) in prediction.iter().zip(targets.iter()).enumerate() {
            if !kept(index) {
                continue;
            }
            // Keras casts the labels to bool: any label that is not 0 is a positive.
            let positive = label != 0.0;
            if positive {
                positives += 1.0;
            } else {
                negatives += 1.0;
            }
            let p = p.clamp(0.0, 1.0);
            if p.is_nan() {
                continue;
            }
            // `as` saturates; the last bucket (above 1 + 1e-7) only catches rounding.
            let bucket = (((p * scale).ceil() - 1.0).max(0.0) as usize).min(n.saturating_sub(1));
            let counts = if positive {
                &mut positive_buckets
            } else {
                &mut negative_buckets
            };
            if let Some(count) = counts.get_mut(bucket) {
                *count += 1.0;
            }
        }
        // Above threshold i: the buckets from i on (Keras' reverse cumsum), then added to
        // the variables as Keras' assign_add does.
        let (mut above_positive, mut above_negative) = (0.0f32, 0.0f32);
        let rows = positive_buckets
            .iter()
            .zip(&negative_buckets)
            .zip(self.true_positives.iter_mut())
            .zip(self.false_positives.iter_mut())
            .zip(self.true_negatives.iter_mut())
            .zip(self.false_negatives.iter_mut());
        for (((((positive, negative), tp), fp), tn), fn_) in rows.rev() {
            above_positive += positive;
            above_negative += negative;
            *tp += above_positive;
            *fp += above_negative;
            *tn += negatives - above_negative;
            *fn_ += positives - above_positive;
        }
        Ok(())
    }

    /// The area (Keras' `AUC.result`, float32 throughout; the terms are summed in f64).
    fn result(&self) -> f32 {
        let tp = &self.true_positives;
        let fp = &self.false_positives;
        let tn = &self.true_negatives;
        let fn_ = &self.false_negatives;
        if tp.len() < 2 {
            return 0.0;
        }
        if self.curve == Curve::Pr && self.summation_method == SummationMethod::Interpolation {
            return self.interpolated_pr_auc();
        }
        let recall = |i: usize| divide_no_nan(tp[i], tp[i] + fn_[i]);
        let (x, y): (Vec<f32>, Vec<f32>) = (0..tp.len())
            .map(|i| match self.curve {
                Curve::Roc => (divide_no_nan(fp[i], fp[i] + tn[i]), recall(i)),
                Curve::Pr => (recall(i), divide_no_nan(tp[i], tp[i] + fp[i])),
            })
            .unzip();
        let area: f64 = x
            .windows(2)
            .zip(y.windows(2))
            .map(|(x, y)| {
                let height = match self.summation_method {
                    SummationMethod::Interpolation => (y[0] + y[1]) / 2.0,
                    SummationMethod::Minoring => y[0].min(y[1]),
                    SummationMethod::Majoring => y[0].max(y[1]),
                };
                f64::from((x[0] - x[1]) * height)
            })
            .sum();
        area as f32
    }

    /// Keras' `AUC.interpolate_pr_auc`: between two thresholds the true positives and the
    /// predicted positives vary linearly, and the precision is integrated exactly.
    fn interpolated_pr_auc(&self) -> f32 {
        let tp = &self.true_positives;
        let fn_ = &self.false_negatives;
        let predicted: Vec<f32> = tp
            .iter()
            .zip(&self.false_positives)
            .map(|(tp, fp)| tp + fp)
            .collect();
        let area: f64 = (0..tp.len().saturating_sub(1))
            .map(|i| {
                let (p0, p1) = (predicted[i], predicted[i + 1]);
                let dtp = tp[i] - tp[i + 1];
                let slope = divide_no_nan(dtp, (p0 - p1).max(0.0));
                let intercept = tp[i + 1] - slope * p1;
                let ratio = if p0 > 0.0 && p1 > 0.0 {
                    divide_no_nan(p0, p1.max(0.0))
                } else {
                    1.0
                };
                let increment = divide_no_nan(
                    slope * (dtp + intercept * ratio.ln()),
                    (tp[i + 1] + fn_[i + 1]).max(0.0),
                );
                f64::from(increment)
            })
            .sum();
        area as f32
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
        let err = "roc_auc".parse::<Metric>().unwrap_err();
        assert!(err.to_string().contains("binary_accuracy"), "{err}");
        assert_eq!("AUC".parse::<Metric>().unwrap(), Metric::auc());
        assert_eq!("auc".parse::<Metric>().unwrap().name(), "auc");
        assert!(Metric::top_k_categorical_accuracy(0).validate().is_err());
    }

    #[test]
    fn auc_masks_cover_positions_or_elements() {
        let auc = Metric::auc().num_thresholds(3);
        let p = array![[0.2f32, 0.9], [0.7, 0.4]].into_dyn();
        let t = array![[0.0f32, 1.0], [5.0, 0.0]].into_dyn();
        // A mask per row (the prediction's positions) drops the whole second row, with its
        // label 5 that would be refused.
        let rows = array![true, false].into_dyn();
        let mut by_row = MetricState::new(&auc);
        by_row.update(&auc, &p, &t, Some(&rows)).unwrap();
        let elements = array![[true, true], [false, false]].into_dyn();
        let mut by_element = MetricState::new(&auc);
        by_element.update(&auc, &p, &t, Some(&elements)).unwrap();
        assert_eq!(by_row, by_element);
        let MetricState::Auc(counts) = &by_row else {
            panic!("an AUC state")
        };
        // Thresholds -1e-7, 0.5, 1 + 1e-7: 0.9 is above 0.5, 0.2 is not.
        assert_eq!(counts.true_positives(), &[1.0, 1.0, 0.0]);
        assert_eq!(counts.false_positives(), &[1.0, 0.0, 0.0]);
        assert_eq!(counts.true_negatives(), &[0.0, 1.0, 1.0]);
        assert_eq!(counts.false_negatives(), &[0.0, 0.0, 1.0]);
        assert_eq!(by_row.result(), 1.0);
        let wrong = array![true, false, true].into_dyn();
        let err = by_row.update(&auc, &p, &t, Some(&wrong)).unwrap_err();
        assert!(err.to_string().contains("internal"), "{err}");
    }
}
