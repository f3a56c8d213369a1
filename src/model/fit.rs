//! Training, for every model: `compile`, `fit`, `train_on_batch`, `evaluate` (Keras'
//! `training.py`). A [`Sequential`](crate::model::Sequential) is the chain of its layers and
//! trains through this same code.
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
use crate::losses::Loss;
use crate::metrics::{Metric, MetricState};
use crate::model::callbacks::{Callback, Control};
use crate::model::functional::{Compiled, Model};
use crate::model::history::History;
use crate::model::progress::{Progress, Verbosity};
use crate::model::sequential::DEFAULT_BATCH_SIZE;
use crate::model::step::{Scratch, TrainingState, flush_lazy_rows, penalty};
use crate::optimizers::Optimizer;
use crate::tensor::Tensor;

/// The settings of [`Model::fit`] and [`Sequential::fit`](crate::model::Sequential::fit),
/// with Keras' names and defaults.
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
    /// The fraction of samples, taken from the end of every input and target before
    /// shuffling, held out for validation.
    /// Default: 0.
    pub validation_split: f32,
    /// Validation samples: one array per model input and one per output; overrides
    /// `validation_split`. Default: none.
    pub validation_data: Option<(Vec<Tensor>, Vec<Tensor>)>,
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

    /// Sets `validation_data` for a model with one input and one output (default none).
    pub fn validation_data(mut self, x: impl Into<Tensor>, y: impl Into<Tensor>) -> Self {
        self.validation_data = Some((vec![x.into()], vec![y.into()]));
        self
    }

    /// Sets `validation_data` for a model with several inputs or outputs: one array per
    /// input and one per output, in order (Keras' `validation_data=([x1, x2], [y1, y2])`).
    pub fn validation_data_of(mut self, x: Vec<Tensor>, y: Vec<Tensor>) -> Self {
        self.validation_data = Some((x, y));
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

/// Inputs and checked targets of a whole data set: one array per input, one per output.
struct Data {
    x: Vec<Tensor>,
    y: Vec<ArrayD<f32>>,
}

impl Data {
    fn len(&self) -> usize {
        self.x
            .first()
            .and_then(|t| t.shape().first().copied())
            .unwrap_or(0)
    }

    fn batch(&self, indices: &[usize]) -> Data {
        Data {
            x: self.x.iter().map(|t| t.select_batch(indices)).collect(),
            y: self.y.iter().map(|t| t.select(Axis(0), indices)).collect(),
        }
    }

    /// [`Data::batch`] with the targets copied into buffers kept from earlier steps
    /// (`scratch`): a training loop over large batches then allocates no fresh targets.
    fn batch_into(&self, indices: &[usize], scratch: &mut Scratch) -> Data {
        let y = self
            .y
            .iter()
            .map(|t| {
                let row = t.shape().iter().skip(1).product::<usize>();
                let mut shape = t.shape().to_vec();
                match (t.as_slice(), shape.first_mut()) {
                    (Some(flat), Some(rows)) => {
                        *rows = indices.len();
                        let mut values = scratch.take(indices.len() * row);
                        values.clear();
                        for &i in indices {
                            values.extend_from_slice(&flat[i * row..(i + 1) * row]);
                        }
                        ArrayD::from_shape_vec(shape, values)
                            .unwrap_or_else(|_| t.select(Axis(0), indices))
                    }
                    _ => t.select(Axis(0), indices),
                }
            })
            .collect();
        Data {
            x: self.x.iter().map(|t| t.select_batch(indices)).collect(),
            y,
        }
    }
}

/// The running results of one pass over data: the loss and each output's loss, weighted by
/// batch size, and each metric's mean.
struct Totals {
    weighted: f64,
    each: Vec<f64>,
    seen: usize,
    /// Each output's metrics, output by output.
    metrics: Vec<MetricState>,
    /// Added to the mean loss: the regularization penalties, for `evaluate`.
    penalty: f32,
}

impl Totals {
    fn new(outputs: usize, metrics: &[Metric]) -> Totals {
        Totals {
            weighted: 0.0,
            each: vec![0.0; outputs],
            seen: 0,
            metrics: (0..outputs)
                .flat_map(|_| metrics.iter().map(MetricState::new))
                .collect(),
            penalty: 0.0,
        }
    }

    fn add_losses(&mut self, loss: f32, each: &[f32], samples: usize) {
        let n = samples as f64;
        self.weighted += f64::from(loss) * n;
        for (sum, value) in self.each.iter_mut().zip(each) {
            *sum += f64::from(*value) * n;
        }
        self.seen += samples;
    }

    fn loss(&self) -> f32 {
        (self.weighted / self.seen.max(1) as f64) as f32 + self.penalty
    }

    fn each(&self) -> impl Iterator<Item = f32> + '_ {
        let seen = self.seen.max(1) as f64;
        self.each.iter().map(move |sum| (sum / seen) as f32)
    }

    fn metrics(&self) -> impl Iterator<Item = f32> + '_ {
        self.metrics.iter().map(MetricState::result)
    }
}

