//! `EmbeddingBag`: PyTorch's `nn.EmbeddingBag`, bags of ids reduced to one vector each.

use std::fmt;
use std::str::FromStr;

use ndarray::{ArrayD, ArrayView2, ArrayViewD, CowArray, IxDyn};

use super::reduce::{Bags, Reduction};
use super::table::{Table, TableSettings};
use super::{check_output_gradient, offsets_of, standard_weights};
use crate::constraints::Constraint;
use crate::error::{Error, Result, Shape};
use crate::initializers::Initializer;
use crate::layer::{Backward, Gradient, Layer, assign_pending, unique_name};
use crate::regularizers::Regularizer;
use crate::tensor::{Tensor, checked_size};
use crate::weight::{Weight, WeightId};

/// How an [`EmbeddingBag`] combines the vectors of a bag (PyTorch's `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BagMode {
    /// The sum of the vectors, each times its `per_sample_weights` entry if given.
    Sum,
    /// The mean of the vectors (PyTorch's default).
    #[default]
    Mean,
    /// The element-wise maximum of the vectors.
    Max,
}

impl BagMode {
    /// PyTorch's name: `"sum"`, `"mean"` or `"max"`.
    pub fn name(self) -> &'static str {
        match self {
            BagMode::Sum => "sum",
            BagMode::Mean => "mean",
            BagMode::Max => "max",
        }
    }

    fn reduction(self) -> Reduction {
        match self {
            BagMode::Sum => Reduction::Sum,
            BagMode::Mean => Reduction::Mean,
            BagMode::Max => Reduction::Max,
        }
    }
}

impl fmt::Display for BagMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BagMode {
    type Err = Error;

    /// `"sum"`, `"mean"` or `"max"`, as PyTorch spells them.
    ///
    /// # Errors
    /// [`Error::UnknownName`] listing the three.
    fn from_str(name: &str) -> Result<Self> {
        match name {
            "sum" => Ok(BagMode::Sum),
            "mean" => Ok(BagMode::Mean),
            "max" => Ok(BagMode::Max),
            _ => Err(Error::UnknownName {
                kind: "EmbeddingBag mode",
                name: name.to_string(),
                valid: vec!["sum", "mean", "max"],
            }),
        }
    }
}

/// The settings of an [`EmbeddingBag`], with PyTorch's names.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingBagConfig {
    /// Size of the vocabulary: ids are `0..num_embeddings`.
    pub num_embeddings: usize,
    /// Length of each vector.
    pub embedding_dim: usize,
    /// How a bag's vectors are combined.
    pub mode: BagMode,
    /// The id left out of every bag (and of the count of `mean`); negative counts from the
    /// end, as in PyTorch.
    pub padding_idx: Option<isize>,
    /// Whether `offsets` end with the end of the last bag (CSR style).
    pub include_last_offset: bool,
    /// How the table is filled at build (PyTorch: `N(0, 1)`).
    pub embeddings_initializer: Initializer,
    /// Whether training updates the table.
    pub trainable: bool,
    /// Penalty on the table added to the loss (Keras' `embeddings_regularizer`).
    pub embeddings_regularizer: Option<Regularizer>,
    /// Projection applied to the table after each step (Keras' `embeddings_constraint`).
    pub embeddings_constraint: Option<Constraint>,
}

