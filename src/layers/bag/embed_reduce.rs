//! `EmbedReduce`: keras-rs' embedding that reduces each row of ids with a combiner.

use std::fmt;
use std::str::FromStr;

use ndarray::{ArrayD, ArrayView2, ArrayViewD, CowArray, IxDyn};

use super::reduce::{Bags, Reduction};
use super::table::{Table, TableSettings};
use super::{check_output_gradient, standard_weights};
use crate::constraints::Constraint;
use crate::error::{Error, Result, Shape};
use crate::initializers::Initializer;
use crate::layer::{Backward, Gradient, Layer, assign_pending, unique_name};
use crate::regularizers::Regularizer;
use crate::tensor::{Tensor, checked_size};
use crate::weight::{Weight, WeightId};

/// How an [`EmbedReduce`] combines a row of vectors (keras-rs' `combiner`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Combiner {
    /// `Σ w_i e_i / Σ w_i` (keras-rs' default), zero where `Σ w_i = 0`.
    #[default]
    Mean,
    /// `Σ w_i e_i`.
    Sum,
    /// `Σ w_i e_i / sqrt(Σ w_i²)`, zero where the divisor is 0.
    SqrtN,
}

impl Combiner {
    /// keras-rs' name: `"mean"`, `"sum"` or `"sqrtn"`.
    pub fn name(self) -> &'static str {
        match self {
            Combiner::Mean => "mean",
            Combiner::Sum => "sum",
            Combiner::SqrtN => "sqrtn",
        }
    }

    fn reduction(self) -> Reduction {
        match self {
            Combiner::Mean => Reduction::Mean,
            Combiner::Sum => Reduction::Sum,
            Combiner::SqrtN => Reduction::SqrtN,
        }
    }
}

impl fmt::Display for Combiner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Combiner {
    type Err = Error;

    /// `"mean"`, `"sum"` or `"sqrtn"`.
    ///
    /// # Errors
    /// [`Error::UnknownName`] listing them (keras-rs: "Invalid `combiner`").
    fn from_str(name: &str) -> Result<Self> {
        match name {
            "mean" => Ok(Combiner::Mean),
            "sum" => Ok(Combiner::Sum),
            "sqrtn" => Ok(Combiner::SqrtN),
            _ => Err(Error::UnknownName {
                kind: "combiner",
                name: name.to_string(),
                valid: vec!["mean", "sum", "sqrtn"],
            }),
        }
    }
}

/// The settings of an [`EmbedReduce`], with keras-rs' names.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedReduceConfig {
    /// Size of the vocabulary: ids are `0..input_dim`.
    pub input_dim: usize,
    /// Length of each vector.
    pub output_dim: usize,
    /// How a row of vectors is combined.
    pub combiner: Combiner,
    /// Whether id 0 is padding, left out of the reduction.
    pub mask_zero: bool,
    /// How the table is filled at build (Keras' `"uniform"`: `RandomUniform(-0.05, 0.05)`).
    pub embeddings_initializer: Initializer,
    /// Whether training updates the table.
    pub trainable: bool,
    /// Penalty on the table added to the loss.
    pub embeddings_regularizer: Option<Regularizer>,
    /// Projection applied to the table after each step.
    pub embeddings_constraint: Option<Constraint>,
}