/// Compiling.
impl Model {
    /// Stores the optimizer and one loss per output (Keras' `compile(optimizer, loss=[..],
    /// loss_weights=[..])`); `loss_weights` default to 1. The optimizer starts fresh (step 0,
    /// empty slots).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an optimizer parameter out of range, a number of losses
    /// or loss weights other than the number of outputs, or a loss weight that is negative
    /// or not finite.
    pub fn compile(
        &mut self,
        optimizer: Optimizer,
        losses: Vec<Loss>,
        loss_weights: Option<Vec<f32>>,
    ) -> Result<()> {
        self.compile_with_metrics(optimizer, losses, loss_weights, Vec::new())
    }

    /// [`Model::compile`] with metrics (Keras' `compile(..., metrics=["accuracy"])`): each
    /// metric is computed on every output; `fit` and [`Model::evaluate`] report it under its
    /// name, or `{output}_{name}` with several outputs (and `val_` + that with validation
    /// data), as Keras 2 names them. See [`crate::metrics`].
    ///
    /// # Errors
    /// Those of [`Model::compile`], a metric's parameter errors, and
    /// [`Error::InvalidArgument`] for two metrics of one name or a name Keras reserves
    /// (`loss`, `val_*`, `*_loss`).
    pub fn compile_with_metrics(
        &mut self,
        optimizer: Optimizer,
        losses: Vec<Loss>,
        loss_weights: Option<Vec<f32>>,
        metrics: Vec<Metric>,
    ) -> Result<()> {
        let outputs = self.outputs.len();
        if losses.len() != outputs {
            return Err(Error::invalid_argument(
                format!("model \"{}\": compile", self.name),
                "loss",
                format!("{} losses", losses.len()),
                format!("one loss per output ({outputs}: {:?})", self.output_names()),
            ));
        }
        self.set_compiled(optimizer, losses, loss_weights, metrics)
    }

