//! One training step (Keras' `train_step`) and the optimizer state it updates.
//!
//! A step is: forward and loss; backward, which gives one gradient per trainable weight,
//! keyed by the weight's [`WeightId`] (a weight used in two places gets the sum of both
//! gradients); then everything that can fail — the gradients checked against their weights,
//! optimizer slots allocated, row gradients made dense where the update must be dense,
//! regularizer gradients added — before the first weight changes; then the update
//! ([`Optimizer::apply_update`]) of each weight with its gradient and its slots.
//!
//! Slots live in [`TrainingState`], keyed by weight id, not by position: adding a layer,
//! freezing one or sharing a weight never resets or misaligns another weight's slots.

use std::collections::{BTreeMap, HashMap};

use ndarray::{ArrayD, Axis, IxDyn};

use crate::error::{Error, Result};
use crate::layer::Gradient;
use crate::layer::Layer;
use crate::model::functional::{Model, Node, Values};
use crate::optimizers::{Optimizer, WeightState};
use crate::tensor::Tensor;
use crate::weight::{Weight, WeightId, read_only_error};

/// The optimizer's step count and the slot variables of every weight it has updated.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct TrainingState {
    /// Steps taken (Keras' `optimizer.iterations`).
    pub(super) step: u64,
    /// Slots by weight.
    pub(super) slots: HashMap<WeightId, WeightState>,
}

/// The weighted total loss of a step, each output's loss, and for each output node the
/// gradient of its weighted loss (and whether it is with respect to the logits).
type StepLosses = (f32, Vec<f32>, Vec<(usize, ArrayD<f32>, bool)>);

/// What one training step gives back.
pub(super) struct Step {
    /// The loss before the update: the weighted sum of the outputs' losses and the
    /// regularization penalties.
    pub(super) loss: f32,
    /// Each output's loss (unweighted).
    pub(super) each: Vec<f32>,
    /// The outputs' values (for the metrics).
    pub(super) outputs: Vec<Tensor>,
    /// Whether the weights were updated: `false` when the loss is not finite (nothing
    /// changed then).
    pub(super) applied: bool,
}

/// One step through a model's graph.
impl Model {
    /// The weighted loss of one forward pass and the gradient for each output node.
    pub(super) fn losses_of(
        &self,
        values: &Values,
        y: &[ArrayD<f32>],
        scratch: &mut Scratch,
    ) -> Result<StepLosses> {
        let compiled = self.compiled("fit")?;
        let mut total = 0.0f32;
        let mut each = Vec::with_capacity(self.outputs.len());
        let mut gradients = Vec::with_capacity(self.outputs.len());
        for (k, &output) in self.outputs.iter().enumerate() {
            let value = values[output]
                .as_ref()
                .ok_or_else(|| self.error("internal: an output was not computed".into()))?;
            let prediction = value.as_float().ok_or_else(|| Error::IncompatibleDtype {
                context: format!("model \"{}\": loss", self.name),
                expected: "a float32 model output".into(),
                got: value.dtype().to_string(),
            })?;
            // Logits only when they are this output's and its gradient is the loss's alone:
            // nothing else reads the output, it is listed once, and its layer makes no other
            // call (a layer keeps the logits of its last call only).
            let read_elsewhere = (0..self.nodes.len()).any(
                |i| matches!(&self.nodes[i], Node::Call { inputs, .. } if inputs.contains(&output)),
            ) || self.outputs.iter().filter(|&&o| o == output).count() > 1;
            let logits = match &self.nodes[output] {
                Node::Call { layer, .. } if !read_elsewhere && self.uses[*layer] == 1 => {
                    self.layers[*layer].output_logits()
                }
                _ => None,
            };
            let buffer = scratch.take(prediction.len());
            let loss =
                compiled.losses[k].compute_into(prediction, &y[k], value.mask(), logits, buffer)?;
            let weight = compiled.loss_weights[k];
            total += weight * loss.value;
            each.push(loss.value);
            let mut gradient = loss.gradient;
            if weight != 1.0 {
                gradient.mapv_inplace(|g| g * weight);
            }
            gradients.push((output, gradient, loss.with_respect_to_logits));
        }
        Ok((total, each, gradients))
    }