/// Bags of ids, each reduced to one vector by sum, mean or max (PyTorch's
/// `torch.nn.EmbeddingBag`), without building the `(bags, length, dim)` lookup: each bag's
/// rows are read from the table and folded into its output row in one pass.
///
/// Bags come as a 2-D input `(bags, length)`, one bag per row (what [`Layer::call`] and a
/// model take), or as 1-D ids with `offsets` where each bag starts, through
/// [`EmbeddingBag::call_with_offsets`]. With `padding_idx`, that id is left out of every bag
/// and of the count that `mean` divides by; a bag left empty (no ids, or padding only) gives
/// zeros, in every mode. `per_sample_weights` (sum mode only, as in PyTorch) scale each id's
/// vector.
///
/// The table `(num_embeddings, embedding_dim)`, named `embeddings` (PyTorch's `weight`), is
/// created at build by the initializer, `N(0, 1)` as in PyTorch, with the `padding_idx` row
/// then set to zeros; `weights` given at construction become the table as they are (PyTorch
/// does not zero the padding row of a given `_weight` either).
///
/// Training: the table's gradient is row-sparse ([`Gradient::Rows`]): in sum and mean mode
/// the rows of the ids in the batch (padding left out); in max mode only the rows each
/// maximum came from, the first of equal values in bag order winning, as in PyTorch. It goes
/// through every optimizer with the lazy catch-up of rows that a step does not touch.
///
/// # Shapes
/// - input: integer ids `(bags, length)`; with [`EmbeddingBag::call_with_offsets`], ids
///   `(total,)` and offsets `(bags,)` (`(bags + 1,)` with `include_last_offset`);
/// - `per_sample_weights`: the ids' shape, `f32`;
/// - output: `(bags, embedding_dim)`, `f32`, no mask.
///
/// # Errors
/// An id outside `0..num_embeddings` is an [`Error::IndexOutOfRange`] naming the layer, the
/// id and its position (PyTorch: "embedding_bag: Expected idx >= 0 && idx <
/// num_embeddings"). Offsets that do not start at 0, that decrease or that run past the ids
/// are [`Error::InvalidArgument`] naming the layer and the offending `offsets[i]`.
/// `per_sample_weights` in mean or max mode, or of another shape than the ids, are
/// [`Error::InvalidArgument`].
///
/// # Example
/// ```
/// use ndarray::array;
/// use ndkeras::prelude::*;
///
/// let table = array![[0.0f32, 1.0], [2.0, 3.0], [4.0, 5.0]];
/// let mut bag = EmbeddingBag::new(3, 2).mode(BagMode::Sum).weights(vec![table]);
///
/// // Two bags of two ids: one row each.
/// let out = bag.apply(&Tensor::from(array![[1i64, 2], [0, 0]]))?;
/// assert_eq!(out.as_float().unwrap(), &array![[6.0f32, 8.0], [0.0, 2.0]].into_dyn());
///
/// // The same ids as PyTorch's 1-D input with offsets, the second bag empty.
/// let ids = Tensor::from(vec![1i64, 2, 0]);
/// let offsets = Tensor::from(vec![0i64, 3, 3]);
/// let out = bag.call_with_offsets(&ids, &offsets, None)?;
/// assert_eq!(out.as_float().unwrap(), &array![[6.0f32, 9.0], [0.0, 0.0], [0.0, 0.0]].into_dyn());
///
/// // PyTorch's offset checks, as errors naming the position.
/// let err = bag.call_with_offsets(&ids, &Tensor::from(vec![1i64]), None).unwrap_err();
/// assert!(err.to_string().contains("offsets[0]"));
/// # Ok::<(), ndkeras::Error>(())
/// ```
#[derive(Clone)]
pub struct EmbeddingBag {
    name: String,
    config: EmbeddingBagConfig,
    table: Table,
}

impl EmbeddingBag {
    /// A bag layer over `num_embeddings` ids of vectors of `embedding_dim`, with PyTorch's
    /// defaults: mode `mean`, no `padding_idx`, `include_last_offset` off, `N(0, 1)`
    /// initializer; trainable, name `embedding_bag`, `embedding_bag_1`, ...
    ///
    /// A zero dimension is reported when the layer is built or added to a model.
    pub fn new(num_embeddings: usize, embedding_dim: usize) -> Self {
        EmbeddingBag {
            name: unique_name("embedding_bag"),
            config: EmbeddingBagConfig {
                num_embeddings,
                embedding_dim,
                mode: BagMode::Mean,
                padding_idx: None,
                include_last_offset: false,
                embeddings_initializer: Initializer::RandomNormal {
                    mean: 0.0,
                    stddev: 1.0,
                    seed: None,
                },
                trainable: true,
                embeddings_regularizer: None,
                embeddings_constraint: None,
            },
            table: Table::default(),
        }
    }

    /// How a bag's vectors are combined. Default: [`BagMode::Mean`].
    pub fn mode(mut self, mode: BagMode) -> Self {
        self.config.mode = mode;
        self
    }

    /// The id left out of every bag and of the count that `mean` divides by; negative
    /// values count from the end (`-1` is the last row). Must be in
    /// `-num_embeddings..num_embeddings`. Default: none.
    pub fn padding_idx(mut self, padding_idx: isize) -> Self {
        self.config.padding_idx = Some(padding_idx);
        self
    }

    /// Whether [`EmbeddingBag::call_with_offsets`] takes `bags + 1` offsets, the last one the
    /// number of ids (CSR style). Default: `false`.
    pub fn include_last_offset(mut self, include_last_offset: bool) -> Self {
        self.config.include_last_offset = include_last_offset;
        self
    }

