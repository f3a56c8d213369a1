//! Callbacks for [`Model::fit_with_callbacks`] and
//! [`Sequential::fit_with_callbacks`](crate::model::Sequential::fit_with_callbacks) (Keras'
//! `fit(callbacks=[...])`): code that runs at the start and end of training, of every epoch
//! and after every batch, sees the logs (`loss`, each output's loss, the metrics, `val_*`,
//! `lr`) and the model (a `Sequential` is seen as the [`Model`] it is), and may stop
//! training.
//!
//! Built in, with Keras' parameters, defaults and rules, each checked against tf_keras 2.21
//! (`tests/keras_callbacks.rs`): [`EarlyStopping`], [`ModelCheckpoint`],
//! [`LearningRateScheduler`], [`ReduceLROnPlateau`], [`TerminateOnNaN`] and [`CsvLogger`]
//! (Keras' `CSVLogger`). A callback of your own implements [`Callback`].
//!
//! One difference from Keras: the `lr` entry is in the logs before any callback sees them
//! (Keras adds it in its learning-rate callbacks' `on_epoch_end`, so only the callbacks after
//! them in the list see it).
//!
//! ```
//! use ndarray::array;
//! use ndkeras::model::callbacks::{Callback, Control, EarlyStopping};
//! use ndkeras::prelude::*;
//!
//! /// Records the loss of every epoch.
//! struct Losses(Vec<f32>);
//!
//! impl Callback for Losses {
//!     fn on_epoch_end(&mut self, _epoch: usize, logs: &[(String, f32)], _model: &mut Model) -> ndkeras::Result<Control> {
//!         self.0.extend(logs.iter().find(|(k, _)| k == "loss").map(|(_, v)| *v));
//!         Ok(Control::Continue)
//!     }
//! }
//!
//! let mut model = Sequential::new();
//! model.add(Embedding::new(10, 3).input_length(2))?;
//! model.add(GlobalAveragePooling1D::new())?;
//! model.add(Dense::new(1).activation(Activation::Sigmoid))?;
//! model.compile("sgd".parse()?, Loss::BinaryCrossentropy)?;
//! let (x, y) = (array![[1i64, 2], [3, 4]], array![[1.0f32], [0.0]]);
//! let mut losses = Losses(Vec::new());
//! let mut stop = EarlyStopping::new("loss").patience(1);
//! let options = FitOptions::default().epochs(5).verbose(0);
//! model.fit_with_callbacks(x, y, options, &mut [&mut losses, &mut stop])?;
//! assert_eq!(losses.0.len(), 5);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::PathBuf;

use ndarray::ArrayD;

use crate::error::{Error, Result};
use crate::model::functional::Model;

/// Whether training goes on after a callback (Keras' `model.stop_training`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Go on.
    Continue,
    /// Stop after this epoch.
    Stop,
}

/// Code that runs during `fit_with_callbacks`; it sees the model as a [`Model`] (a
/// `Sequential` is the chain of its layers). Epochs count from 0, as Keras
/// passes them. `logs` are the epoch's values by Keras' names (`loss`, each metric,
/// `val_loss`, `val_*`, and `lr` when a callback changed the learning rate).
pub trait Callback {
    /// Before the first epoch.
    ///
    /// # Errors
    /// Any error stops training and is returned by `fit`.
    fn on_train_begin(&mut self, model: &mut Model) -> Result<()> {
        let _ = model;
        Ok(())
    }

    /// Before each epoch (a learning-rate schedule sets the rate here).
    ///
    /// # Errors
    /// Any error stops training and is returned by `fit`.
    fn on_epoch_begin(&mut self, epoch: usize, model: &mut Model) -> Result<()> {
        let _ = (epoch, model);
        Ok(())
    }