    /// One step of Keras' `train_step` on one batch; returns the loss before the update (the
    /// weighted sum of the outputs' losses, with the penalties of the trainable weights and
    /// `fixed_penalty`, those of the frozen ones), each output's loss, and the outputs (for
    /// the metrics). A failed step changes no weight and no slot (lazily kept rows may be
    /// brought up to date, which does not change the weights Keras would report).
    pub(super) fn train_step(
        &mut self,
        x: &[Tensor],
        y: &[ArrayD<f32>],
        optimizer: Optimizer,
        fixed_penalty: f32,
    ) -> Result<Step> {
        // Only optimizers that keep rows lazily need to know the rows read before the step.
        let reads = if optimizer.moves_untouched_weights() {
            self.rows_read(x)?
        } else {
            HashMap::new()
        };
        let step = begin_step(&mut self.layers, &mut self.training, &reads, optimizer)?;

        let values = self.run(x, Some(true))?;
        let mut scratch = std::mem::take(&mut self.scratch);
        let losses = self.losses_of(&values, y, &mut scratch);
        self.scratch = scratch;
        let (loss, each, output_gradients) = losses?;
        let total = loss + penalty(&self.layers, true) + fixed_penalty;
        if !total.is_finite() {
            // No update from a loss that is not a number: the caller decides (an error, or
            // the end of training for `TerminateOnNaN`).
            return Ok(Step {
                loss: total,
                each,
                outputs: self.output_values(values)?,
                applied: false,
            });
        }

        // Backward through the nodes in reverse order; a node read by several calls gets the
        // sum of their gradients, a layer called at several places the sum of its weights'.
        let mut upstream: HashMap<usize, (ArrayD<f32>, bool)> = HashMap::new();
        for (node, gradient, from_logits) in output_gradients {
            accumulate(&mut upstream, node, gradient, from_logits)?;
        }
        let mut gradients: BTreeMap<WeightId, Gradient> = BTreeMap::new();
        // The call whose state each layer holds: after the forward pass, its last one.
        let mut cached: Vec<Option<usize>> = vec![None; self.layers.len()];
        for (index, node) in self.nodes.iter().enumerate() {
            if let Node::Call { layer, .. } = node {
                cached[*layer] = Some(index);
            }
        }
        for index in (0..self.nodes.len()).rev() {
            let Node::Call {
                layer,
                inputs,
                args,
                ..
            } = &self.nodes[index]
            else {
                continue;
            };
            let Some((gradient, from_logits)) = upstream.remove(&index) else {
                continue;
            };
            let arguments: Vec<&Tensor> = inputs
                .iter()
                .map(|&i| values[i].as_ref())
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| self.error("internal: a node has no value".into()))?;
            // A layer called at several places holds the state of one call only: restore
            // this call's unless it is the one held (the last call, met first going back).
            let restore = self.uses[*layer] > 1 && cached[*layer] != Some(index);
            cached[*layer] = Some(index);
            let layer = &mut self.layers[*layer];
            if restore {
                layer.forward_with(&arguments, true, *args)?;
            }
            let backward = layer.backward_with(&arguments, gradient, from_logits, *args)?;
            add_gradients(&mut gradients, backward.weight_gradients)?;
            for (&input, input_gradient) in inputs.iter().zip(backward.input_gradients) {
                if let Some(input_gradient) = input_gradient {
                    accumulate(&mut upstream, input, input_gradient, false)?;
                }
            }
        }

