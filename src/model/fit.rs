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

use ndarray::{ArrayD, Axis, IxDyn};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};
use crate::layer::{Gradient, attach_output_mask, check_mask_support};
use crate::losses::Loss;
use crate::model::history::History;
use crate::model::progress::Progress;
use crate::model::sequential::{DEFAULT_BATCH_SIZE, Sequential};
use crate::optimizers::{Optimizer, WeightState};
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
    /// Print a progress line per epoch (only to a terminal). Default: `true`.
    pub verbose: bool,
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
            verbose: true,
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

    /// Sets `verbose` (default `true`).
    pub fn verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }

    fn validate(&self) -> Result<()> {
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

/// The optimizer's step count and the slot variables of every trainable weight.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TrainingState {
    /// Steps taken (Keras' `optimizer.iterations`).
    step: u64,
    /// Per layer, per trainable weight.
    slots: Vec<Vec<WeightState>>,
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
        let (optimizer, loss) = self.compiled("fit")?;
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
        let fixed_penalty = self.fixed_penalty();
        let mut rng = match options.seed {
            Some(seed) => ChaCha8Rng::seed_from_u64(seed),
            None => ChaCha8Rng::from_rng(&mut rand::rng()),
        };
        let n = train.len();
        let batches = n.div_ceil(options.batch_size);
        let progress = Progress::new(options.verbose, options.epochs, batches);
        let mut history = History::default();
        let mut order: Vec<usize> = (0..n).collect();
        for epoch in 1..=options.epochs {
            if options.shuffle {
                order.shuffle(&mut rng);
            }
            let (mut weighted, mut seen) = (0.0f64, 0usize);
            for (b, indices) in order.chunks(options.batch_size).enumerate() {
                let (xb, yb) = train.batch(indices);
                let batch_loss = match self.train_step(&xb, &yb, optimizer, loss, fixed_penalty) {
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
                progress.batch(epoch, b + 1, (weighted / seen.max(1) as f64) as f32);
            }
            let epoch_loss = (weighted / seen.max(1) as f64) as f32;
            history.loss.push(epoch_loss);
            let val_loss = match &validation {
                Some(v) => {
                    self.flush_lazy_rows();
                    Some(self.evaluate_data(v, options.batch_size, loss, fixed_penalty)?)
                }
                None => None,
            };
            if let Some(v) = val_loss {
                history.val_loss.push(v);
            }
            progress.epoch_end(epoch_loss, val_loss);
        }
        self.flush_lazy_rows();
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
        let fixed_penalty = self.fixed_penalty();
        let result = self.train_step(&data.x, &data.y, optimizer, loss, fixed_penalty);
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
        if batch_size == 0 {
            return Err(Error::invalid_argument(
                "evaluate",
                "batch_size",
                0,
                "a positive number of samples",
            ));
        }
        let (x, y) = (x.into(), y.into());
        self.check_not_empty("evaluate", "x", &x)?;
        let data = self.checked_data(x, y, loss)?;
        let fixed_penalty = self.fixed_penalty();
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
        let y = match shape {
            Some(shape) => loss.check_targets(y, &shape)?,
            None => y.into_f32(),
        };
        Ok(Data { x, y })
    }

    /// Forward pass of every layer, returning each layer's input and the final output.
    fn forward_all(&mut self, x: &Tensor, training: bool) -> Result<(Vec<Tensor>, Tensor)> {
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
    fn loss_of(
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

    /// The sum of the regularization penalties of every trainable weight (they change at
    /// every step).
    fn regularization_penalty(&mut self) -> f32 {
        let mut total = 0.0;
        for layer in &mut self.layers {
            let regularizers = layer.weight_regularizers();
            for (weight, regularizer) in layer.trainable_weights_mut().iter().zip(regularizers) {
                if let Some(r) = regularizer {
                    total += r.penalty(&weight.view());
                }
            }
        }
        total
    }

    /// The sum of the regularization penalties of the weights training does not update:
    /// those of frozen layers (and of a table training cannot reach, such as a memory map).
    ///
    /// Keras adds them to the loss too: `add_loss` does not look at `trainable`, so a frozen
    /// `Embedding(3, 2, embeddings_regularizer=L2(0.1))` still adds `0.1 * sum(w^2)`. They
    /// are constant while training runs, so each call computes them once, reading the
    /// weights where they live ([`Layer::weight_views`](crate::layer::Layer::weight_views)).
    fn fixed_penalty(&mut self) -> f32 {
        let mut total = 0.0;
        for layer in &mut self.layers {
            let regularizers = layer.weight_regularizers();
            if regularizers.iter().all(Option::is_none)
                || (layer.is_trainable() && !layer.trainable_weights_mut().is_empty())
            {
                continue;
            }
            for (weight, regularizer) in layer.weight_views().iter().zip(regularizers) {
                if let Some(r) = regularizer {
                    total += r.penalty(weight);
                }
            }
        }
        total
    }

    fn evaluate_data(
        &mut self,
        data: &Data,
        batch_size: usize,
        loss: Loss,
        fixed_penalty: f32,
    ) -> Result<f32> {
        let n = data.len();
        let (mut weighted, mut seen) = (0.0f64, 0usize);
        let all: Vec<usize> = (0..n).collect();
        for indices in all.chunks(batch_size) {
            let (xb, yb) = data.batch(indices);
            let (_, output) = self
                .forward_all(&xb, false)
                .map_err(|e| e.offset_batch(indices[0]))?;
            let value = self.loss_of(&output, &yb, loss)?.value;
            weighted += f64::from(value) * indices.len() as f64;
            seen += indices.len();
        }
        Ok((weighted / seen.max(1) as f64) as f32 + self.regularization_penalty() + fixed_penalty)
    }

    /// Fresh slots when the layers' trainable weights changed (first step, new layers).
    /// All slots are allocated before any is replaced.
    ///
    /// # Errors
    /// [`Error::Allocation`] when the slots do not fit in memory; nothing changes then.
    fn ensure_slots(&mut self, optimizer: Optimizer) -> Result<()> {
        let shapes: Vec<Vec<Vec<usize>>> = self
            .layers
            .iter_mut()
            .map(|l| {
                l.trainable_weights_mut()
                    .iter()
                    .map(|w| w.shape().to_vec())
                    .collect()
            })
            .collect();
        let matches = self.training.slots.len() == shapes.len()
            && self
                .training
                .slots
                .iter()
                .zip(&shapes)
                .all(|(s, w)| s.len() == w.len());
        if !matches {
            self.training.slots = shapes
                .iter()
                .map(|layer| {
                    layer
                        .iter()
                        .map(|shape| optimizer.new_state(shape))
                        .collect::<Result<Vec<_>>>()
                })
                .collect::<Result<Vec<_>>>()?;
        }
        Ok(())
    }

    /// One step of Keras' `train_step`; returns the loss before the update, with the
    /// penalties of the trainable weights and `fixed_penalty` (those of the frozen ones).
    fn train_step(
        &mut self,
        x: &Tensor,
        y: &ArrayD<f32>,
        optimizer: Optimizer,
        loss: Loss,
        fixed_penalty: f32,
    ) -> Result<f32> {
        for layer in &self.layers {
            layer.check_trainable()?;
        }
        self.ensure_slots(optimizer)?;
        let step = self.training.step + 1;

        // Rows read by this batch are brought up to date before the forward pass sees them.
        self.catch_up_rows_read(x, optimizer, step - 1)?;

        let (inputs, output) = self.forward_all(x, true)?;
        let loss_value = self.loss_of(&output, y, loss)?;
        let total = loss_value.value + self.regularization_penalty() + fixed_penalty;
        if !total.is_finite() {
            return Err(Error::NonFiniteLoss {
                loss: total,
                epoch: 0,
                batch: 0,
            });
        }

        // Backward, last layer first.
        let mut gradients: Vec<Vec<Gradient>> = vec![Vec::new(); self.layers.len()];
        let mut upstream = Some(loss_value.gradient);
        let mut from_logits = loss_value.with_respect_to_logits;
        for (i, layer) in self.layers.iter_mut().enumerate().rev() {
            let Some(gradient) = upstream.take() else {
                break;
            };
            let backward = if from_logits {
                layer.backward_from_logits(&inputs[i], gradient)?
            } else {
                layer.backward(&inputs[i], gradient)?
            };
            from_logits = false;
            gradients[i] = backward.weight_gradients;
            upstream = backward.input_gradient;
        }
        self.check_gradients(&gradients)?;
        let gradients = self.densify_where_needed(gradients, optimizer)?;

        // The update: nothing below can fail.
        for ((layer, layer_gradients), slots) in self
            .layers
            .iter_mut()
            .zip(gradients)
            .zip(&mut self.training.slots)
        {
            let regularizers = layer.weight_regularizers();
            let constraints = layer.weight_constraints();
            for (k, ((mut weight, gradient), state)) in layer
                .trainable_weights_mut()
                .into_iter()
                .zip(layer_gradients)
                .zip(slots.iter_mut())
                .enumerate()
            {
                let regularizer = regularizers.get(k).copied().flatten();
                let constraint = constraints.get(k).copied().flatten();
                let shape = weight.shape().to_vec();
                let Some(values) = weight.as_slice_mut() else {
                    continue;
                };
                // `densify_where_needed` left row gradients only where the update is sparse.
                match gradient {
                    Gradient::Rows {
                        rows,
                        values: rows_gradient,
                    } => {
                        // Rows untouched since their last step get the decay they missed.
                        optimizer.catch_up(values, state, &rows, step - 1);
                        let flat = rows_gradient.as_standard_layout();
                        optimizer.update_rows(
                            values,
                            &rows,
                            flat.as_slice().unwrap_or_default(),
                            state,
                            step,
                        );
                    }
                    Gradient::Dense(mut full) => {
                        optimizer.catch_up_all(values, state, step - 1);
                        if let Some(r) = regularizer {
                            let current = ndarray::ArrayViewD::from_shape(IxDyn(&shape), &*values);
                            if let Ok(current) = current {
                                // Same shape: `check_gradients` compared them.
                                let _ = r.add_gradient(&current, &mut full);
                            }
                        }
                        let full = full.as_standard_layout();
                        optimizer.update_dense(
                            values,
                            full.as_slice().unwrap_or_default(),
                            state,
                            step,
                        );
                    }
                }
                if let Some(c) = constraint {
                    // The axis was checked in `check_gradients`.
                    let _ = c.apply(&mut weight);
                }
            }
        }
        self.training.step = step;
        Ok(total)
    }

    /// Before any weight changes: one gradient of the right shape per trainable weight, all
    /// finite, and every constraint applicable.
    fn check_gradients(&mut self, gradients: &[Vec<Gradient>]) -> Result<()> {
        let model = self.name.clone();
        for (layer, layer_gradients) in self.layers.iter_mut().zip(gradients) {
            let name = layer.name().to_string();
            // A layer whose backward pass disagrees with its own weights (a bug in the layer).
            let inconsistent = |message: String| Error::Model {
                model: model.clone(),
                message: format!("layer \"{name}\" returned {message}"),
            };
            let constraints = layer.weight_constraints();
            let weights = layer.trainable_weights_mut();
            if weights.len() != layer_gradients.len() {
                return Err(inconsistent(format!(
                    "{} gradients for {} trainable weights",
                    layer_gradients.len(),
                    weights.len()
                )));
            }
            for (k, (weight, gradient)) in weights.iter().zip(layer_gradients).enumerate() {
                let (fits, finite) = match gradient {
                    Gradient::Dense(g) => {
                        (g.shape() == weight.shape(), g.iter().all(|v| v.is_finite()))
                    }
                    Gradient::Rows { rows, values } => (
                        weight.ndim() == 2
                            && values.ncols() == weight.shape()[1]
                            && values.nrows() == rows.len()
                            && rows.iter().all(|&r| r < weight.shape()[0]),
                        values.iter().all(|v| v.is_finite()),
                    ),
                };
                if !fits {
                    return Err(inconsistent(format!(
                        "a gradient for weight {k} that does not fit its shape {:?}",
                        weight.shape()
                    )));
                }
                if !finite {
                    return Err(Error::NonFiniteLoss {
                        loss: f32::NAN,
                        epoch: 0,
                        batch: 0,
                    });
                }
                if let Some(Some(c)) = constraints.get(k) {
                    let mut probe = ArrayD::<f32>::zeros(IxDyn(&vec![1; weight.ndim()]));
                    c.apply(&mut probe.view_mut())?;
                }
            }
        }
        Ok(())
    }

    /// Turns the row-sparse gradients that must be applied densely (a regularizer or a
    /// constraint reaches every row, and Keras' Adam moves every row) into dense ones,
    /// before any weight changes, so that the update itself cannot fail.
    ///
    /// # Errors
    /// [`Error::Allocation`] when a dense gradient does not fit in memory.
    fn densify_where_needed(
        &mut self,
        gradients: Vec<Vec<Gradient>>,
        optimizer: Optimizer,
    ) -> Result<Vec<Vec<Gradient>>> {
        let model = self.name.clone();
        let mut result = Vec::with_capacity(gradients.len());
        for (layer, layer_gradients) in self.layers.iter_mut().zip(gradients) {
            let regularizers = layer.weight_regularizers();
            let constraints = layer.weight_constraints();
            let name = layer.name().to_string();
            let shapes: Vec<Vec<usize>> = layer
                .trainable_weights_mut()
                .iter()
                .map(|w| w.shape().to_vec())
                .collect();
            let mut converted = Vec::with_capacity(layer_gradients.len());
            for (k, (gradient, shape)) in layer_gradients.into_iter().zip(&shapes).enumerate() {
                let dense = regularizers.get(k).copied().flatten().is_some()
                    || constraints.get(k).copied().flatten().is_some()
                    || optimizer.needs_dense_update();
                converted.push(if dense {
                    Gradient::Dense(densify(gradient, shape, || {
                        format!("model \"{model}\": dense gradient of layer \"{name}\" weight {k}")
                    })?)
                } else {
                    gradient
                });
            }
            result.push(converted);
        }
        Ok(result)
    }

    /// Brings the rows each sparse-read weight will read for `x` up to date through `to`.
    fn catch_up_rows_read(&mut self, x: &Tensor, optimizer: Optimizer, to: u64) -> Result<()> {
        if !optimizer.moves_untouched_weights() {
            return Ok(());
        }
        // Only the first layer sees `x`; deeper sparse-read layers would need the forward
        // pass, and are not supported lazily: they are caught up in full instead.
        for (i, (layer, slots)) in self
            .layers
            .iter_mut()
            .zip(&mut self.training.slots)
            .enumerate()
        {
            let reads = if i == 0 {
                layer.rows_read(x)?
            } else {
                Vec::new()
            };
            for (k, (mut weight, state)) in layer
                .trainable_weights_mut()
                .into_iter()
                .zip(slots.iter_mut())
                .enumerate()
            {
                let Some(values) = weight.as_slice_mut() else {
                    continue;
                };
                match reads.get(k) {
                    Some(Some(rows)) => optimizer.catch_up(values, state, rows, to),
                    _ => optimizer.catch_up_all(values, state, to),
                }
            }
        }
        Ok(())
    }

    /// Brings every lazily kept row up to date, so that the weights read are Keras' weights.
    pub(crate) fn flush_lazy_rows(&mut self) {
        let Some(optimizer) = self.optimizer else {
            return;
        };
        if !optimizer.moves_untouched_weights() {
            return;
        }
        let step = self.training.step;
        for (layer, slots) in self.layers.iter_mut().zip(&mut self.training.slots) {
            for (mut weight, state) in layer
                .trainable_weights_mut()
                .into_iter()
                .zip(slots.iter_mut())
            {
                if let Some(values) = weight.as_slice_mut() {
                    optimizer.catch_up_all(values, state, step);
                }
            }
        }
    }
}

/// A gradient for every element of a weight of `shape`.
///
/// # Errors
/// [`Error::Allocation`] when the dense gradient does not fit in memory.
fn densify(
    gradient: Gradient,
    shape: &[usize],
    context: impl Fn() -> String,
) -> Result<ArrayD<f32>> {
    match gradient {
        Gradient::Dense(g) => Ok(g),
        Gradient::Rows { rows, values } => {
            let len = crate::tensor::checked_size(shape, &context)?;
            let zeros = crate::storage::try_zeroed(len, &context)?;
            let mut full =
                ArrayD::from_shape_vec(IxDyn(shape), zeros).map_err(|_| Error::ShapeOverflow {
                    context: context(),
                    shape: shape.to_vec(),
                })?;
            for (k, &row) in rows.iter().enumerate() {
                full.index_axis_mut(Axis(0), row)
                    .assign(&values.row(k).into_dyn());
            }
            Ok(full)
        }
    }
}