    /// How the table is filled at build. Default: `RandomNormal(0, 1)`, PyTorch's
    /// `normal_`.
    pub fn embeddings_initializer(mut self, initializer: Initializer) -> Self {
        self.config.embeddings_initializer = initializer;
        self
    }

    /// The table to start from: one array `(num_embeddings, embedding_dim)`, which becomes
    /// the table at the build as it is (the initializer does not run, the padding row is
    /// not zeroed). A wrong count or shape is reported at the build. Default: none.
    pub fn weights<D: ndarray::Dimension>(mut self, weights: Vec<ndarray::Array<f32, D>>) -> Self {
        self.table.initial = Some(weights.into_iter().map(|w| w.into_dyn()).collect());
        self
    }

    /// The layer's name. Default: `embedding_bag`, `embedding_bag_1`, ...
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Whether training updates the table. Default: `true`.
    pub fn trainable(mut self, trainable: bool) -> Self {
        self.set_trainable(trainable);
        self
    }

    /// A penalty on the table added to the training loss. Default: none. It reaches every
    /// row, so each step then updates the whole table.
    pub fn embeddings_regularizer(mut self, regularizer: Regularizer) -> Self {
        self.config.embeddings_regularizer = Some(regularizer);
        if let Some(table) = &mut self.table.weight {
            table.set_regularizer(Some(regularizer));
        }
        self
    }

    /// A projection applied to the table after each training step. Default: none. It reaches
    /// every row, so each step then updates the whole table.
    pub fn embeddings_constraint(mut self, constraint: Constraint) -> Self {
        self.config.embeddings_constraint = Some(constraint);
        if let Some(table) = &mut self.table.weight {
            table.set_constraint(Some(constraint));
        }
        self
    }

    /// The settings.
    pub fn config(&self) -> &EmbeddingBagConfig {
        &self.config
    }

    /// Size of the vocabulary.
    pub fn num_embeddings(&self) -> usize {
        self.config.num_embeddings
    }

    /// Length of each vector.
    pub fn embedding_dim(&self) -> usize {
        self.config.embedding_dim
    }