        let applied = finish_step(
            &self.name,
            &mut self.layers,
            &mut self.training,
            gradients,
            optimizer,
            step,
        )?;
        // Row gradients hold the loss gradient's buffer (summed in place): it serves the next
        // step. (Dense gradients are the size of their weight, not of the batch.)
        for gradient in applied.into_values() {
            if let Gradient::Rows { values, .. } = gradient {
                self.scratch.give(values.into_raw_vec_and_offset().0);
            }
        }
        Ok(Step {
            loss: total,
            each,
            outputs: self.recycled_output_values(values)?,
            applied: true,
        })
    }

    /// The outputs' values; every other computed value goes back to the layer that made it
    /// ([`Layer::recycle`]), whose next forward pass may reuse its buffer.
    fn recycled_output_values(&mut self, mut values: Values) -> Result<Vec<Tensor>> {
        for (index, node) in self.nodes.iter().enumerate() {
            if let Node::Call { layer, .. } = node
                && !self.outputs.contains(&index)
                && let Some(value) = values[index].take()
            {
                self.layers[*layer].recycle(value);
            }
        }
        self.output_values(values)
    }

    /// Gives the outputs of a step back to the layers that made them, once the metrics have
    /// read them ([`Layer::recycle`]).
    pub(super) fn recycle_outputs(&mut self, outputs: Vec<Tensor>) {
        for (&output, value) in self.outputs.iter().zip(outputs) {
            if let Node::Call { layer, .. } = &self.nodes[output] {
                self.layers[*layer].recycle(value);
            }
        }
    }

    /// The rows each sparse-read weight reads for `x`, from the calls that read a model
    /// input directly (a table shared by several inputs reads the union). A layer also called
    /// on a computed tensor is left out: its rows are known only during the forward pass, so
    /// its weights are brought up to date whole.
    fn rows_read(&self, x: &[Tensor]) -> Result<HashMap<WeightId, Vec<usize>>> {
        let input_position = |node: &usize| self.inputs.iter().position(|i| i == node);
        let mut computed = vec![false; self.layers.len()];
        for index in 0..self.nodes.len() {
            if let Node::Call { layer, inputs, .. } = &self.nodes[index]
                && !(inputs.len() == 1 && input_position(&inputs[0]).is_some())
            {
                computed[*layer] = true;
            }
        }
        let mut reads: HashMap<WeightId, Vec<usize>> = HashMap::new();
        for index in 0..self.nodes.len() {
            let Node::Call { layer, inputs, .. } = &self.nodes[index] else {
                continue;
            };
            let ([input], false) = (inputs.as_slice(), computed[*layer]) else {
                continue;
            };
            let Some(position) = input_position(input) else {
                continue;
            };
            for (id, rows) in self.layers[*layer].rows_read(&x[position])? {
                let entry = reads.entry(id).or_default();
                entry.extend(rows);
                entry.sort_unstable();
                entry.dedup();
            }
        }
        Ok(reads)
    }
}

/// Adds `gradient` to what node `node` has received.
fn accumulate(
    upstream: &mut HashMap<usize, (ArrayD<f32>, bool)>,
    node: usize,
    gradient: ArrayD<f32>,
    from_logits: bool,
) -> Result<()> {
    match upstream.get_mut(&node) {
        None => {
            upstream.insert(node, (gradient, from_logits));
        }
        Some((sum, logits)) => {
            if sum.shape() != gradient.shape() || *logits || from_logits {
                return Err(Error::Model {
                    model: "(functional)".into(),
                    message: "two gradients of one tensor do not agree".into(),
                });
            }
            *sum += &gradient;
        }
    }
    Ok(())
}

/// The sum of the regularization penalties of the trainable weights (`trainable`), or of
/// the others. Keras adds both to the loss: `add_loss` does not look at `trainable`, so a
/// frozen `Embedding(3, 2, embeddings_regularizer=L2(0.1))` still adds `0.1 * sum(w^2)`. The
/// frozen ones do not change while training runs, so `fit` computes them once.
pub(super) fn penalty(layers: &[Box<dyn Layer>], trainable: bool) -> f32 {
    layers
        .iter()
        .flat_map(|layer| layer.variables())
        .filter(|w| w.is_trainable() == trainable)
        .filter_map(|w| w.regularizer().map(|r| r.penalty(&w.view())))
        .sum()
}