    /// After each epoch, with its logs.
    ///
    /// # Errors
    /// Any error stops training and is returned by `fit`.
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &[(String, f32)],
        model: &mut Model,
    ) -> Result<Control>;

    /// After each training batch, with the epoch's running logs so far (`loss`, each output's
    /// loss, each metric: the means over the epoch's batches up to this one), as Keras'
    /// `on_train_batch_end`. Batches count from 0 in each epoch. Returning
    /// [`Control::Stop`] ends the epoch after this batch; it is still validated and logged,
    /// and training stops after it (Keras' `model.stop_training = True`).
    ///
    /// When this batch's loss is not finite, its update was not applied (ndkeras never writes
    /// a step computed from a loss that is not a number) and `fit` returns
    /// [`Error::NonFiniteLoss`] unless a callback stops training here, as [`TerminateOnNaN`]
    /// does. The weights seen here may lag behind for rows an optimizer with momentum keeps
    /// lazily; `on_epoch_end` sees them up to date.
    ///
    /// # Errors
    /// Any error stops training and is returned by `fit`.
    fn on_batch_end(
        &mut self,
        batch: usize,
        logs: &[(String, f32)],
        model: &mut Model,
    ) -> Result<Control> {
        let _ = (batch, logs, model);
        Ok(Control::Continue)
    }

    /// Whether the epoch's logs report the learning rate as `lr` (Keras' learning-rate
    /// callbacks add it). Default `false`.
    fn logs_learning_rate(&self) -> bool {
        false
    }

    /// After the last epoch (also when a callback stopped training).
    ///
    /// # Errors
    /// Any error is returned by `fit`.
    fn on_train_end(&mut self, model: &mut Model) -> Result<()> {
        let _ = model;
        Ok(())
    }
}

/// Whether a monitored value improves by going down or up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// `"auto"`: Keras' rule, which differs between callbacks: [`EarlyStopping`] goes up for
    /// names ending in `acc`, `accuracy` or `auc`; [`ModelCheckpoint`] and
    /// [`ReduceLROnPlateau`] for names containing `acc` (and `fmeasure*` for the checkpoint),
    /// so they minimise `val_auc` unless told [`Mode::Max`]. Down otherwise.
    #[default]
    Auto,
    /// `"min"`: lower is better.
    Min,
    /// `"max"`: higher is better.
    Max,
}

impl Mode {
    /// Whether higher is better for `monitor`, with EarlyStopping's "auto" rule.
    fn maximizes(self, monitor: &str) -> bool {
        self.maximizes_when(monitor, |m| {
            ["acc", "accuracy", "auc"]
                .iter()
                .any(|end| m.ends_with(end))
        })
    }

    /// Whether higher is better for `monitor`, `auto` deciding by the callback's own rule.
    fn maximizes_when(self, monitor: &str, auto: impl Fn(&str) -> bool) -> bool {
        match self {
            Mode::Min => false,
            Mode::Max => true,
            Mode::Auto => auto(monitor),
        }
    }
}

/// The value of `monitor` in `logs`.
///
/// # Errors
/// [`Error::InvalidArgument`] naming `owner` and the logs there are.
fn monitored(logs: &[(String, f32)], monitor: &str, owner: &str) -> Result<f32> {
    logs.iter()
        .find(|(k, _)| k == monitor)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = logs.iter().map(|(k, _)| k.as_str()).collect();
            Error::invalid_argument(
                owner,
                "monitor",
                monitor,
                format!("one of the epoch's logs {names:?}"),
            )
        })
}

/// Stops training when a monitored value has stopped improving (Keras' `EarlyStopping`).
///
/// An epoch improves when its value beats the best so far by more than `min_delta`
/// (`value + min_delta < best` for a value that should go down). After `patience` epochs
/// without improvement (counted from `start_from_epoch`), training stops; with
/// `restore_best_weights`, the weights of the best epoch are put back when training ends,
/// stopped early or not (as tf_keras 2.21 does). With a `baseline`, an epoch only resets the
/// patience when it also beats the baseline.
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    monitor: String,
    min_delta: f32,
    patience: usize,
    mode: Mode,
    baseline: Option<f32>,
    restore_best_weights: bool,
    start_from_epoch: usize,
    // State, as Keras names it.
    wait: usize,
    stopped_epoch: usize,
    best: f32,
    best_epoch: usize,
    best_weights: Option<Vec<ArrayD<f32>>>,
}