/// An embedding that reduces each row of ids to one vector with a combiner (keras-rs'
/// `keras_rs.layers.EmbedReduce`): `mean` (default), `sum` or `sqrtn`, with optional
/// per-id weights, gathered and reduced in one pass (no `(batch, length, dim)` lookup).
///
/// For a 2-D input `(batch, length)`, `x = E[ids] * w`, `s = Σ_length x`, and the output is
/// `s` (`sum`), `divide_no_nan(s, Σ w)` (`mean`) or `divide_no_nan(s, sqrt(Σ w²))`
/// (`sqrtn`), with `w = 1` where no weights are given: a row whose divisor is 0 (no ids, or
/// every id masked) gives zeros. A 1-D input `(batch,)` is not reduced: the output is
/// `E[ids]`, times the weights for `sum` (keras-rs ignores the weights of `mean` and
/// `sqrtn` there). Ragged rows are taken as flat ids and row lengths by
/// [`EmbedReduce::call_ragged`].
///
/// Masks: positions masked out, by `mask_zero` (ids equal to 0) or by the incoming mask, are
/// left out of the reduction and of the divisor, as if their weight were 0. This is a
/// deliberate difference from keras-rs, whose `mask_zero` only attaches a mask to the
/// output and averages the padding rows in; the output here carries no mask (each row is
/// one vector).
///
/// # Shapes
/// - input: integer ids `(batch, length)` or `(batch,)`;
/// - weights: the ids' shape, `f32` (keras-rs also broadcasts weights of lower rank; here
///   they must match);
/// - output: `(batch, output_dim)`, `f32`, no mask.
///
/// Training: the table's gradient is row-sparse, one row per distinct id that takes part
/// (masked positions left out).
///
/// # Errors
/// Inputs of rank 0 or 3 and more are [`Error::IncompatibleShape`] (keras-rs: "Inputs of
/// rank 3 and higher are not allowed"); bad ids are [`Error::IndexOutOfRange`] naming the
/// position; weights of another shape are [`Error::IncompatibleShape`], non-finite ones
/// [`Error::InvalidArgument`].
///
/// # Example
/// ```
/// use ndarray::array;
/// use ndkeras::prelude::*;
///
/// let table = array![[0.0f32, 0.0], [2.0, 4.0], [6.0, 8.0]];
/// let mut reduce = EmbedReduce::new(3, 2).mask_zero(true).weights(vec![table]);
///
/// // The padding id 0 is left out of the mean; an all-padding row gives zeros.
/// let out = reduce.apply(&Tensor::from(array![[1i64, 2, 0], [0, 0, 0]]))?;
/// assert_eq!(out.as_float().unwrap(), &array![[4.0f32, 6.0], [0.0, 0.0]].into_dyn());
///
/// // sqrtn with weights: (1 * e1 + 1 * e2) / sqrt(1 + 1).
/// let sqrtn = EmbedReduce::new(3, 2).combiner(Combiner::SqrtN);
/// # let mut sqrtn = sqrtn.weights(vec![array![[0.0f32, 0.0], [2.0, 4.0], [6.0, 8.0]]]);
/// # sqrtn.apply(&Tensor::from(array![[1i64]]))?;
/// let out = sqrtn.call_with_weights(&Tensor::from(array![[1i64, 2]]), array![[1.0f32, 1.0]].view().into_dyn())?;
/// let expected = 8.0f32 / 2.0f32.sqrt();
/// assert!((out.as_float().unwrap()[[0, 0]] - expected).abs() < 1e-6);
/// # Ok::<(), ndkeras::Error>(())
/// ```
#[derive(Clone)]
pub struct EmbedReduce {
    name: String,
    config: EmbedReduceConfig,
    table: Table,
}

impl EmbedReduce {
    /// A reducing embedding of `input_dim` ids into vectors of `output_dim`, with keras-rs'
    /// defaults: combiner `mean`, `mask_zero` off, `RandomUniform(-0.05, 0.05)`, trainable,
    /// name `embed_reduce`, `embed_reduce_1`, ...
    ///
    /// A zero dimension is reported when the layer is built or added to a model.
    pub fn new(input_dim: usize, output_dim: usize) -> Self {
        EmbedReduce {
            name: unique_name("embed_reduce"),
            config: EmbedReduceConfig {
                input_dim,
                output_dim,
                combiner: Combiner::Mean,
                mask_zero: false,
                embeddings_initializer: Initializer::default(),
                trainable: true,
                embeddings_regularizer: None,
                embeddings_constraint: None,
            },
            table: Table::default(),
        }
    }

    /// How a row of vectors is combined. Default: [`Combiner::Mean`].
    pub fn combiner(mut self, combiner: Combiner) -> Self {
        self.config.combiner = combiner;
        self
    }

    /// Whether id 0 is padding, left out of the reduction and of its divisor. Default:
    /// `false`.
    pub fn mask_zero(mut self, mask_zero: bool) -> Self {
        self.config.mask_zero = mask_zero;
        self
    }

    /// How the table is filled at build. Default: `RandomUniform(-0.05, 0.05)` (Keras'
    /// `"uniform"`).
    pub fn embeddings_initializer(mut self, initializer: Initializer) -> Self {
        self.config.embeddings_initializer = initializer;
        self
    }