/// The start of a step: every trainable weight writable, its slots allocated, and the rows
/// the batch reads (`reads`, by weight) brought up to date. Returns the step's number.
///
/// # Errors
/// A read-only trainable weight; [`Error::Allocation`] for slots.
pub(super) fn begin_step(
    layers: &mut [Box<dyn Layer>],
    training: &mut TrainingState,
    reads: &HashMap<WeightId, Vec<usize>>,
    optimizer: Optimizer,
) -> Result<u64> {
    check_trainable(layers)?;
    ensure_slots(layers, training, optimizer)?;
    let step = training.step + 1;
    catch_up_rows_read(layers, training, reads, optimizer, step - 1);
    Ok(step)
}

/// The end of a step: the gradients checked and prepared ([`prepare_updates`]), then
/// applied ([`apply_updates`]).
///
/// # Errors
/// Those of [`prepare_updates`]; nothing has changed then.
pub(super) fn finish_step(
    model: &str,
    layers: &mut [Box<dyn Layer>],
    training: &mut TrainingState,
    gradients: BTreeMap<WeightId, Gradient>,
    optimizer: Optimizer,
    step: u64,
) -> Result<HashMap<WeightId, Gradient>> {
    let updates = prepare_updates(model, layers, training, gradients, optimizer, step)?;
    apply_updates(layers, training, &updates, optimizer, step)?;
    Ok(updates)
}

/// Buffers a model reuses from one training step to the next (the loss gradient's, which
/// becomes an embedding's row gradient, and `fit`'s batch targets): a step of a large batch
/// then neither allocates nor faults in fresh memory, whatever the allocator did with memory
/// freed in between. At most [`Scratch::KEEP`] buffers are kept; `fit` frees them when it
/// returns, `train_on_batch` keeps them for the next call until
/// [`Model::release_buffers`].
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    buffers: Vec<Vec<f32>>,
}

impl Scratch {
    /// Buffers kept at most (the oldest goes first).
    const KEEP: usize = 4;

    /// A kept buffer with room for `len` values and at most twice that (its values are
    /// stale; the tightest one), or an empty one: a small request never takes a large
    /// buffer that a later, larger one of the same step needs.
    pub(super) fn take(&mut self, len: usize) -> Vec<f32> {
        let best = self
            .buffers
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= len && b.capacity() <= len.saturating_mul(2))
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i);
        best.map_or_else(Vec::new, |i| self.buffers.remove(i))
    }

    /// Keeps `buffer` for a later step (the oldest kept one goes when too many are kept).
    pub(super) fn give(&mut self, buffer: Vec<f32>) {
        if buffer.capacity() == 0 {
            return;
        }
        self.buffers.push(buffer);
        if self.buffers.len() > Self::KEEP {
            self.buffers.remove(0);
        }
    }

    /// Frees every kept buffer.
    pub(super) fn clear(&mut self) {
        self.buffers = Vec::new();
    }
}

impl Model {
    /// Frees the batch-sized buffers that training steps reuse: those the model keeps
    /// between [`Model::train_on_batch`] calls and those its layers keep
    /// ([`Layer::release_buffers`]). `fit` frees them when it returns; call this after a
    /// loop of `train_on_batch` when the model stays in memory for other work.
    pub fn release_buffers(&mut self) {
        self.scratch.clear();
        for layer in &mut self.layers {
            layer.release_buffers();
        }
    }
}

/// Adds one layer's weight gradients to those of the step: a weight used in several places
/// gets the sum of its gradients.
///
/// # Errors
/// [`Error::Model`] when two gradients of one weight do not have the same shape.
pub(super) fn add_gradients(
    gradients: &mut BTreeMap<WeightId, Gradient>,
    more: Vec<(WeightId, Gradient)>,
) -> Result<()> {
    for (id, gradient) in more {
        let merged = match gradients.remove(&id) {
            Some(earlier) => merge(earlier, gradient)?,
            None => gradient,
        };
        gradients.insert(id, merged);
    }
    Ok(())
}