impl EarlyStopping {
    /// Watches `monitor` (`"val_loss"` is Keras' default) with Keras' defaults: `min_delta`
    /// 0, `patience` 0, mode auto, no baseline, no restore, from epoch 0.
    pub fn new(monitor: impl Into<String>) -> EarlyStopping {
        EarlyStopping {
            monitor: monitor.into(),
            min_delta: 0.0,
            patience: 0,
            mode: Mode::Auto,
            baseline: None,
            restore_best_weights: false,
            start_from_epoch: 0,
            wait: 0,
            stopped_epoch: 0,
            best: f32::INFINITY,
            best_epoch: 0,
            best_weights: None,
        }
    }

    /// The least change that counts as an improvement (its absolute value). Default 0.
    pub fn min_delta(mut self, min_delta: f32) -> Self {
        self.min_delta = min_delta.abs();
        self
    }

    /// Epochs without improvement before stopping. Default 0.
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }

    /// Whether the value should go down or up. Default auto.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// A value to beat before the patience resets. Default none.
    pub fn baseline(mut self, baseline: f32) -> Self {
        self.baseline = Some(baseline);
        self
    }

    /// Put back the best epoch's weights when training stops. Default `false`.
    pub fn restore_best_weights(mut self, restore: bool) -> Self {
        self.restore_best_weights = restore;
        self
    }

    /// The first epoch (from 0) that is watched. Default 0.
    pub fn start_from_epoch(mut self, epoch: usize) -> Self {
        self.start_from_epoch = epoch;
        self
    }

    /// The epoch (from 0) at which training was stopped; 0 when it was not.
    pub fn stopped_epoch(&self) -> usize {
        self.stopped_epoch
    }

    /// The best value seen.
    pub fn best(&self) -> f32 {
        self.best
    }

    /// The epoch (from 0) of the best value.
    pub fn best_epoch(&self) -> usize {
        self.best_epoch
    }

    fn is_improvement(&self, value: f32, reference: f32) -> bool {
        if self.mode.maximizes(&self.monitor) {
            value - self.min_delta > reference
        } else {
            value + self.min_delta < reference
        }
    }
}

impl Callback for EarlyStopping {
    fn on_train_begin(&mut self, _model: &mut Model) -> Result<()> {
        self.wait = 0;
        self.stopped_epoch = 0;
        self.best = if self.mode.maximizes(&self.monitor) {
            f32::NEG_INFINITY
        } else {
            f32::INFINITY
        };
        self.best_epoch = 0;
        self.best_weights = None;
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &[(String, f32)],
        model: &mut Model,
    ) -> Result<Control> {
        let current = monitored(logs, &self.monitor, "EarlyStopping")?;
        if epoch < self.start_from_epoch {
            return Ok(Control::Continue);
        }
        if self.restore_best_weights && self.best_weights.is_none() {
            self.best_weights = Some(model.try_get_weights()?);
        }
        self.wait += 1;
        if self.is_improvement(current, self.best) {
            self.best = current;
            self.best_epoch = epoch;
            if self.restore_best_weights {
                self.best_weights = Some(model.try_get_weights()?);
            }
            if self
                .baseline
                .is_none_or(|baseline| self.is_improvement(current, baseline))
            {
                self.wait = 0;
            }
            return Ok(Control::Continue);
        }
        if self.wait >= self.patience && epoch > 0 {
            self.stopped_epoch = epoch;
            self.restore(model)?;
            return Ok(Control::Stop);
        }
        Ok(Control::Continue)
    }

    fn on_train_end(&mut self, model: &mut Model) -> Result<()> {
        self.restore(model)
    }
}