    /// The table to start from, as Keras' `weights=[table]`: one array `(input_dim,
    /// output_dim)`, which becomes the table at the build (the initializer does not run).
    /// Default: none.
    pub fn weights<D: ndarray::Dimension>(mut self, weights: Vec<ndarray::Array<f32, D>>) -> Self {
        self.table.initial = Some(weights.into_iter().map(|w| w.into_dyn()).collect());
        self
    }

    /// The layer's name. Default: `embed_reduce`, `embed_reduce_1`, ...
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Whether training updates the table. Default: `true`.
    pub fn trainable(mut self, trainable: bool) -> Self {
        self.set_trainable(trainable);
        self
    }

    /// A penalty on the table added to the training loss. Default: none.
    pub fn embeddings_regularizer(mut self, regularizer: Regularizer) -> Self {
        self.config.embeddings_regularizer = Some(regularizer);
        if let Some(table) = &mut self.table.weight {
            table.set_regularizer(Some(regularizer));
        }
        self
    }

    /// A projection applied to the table after each training step. Default: none.
    pub fn embeddings_constraint(mut self, constraint: Constraint) -> Self {
        self.config.embeddings_constraint = Some(constraint);
        if let Some(table) = &mut self.table.weight {
            table.set_constraint(Some(constraint));
        }
        self
    }

    /// The settings.
    pub fn config(&self) -> &EmbedReduceConfig {
        &self.config
    }

    /// Size of the vocabulary.
    pub fn input_dim(&self) -> usize {
        self.config.input_dim
    }

    /// Length of each vector.
    pub fn output_dim(&self) -> usize {
        self.config.output_dim
    }