    /// Validates and stores what `compile` takes; the number of losses is the caller's to
    /// check (a `Sequential` has one output before its graph exists).
    pub(super) fn set_compiled(
        &mut self,
        optimizer: Optimizer,
        losses: Vec<Loss>,
        loss_weights: Option<Vec<f32>>,
        metrics: Vec<Metric>,
    ) -> Result<()> {
        optimizer.validate()?;
        let owner = format!("model \"{}\": compile", self.name);
        let count = losses.len();
        let weights = loss_weights.unwrap_or_else(|| vec![1.0; count]);
        if weights.len() != count || weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
            return Err(Error::invalid_argument(
                owner,
                "loss_weights",
                format!("{weights:?}"),
                format!("{count} finite, non-negative weights"),
            ));
        }
        for (k, metric) in metrics.iter().enumerate() {
            metric.validate()?;
            let name = metric.name();
            // History and the epoch line use these names as keys.
            let reserved = name == "loss" || name.starts_with("val_") || name.ends_with("_loss");
            if reserved || metrics[..k].iter().any(|m| m.name() == name) {
                return Err(Error::invalid_argument(
                    owner,
                    "metrics",
                    name,
                    "distinct metric names other than `loss`, `val_*` and `*_loss` (rename one with `with_name`)",
                ));
            }
        }
        self.compiled = Some(Compiled {
            optimizer,
            losses,
            loss_weights: weights,
            metrics,
        });
        // A new optimizer starts from step 0 with fresh slots, as after Keras' `compile`.
        self.training = TrainingState::default();
        Ok(())
    }

    /// The optimizer given to `compile`, with the learning rate it has now.
    pub fn optimizer(&self) -> Option<&Optimizer> {
        self.compiled.as_ref().map(|c| &c.optimizer)
    }

    /// The losses given to `compile`, one per output (empty before `compile`).
    pub fn losses(&self) -> &[Loss] {
        self.compiled.as_ref().map_or(&[], |c| c.losses.as_slice())
    }

    /// The metrics given to `compile_with_metrics`.
    pub fn metrics(&self) -> &[Metric] {
        self.compiled.as_ref().map_or(&[], |c| c.metrics.as_slice())
    }

    /// Changes the learning rate of the compiled optimizer, keeping its state (Keras'
    /// `model.optimizer.learning_rate = ...`; what learning-rate callbacks do).
    ///
    /// # Errors
    /// [`Error::Model`] before `compile`; [`Error::InvalidArgument`] for a negative or
    /// non-finite rate.
    pub fn set_learning_rate(&mut self, learning_rate: f32) -> Result<()> {
        let Some(compiled) = self.compiled.as_mut() else {
            return Err(Error::Model {
                model: self.name.clone(),
                message: "set_learning_rate needs a compiled optimizer".into(),
            });
        };
        let changed = compiled.optimizer.with_learning_rate(learning_rate);
        changed.validate()?;
        compiled.optimizer = changed;
        Ok(())
    }

    pub(super) fn compiled(&self, operation: &str) -> Result<&Compiled> {
        match &self.compiled {
            // A `Sequential` whose input shape is not known yet has no graph: its one loss
            // waits for its one output.
            Some(compiled)
                if compiled.losses.len() == self.outputs.len() || self.outputs.is_empty() =>
            {
                Ok(compiled)
            }
            Some(compiled) => Err(self.error(format!(
                "{operation}: the model was compiled with {} losses but has {} outputs; compile it again",
                compiled.losses.len(),
                self.outputs.len()
            ))),
            None => Err(self.error(format!(
                "{operation} needs an optimizer and a loss: call `compile` first"
            ))),
        }
    }

    /// The names under which the metrics are reported, output by output: the metric's name,
    /// or `{output}_{name}` with several outputs (Keras 2).
    fn metric_names(&self) -> Vec<String> {
        let metrics = self.metrics();
        if self.outputs.len() <= 1 {
            return metrics.iter().map(|m| m.name().to_string()).collect();
        }
        self.output_names()
            .iter()
            .flat_map(|output| {
                metrics
                    .iter()
                    .map(move |m| format!("{output}_{}", m.name()))
            })
            .collect()
    }
}

/// Checks done before anything is built or trained.
impl Model {
    /// The checks `fit` makes before it builds or trains anything: compiled, options valid,
    /// `x` and `validation_data` not empty, a `validation_split` that leaves samples on
    /// both sides. A `Sequential` calls it before building its layers.
    pub(super) fn check_fit_call(&self, options: &FitOptions, x: &[Tensor]) -> Result<()> {
        self.compiled("fit")?;
        options.validate()?;
        let rows = |x: &[Tensor]| x.first().and_then(|t| t.shape().first().copied());
        self.check_not_empty("fit", "x", rows(x))?;
        match &options.validation_data {
            Some((vx, _)) => self.check_not_empty("fit", "validation_data", rows(vx))?,
            None if options.validation_split > 0.0 => {
                self.split_point(rows(x).unwrap_or(0), options.validation_split)?;
            }
            None => {}
        }
        Ok(())
    }

    /// The checks `train_on_batch` and `evaluate` make before they build anything: compiled,
    /// a positive `batch_size`, a first input that holds samples.
    pub(super) fn check_data_call(
        &self,
        operation: &str,
        x: &Tensor,
        batch_size: usize,
    ) -> Result<()> {
        self.compiled(operation)?;
        if batch_size == 0 {
            return Err(Error::invalid_argument(
                operation,
                "batch_size",
                0,
                "a positive number of samples",
            ));
        }
        self.check_not_empty(operation, "x", x.shape().first().copied())
    }