impl EarlyStopping {
    /// Puts back the best epoch's weights, if they were kept.
    fn restore(&mut self, model: &mut Model) -> Result<()> {
        match self.best_weights.take() {
            Some(best) => model.set_weights(best),
            None => Ok(()),
        }
    }
}

/// Saves the model's weights after epochs (Keras' `ModelCheckpoint` with
/// `save_weights_only=True`): every epoch, or with `save_best_only` only when the monitored
/// value improves. Each save is atomic (see [`Model::save_weights`]). A `{epoch}` in
/// the path is replaced by the epoch number, counted from 1 as Keras formats it.
#[derive(Debug, Clone)]
pub struct ModelCheckpoint {
    path: PathBuf,
    monitor: String,
    save_best_only: bool,
    mode: Mode,
    best: Option<f32>,
    saved: Vec<usize>,
}

impl ModelCheckpoint {
    /// Saves to `path` (a `.npz`), monitoring `val_loss` as Keras does by default, every
    /// epoch.
    pub fn new(path: impl Into<PathBuf>) -> ModelCheckpoint {
        ModelCheckpoint {
            path: path.into(),
            monitor: "val_loss".into(),
            save_best_only: false,
            mode: Mode::Auto,
            best: None,
            saved: Vec::new(),
        }
    }

    /// The value `save_best_only` watches. Default `val_loss`.
    pub fn monitor(mut self, monitor: impl Into<String>) -> Self {
        self.monitor = monitor.into();
        self
    }

    /// Save only when the monitored value improves. Default `false`.
    pub fn save_best_only(mut self, save_best_only: bool) -> Self {
        self.save_best_only = save_best_only;
        self
    }

    /// Whether the value should go down or up. Default auto.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// The epochs (from 0) after which the weights were saved.
    pub fn saved_epochs(&self) -> &[usize] {
        &self.saved
    }
}

impl Callback for ModelCheckpoint {
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &[(String, f32)],
        model: &mut Model,
    ) -> Result<Control> {
        if self.save_best_only {
            let current = monitored(logs, &self.monitor, "ModelCheckpoint")?;
            // Keras' ModelCheckpoint has its own "auto" rule: up when the name contains
            // "acc" or starts with "fmeasure" (so `val_auc` goes down, as in Keras).
            let up = self.mode.maximizes_when(&self.monitor, |m| {
                m.contains("acc") || m.starts_with("fmeasure")
            });
            let better = match self.best {
                None => true,
                Some(best) => (up && current > best) || (!up && current < best),
            };
            if !better {
                return Ok(Control::Continue);
            }
            self.best = Some(current);
        }
        let path = self
            .path
            .to_string_lossy()
            .replace("{epoch}", &(epoch + 1).to_string());
        model.save_weights(path)?;
        self.saved.push(epoch);
        Ok(Control::Continue)
    }
}

/// Sets the learning rate before each epoch from `schedule(epoch, current_rate)` (Keras'
/// `LearningRateScheduler`); the rate is reported as `lr` in the logs.
pub struct LearningRateScheduler {
    schedule: Box<dyn FnMut(usize, f32) -> f32>,
}

impl LearningRateScheduler {
    /// A schedule: epoch (from 0) and current rate -> new rate.
    pub fn new(schedule: impl FnMut(usize, f32) -> f32 + 'static) -> LearningRateScheduler {
        LearningRateScheduler {
            schedule: Box::new(schedule),
        }
    }
}

impl std::fmt::Debug for LearningRateScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LearningRateScheduler")
    }
}

impl Callback for LearningRateScheduler {
    fn logs_learning_rate(&self) -> bool {
        true
    }

    fn on_epoch_begin(&mut self, epoch: usize, model: &mut Model) -> Result<()> {
        let Some(current) = model.optimizer().map(|o| o.learning_rate()) else {
            return Ok(());
        };
        let next = (self.schedule)(epoch, current);
        model.set_learning_rate(next)
    }

    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        _logs: &[(String, f32)],
        _model: &mut Model,
    ) -> Result<Control> {
        Ok(Control::Continue)
    }
}