    /// The table `(input_dim, output_dim)`, or `None` until the layer is built.
    pub fn embeddings(&self) -> Option<ArrayView2<'_, f32>> {
        self.table.view()
    }

    /// keras-rs' `layer(ids, weights=weights)`: [`Layer::call`] with one weight per id
    /// (the ids' shape). Masks (`mask_zero`, the ids' mask) apply as in `call`. Does not
    /// build.
    ///
    /// # Errors
    /// Those of [`Layer::call`]; [`Error::IncompatibleShape`] for weights of another shape,
    /// [`Error::InvalidArgument`] for a non-finite weight.
    pub fn call_with_weights(&self, ids: &Tensor, weights: ArrayViewD<'_, f32>) -> Result<Tensor> {
        let weights = self.weights_for(ids, Some(weights))?;
        let keep = self.keep(ids)?;
        let bags = self.bags(ids, None, weights.as_ref(), keep.as_deref())?;
        self.reduce(&bags)
    }

    /// keras-rs' ragged input: flat `ids` `(total,)` cut into rows of `row_lengths`
    /// (summing to `total`), each row reduced, with optional weights `(total,)`. With
    /// `mask_zero`, ids equal to 0 are left out. Does not build.
    ///
    /// # Errors
    /// [`Error::NotBuilt`] before the table exists; [`Error::IncompatibleShape`] for ids that
    /// are not 1-D or row lengths that do not add up to their number; the id and weight
    /// errors of [`EmbedReduce::call_with_weights`].
    pub fn call_ragged(
        &self,
        ids: &Tensor,
        row_lengths: &[usize],
        weights: Option<ArrayViewD<'_, f32>>,
    ) -> Result<Tensor> {
        let weights = self.weights_for(ids, weights)?;
        let keep = self.keep(ids)?;
        let bags = self.bags(ids, Some(row_lengths), weights.as_ref(), keep.as_deref())?;
        self.reduce(&bags)
    }

    /// The backward pass of [`EmbedReduce::call_with_weights`] (`row_lengths` `None`) or
    /// [`EmbedReduce::call_ragged`], for a training loop of your own: the table's row-sparse
    /// gradient, keyed by its weight id (nothing when the layer is frozen).
    ///
    /// # Errors
    /// Those of the call, and [`Error::IncompatibleShape`] when `output_gradient` is not
    /// `(rows, output_dim)`.
    pub fn backward_with(
        &self,
        ids: &Tensor,
        row_lengths: Option<&[usize]>,
        weights: Option<ArrayViewD<'_, f32>>,
        output_gradient: &ArrayD<f32>,
    ) -> Result<Backward> {
        let weights = self.weights_for(ids, weights)?;
        let keep = self.keep(ids)?;
        let bags = self.bags(ids, row_lengths, weights.as_ref(), keep.as_deref())?;
        self.table_gradient(&bags, output_gradient)
    }

    fn context(&self) -> String {
        format!("layer \"{}\" (EmbedReduce)", self.name)
    }

    fn settings(&self) -> TableSettings {
        TableSettings {
            rows: self.config.input_dim,
            columns: self.config.output_dim,
            initializer: self.config.embeddings_initializer.clone(),
            trainable: self.config.trainable,
            regularizer: self.config.embeddings_regularizer,
            constraint: self.config.embeddings_constraint,
        }
    }

    /// Weights checked (the ids' shape, finite) and in standard layout; dropped for a 1-D
    /// input under `mean` and `sqrtn`, where keras-rs ignores them.
    fn weights_for<'w>(
        &self,
        ids: &Tensor,
        weights: Option<ArrayViewD<'w, f32>>,
    ) -> Result<Option<CowArray<'w, f32, IxDyn>>> {
        let Some(weights) = weights else {
            return Ok(None);
        };
        if weights.shape() != ids.shape() {
            return Err(Error::IncompatibleShape {
                context: format!(
                    "{}: the weights must have the shape of the ids",
                    self.context()
                ),
                expected: ids.shape().iter().map(|&d| Some(d)).collect(),
                got: weights.shape().iter().map(|&d| Some(d)).collect(),
            });
        }
        standard_weights(weights, &self.context(), "weights").map(Some)
    }

    /// Which positions take part: the incoming mask and, with `mask_zero`, `ids != 0`
    /// (`None` when all do).
    fn keep(&self, ids: &Tensor) -> Result<Option<Vec<bool>>> {
        let incoming = ids.mask();
        if incoming.is_none() && !self.config.mask_zero {
            return Ok(None);
        }
        let context = || format!("{}: mask", self.context());
        let mut keep = Vec::new();
        keep.try_reserve_exact(ids.len())
            .map_err(|_| Error::Allocation {
                context: context(),
                bytes: ids.len(),
            })?;
        match incoming {
            Some(mask) if mask.shape() != ids.shape() => {
                return Err(Error::IncompatibleShape {
                    context: format!(
                        "{}: the mask must have the shape of the ids",
                        self.context()
                    ),
                    expected: ids.shape().iter().map(|&d| Some(d)).collect(),
                    got: mask.shape().iter().map(|&d| Some(d)).collect(),
                });
            }
            Some(mask) => keep.extend(mask.iter().copied()),
            None => keep.resize(ids.len(), true),
        }
        if self.config.mask_zero {
            for (k, nonzero) in keep.iter_mut().zip(ids.nonzero_mask().iter()) {
                *k &= *nonzero;
            }
        }
        Ok(Some(keep))
    }

    /// The rows of a 2-D input, the single ids of a 1-D input, or ragged rows.
    fn bags<'w>(
        &self,
        ids: &Tensor,
        row_lengths: Option<&[usize]>,
        weights: Option<&'w CowArray<'w, f32, IxDyn>>,
        keep: Option<&'w [bool]>,
    ) -> Result<Bags<'w>> {
        let context = self.context();
        let too_many = || Error::Allocation {
            context: format!("{context}: row bounds"),
            bytes: ids.len().saturating_mul(8),
        };
        let mut bounds: Vec<usize> = Vec::new();
        let mut weights = weights.and_then(|w| w.as_slice());
        match (ids.shape(), row_lengths) {
            ([rows, length], None) => {
                bounds
                    .try_reserve_exact(rows.saturating_add(1))
                    .map_err(|_| too_many())?;
                bounds.extend((0..=*rows).map(|r| r * length));
            }
            ([rows], None) => {
                bounds
                    .try_reserve_exact(rows.saturating_add(1))
                    .map_err(|_| too_many())?;
                bounds.extend(0..=*rows);
                if self.config.combiner != Combiner::Sum {
                    // keras-rs: one id per row, `mean` and `sqrtn` use ones, not the weights.
                    weights = None;
                }
            }
            ([total], Some(lengths)) => {
                bounds
                    .try_reserve_exact(lengths.len().saturating_add(1))
                    .map_err(|_| too_many())?;
                bounds.push(0);
                let mut end = 0usize;
                for &length in lengths {
                    end = end.saturating_add(length);
                    bounds.push(end);
                }
                if end != *total {
                    return Err(Error::IncompatibleShape {
                        context: format!(
                            "{context}: the row lengths add up to {end}, but there are {total} ids"
                        ),
                        expected: vec![Some(end)],
                        got: vec![Some(*total)],
                    });
                }
            }
            (_, Some(_)) => {
                return Err(Error::IncompatibleShape {
                    context: format!("{context}: ragged rows take flat 1-D ids"),
                    expected: vec![None],
                    got: ids.keras_shape(),
                });
            }
            _ => {
                return Err(Error::IncompatibleShape {
                    context: format!(
                        "{context}: the ids must be 1-D (not reduced) or 2-D (each row reduced); inputs of rank 3 and higher are not allowed, as in keras-rs"
                    ),
                    expected: vec![None, None],
                    got: ids.keras_shape(),
                });
            }
        }
        let rows = ids.row_indices(self.config.input_dim, &self.name)?;
        Ok(Bags {
            rows,
            bounds,
            weights,
            padding: None,
            keep,
        })
    }

    fn reduce(&self, bags: &Bags<'_>) -> Result<Tensor> {
        let context = self.context();
        let table = self.table.values(&context)?;
        let dim = self.config.output_dim;
        let output_context = || format!("{context}: output");
        let (values, _) = bags.reduce(
            table,
            dim,
            self.config.combiner.reduction(),
            &output_context,
        )?;
        let shape = [bags.len(), dim];
        let output =
            ArrayD::from_shape_vec(IxDyn(&shape), values).map_err(|_| Error::ShapeOverflow {
                context: output_context(),
                shape: shape.to_vec(),
            })?;
        Ok(Tensor::from(output))
    }

    fn table_gradient(&self, bags: &Bags<'_>, output_gradient: &ArrayD<f32>) -> Result<Backward> {
        let context = self.context();
        let dim = self.config.output_dim;
        check_output_gradient(output_gradient, &[bags.len(), dim], &context)?;
        let Some(id) = self
            .table
            .weight
            .as_ref()
            .filter(|t| t.is_trainable())
            .map(Weight::id)
        else {
            return Ok(Backward {
                input_gradient: None,
                weight_gradients: Vec::new(),
            });
        };
        let gradient = output_gradient.as_standard_layout();
        let flat = gradient.as_slice().unwrap_or_default();
        let gradient_context = || format!("{context}: gradient of the table");
        let (rows, values) = bags.table_gradient(
            flat,
            dim,
            self.config.combiner.reduction(),
            &[],
            &gradient_context,
        )?;
        Ok(Backward {
            input_gradient: None,
            weight_gradients: vec![(id, Gradient::Rows { rows, values })],
        })
    }
}