    /// The table `(num_embeddings, embedding_dim)`, or `None` until the layer is built.
    pub fn embeddings(&self) -> Option<ArrayView2<'_, f32>> {
        self.table.view()
    }

    /// The row `padding_idx` stands for (negative values counted from the end), once
    /// [`Layer::validate`] accepted it.
    pub fn padding_row(&self) -> Option<usize> {
        let p = self.config.padding_idx?;
        let rows = isize::try_from(self.config.num_embeddings).ok()?;
        let row = if p < 0 { rows.checked_add(p)? } else { p };
        usize::try_from(row)
            .ok()
            .filter(|&r| r < self.config.num_embeddings)
    }

    /// PyTorch's `bag(input, offsets, per_sample_weights)` for 1-D ids: bag `b` holds
    /// `ids[offsets[b] .. offsets[b + 1]]`, the last bag running to the end of the ids (or,
    /// with `include_last_offset`, to the last offset, which must then be the number of ids).
    /// Does not build.
    ///
    /// # Errors
    /// [`Error::NotBuilt`] before the table exists; [`Error::IncompatibleShape`] for ids or
    /// offsets that are not 1-D; [`Error::InvalidArgument`] naming `offsets[i]` for offsets
    /// that do not start at 0, decrease, or run past the ids (and, with
    /// `include_last_offset`, for no offset at all or a last one other than the number of
    /// ids); the `per_sample_weights` errors of the type docs; the id errors.
    pub fn call_with_offsets(
        &self,
        ids: &Tensor,
        offsets: &Tensor,
        per_sample_weights: Option<ArrayViewD<'_, f32>>,
    ) -> Result<Tensor> {
        let weights = self.weights_for(ids, per_sample_weights)?;
        let bags = self.bags(ids, Some(offsets), weights.as_ref())?;
        self.reduce(&bags)
    }

    /// PyTorch's `bag(input, per_sample_weights=w)` for a 2-D input `(bags, length)`: as
    /// [`Layer::call`], each id's vector scaled by its weight (sum mode only). Does not build.
    ///
    /// # Errors
    /// Those of [`Layer::call`], and the `per_sample_weights` errors of the type docs.
    pub fn call_with_weights(
        &self,
        ids: &Tensor,
        per_sample_weights: ArrayViewD<'_, f32>,
    ) -> Result<Tensor> {
        let weights = self.weights_for(ids, Some(per_sample_weights))?;
        let bags = self.bags(ids, None, weights.as_ref())?;
        self.reduce(&bags)
    }

    /// The backward pass of [`EmbeddingBag::call_with_offsets`] (or, with `offsets` `None`,
    /// of [`EmbeddingBag::call_with_weights`]), for a training loop of your own: the table's
    /// row-sparse gradient, keyed by its weight id (nothing when the layer is frozen).
    ///
    /// # Errors
    /// Those of the call, and [`Error::IncompatibleShape`] when `output_gradient` is not
    /// `(bags, embedding_dim)`.
    pub fn backward_with_offsets(
        &self,
        ids: &Tensor,
        offsets: Option<&Tensor>,
        per_sample_weights: Option<ArrayViewD<'_, f32>>,
        output_gradient: &ArrayD<f32>,
    ) -> Result<Backward> {
        let weights = self.weights_for(ids, per_sample_weights)?;
        let bags = self.bags(ids, offsets, weights.as_ref())?;
        self.table_gradient(&bags, output_gradient)
    }

    fn context(&self) -> String {
        format!("layer \"{}\" (EmbeddingBag)", self.name)
    }

    fn settings(&self) -> TableSettings {
        TableSettings {
            rows: self.config.num_embeddings,
            columns: self.config.embedding_dim,
            initializer: self.config.embeddings_initializer.clone(),
            trainable: self.config.trainable,
            regularizer: self.config.embeddings_regularizer,
            constraint: self.config.embeddings_constraint,
        }
    }

    /// `per_sample_weights` checked (shape of the ids, sum mode, finite) and in standard
    /// layout.
    fn weights_for<'w>(
        &self,
        ids: &Tensor,
        per_sample_weights: Option<ArrayViewD<'w, f32>>,
    ) -> Result<Option<CowArray<'w, f32, IxDyn>>> {
        let Some(weights) = per_sample_weights else {
            return Ok(None);
        };
        if weights.shape() != ids.shape() {
            // PyTorch: "If per_sample_weights (...) is not None, then it must have the same
            // shape as the input (...)".
            return Err(Error::IncompatibleShape {
                context: format!(
                    "{}: per_sample_weights must have the shape of the ids",
                    self.context()
                ),
                expected: ids.shape().iter().map(|&d| Some(d)).collect(),
                got: weights.shape().iter().map(|&d| Some(d)).collect(),
            });
        }
        if self.config.mode != BagMode::Sum {
            return Err(Error::invalid_argument(
                self.context(),
                "per_sample_weights",
                "given",
                format!(
                    "none in mode '{}': per_sample_weights are only supported with mode 'sum', as in PyTorch",
                    self.config.mode
                ),
            ));
        }
        standard_weights(weights, &self.context(), "per_sample_weights").map(Some)
    }

    /// The bags of a 2-D input (one per row) or of 1-D ids with offsets.
    fn bags<'w>(
        &self,
        ids: &Tensor,
        offsets: Option<&Tensor>,
        weights: Option<&'w CowArray<'w, f32, IxDyn>>,
    ) -> Result<Bags<'w>> {
        let context = self.context();
        let bounds = match (ids.ndim(), offsets) {
            (2, None) => {
                let (bags, length) = (ids.shape()[0], ids.shape()[1]);
                let mut bounds = Vec::new();
                bounds
                    .try_reserve_exact(bags.saturating_add(1))
                    .map_err(|_| Error::Allocation {
                        context: format!("{context}: bag bounds"),
                        bytes: bags.saturating_mul(8),
                    })?;
                bounds.extend((0..=bags).map(|b| b * length));
                bounds
            }
            (2, Some(_)) => {
                return Err(Error::IncompatibleShape {
                    context: format!(
                        "{context}: 2-D ids are bags of equal length, one per row, and take no offsets (PyTorch: \"if input is 2D, then offsets has to be None\"); pass 1-D ids with offsets"
                    ),
                    expected: vec![None],
                    got: ids.keras_shape(),
                });
            }
            (1, Some(offsets)) => offsets_of(
                offsets,
                ids.len(),
                self.config.include_last_offset,
                &context,
            )?,
            (1, None) => {
                return Err(Error::IncompatibleShape {
                    context: format!(
                        "{context}: 1-D ids need offsets saying where each bag starts: use EmbeddingBag::call_with_offsets, or give 2-D ids (bags, length)"
                    ),
                    expected: vec![None, None],
                    got: ids.keras_shape(),
                });
            }
            _ => {
                return Err(Error::IncompatibleShape {
                    context: format!(
                        "{context}: the ids must be 2-D (bags, length), or 1-D with offsets (PyTorch: \"input has to be 1D or 2D Tensor\")"
                    ),
                    expected: vec![None, None],
                    got: ids.keras_shape(),
                });
            }
        };
        let rows = ids.row_indices(self.config.num_embeddings, &self.name)?;
        Ok(Bags {
            rows,
            bounds,
            weights: weights.and_then(|w| w.as_slice()),
            padding: self.padding_row(),
            keep: None,
        })
    }

    /// The reduced bags as a `(bags, embedding_dim)` tensor.
    fn reduce(&self, bags: &Bags<'_>) -> Result<Tensor> {
        let context = self.context();
        let table = self.table.values(&context)?;
        let dim = self.config.embedding_dim;
        let output_context = || format!("{context}: output");
        let (values, _) = bags.reduce(table, dim, self.config.mode.reduction(), &output_context)?;
        let shape = [bags.len(), dim];
        checked_size(&shape, output_context)?;
        let output =
            ArrayD::from_shape_vec(IxDyn(&shape), values).map_err(|_| Error::ShapeOverflow {
                context: output_context(),
                shape: shape.to_vec(),
            })?;
        Ok(Tensor::from(output))
    }

    /// The table's row-sparse gradient for the gradient of the reduced bags.
    fn table_gradient(&self, bags: &Bags<'_>, output_gradient: &ArrayD<f32>) -> Result<Backward> {
        let context = self.context();
        let dim = self.config.embedding_dim;
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
        let reduction = self.config.mode.reduction();
        let gradient_context = || format!("{context}: gradient of the table");
        let argmax = if reduction == Reduction::Max {
            // The rows the maxima came from: the forward pass again (cheaper to redo than to
            // keep, and always the maxima of these very ids).
            let table = self.table.values(&context)?;
            bags.reduce(table, dim, reduction, &gradient_context)?.1
        } else {
            Vec::new()
        };
        let gradient = output_gradient.as_standard_layout();
        let flat = gradient.as_slice().unwrap_or_default();
        let (rows, values) =
            bags.table_gradient(flat, dim, reduction, &argmax, &gradient_context)?;
        Ok(Backward {
            input_gradient: None,
            weight_gradients: vec![(id, Gradient::Rows { rows, values })],
        })
    }
}