/// Ends training at the first batch whose loss is not a number or infinite, without an error
/// (Keras' `TerminateOnNaN`): that epoch is still validated, logged (its `loss` is then NaN
/// or infinite, as in Keras) and seen by `on_epoch_end`, then `fit` returns its
/// [`History`](crate::model::History).
///
/// Without it, `fit` returns [`Error::NonFiniteLoss`] naming the epoch and batch. Either way
/// the step computed from that loss is not applied: the weights are those after the last
/// finite step (Keras applies it, which usually fills the weights with NaN or infinities).
#[derive(Debug, Clone, Default)]
pub struct TerminateOnNaN {
    stopped_at: Option<(usize, usize)>,
    epoch: usize,
}

impl TerminateOnNaN {
    /// The callback.
    pub fn new() -> TerminateOnNaN {
        TerminateOnNaN::default()
    }

    /// Where it stopped training, if it did: the epoch and the batch in it, counted from 0.
    pub fn stopped_at(&self) -> Option<(usize, usize)> {
        self.stopped_at
    }
}

impl Callback for TerminateOnNaN {
    fn on_train_begin(&mut self, _model: &mut Model) -> Result<()> {
        self.stopped_at = None;
        Ok(())
    }

    fn on_epoch_begin(&mut self, epoch: usize, _model: &mut Model) -> Result<()> {
        self.epoch = epoch;
        Ok(())
    }

    fn on_batch_end(
        &mut self,
        batch: usize,
        logs: &[(String, f32)],
        _model: &mut Model,
    ) -> Result<Control> {
        // Keras looks at the epoch's running loss, which is not finite from the first batch
        // whose loss is not.
        match logs.iter().find(|(k, _)| k == "loss") {
            Some((_, loss)) if !loss.is_finite() => {
                self.stopped_at = Some((self.epoch, batch));
                Ok(Control::Stop)
            }
            _ => Ok(Control::Continue),
        }
    }

    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        _logs: &[(String, f32)],
        _model: &mut Model,
    ) -> Result<Control> {
        Ok(Control::Continue)
    }
}

/// Lowers the learning rate when a monitored value has stopped improving (Keras'
/// `ReduceLROnPlateau`), with Keras' defaults: `monitor="val_loss"`, `factor=0.1`,
/// `patience=10`, `min_delta=1e-4`, `cooldown=0`, `min_lr=0`, mode "auto".
///
/// After each epoch: an epoch improves when its value beats the best so far by more than
/// `min_delta`; in the `cooldown` epochs after a reduction, the wait does not grow; after
/// `patience` epochs without improvement, the rate becomes `max(rate * factor, min_lr)`, if
/// it is still above `min_lr` (compared in float32, as Keras does). The logs and
/// [`History`](crate::model::History) report the rate of each epoch as `lr`; a reduction
/// decided at the end of an epoch applies from the next one.
///
/// Keras' rule for mode "auto" differs from [`EarlyStopping`]'s and is kept: the value goes
/// up when the monitor's name contains `acc`, down otherwise (so `val_auc` is minimised
/// unless the mode is set to [`Mode::Max`]).
#[derive(Debug, Clone)]
pub struct ReduceLROnPlateau {
    monitor: String,
    factor: f32,
    patience: usize,
    mode: Mode,
    min_delta: f32,
    cooldown: usize,
    min_lr: f32,
    best: f32,
    wait: usize,
    cooldown_counter: usize,
}

impl ReduceLROnPlateau {
    /// Watches `monitor` (Keras' default is `"val_loss"`), with Keras' other defaults.
    pub fn new(monitor: impl Into<String>) -> ReduceLROnPlateau {
        ReduceLROnPlateau {
            monitor: monitor.into(),
            factor: 0.1,
            patience: 10,
            mode: Mode::Auto,
            min_delta: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
            best: f32::INFINITY,
            wait: 0,
            cooldown_counter: 0,
        }
    }

