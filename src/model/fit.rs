//! Training a `Sequential`: `fit`, `train_on_batch`, `evaluate`.
//!
//! One step is Keras' `train_step`: forward (with `training`), loss (masked positions
//! excluded, cross-entropies from logits after a sigmoid or softmax), backward through the
//! layers, then the optimizer update, then the constraints. Everything that can fail is
//! checked before the first weight changes, so a failed step leaves every weight and every
//! optimizer slot as it was.
//!
//! Empty data is an error, checked before anything is built or trained: `fit`, `evaluate`
//! and `train_on_batch` on zero samples, and `fit` with an empty `validation_data`, return
//! [`Error::Model`] naming the call and the empty input. Keras 2 raises `Expected input data
//! to be non-empty` for `fit`, `evaluate` and an empty `validation_data`, but returns a loss
//! of 0 from `train_on_batch`; ndkeras refuses all four. A `validation_split` that leaves no
//! training or no validation sample is an error too, as in Keras 2.
//!
//! The loss includes the regularization penalty of every weight, frozen or not, as Keras'
//! `add_loss` does; only trainable weights are updated.

use ndarray::{ArrayD, Axis};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::layer::{attach_output_mask, check_mask_support};
use crate::losses::Loss;
use crate::metrics::Mean;
use crate::model::callbacks::{Callback, Control};
use crate::model::history::History;
use crate::model::progress::{Progress, Verbosity};
use crate::model::sequential::{DEFAULT_BATCH_SIZE, Sequential};
use crate::optimizers::Optimizer;
use crate::tensor::Tensor;

/// The settings of [`Sequential::fit`], with Keras' names and defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct FitOptions {
    /// Passes over the data. Default: 1.
    pub epochs: usize,
    /// Samples per step. Default: 32.
    pub batch_size: usize,
    /// Shuffle the samples before each epoch. Default: `true`.
    pub shuffle: bool,
    /// Seed of the shuffle, for reproducible training. Default: from the OS.
    pub seed: Option<u64>,
    /// The fraction of samples, taken from the end before shuffling, held out for validation.
    /// Default: 0.
    pub validation_split: f32,
    /// Validation samples `(x, y)`; overrides `validation_split`. Default: none.
    pub validation_data: Option<(Tensor, Tensor)>,
    /// What is printed (Keras' `verbose`: 0, 1 or 2; see [`Verbosity`]). Default: a
    /// progress bar (1).
    pub verbose: Verbosity,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: DEFAULT_BATCH_SIZE,
            shuffle: true,
            seed: None,
            validation_split: 0.0,
            validation_data: None,
            verbose: Verbosity::ProgressBar,
        }
    }
}

impl FitOptions {
    /// Sets `epochs` (default 1).
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// Sets `batch_size` (default 32).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Sets `shuffle` (default `true`).
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Seeds the shuffle (default: from the OS).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Sets `validation_split`, in `[0, 1)` (default 0).
    pub fn validation_split(mut self, validation_split: f32) -> Self {
        self.validation_split = validation_split;
        self
    }

    /// Sets `validation_data` (default none).
    pub fn validation_data(mut self, x: impl Into<Tensor>, y: impl Into<Tensor>) -> Self {
        self.validation_data = Some((x.into(), y.into()));
        self
    }

    /// Sets `verbose` as Keras does: `0` (or `false`) prints nothing, `1` (or `true`) a
    /// progress bar (one line per epoch when standard error is not a terminal), `2` one line
    /// per epoch. Default: 1.
    pub fn verbose(mut self, verbose: impl Into<Verbosity>) -> Self {
        self.verbose = verbose.into();
        self
    }

    pub(super) fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::invalid_argument(
                "fit",
                "batch_size",
                0,
                "a positive number of samples",
            ));
        }
        if !(0.0..1.0).contains(&self.validation_split) {
            return Err(Error::invalid_argument(
                "fit",
                "validation_split",
                self.validation_split,
                "a fraction in [0, 1)",
            ));
        }
        Ok(())
    }
}

/// Inputs and checked targets of a whole data set.
struct Data {
    x: Tensor,
    y: ArrayD<f32>,
}