/// Training needs every trainable weight in writable memory.
fn check_trainable(layers: &[Box<dyn Layer>]) -> Result<()> {
    for layer in layers {
        if let Some(weight) = layer
            .variables()
            .into_iter()
            .find(|w| w.is_trainable() && w.is_mapped())
        {
            return Err(read_only_error(layer.name(), weight));
        }
    }
    Ok(())
}

/// Slots for every trainable weight that has none yet (first step, a new layer, a layer
/// unfrozen), all allocated before any is stored.
///
/// # Errors
/// [`Error::Allocation`] when the slots do not fit in memory; nothing changes then.
fn ensure_slots(
    layers: &[Box<dyn Layer>],
    training: &mut TrainingState,
    optimizer: Optimizer,
) -> Result<()> {
    let mut fresh = Vec::new();
    for weight in layers.iter().flat_map(|layer| layer.variables()) {
        if weight.is_trainable() && !training.slots.contains_key(&weight.id()) {
            fresh.push((weight.id(), optimizer.new_state(weight.shape())?));
        }
    }
    training.slots.extend(fresh);
    Ok(())
}

/// Checks each gradient against its weight (shape, finite values, an applicable
/// constraint), brings dense-path weights up to date, and turns each gradient into the one
/// the update applies: dense (with the regularizer's gradient) where a regularizer or
/// constraint reaches every row or the optimizer moves every row, row-sparse otherwise.
///
/// # Errors
/// [`Error::Model`] for a gradient that does not fit its weight (a bug in a layer),
/// the constraint's axis errors, [`Error::Allocation`] for a dense gradient that does not
/// fit in memory.
fn prepare_updates(
    model: &str,
    layers: &mut [Box<dyn Layer>],
    training: &mut TrainingState,
    mut gradients: BTreeMap<WeightId, Gradient>,
    optimizer: Optimizer,
    step: u64,
) -> Result<HashMap<WeightId, Gradient>> {
    let mut updates = HashMap::with_capacity(gradients.len());
    for layer in layers.iter_mut() {
        let layer_name = layer.name().to_string();
        let inconsistent = |message: String| Error::Model {
            model: model.to_string(),
            message: format!("layer \"{layer_name}\" returned {message}"),
        };
        for weight in layer.variables_mut() {
            let Some(gradient) = gradients.remove(&weight.id()) else {
                continue;
            };
            if !weight.is_trainable() {
                return Err(inconsistent(format!(
                    "a gradient for the frozen weight '{}'",
                    weight.name()
                )));
            }
            check_gradient(weight, &gradient).map_err(inconsistent)?;
            if let Some(c) = weight.constraint() {
                let mut probe = ArrayD::<f32>::zeros(IxDyn(&vec![1; weight.shape().len()]));
                c.apply(&mut probe.view_mut())?;
            }
            let dense = weight.regularizer().is_some()
                || weight.constraint().is_some()
                || optimizer.needs_dense_update();
            if !dense {
                updates.insert(weight.id(), gradient);
                continue;
            }
            let context = || {
                format!(
                    "model \"{model}\": dense gradient of layer \"{layer_name}\" weight '{}'",
                    weight.name()
                )
            };
            let mut full = densify(gradient, weight.shape(), context)?;
            // The regularizer reads the weights Keras has: every lazily kept row is brought
            // up to date first (the update would do it anyway).
            if let (Some(state), Some(values)) =
                (training.slots.get_mut(&weight.id()), weight.as_slice_mut())
            {
                optimizer.catch_up_all(values, state, step - 1);
            }
            if let Some(r) = weight.regularizer() {
                r.add_gradient(&weight.view(), &mut full)?;
            }
            updates.insert(weight.id(), Gradient::Dense(full));
        }
    }
    if let Some(id) = gradients.keys().next() {
        return Err(Error::Model {
            model: model.to_string(),
            message: format!(
                "a layer returned a gradient for weight {id}, which no layer of the model holds"
            ),
        });
    }
    Ok(updates)
}