    /// The factor the rate is multiplied by, in `(0, 1)` (default 0.1).
    pub fn factor(mut self, factor: f32) -> Self {
        self.factor = factor;
        self
    }

    /// Epochs without improvement before a reduction (default 10).
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }

    /// Whether the value should go down or up (default [`Mode::Auto`], Keras' rule above).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// The least change that counts as an improvement (default 1e-4).
    pub fn min_delta(mut self, min_delta: f32) -> Self {
        self.min_delta = min_delta;
        self
    }

    /// Epochs after a reduction during which the wait does not grow (default 0).
    pub fn cooldown(mut self, cooldown: usize) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// The lowest rate (default 0).
    pub fn min_lr(mut self, min_lr: f32) -> Self {
        self.min_lr = min_lr;
        self
    }

    /// The best value seen so far.
    pub fn best(&self) -> f32 {
        self.best
    }

    /// Epochs since the last improvement or reduction.
    pub fn wait(&self) -> usize {
        self.wait
    }

    /// Epochs of cooldown left.
    pub fn cooldown_counter(&self) -> usize {
        self.cooldown_counter
    }

    fn maximizes(&self) -> bool {
        self.mode
            .maximizes_when(&self.monitor, |m| m.contains("acc"))
    }

    fn improves(&self, value: f32) -> bool {
        if self.maximizes() {
            value > self.best + self.min_delta
        } else {
            value < self.best - self.min_delta
        }
    }
}

impl Default for ReduceLROnPlateau {
    fn default() -> Self {
        ReduceLROnPlateau::new("val_loss")
    }
}

impl Callback for ReduceLROnPlateau {
    fn logs_learning_rate(&self) -> bool {
        true
    }

    fn on_train_begin(&mut self, _model: &mut Model) -> Result<()> {
        // Keras raises for factor >= 1; a factor of 0 or less (or NaN) is no rate either.
        if !(self.factor > 0.0 && self.factor < 1.0) {
            return Err(Error::invalid_argument(
                "ReduceLROnPlateau",
                "factor",
                self.factor,
                "a factor in (0, 1) (Keras: \"does not support a factor >= 1.0\")",
            ));
        }
        if !(self.min_lr >= 0.0 && self.min_lr.is_finite()) {
            return Err(Error::invalid_argument(
                "ReduceLROnPlateau",
                "min_lr",
                self.min_lr,
                "a finite rate >= 0",
            ));
        }
        self.best = if self.maximizes() {
            f32::NEG_INFINITY
        } else {
            f32::INFINITY
        };
        self.wait = 0;
        self.cooldown_counter = 0;
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        logs: &[(String, f32)],
        model: &mut Model,
    ) -> Result<Control> {
        let current = monitored(logs, &self.monitor, "ReduceLROnPlateau")?;
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.wait = 0;
        }
        if self.improves(current) {
            self.best = current;
            self.wait = 0;
        } else if self.cooldown_counter == 0 {
            self.wait += 1;
            if self.wait >= self.patience {
                let Some(rate) = model.optimizer().map(|o| o.learning_rate()) else {
                    return Ok(Control::Continue);
                };
                if rate > self.min_lr {
                    model.set_learning_rate((rate * self.factor).max(self.min_lr))?;
                    self.cooldown_counter = self.cooldown;
                    self.wait = 0;
                }
            }
        }
        Ok(Control::Continue)
    }
}

/// Writes each epoch's logs to a CSV file as it ends (Keras' `CSVLogger`), in Keras' format:
/// a header `epoch` then the log names in sorted order, one row per epoch (epochs counted
/// from 0), lines ended by `\r\n`, numbers as Python prints them (`0.6931471824645996`,
/// `1e-05`). Without validation data, Keras adds a `val_` column per log anyway, filled
/// with `NA`; so does ndkeras. The file is created (or truncated) when training begins;
/// with `append`, rows are added to an existing file and the header is written only when
/// the file is empty. Each row is flushed as it is written.
#[derive(Debug)]
pub struct CsvLogger {
    path: PathBuf,
    separator: char,
    append: bool,
    file: Option<std::fs::File>,
    keys: Option<Vec<String>>,
    header: bool,
}