impl Data {
    fn len(&self) -> usize {
        self.x.shape().first().copied().unwrap_or(0)
    }

    fn batch(&self, indices: &[usize]) -> (Tensor, ArrayD<f32>) {
        (
            self.x.select_batch(indices),
            self.y.select(Axis(0), indices),
        )
    }
}

impl Sequential {
    /// Trains the model (Keras' `fit`): `epochs` passes over `(x, y)` in batches, each batch
    /// one optimizer step.
    ///
    /// # Errors
    /// [`Error::Model`] before `compile`, when `x` (or `validation_data`) holds no sample,
    /// when `x` and `y` have different sample counts, or when `validation_split` leaves no
    /// training or no validation sample; [`Error::InvalidArgument`] for `batch_size == 0` or
    /// `validation_split` outside `[0, 1)`; [`Error::IncompatibleShape`] for `y` of the wrong
    /// shape for the loss; label errors for `sparse_categorical_crossentropy`; the layers'
    /// input errors; [`Error::NonFiniteLoss`] naming the epoch and batch where the loss stopped being finite
    /// (the weights are those after the last good step). Nothing changes when an error is
    /// found before training starts.
    pub fn fit(
        &mut self,
        x: impl Into<Tensor>,
        y: impl Into<Tensor>,
        options: FitOptions,
    ) -> Result<History> {
        self.fit_with_callbacks(x, y, options, &mut [])
    }