/// The update: each weight with its prepared gradient and its slots, then the step count.
/// Every check and allocation is behind us.
///
/// # Errors
/// Only a constraint's errors, ruled out by [`prepare_updates`].
fn apply_updates(
    layers: &mut [Box<dyn Layer>],
    training: &mut TrainingState,
    updates: &HashMap<WeightId, Gradient>,
    optimizer: Optimizer,
    step: u64,
) -> Result<()> {
    for weight in layers.iter_mut().flat_map(|layer| layer.variables_mut()) {
        let (Some(gradient), Some(state)) = (
            updates.get(&weight.id()),
            training.slots.get_mut(&weight.id()),
        ) else {
            continue;
        };
        optimizer.apply_update(weight, gradient, state, step)?;
    }
    training.step = step;
    Ok(())
}

/// Brings the rows each sparse-read weight will read up to date through `to` (`reads`, by
/// weight; every other weight with lazily kept rows is caught up in full).
fn catch_up_rows_read(
    layers: &mut [Box<dyn Layer>],
    training: &mut TrainingState,
    reads: &HashMap<WeightId, Vec<usize>>,
    optimizer: Optimizer,
    to: u64,
) {
    if !optimizer.moves_untouched_weights() {
        return;
    }
    for weight in layers.iter_mut().flat_map(|layer| layer.variables_mut()) {
        let id = weight.id();
        let trainable = weight.is_trainable();
        let (Some(state), Some(values)) = (training.slots.get_mut(&id), weight.as_slice_mut())
        else {
            continue;
        };
        if !trainable {
            optimizer.skip_frozen(state, to);
            continue;
        }
        match reads.get(&id) {
            Some(rows) => optimizer.catch_up(values, state, rows.iter().copied(), to),
            None => optimizer.catch_up_all(values, state, to),
        }
    }
}

/// Brings every lazily kept row up to date, so that the weights read are Keras' weights.
pub(super) fn flush_lazy_rows(
    layers: &mut [Box<dyn Layer>],
    training: &mut TrainingState,
    optimizer: Optimizer,
) {
    if !optimizer.moves_untouched_weights() {
        return;
    }
    let step = training.step;
    for weight in layers.iter_mut().flat_map(|layer| layer.variables_mut()) {
        let trainable = weight.is_trainable();
        if let (Some(state), Some(values)) =
            (training.slots.get_mut(&weight.id()), weight.as_slice_mut())
        {
            if trainable {
                optimizer.catch_up_all(values, state, step);
            } else {
                optimizer.skip_frozen(state, step);
            }
        }
    }
}

/// Whether `gradient` fits `weight` and is finite; the message says what is wrong.
fn check_gradient(weight: &Weight, gradient: &Gradient) -> std::result::Result<(), String> {
    let shape = weight.shape();
    let finite = |values: ndarray::ArrayViewD<'_, f32>| match values.as_slice() {
        Some(flat) => crate::kernels::all_finite(flat),
        None => values.iter().all(|v| v.is_finite()),
    };
    let (fits, finite) = match gradient {
        Gradient::Dense(g) => (g.shape() == shape, finite(g.view())),
        Gradient::Rows { rows, values } => (
            shape.len() == 2
                && values.ncols() == shape[1]
                && values.nrows() == rows.len()
                && rows.iter().all(|&r| r < shape[0]),
            finite(values.view().into_dyn()),
        ),
    };
    if !fits {
        return Err(format!(
            "a gradient for weight '{}' that does not fit its shape {shape:?}",
            weight.name()
        ));
    }
    if !finite {
        return Err(format!(
            "a gradient for weight '{}' with values that are not finite",
            weight.name()
        ));
    }
    Ok(())
}

