//! Callbacks for [`Model::fit_with_callbacks`] and [`Sequential::fit_with_callbacks`](crate::model::Sequential::fit_with_callbacks)
//! (Keras' `fit(callbacks=[...])`): code
//! that runs at the start and end of training and of every epoch, sees the epoch's logs
//! (`loss`, the metrics, `val_*`, `lr`) and the model, and may stop training.
//!
//! Built in, with Keras' parameters, defaults and rules: [`EarlyStopping`],
//! [`ModelCheckpoint`] and [`LearningRateScheduler`]. A callback of your own implements
//! [`Callback`].
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
    /// `"auto"`: up for names ending in `acc`, `accuracy` or `auc`, down otherwise (Keras).
    #[default]
    Auto,
    /// `"min"`: lower is better.
    Min,
    /// `"max"`: higher is better.
    Max,
}

impl Mode {
    /// Whether higher is better for `monitor`.
    fn maximizes(self, monitor: &str) -> bool {
        match self {
            Mode::Min => false,
            Mode::Max => true,
            Mode::Auto => ["acc", "accuracy", "auc"]
                .iter()
                .any(|end| monitor.ends_with(end)),
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
            let up = self.mode.maximizes(&self.monitor);
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