    /// [`Error::Model`] when the data holds no sample (`rows == Some(0)`): a loss over
    /// nothing is not a number (Keras 2: `Expected input data to be non-empty`).
    pub(super) fn check_not_empty(
        &self,
        operation: &str,
        what: &str,
        rows: Option<usize>,
    ) -> Result<()> {
        if rows == Some(0) {
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

    /// Conforms the inputs, checks the targets against the outputs, the losses and the
    /// metrics, and every id against the layers that read the inputs, so that bad data never
    /// trains half an epoch.
    fn checked_data(&self, x: Vec<Tensor>, y: Vec<Tensor>, operation: &str) -> Result<Data> {
        let (x, rows) = self.conform_inputs(x, operation)?;
        self.check_not_empty(operation, "x", Some(rows))?;
        let y = self.check_targets(y, &x, rows)?;
        self.check_ids(&x)?;
        Ok(Data { x, y })
    }

    /// Checks the targets (one per output) against the output shapes for inputs `x`, the
    /// losses and the metrics.
    fn check_targets(&self, y: Vec<Tensor>, x: &[Tensor], rows: usize) -> Result<Vec<ArrayD<f32>>> {
        let compiled = self.compiled("fit")?;
        if y.len() != self.outputs.len() {
            return Err(self.error(format!(
                "received {} target arrays, but the model has {} outputs ({:?})",
                y.len(),
                self.outputs.len(),
                self.output_names()
            )));
        }
        let input_shapes: Vec<_> = x.iter().map(Tensor::keras_shape).collect();
        let shapes = self.node_shapes_for(&input_shapes)?;
        y.into_iter()
            .zip(self.outputs.iter().zip(&compiled.losses))
            .map(|(target, (&output, &loss))| {
                let targets = target.shape().first().copied();
                if target.ndim() == 0 || targets != Some(rows) {
                    return Err(self.error(format!(
                        "x has {rows} samples but y has {}: give one target per sample",
                        targets.map_or("no batch axis".to_string(), |t| t.to_string())
                    )));
                }
                // Lengths still unknown (a sequence a layer does not fix) are the targets'.
                let given = target.shape().to_vec();
                let mut shape: Vec<usize> = shapes[output]
                    .iter()
                    .enumerate()
                    .map(|(axis, d)| d.unwrap_or_else(|| given.get(axis).copied().unwrap_or(0)))
                    .collect();
                if let Some(first) = shape.first_mut() {
                    *first = rows;
                }
                let target = loss.check_targets(target, &shape)?;
                // So that a metric that cannot read these targets fails before any step.
                for metric in &compiled.metrics {
                    metric.check_shapes(&shape, target.shape())?;
                }
                Ok(target)
            })
            .collect()
    }
}

/// `fit`, `train_on_batch`, `evaluate`.
impl Model {
    /// Trains the model (Keras' `fit`): one array per input and one per output, `epochs`
    /// passes in batches, each batch one optimizer step. Reports `loss`, with several outputs
    /// each output's `{output}_loss`, the metrics, and with validation data their `val_`
    /// twins.
    ///
    /// # Errors
    /// [`Error::Model`] before `compile`, for the wrong number of arrays, different sample
    /// counts, zero samples (in `x` or `validation_data`), or a `validation_split` that
    /// leaves no training or no validation sample; [`Error::InvalidArgument`] for
    /// `batch_size == 0` or `validation_split` outside `[0, 1)`; [`Error::IncompatibleShape`]
    /// for an input or a target of the wrong shape; the losses' label errors; the layers'
    /// input errors (every id is checked before the first step); [`Error::NonFiniteLoss`]
    /// naming the epoch and batch where the loss stopped being finite (the weights are
    /// those after the last good step). Nothing changes when an error is found before
    /// training starts.
    pub fn fit(&mut self, x: Vec<Tensor>, y: Vec<Tensor>, options: FitOptions) -> Result<History> {
        self.fit_with_callbacks(x, y, options, &mut [])
    }

    /// [`Model::fit`] with callbacks (Keras' `fit(callbacks=[...])`): each runs at the start
    /// and end of training and of every epoch, in order, and may stop training (see
    /// [`crate::model::callbacks`]).
    ///
    /// # Errors
    /// Those of [`Model::fit`], any error a callback returns (training stops there; the
    /// weights are those of the last finished step), and [`Error::Model`] when a callback
    /// compiles the model again with other metrics.
    pub fn fit_with_callbacks(
        &mut self,
        x: Vec<Tensor>,
        y: Vec<Tensor>,
        options: FitOptions,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<History> {
        let history = self.fit_loop(x, y, options, callbacks);
        // The buffers the steps reused are batch-sized: the model does not keep them.
        self.release_buffers();
        history
    }

    /// The training loop of [`Model::fit_with_callbacks`].
    fn fit_loop(
        &mut self,
        x: Vec<Tensor>,
        y: Vec<Tensor>,
        options: FitOptions,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<History> {
        self.check_fit_call(&options, &x)?;
        let data = self.checked_data(x, y, "fit")?;
        let (train, validation) = match &options.validation_data {
            Some((vx, vy)) => {
                let rows = vx.first().and_then(|t| t.shape().first().copied());
                self.check_not_empty("fit", "validation_data", rows)?;
                let validation = self.checked_data(vx.clone(), vy.clone(), "fit")?;
                (data, Some(validation))
            }
            None if options.validation_split > 0.0 => {
                let n = data.len();
                let split = self.split_point(n, options.validation_split)?;
                let head: Vec<usize> = (0..split).collect();
                let tail: Vec<usize> = (split..n).collect();
                (data.batch(&head), Some(data.batch(&tail)))
            }
            None => (data, None),
        };

        // Frozen weights do not change during the call: their penalty is computed once.
        let fixed_penalty = penalty(&self.layers, false);
        let mut rng = match options.seed {
            Some(seed) => ChaCha8Rng::seed_from_u64(seed),
            None => ChaCha8Rng::from_rng(&mut rand::rng()),
        };
        let n = train.len();
        let mut progress = Progress::new(
            options.verbose,
            options.epochs,
            n.div_ceil(options.batch_size),
        );
        let several = self.outputs.len() > 1;
        let loss_names: Vec<String> = self
            .output_names()
            .iter()
            .map(|n| format!("{n}_loss"))
            .collect();
        let metric_names = self.metric_names();
        let metrics = self.metrics().to_vec();
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
            if options.shuffle {
                order.shuffle(&mut rng);
            }
            progress.epoch_start(epoch);
            let mut totals = Totals::new(self.outputs.len(), &metrics);
            let mut stop = false;
            for (b, indices) in order.chunks(options.batch_size).enumerate() {
                // A callback may have changed the learning rate (before the epoch or after
                // the last batch): the next step uses it, as in Keras.
                let compiled = self.compiled("fit")?;
                let optimizer = compiled.optimizer;
                if compiled.metrics != metrics {
                    // A callback compiled the model again with other metrics: the running
                    // metrics of this epoch would be attributed to the wrong names.
                    let error = self.error(
                        "compile was called during fit with other metrics: compile before fit, or keep the metrics".into(),
                    );
                    flush_lazy_rows(&mut self.layers, &mut self.training, optimizer);
                    return Err(error);
                }
                let batch = train.batch_into(indices, &mut self.scratch);
                let step = match self.train_step(&batch.x, &batch.y, optimizer, fixed_penalty) {
                    Ok(step) => step,
                    Err(err) => {
                        flush_lazy_rows(&mut self.layers, &mut self.training, optimizer);
                        // An id error names its sample of `x`, not its row in the batch.
                        return Err(err.at_samples(indices));
                    }
                };
                totals.add_losses(step.loss, &step.each, indices.len());
                if let Err(err) = self.add_metrics(&mut totals.metrics, &step.outputs, &batch.y) {
                    flush_lazy_rows(&mut self.layers, &mut self.training, optimizer);
                    return Err(err);
                }
                self.recycle_outputs(step.outputs);
                for y in batch.y {
                    self.scratch.give(y.into_raw_vec_and_offset().0);
                }
                progress.batch(b + 1, totals.loss());
                if !callbacks.is_empty() {
                    let mut logs = vec![("loss".to_string(), totals.loss())];
                    if several {
                        logs.extend(loss_names.iter().cloned().zip(totals.each()));
                    }
                    logs.extend(metric_names.iter().cloned().zip(totals.metrics()));
                    for callback in callbacks.iter_mut() {
                        match callback.on_batch_end(b, &logs, self) {
                            Ok(control) => stop |= control == Control::Stop,
                            Err(err) => {
                                // The weights returned are Keras' weights after this step.
                                self.flush_lazy_rows();
                                return Err(err);
                            }
                        }
                    }
                }
                if !step.applied && !stop {
                    flush_lazy_rows(&mut self.layers, &mut self.training, optimizer);
                    return Err(Error::NonFiniteLoss {
                        loss: step.loss,
                        epoch,
                        batch: b + 1,
                    });
                }
                if stop {
                    // Keras ends the epoch at once, then validates and logs it.
                    break;
                }
            }
            // The rate in force at the epoch's end (Keras' callbacks log it before they
            // change it).
            let optimizer = self.compiled("fit")?.optimizer;
            let epoch_loss = totals.loss();
            history.loss.push(epoch_loss);
            let mut logged = vec![("loss".to_string(), epoch_loss)];
            if several {
                for (name, value) in loss_names.iter().zip(totals.each()) {
                    history.record_output_loss(name, value);
                    logged.push((name.clone(), value));
                }
            }
            logged.extend(metric_names.iter().cloned().zip(totals.metrics()));
            if let Some(v) = &validation {
                flush_lazy_rows(&mut self.layers, &mut self.training, optimizer);
                let totals = self.evaluate_data(v, options.batch_size, fixed_penalty)?;
                history.val_loss.push(totals.loss());
                logged.push(("val_loss".to_string(), totals.loss()));
                if several {
                    let names = loss_names.iter().map(|n| format!("val_{n}"));
                    logged.extend(names.zip(totals.each()));
                }
                let names = metric_names.iter().map(|n| format!("val_{n}"));
                logged.extend(names.zip(totals.metrics()));
            }
            if log_rate {
                logged.push(("lr".to_string(), optimizer.learning_rate()));
            }
            for (name, value) in &logged {
                let recorded =
                    name == "loss" || name == "val_loss" || (several && loss_names.contains(name));
                if !recorded {
                    history.record(name, *value);
                }
            }
            progress.epoch_end(&logged);
            if !callbacks.is_empty() {
                // Callbacks read and write the weights Keras has.
                flush_lazy_rows(&mut self.layers, &mut self.training, optimizer);
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

    /// One optimizer step on one batch (Keras' `train_on_batch`): returns the total loss
    /// computed before the step.
    ///
    /// With momentum (`SGD` or `RMSprop` with `momentum > 0`), Keras keeps moving embedding
    /// rows the batch did not touch; each call brings those rows up to date before returning,
    /// which costs a pass over the table. `fit` does that once per call, not once per batch,
    /// so prefer it for large tables.
    ///
    /// The model keeps a few batch-sized buffers from one call to the next, so that a loop of
    /// steps allocates no fresh memory; [`Model::release_buffers`] frees them.
    ///
    /// # Errors
    /// Those of [`Model::fit`] (zero samples included: Keras 2 returns a loss of 0 there,
    /// ndkeras refuses); a failed step changes nothing.
    pub fn train_on_batch(&mut self, x: Vec<Tensor>, y: Vec<Tensor>) -> Result<f32> {
        let optimizer = self.compiled("train_on_batch")?.optimizer;
        if let Some(first) = x.first() {
            self.check_data_call("train_on_batch", first, DEFAULT_BATCH_SIZE)?;
        }
        let data = self.checked_data(x, y, "train_on_batch")?;
        let fixed_penalty = penalty(&self.layers, false);
        let result = self.train_step(&data.x, &data.y, optimizer, fixed_penalty);
        self.flush_lazy_rows();
        match result {
            Ok(step) if step.applied => {
                self.recycle_outputs(step.outputs);
                Ok(step.loss)
            }
            Ok(step) => Err(Error::NonFiniteLoss {
                loss: step.loss,
                epoch: 1,
                batch: 1,
            }),
            Err(err) => Err(err),
        }
    }

    /// The loss on `(x, y)` in batches of 32 with inference behaviour (no dropout), and the
    /// metrics, by Keras' names (Keras' `evaluate(..., return_dict=True)`): `("loss",
    /// total)` first (the weighted sum of the outputs' losses plus every weight's
    /// regularization penalty, frozen ones included), then with several outputs each
    /// `("{output}_loss", value)`, then the metrics.
    ///
    /// # Errors
    /// Those of [`Model::fit`] that concern the data (zero samples included).
    pub fn evaluate(&mut self, x: Vec<Tensor>, y: Vec<Tensor>) -> Result<Vec<(String, f32)>> {
        self.evaluate_with_batch_size(x, y, DEFAULT_BATCH_SIZE)
    }

    /// [`Model::evaluate`] with another batch size (the same result up to rounding).
    ///
    /// # Errors
    /// Those of [`Model::evaluate`], and [`Error::InvalidArgument`] for `batch_size == 0`.
    pub fn evaluate_with_batch_size(
        &mut self,
        x: Vec<Tensor>,
        y: Vec<Tensor>,
        batch_size: usize,
    ) -> Result<Vec<(String, f32)>> {
        self.compiled("evaluate")?;
        if let Some(first) = x.first() {
            self.check_data_call("evaluate", first, batch_size)?;
        }
        let data = self.checked_data(x, y, "evaluate")?;
        let fixed_penalty = penalty(&self.layers, false);
        let totals = self.evaluate_data(&data, batch_size, fixed_penalty)?;
        let mut results = vec![("loss".to_string(), totals.loss())];
        if self.outputs.len() > 1 {
            let names = self.output_names().into_iter().map(|n| format!("{n}_loss"));
            results.extend(names.zip(totals.each()));
        }
        results.extend(self.metric_names().into_iter().zip(totals.metrics()));
        Ok(results)
    }

    /// Brings every lazily kept row up to date, so that the weights read are Keras' weights.
    pub(crate) fn flush_lazy_rows(&mut self) {
        if let Some(optimizer) = self.optimizer().copied() {
            flush_lazy_rows(&mut self.layers, &mut self.training, optimizer);
        }
    }

    /// The losses and metrics on `data` with inference behaviour; the loss includes the
    /// penalties (`fixed_penalty` for the frozen weights).
    fn evaluate_data(
        &mut self,
        data: &Data,
        batch_size: usize,
        fixed_penalty: f32,
    ) -> Result<Totals> {
        let mut totals = Totals::new(self.outputs.len(), self.metrics());
        let all: Vec<usize> = (0..data.len()).collect();
        for indices in all.chunks(batch_size) {
            let batch = data.batch(indices);
            let start = indices.first().copied().unwrap_or(0);
            let values = self
                .run(&batch.x, Some(false))
                .map_err(|e| e.offset_batch(start))?;
            let (loss, each, _) = self.losses_of(&values, &batch.y, &mut Scratch::default())?;
            totals.add_losses(loss, &each, indices.len());
            let outputs = self.output_values(values)?;
            self.add_metrics(&mut totals.metrics, &outputs, &batch.y)?;
        }
        totals.penalty = penalty(&self.layers, true) + fixed_penalty;
        Ok(totals)
    }

    /// Adds one batch's predictions to each metric's state (output by output).
    fn add_metrics(
        &self,
        states: &mut [MetricState],
        outputs: &[Tensor],
        targets: &[ArrayD<f32>],
    ) -> Result<()> {
        let metrics = self.metrics();
        if metrics.is_empty() {
            return Ok(());
        }
        for ((output, target), states) in outputs
            .iter()
            .zip(targets)
            .zip(states.chunks_mut(metrics.len()))
        {
            let Some(prediction) = output.as_float() else {
                continue;
            };
            for (metric, state) in metrics.iter().zip(states) {
                state.update(metric, prediction, target, output.mask())?;
            }
        }
        Ok(())
    }
}