/// The sum of two gradients of one weight (a weight used in two places): row gradients merge
/// into one row gradient (sorted by row), anything with a dense part becomes dense.
///
/// # Errors
/// [`Error::Model`] when the two do not have the same shape (a bug in a layer).
fn merge(a: Gradient, b: Gradient) -> Result<Gradient> {
    let mismatch = || Error::Model {
        model: "(training)".into(),
        message: "two gradients of one weight have different shapes".into(),
    };
    match (a, b) {
        (Gradient::Dense(mut a), Gradient::Dense(b)) => {
            if a.shape() != b.shape() {
                return Err(mismatch());
            }
            a += &b;
            Ok(Gradient::Dense(a))
        }
        (Gradient::Dense(mut dense), Gradient::Rows { rows, values })
        | (Gradient::Rows { rows, values }, Gradient::Dense(mut dense)) => {
            if dense.ndim() != 2 || dense.shape()[1] != values.ncols() {
                return Err(mismatch());
            }
            for (k, &row) in rows.iter().enumerate() {
                if row >= dense.shape()[0] {
                    return Err(mismatch());
                }
                let mut target = dense.index_axis_mut(Axis(0), row);
                target += &values.row(k).into_dyn();
            }
            Ok(Gradient::Dense(dense))
        }
        (
            Gradient::Rows {
                rows: rows_a,
                values: values_a,
            },
            Gradient::Rows {
                rows: rows_b,
                values: values_b,
            },
        ) => {
            if values_a.ncols() != values_b.ncols() {
                return Err(mismatch());
            }
            let (rows_a, values_a) = sorted_rows(rows_a, values_a);
            let (rows_b, values_b) = sorted_rows(rows_b, values_b);
            let columns = values_a.ncols();
            let mut rows = Vec::with_capacity(rows_a.len() + rows_b.len());
            let mut values: Vec<f32> = Vec::with_capacity((rows_a.len() + rows_b.len()) * columns);
            let (mut i, mut j) = (0, 0);
            while i < rows_a.len() || j < rows_b.len() {
                let take_a = j >= rows_b.len() || (i < rows_a.len() && rows_a[i] <= rows_b[j]);
                let take_b = i >= rows_a.len() || (j < rows_b.len() && rows_b[j] <= rows_a[i]);
                let row = if take_a { rows_a[i] } else { rows_b[j] };
                let start = values.len();
                values.resize(start + columns, 0.0);
                if take_a {
                    values[start..]
                        .iter_mut()
                        .zip(values_a.row(i))
                        .for_each(|(v, a)| *v += a);
                    i += 1;
                }
                if take_b {
                    values[start..]
                        .iter_mut()
                        .zip(values_b.row(j))
                        .for_each(|(v, b)| *v += b);
                    j += 1;
                }
                rows.push(row);
            }
            let values = ndarray::Array2::from_shape_vec((rows.len(), columns), values)
                .map_err(|_| mismatch())?;
            Ok(Gradient::Rows { rows, values })
        }
    }
}