impl CsvLogger {
    /// Logs to `path`, separated by commas, overwriting the file.
    pub fn new(path: impl Into<PathBuf>) -> CsvLogger {
        CsvLogger {
            path: path.into(),
            separator: ',',
            append: false,
            file: None,
            keys: None,
            header: true,
        }
    }

    /// The separator between values (default `,`).
    pub fn separator(mut self, separator: char) -> Self {
        self.separator = separator;
        self
    }

    /// Adds to an existing file instead of overwriting it (default `false`).
    pub fn append(mut self, append: bool) -> Self {
        self.append = append;
        self
    }

    fn io_error(&self, action: &str, source: std::io::Error) -> Error {
        Error::Io {
            path: self.path.display().to_string(),
            message: format!("CSVLogger: {action} the log failed: {source}"),
        }
    }

    fn write_row(&mut self, fields: &[String]) -> Result<()> {
        use std::io::Write as _;
        let mut line = String::new();
        for (k, field) in fields.iter().enumerate() {
            if k > 0 {
                line.push(self.separator);
            }
            line.push_str(&csv_field(field, self.separator));
        }
        line.push_str("\r\n");
        let result = match self.file.as_mut() {
            Some(file) => file.write_all(line.as_bytes()).and_then(|()| file.flush()),
            None => Ok(()),
        };
        result.map_err(|e| self.io_error("writing", e))
    }
}

impl Callback for CsvLogger {
    fn on_train_begin(&mut self, _model: &mut Model) -> Result<()> {
        let mut options = std::fs::OpenOptions::new();
        if self.append {
            // The header goes only into an empty (or new) file, as in Keras.
            self.header = std::fs::metadata(&self.path).map_or(true, |m| m.len() == 0);
            options.append(true).create(true);
        } else {
            self.header = true;
            options.write(true).create(true).truncate(true);
        }
        let file = options
            .open(&self.path)
            .map_err(|e| self.io_error("opening", e))?;
        self.file = Some(file);
        self.keys = None;
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &[(String, f32)],
        _model: &mut Model,
    ) -> Result<Control> {
        let keys = match self.keys.take() {
            Some(keys) => keys,
            None => {
                let mut keys: Vec<String> = logs.iter().map(|(k, _)| k.clone()).collect();
                keys.sort();
                if !keys.iter().any(|k| k.starts_with("val_")) {
                    let validation: Vec<String> = keys.iter().map(|k| format!("val_{k}")).collect();
                    keys.extend(validation);
                }
                if self.header {
                    let mut header = vec!["epoch".to_string()];
                    header.extend(keys.iter().cloned());
                    self.write_row(&header)?;
                }
                keys
            }
        };
        let mut row = vec![epoch.to_string()];
        row.extend(keys.iter().map(|key| {
            logs.iter().find(|(k, _)| k == key).map_or_else(
                || "NA".to_string(),
                // Keras logs the rate as a NumPy float32, the rest as Python floats.
                |(k, v)| {
                    if k == "lr" {
                        numpy_float32(*v)
                    } else {
                        python_float(*v)
                    }
                },
            )
        }));
        self.keys = Some(keys);
        self.write_row(&row)?;
        Ok(Control::Continue)
    }

    fn on_train_end(&mut self, _model: &mut Model) -> Result<()> {
        self.file = None;
        Ok(())
    }
}