impl fmt::Debug for EmbeddingBag {
    /// The settings and the table's shape (never the table).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddingBag")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("built", &self.table.weight.is_some())
            .field("initial_weights", &self.table.initial_shapes())
            .finish()
    }
}

impl Layer for EmbeddingBag {
    fn name(&self) -> &str {
        &self.name
    }

    fn class_name(&self) -> &'static str {
        "EmbeddingBag"
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

    /// Both dimensions positive, the table addressable, `padding_idx` in
    /// `-num_embeddings..num_embeddings` (PyTorch: "Padding_idx must be within
    /// num_embeddings"), the initializer, regularizer and constraint valid.
    fn validate(&self) -> Result<()> {
        let (rows, dim) = (self.config.num_embeddings, self.config.embedding_dim);
        if rows == 0 || dim == 0 {
            let (parameter, value) = if rows == 0 {
                ("num_embeddings", rows)
            } else {
                ("embedding_dim", dim)
            };
            return Err(Error::invalid_argument(
                self.context(),
                parameter,
                value,
                "both `num_embeddings` and `embedding_dim` positive",
            ));
        }
        checked_size(&[rows, dim], || {
            format!("{}: embeddings table", self.context())
        })?;
        if let Some(p) = self.config.padding_idx
            && self.padding_row().is_none()
        {
            return Err(Error::invalid_argument(
                self.context(),
                "padding_idx",
                p,
                format!(
                    "a row within the number of embeddings, -{rows} through {} (negative values count from the end)",
                    rows - 1
                ),
            ));
        }
        if let Some(regularizer) = self.config.embeddings_regularizer {
            regularizer.validate()?;
        }
        if let Some(constraint) = self.config.embeddings_constraint {
            constraint.validate()?;
        }
        self.config.embeddings_initializer.validate()
    }

    /// `(None, None)`: bags of any number and length, so a model starting with this layer
    /// is built when the layer is added.
    fn batch_input_shape(&self) -> Option<Shape> {
        Some(vec![None, None])
    }