    /// [`Sequential::fit`] with callbacks (Keras' `fit(callbacks=[...])`): each runs at the
    /// start and end of training and of every epoch, in order, and may stop training (see
    /// [`crate::model::callbacks`]).
    ///
    /// # Errors
    /// Those of [`Sequential::fit`], and any error a callback returns (training stops there;
    /// the weights are those of the last finished step).
    pub fn fit_with_callbacks(
        &mut self,
        x: impl Into<Tensor>,
        y: impl Into<Tensor>,
        options: FitOptions,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<History> {
        let (mut optimizer, loss) = self.compiled("fit")?;
        options.validate()?;
        let (x, y) = (x.into(), y.into());
        // Before anything is built: an empty input must leave the model as it was.
        self.check_not_empty("fit", "x", &x)?;
        match &options.validation_data {
            Some((vx, _)) => self.check_not_empty("fit", "validation_data", vx)?,
            None if options.validation_split > 0.0 => {
                let n = x.shape().first().copied().unwrap_or(0);
                self.split_point(n, options.validation_split)?;
            }
            None => {}
        }
        let data = self.checked_data(x, y, loss)?;
        let (train, validation) = match &options.validation_data {
            Some((vx, vy)) => (data, Some(self.checked_data(vx.clone(), vy.clone(), loss)?)),
            None if options.validation_split > 0.0 => {
                let n = data.len();
                let split = self.split_point(n, options.validation_split)?;
                let (head, tail): (Vec<usize>, Vec<usize>) =
                    ((0..split).collect(), (split..n).collect());
                let (tx, ty) = data.batch(&head);
                let (vx, vy) = data.batch(&tail);
                (Data { x: tx, y: ty }, Some(Data { x: vx, y: vy }))
            }
            None => (data, None),
        };

        // Frozen weights do not change during the call: their penalty is computed once.
        let fixed_penalty = self.penalty(false);
        let mut rng = match options.seed {
            Some(seed) => ChaCha8Rng::seed_from_u64(seed),
            None => ChaCha8Rng::from_rng(&mut rand::rng()),
        };
        let n = train.len();
        let batches = n.div_ceil(options.batch_size);
        let mut progress = Progress::new(options.verbose, options.epochs, batches);
        let mut history = History::default();
        let mut order: Vec<usize> = (0..n).collect();
        let log_rate = callbacks.iter().any(|c| c.logs_learning_rate());
        for callback in callbacks.iter_mut() {
            callback.on_train_begin(self)?;
        }
        for epoch in 1..=options.epochs {
            for callback in callbacks.iter_mut() {
                callback.on_epoch_begin(epoch - 1, self)?;
            }
            // A callback may have changed the learning rate.
            if let Some(current) = self.optimizer {
                optimizer = current;
            }
            if options.shuffle {
                order.shuffle(&mut rng);
            }
            progress.epoch_start(epoch);
            let (mut weighted, mut seen) = (0.0f64, 0usize);
            let mut means = vec![Mean::default(); self.metrics.len()];
            for (b, indices) in order.chunks(options.batch_size).enumerate() {
                let (xb, yb) = train.batch(indices);
                let (batch_loss, output) =
                    match self.train_step(&xb, &yb, optimizer, loss, fixed_penalty) {
                        Ok(value) => value,
                        Err(err) => {
                            self.flush_lazy_rows();
                            return Err(match err {
                                Error::NonFiniteLoss { loss, .. } => Error::NonFiniteLoss {
                                    loss,
                                    epoch,
                                    batch: b + 1,
                                },
                                other => other,
                            });
                        }
                    };
                weighted += f64::from(batch_loss) * indices.len() as f64;
                seen += indices.len();
                if let Err(err) = self.add_metrics(&mut means, &output, &yb) {
                    self.flush_lazy_rows();
                    return Err(err);
                }
                progress.batch(b + 1, (weighted / seen.max(1) as f64) as f32);
            }
            let epoch_loss = (weighted / seen.max(1) as f64) as f32;
            history.loss.push(epoch_loss);
            let mut logged = vec![("loss".to_string(), epoch_loss)];
            for (metric, mean) in self.metrics.iter().zip(&means) {
                logged.push((metric.name().to_string(), mean.result()));
            }
            if let Some(v) = &validation {
                self.flush_lazy_rows();
                let (val_loss, val_metrics) =
                    self.evaluate_data(v, options.batch_size, loss, fixed_penalty)?;
                history.val_loss.push(val_loss);
                logged.push(("val_loss".to_string(), val_loss));
                for (metric, value) in self.metrics.iter().zip(val_metrics) {
                    logged.push((format!("val_{}", metric.name()), value));
                }
            }
            if log_rate {
                logged.push(("lr".to_string(), optimizer.learning_rate()));
            }
            for (name, value) in logged.iter().skip(1) {
                if name != "val_loss" {
                    history.record(name, *value);
                }
            }
            progress.epoch_end(&logged);
            let mut stop = false;
            if !callbacks.is_empty() {
                // Callbacks read and write the weights Keras has.
                self.flush_lazy_rows();
            }
            for callback in callbacks.iter_mut() {
                stop |= callback.on_epoch_end(epoch - 1, &logged, self)? == Control::Stop;
            }
            if stop {
                break;
            }
        }
        self.flush_lazy_rows();
        for callback in callbacks.iter_mut() {
            callback.on_train_end(self)?;
        }
        Ok(history)
    }

    /// One optimizer step on one batch (Keras' `train_on_batch`); returns the batch loss
    /// computed before the step.
    ///
    /// With momentum (`SGD` or `RMSprop` with `momentum > 0`), Keras keeps moving embedding
    /// rows the batch did not touch; each call brings those rows up to date before returning,
    /// which costs a pass over the table. `fit` does that once per call, not once per batch,
    /// so prefer it for large tables.
    ///
    /// # Errors
    /// Those of [`Sequential::fit`] (zero samples included: Keras 2 returns a loss of 0
    /// there, ndkeras refuses); a failed step changes nothing.
    pub fn train_on_batch(&mut self, x: impl Into<Tensor>, y: impl Into<Tensor>) -> Result<f32> {
        let (optimizer, loss) = self.compiled("train_on_batch")?;
        let (x, y) = (x.into(), y.into());
        self.check_not_empty("train_on_batch", "x", &x)?;
        let data = self.checked_data(x, y, loss)?;
        let fixed_penalty = self.penalty(false);
        let result = self
            .train_step(&data.x, &data.y, optimizer, loss, fixed_penalty)
            .map(|(value, _)| value);
        self.flush_lazy_rows();
        result.map_err(|err| match err {
            Error::NonFiniteLoss { loss, .. } => Error::NonFiniteLoss {
                loss,
                epoch: 1,
                batch: 1,
            },
            other => other,
        })
    }

    /// The loss on `(x, y)` in batches of 32, with inference behaviour (no dropout), plus
    /// the regularization penalties of every weight, frozen ones included (Keras'
    /// `evaluate`).
    ///
    /// # Errors
    /// Those of [`Sequential::fit`] that concern the data (zero samples included).
    pub fn evaluate(&mut self, x: impl Into<Tensor>, y: impl Into<Tensor>) -> Result<f32> {
        self.evaluate_with_batch_size(x, y, DEFAULT_BATCH_SIZE)
    }

    /// [`Sequential::evaluate`] with another batch size (same result up to rounding).
    ///
    /// # Errors
    /// Those of [`Sequential::evaluate`], and [`Error::InvalidArgument`] for `batch_size == 0`.
    pub fn evaluate_with_batch_size(
        &mut self,
        x: impl Into<Tensor>,
        y: impl Into<Tensor>,
        batch_size: usize,
    ) -> Result<f32> {
        let (_, loss) = self.compiled("evaluate")?;
        let (x, y) = (x.into(), y.into());
        self.evaluated(x, y, batch_size, loss)
            .map(|(value, _)| value)
    }

    /// The loss and every metric of `compile_with_metrics` on `(x, y)`, by Keras' names:
    /// `("loss", ..)` first (Keras' `evaluate(..., return_dict=True)`).
    ///
    /// # Errors
    /// Those of [`Sequential::evaluate`].
    pub fn evaluate_with_metrics(
        &mut self,
        x: impl Into<Tensor>,
        y: impl Into<Tensor>,
    ) -> Result<Vec<(String, f32)>> {
        let (_, loss) = self.compiled("evaluate")?;
        let (value, metrics) = self.evaluated(x.into(), y.into(), DEFAULT_BATCH_SIZE, loss)?;
        let mut results = vec![("loss".to_string(), value)];
        results.extend(
            self.metrics
                .iter()
                .map(|m| m.name().to_string())
                .zip(metrics),
        );
        Ok(results)
    }

    fn evaluated(
        &mut self,
        x: Tensor,
        y: Tensor,
        batch_size: usize,
        loss: Loss,
    ) -> Result<(f32, Vec<f32>)> {
        if batch_size == 0 {
            return Err(Error::invalid_argument(
                "evaluate",
                "batch_size",
                0,
                "a positive number of samples",
            ));
        }
        self.check_not_empty("evaluate", "x", &x)?;
        let data = self.checked_data(x, y, loss)?;
        let fixed_penalty = self.penalty(false);
        self.evaluate_data(&data, batch_size, loss, fixed_penalty)
    }

    fn compiled(&self, operation: &str) -> Result<(Optimizer, Loss)> {
        match (self.optimizer, self.loss) {
            (Some(optimizer), Some(loss)) => Ok((optimizer, loss)),
            _ => Err(self.error(format!(
                "{operation} needs an optimizer and a loss: call `compile(optimizer, loss)` first"
            ))),
        }
    }

    /// [`Error::Model`] when `x` holds no sample: a loss over nothing is not a number
    /// (Keras 2: `Expected input data to be non-empty`).
    fn check_not_empty(&self, operation: &str, what: &str, x: &Tensor) -> Result<()> {
        if x.shape().first() == Some(&0) {
            return Err(self.error(format!(
                "{operation} received 0 samples in {what}; expected at least one"
            )));
        }
        Ok(())
    }

    /// The number of training samples `validation_split` leaves of `n`: Keras'
    /// `floor(n * (1 - validation_split))`, and an error when either side would be empty
    /// (Keras 2: "Training data contains 1 samples, which is not sufficient to split it").
    fn split_point(&self, n: usize, validation_split: f32) -> Result<usize> {
        let split = (n as f64 * (1.0 - f64::from(validation_split))).floor() as usize;
        if split == 0 || split >= n {
            return Err(self.error(format!(
                "validation_split = {validation_split} leaves {split} training and {} validation samples of {n}: both need at least one",
                n.saturating_sub(split)
            )));
        }
        Ok(split)
    }

    /// Conforms `x`, builds the model if needed, and checks `y` against the output shape.
    fn checked_data(&mut self, x: Tensor, y: Tensor, loss: Loss) -> Result<Data> {
        let x = self.prepare_input(x)?;
        let samples = x.shape().first().copied().unwrap_or(0);
        let targets = y.shape().first().copied().unwrap_or(0);
        if y.ndim() == 0 || samples != targets {
            return Err(self.error(format!(
                "x has {samples} samples but y has {}: give one target per sample",
                if y.ndim() == 0 {
                    "no batch axis".to_string()
                } else {
                    targets.to_string()
                }
            )));
        }
        // Every id is checked before the first step, so bad data never trains half an epoch.
        if let Some(first) = self.layers.first() {
            first.check_input(&x)?;
        }
        let shape: Option<Vec<usize>> = self
            .output_shapes_from(&x.keras_shape())?
            .pop()
            .and_then(|shape| shape.into_iter().collect());
        let y = match &shape {
            Some(shape) => loss.check_targets(y, shape)?,
            None => y.into_f32(),
        };
        // The metrics' shapes too, so a metric that cannot read these targets fails here,
        // before anything is trained.
        if let Some(shape) = &shape {
            for metric in &self.metrics {
                metric.check_shapes(shape, y.shape())?;
            }
        }
        Ok(Data { x, y })
    }

    /// Forward pass of every layer, returning each layer's input and the final output.
    pub(super) fn forward_all(
        &mut self,
        x: &Tensor,
        training: bool,
    ) -> Result<(Vec<Tensor>, Tensor)> {
        let mut inputs = Vec::with_capacity(self.layers.len());
        let mut current = x.clone();
        for layer in &mut self.layers {
            check_mask_support(layer.as_ref(), &current)?;
            let output = layer.forward(&current, training)?;
            let next = attach_output_mask(layer.as_ref(), &current, output)?;
            inputs.push(std::mem::replace(&mut current, next));
        }
        Ok((inputs, current))
    }

    /// The loss of the last forward pass against `y`, with its gradient.
    pub(super) fn loss_of(
        &self,
        output: &Tensor,
        y: &ArrayD<f32>,
        loss: Loss,
    ) -> Result<crate::losses::LossGradient> {
        let prediction = output.as_float().ok_or_else(|| Error::IncompatibleDtype {
            context: format!("model \"{}\": loss", self.name),
            expected: "a float32 model output".into(),
            got: output.dtype().to_string(),
        })?;
        // `compute` checks the targets, the mask and the logits against the predictions.
        let logits = self.layers.last().and_then(|l| l.output_logits());
        loss.compute(prediction, y, output.mask(), logits)
    }

    fn evaluate_data(
        &mut self,
        data: &Data,
        batch_size: usize,
        loss: Loss,
        fixed_penalty: f32,
    ) -> Result<(f32, Vec<f32>)> {
        let n = data.len();
        let (mut weighted, mut seen) = (0.0f64, 0usize);
        let mut means = vec![Mean::default(); self.metrics.len()];
        let all: Vec<usize> = (0..n).collect();
        for indices in all.chunks(batch_size) {
            let (xb, yb) = data.batch(indices);
            let (_, output) = self
                .forward_all(&xb, false)
                .map_err(|e| e.offset_batch(indices[0]))?;
            let value = self.loss_of(&output, &yb, loss)?.value;
            weighted += f64::from(value) * indices.len() as f64;
            seen += indices.len();
            self.add_metrics(&mut means, &output, &yb)?;
        }
        let loss = (weighted / seen.max(1) as f64) as f32 + self.penalty(true) + fixed_penalty;
        Ok((loss, means.iter().map(Mean::result).collect()))
    }

    /// Adds one batch's predictions to each metric's running mean.
    fn add_metrics(
        &self,
        means: &mut [Mean],
        output: &Tensor,
        targets: &ArrayD<f32>,
    ) -> Result<()> {
        let Some(prediction) = output.as_float() else {
            return Ok(());
        };
        for (metric, mean) in self.metrics.iter().zip(means) {
            let kind = metric.resolved(prediction.shape(), targets.shape());
            let values = crate::metrics::values(kind, prediction, targets)?;
            // A mask over the output's positions weighs the metric as Keras' sample weights.
            mean.add(&values, output.mask())?;
        }
        Ok(())
    }
}