impl fmt::Debug for EmbedReduce {
    /// The settings and the table's shape (never the table).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbedReduce")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("built", &self.table.weight.is_some())
            .field("initial_weights", &self.table.initial_shapes())
            .finish()
    }
}

impl Layer for EmbedReduce {
    fn name(&self) -> &str {
        &self.name
    }

    fn class_name(&self) -> &'static str {
        "EmbedReduce"
    }

    fn is_trainable(&self) -> bool {
        self.config.trainable
    }

    fn set_trainable(&mut self, trainable: bool) {
        self.config.trainable = trainable;
        if let Some(table) = &mut self.table.weight {
            table.set_trainable(trainable);
        }
    }

    /// Both dimensions positive, the table addressable, the initializer, regularizer and
    /// constraint valid.
    fn validate(&self) -> Result<()> {
        let (rows, dim) = (self.config.input_dim, self.config.output_dim);
        if rows == 0 || dim == 0 {
            let (parameter, value) = if rows == 0 {
                ("input_dim", rows)
            } else {
                ("output_dim", dim)
            };
            return Err(Error::invalid_argument(
                self.context(),
                parameter,
                value,
                format!(
                    "both `input_dim` and `output_dim` positive (received input_dim = {rows} and output_dim = {dim})"
                ),
            ));
        }
        checked_size(&[rows, dim], || {
            format!("{}: embeddings table", self.context())
        })?;
        if let Some(regularizer) = self.config.embeddings_regularizer {
            regularizer.validate()?;
        }
        if let Some(constraint) = self.config.embeddings_constraint {
            constraint.validate()?;
        }
        self.config.embeddings_initializer.validate()
    }

    /// `(None, None)`: rows of ids of any number and length.
    fn batch_input_shape(&self) -> Option<Shape> {
        Some(vec![None, None])
    }

    fn is_built(&self) -> bool {
        self.table.weight.is_some()
    }

    fn weight_shapes_for(&self, _input_shape: &[Option<usize>]) -> Result<Vec<Vec<usize>>> {
        Ok(vec![vec![self.config.input_dim, self.config.output_dim]])
    }

    /// The table comes from the initial `weights` when there are any (the initializer does
    /// not run), otherwise from the initializer.
    fn build(&mut self, _input_shape: &[Option<usize>]) -> Result<()> {
        if self.is_built() {
            let mut pending = self.table.initial.take();
            let assigned = assign_pending(self, &mut pending);
            self.table.initial = pending;
            return assigned;
        }
        self.validate()?;
        let (name, context, settings) = (self.name.clone(), self.context(), self.settings());
        self.table.build(&name, &context, &settings, None)
    }

    fn unbuild(&mut self) {
        self.table.unbuild();
    }

    fn initial_weights(&self) -> Option<&[ArrayD<f32>]> {
        self.table.initial.as_deref()
    }

    /// 1-D or 2-D integer ids in `0..input_dim`, and a mask (if any) of their shape.
    fn check_input(&self, inputs: &Tensor) -> Result<()> {
        let keep = self.keep(inputs)?;
        self.bags(inputs, None, None, keep.as_deref()).map(|_| ())
    }

    fn call(&self, inputs: &Tensor) -> Result<Tensor> {
        self.table.get(&self.context())?;
        let keep = self.keep(inputs)?;
        let bags = self.bags(inputs, None, None, keep.as_deref())?;
        self.reduce(&bags)
    }

    /// keras-rs' `compute_output_shape`: `(batch, output_dim)` for 1-D and 2-D inputs.
    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        match input_shape {
            [batch] | [batch, _] => Ok(vec![*batch, Some(self.config.output_dim)]),
            _ => Err(Error::IncompatibleShape {
                context: format!(
                    "{}: the input must be 1-D or 2-D (inputs of rank 3 and higher are not allowed)",
                    self.context()
                ),
                expected: vec![None, None],
                got: input_shape.to_vec(),
            }),
        }
    }

    /// No mask: each row is one vector (the incoming mask is used by the reduction).
    fn compute_mask(
        &self,
        _inputs: &Tensor,
        _mask: Option<&ArrayD<bool>>,
    ) -> Result<Option<ArrayD<bool>>> {
        Ok(None)
    }

    /// `true`: the incoming mask selects the ids that take part.
    fn supports_masking(&self) -> bool {
        true
    }

    fn backward(&mut self, inputs: &Tensor, output_gradient: ArrayD<f32>) -> Result<Backward> {
        let keep = self.keep(inputs)?;
        let bags = self.bags(inputs, None, None, keep.as_deref())?;
        self.table_gradient(&bags, &output_gradient)
    }

    fn rows_read(&self, inputs: &Tensor) -> Result<Vec<(WeightId, Vec<usize>)>> {
        let Some(table) = self.table.weight.as_ref().filter(|t| t.is_trainable()) else {
            return Ok(Vec::new());
        };
        let keep = self.keep(inputs)?;
        let bags = self.bags(inputs, None, None, keep.as_deref())?;
        Ok(vec![(table.id(), bags.rows_read())])
    }

    fn variables(&self) -> Vec<&Weight> {
        self.table.weight.iter().collect()
    }

    fn variables_mut(&mut self) -> Vec<&mut Weight> {
        self.table.weight.iter_mut().collect()
    }
}