/// A CSV field quoted as Python's `csv` module quotes it (excel dialect, minimal quoting).
fn csv_field(field: &str, separator: char) -> String {
    if field.contains(separator) || field.contains(['"', '\r', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// `repr(float(value))` in Python: the shortest digits that read back as the same float64,
/// in fixed notation for decimal exponents from -4 to 15 and scientific notation otherwise.
fn python_float(value: f32) -> String {
    let wide = f64::from(value);
    let (sign, digits, exponent) = shortest(&format!("{wide:e}"), wide.is_sign_negative());
    if !wide.is_finite() {
        return special(wide);
    }
    let positional = (-4..16).contains(&exponent);
    notation(sign, &digits, exponent, positional)
}

/// `str(np.float32(value))` in NumPy 2: the shortest digits that read back as the same
/// float32, positional for magnitudes in `[1e-4, 1e6)` (and zero), scientific otherwise.
/// Keras logs the learning rate as a NumPy float32, and `CSVLogger` writes it so.
fn numpy_float32(value: f32) -> String {
    if !value.is_finite() {
        return special(f64::from(value));
    }
    let (sign, digits, exponent) = shortest(&format!("{value:e}"), value.is_sign_negative());
    let magnitude = f64::from(value.abs());
    let positional = magnitude == 0.0 || (1e-4..1e6).contains(&magnitude);
    notation(sign, &digits, exponent, positional)
}

/// NaN and the infinities as Python and NumPy print them.
fn special(value: f64) -> String {
    if value.is_nan() {
        "nan".into()
    } else if value > 0.0 {
        "inf".into()
    } else {
        "-inf".into()
    }
}

/// The sign, the significant digits and the decimal exponent of Rust's shortest round-trip
/// `{:e}` text (`-1.25e-3` gives `("-", "125", -3)`).
fn shortest(scientific: &str, negative: bool) -> (&'static str, String, i32) {
    let unsigned = scientific.trim_start_matches('-');
    let (mantissa, exponent) = unsigned.split_once('e').unwrap_or((unsigned, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    (if negative { "-" } else { "" }, digits, exponent)
}

/// Digits written positionally (`123.0`, `0.001`) or in Python's scientific notation
/// (`1.5e-05`, `1e+16`).
fn notation(sign: &str, digits: &str, exponent: i32, positional: bool) -> String {
    let body = if positional {
        if exponent >= 0 {
            let point = exponent as usize + 1;
            let mut whole = digits.to_string();
            while whole.len() < point {
                whole.push('0');
            }
            let (int, frac) = whole.split_at(point);
            format!("{int}.{}", if frac.is_empty() { "0" } else { frac })
        } else {
            format!("0.{}{digits}", "0".repeat((-exponent - 1) as usize))
        }
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let rest = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        format!("{first}{rest}e{exponent_sign}{:02}", exponent.abs())
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::{numpy_float32, python_float};

    #[test]
    fn floats_are_written_as_python_writes_them() {
        for (value, python) in [
            (0.5f32, "0.5"),
            (100.0, "100.0"),
            (0.688_262_8, "0.6882628202438354"),
            (1e-5, "9.999999747378752e-06"),
            (0.0001, "9.999999747378752e-05"),
            (0.001, "0.0010000000474974513"),
            (1.737_576_1e22, "1.7375761060723083e+22"),
            (1e16, "1.0000000272564224e+16"),
            (67_108_864.0, "67108864.0"),
            (0.0003, "0.0003000000142492354"),
            (123_456_790.0, "123456792.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (-2.5, "-2.5"),
            (f32::NAN, "nan"),
            (f32::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(python_float(value), python, "{value}");
        }
    }

    #[test]
    fn learning_rates_are_written_as_numpy_writes_a_float32() {
        for (value, numpy) in [
            (0.001f32, "0.001"),
            (1e-5, "1e-05"),
            (1e-4, "1e-04"),
            (0.00012, "0.00012"),
            (0.5, "0.5"),
            (100.0, "100.0"),
            (999_999.0, "999999.0"),
            (1e6, "1e+06"),
            (123_456_790.0, "1.2345679e+08"),
            (1e12, "1e+12"),
            (0.01, "0.01"),
            (2.5e-7, "2.5e-07"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (-1e-5, "-1e-05"),
            (f32::NAN, "nan"),
            (f32::INFINITY, "inf"),
        ] {
            assert_eq!(numpy_float32(value), numpy, "{value}");
        }
    }
}