/// A row gradient with its rows in increasing order.
fn sorted_rows(
    rows: Vec<usize>,
    values: ndarray::Array2<f32>,
) -> (Vec<usize>, ndarray::Array2<f32>) {
    if rows.is_sorted() {
        return (rows, values);
    }
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_unstable_by_key(|&k| rows[k]);
    let sorted = order.iter().map(|&k| rows[k]).collect();
    (sorted, values.select(Axis(0), &order))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{Dense, Embedding, GlobalAveragePooling1D};
    use crate::losses::Loss;
    use crate::model::Sequential;
    use crate::optimizers::SGD;
    use ndarray::array;

    #[test]
    fn freezing_a_layer_keeps_every_other_weights_slots() {
        let mut model = Sequential::new();
        model
            .add(Embedding::new(5, 2).weights(vec![
                    array![
                        [0.1f32, 0.2],
                        [0.3, 0.4],
                        [0.5, 0.6],
                        [0.7, 0.8],
                        [0.9, 1.0]
                    ]
                    .into_dyn(),
                ]))
            .unwrap();
        model.add(GlobalAveragePooling1D::new()).unwrap();
        model
            .add(Dense::new(1).weights(vec![
                array![[0.5f32], [-0.5]].into_dyn(),
                array![0.1f32].into_dyn(),
            ]))
            .unwrap();
        model
            .compile(SGD::new(0.1).momentum(0.9).into(), Loss::MeanSquaredError)
            .unwrap();
        let (x, y) = (array![[1i64, 2], [3, 4]], array![[1.0f32], [0.0]]);
        for _ in 0..2 {
            model.train_on_batch(x.clone(), y.clone()).unwrap();
        }
        let kernel = model.get_layer(2).unwrap().variables()[0].id();
        let table = model.get_layer(0).unwrap().variables()[0].id();
        let before = model.model.training.slots.get(&kernel).cloned().unwrap();
        let fresh = Optimizer::from(SGD::new(0.1).momentum(0.9))
            .new_state(&[2, 1])
            .unwrap();
        assert_ne!(before, fresh, "two steps of momentum");

        model.get_layer_mut(0).unwrap().set_trainable(false);
        ensure_slots(
            &model.model.layers,
            &mut model.model.training,
            SGD::new(0.1).momentum(0.9).into(),
        )
        .unwrap();
        assert_eq!(
            model.model.training.slots.get(&kernel),
            Some(&before),
            "not reset"
        );
        assert!(
            model.model.training.slots.contains_key(&table),
            "kept for unfreezing"
        );
        let step = model.model.training.step;
        let frozen_table = model.get_layer(0).unwrap().get_weights();
        for _ in 0..3 {
            model.train_on_batch(x.clone(), y.clone()).unwrap();
        }
        assert_eq!(model.model.training.step, step + 3);
        assert_ne!(
            model.model.training.slots.get(&kernel),
            Some(&before),
            "updated"
        );
        // Keras never touches a frozen variable, momentum or not.
        assert_eq!(model.get_layer(0).unwrap().get_weights(), frozen_table);
    }

    #[test]
    fn row_gradients_of_one_weight_merge_sorted_and_summed() {
        let a = Gradient::Rows {
            rows: vec![1, 4],
            values: array![[1.0f32, 1.0], [2.0, 2.0]],
        };
        let b = Gradient::Rows {
            rows: vec![0, 4, 7],
            values: array![[10.0f32, 10.0], [20.0, 20.0], [30.0, 30.0]],
        };
        let Gradient::Rows { rows, values } = merge(a, b).unwrap() else {
            panic!("two row gradients stay row-sparse");
        };
        assert_eq!(rows, vec![0, 1, 4, 7]);
        assert_eq!(
            values,
            array![[10.0f32, 10.0], [1.0, 1.0], [22.0, 22.0], [30.0, 30.0]]
        );
    }

    #[test]
    fn a_dense_and_a_row_gradient_merge_into_a_dense_one() {
        let dense = Gradient::Dense(ndarray::Array2::<f32>::ones((3, 2)).into_dyn());
        let rows = Gradient::Rows {
            rows: vec![2],
            values: array![[5.0f32, 6.0]],
        };
        let Gradient::Dense(sum) = merge(rows, dense).unwrap() else {
            panic!("dense");
        };
        assert_eq!(
            sum,
            array![[1.0f32, 1.0], [1.0, 1.0], [6.0, 7.0]].into_dyn()
        );
        let bad = Gradient::Dense(ndarray::Array2::<f32>::ones((3, 3)).into_dyn());
        let rows = Gradient::Rows {
            rows: vec![0],
            values: array![[1.0f32, 1.0]],
        };
        assert!(merge(bad, rows).is_err());
    }
}