    fn is_built(&self) -> bool {
        self.table.weight.is_some()
    }

    fn weight_shapes_for(&self, _input_shape: &[Option<usize>]) -> Result<Vec<Vec<usize>>> {
        Ok(vec![vec![
            self.config.num_embeddings,
            self.config.embedding_dim,
        ]])
    }

    /// The table comes from the initial `weights` when there are any (checked, then moved or
    /// copied once; the initializer does not run), otherwise from the initializer, with the
    /// `padding_idx` row then zeroed.
    fn build(&mut self, _input_shape: &[Option<usize>]) -> Result<()> {
        if self.is_built() {
            let mut pending = self.table.initial.take();
            let assigned = assign_pending(self, &mut pending);
            self.table.initial = pending;
            return assigned;
        }
        self.validate()?;
        let (name, context, settings) = (self.name.clone(), self.context(), self.settings());
        let zero_row = self.padding_row();
        self.table.build(&name, &context, &settings, zero_row)
    }

    fn unbuild(&mut self) {
        self.table.unbuild();
    }

    fn initial_weights(&self) -> Option<&[ArrayD<f32>]> {
        self.table.initial.as_deref()
    }

    /// 2-D integer ids, each in `0..num_embeddings`.
    fn check_input(&self, inputs: &Tensor) -> Result<()> {
        self.bags(inputs, None, None).map(|_| ())
    }

    fn call(&self, inputs: &Tensor) -> Result<Tensor> {
        self.table.get(&self.context())?;
        let bags = self.bags(inputs, None, None)?;
        self.reduce(&bags)
    }

    /// `(bags, embedding_dim)` for a 2-D input `(bags, length)`.
    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        match input_shape {
            [bags, _] => Ok(vec![*bags, Some(self.config.embedding_dim)]),
            _ => Err(Error::IncompatibleShape {
                context: format!(
                    "{}: the input must be 2-D (bags, length); 1-D ids take offsets through EmbeddingBag::call_with_offsets",
                    self.context()
                ),
                expected: vec![None, None],
                got: input_shape.to_vec(),
            }),
        }
    }

    /// No mask: each bag is one vector.
    fn compute_mask(
        &self,
        _inputs: &Tensor,
        _mask: Option<&ArrayD<bool>>,
    ) -> Result<Option<ArrayD<bool>>> {
        Ok(None)
    }

    /// The table's row-sparse gradient (see the type docs); ids have no gradient.
    fn backward(&mut self, inputs: &Tensor, output_gradient: ArrayD<f32>) -> Result<Backward> {
        let bags = self.bags(inputs, None, None)?;
        self.table_gradient(&bags, &output_gradient)
    }

    /// The distinct ids of the bags, padding left out.
    fn rows_read(&self, inputs: &Tensor) -> Result<Vec<(WeightId, Vec<usize>)>> {
        let Some(table) = self.table.weight.as_ref().filter(|t| t.is_trainable()) else {
            return Ok(Vec::new());
        };
        let bags = self.bags(inputs, None, None)?;
        Ok(vec![(table.id(), bags.rows_read())])
    }

    fn variables(&self) -> Vec<&Weight> {
        self.table.weight.iter().collect()
    }

    fn variables_mut(&mut self) -> Vec<&mut Weight> {
        self.table.weight.iter_mut().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn table() -> ndarray::Array2<f32> {
        array![[0.0f32, 1.0], [2.0, 3.0], [4.0, 5.0]]
    }

    #[test]
    fn a_fresh_table_has_a_zero_padding_row_and_a_given_one_keeps_it() {
        let mut fresh = EmbeddingBag::new(4, 3).padding_idx(-1);
        fresh.build(&[None, None]).unwrap();
        let t = fresh.embeddings().unwrap();
        assert!(t.row(3).iter().all(|&v| v == 0.0));
        assert!(t.row(0).iter().any(|&v| v != 0.0));
        let mut given = EmbeddingBag::new(3, 2)
            .padding_idx(0)
            .weights(vec![table()]);
        given.build(&[None, None]).unwrap();
        assert_eq!(given.embeddings().unwrap(), table());
    }

    #[test]
    fn padding_idx_out_of_range_is_refused() {
        for p in [3isize, -4] {
            let err = EmbeddingBag::new(3, 2)
                .padding_idx(p)
                .validate()
                .unwrap_err();
            assert!(err.to_string().contains("-3 through 2"), "{err}");
        }
    }
}
