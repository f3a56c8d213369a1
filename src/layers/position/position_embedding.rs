//! `PositionEmbedding`: a learned vector per position, broadcast to the input's shape.

use std::fmt;

use ndarray::{ArrayD, ArrayView2, Ix2};

use super::{check_gradient, float_values, sequence_and_features, too_long, try_zeros};
use crate::error::{Error, Result, Shape};
use crate::initializers::Initializer;
use crate::layer::{Backward, Gradient, Layer, assign_pending, check_initial_weights, unique_name};
use crate::storage::aligned_zeros;
use crate::tensor::Tensor;
use crate::weight::Weight;

/// The settings of a [`PositionEmbedding`], with KerasHub's names.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionEmbeddingConfig {
    /// The longest sequence the layer embeds: the table has this many rows.
    pub sequence_length: usize,
    /// How the table is filled at build (KerasHub's `initializer`, default `glorot_uniform`).
    pub initializer: Initializer,
    /// Whether training updates the table.
    pub trainable: bool,
}

/// A learned embedding of positions (KerasHub's `keras_hub.layers.PositionEmbedding`).
///
/// The layer looks only at its input's shape `(..., length, features)`: the output is rows
/// `start_index .. start_index + length` of the table `embeddings`
/// `(sequence_length, features)`, broadcast over the leading axes. It is meant to be added
/// to token embeddings (see [`TokenAndPositionEmbedding`](super::TokenAndPositionEmbedding),
/// which does both).
///
/// The table is created when the layer is built, from the input's last axis; `weights` given
/// at construction become the table (the initializer then does not run).
///
/// # Shapes
/// - input: `(..., length, features)`, `f32`, rank 2 or more, `length <= sequence_length`;
/// - output: the input's shape;
/// - weight `embeddings`: `(sequence_length, features)`; its gradient is dense: the output
///   gradient summed over the leading axes, in rows `start_index .. start_index + length`.
///
/// A masked input is accepted and the output carries no mask (see the
/// [module docs](super)).
///
/// # Errors
/// A sequence longer than `sequence_length` (or running past it from `start_index`) is an
/// [`Error::IncompatibleShape`] naming the layer and both lengths; a zero `sequence_length`
/// is refused by [`Layer::validate`].
///
/// # Example
/// ```
/// use ndarray::{array, Array3};
/// use ndkeras::prelude::*;
///
/// let table = array![[0.0f32, 1.0], [2.0, 3.0], [4.0, 5.0]].into_dyn();
/// let mut positions = PositionEmbedding::new(3).weights(vec![table]);
/// let tokens = Tensor::from(Array3::<f32>::zeros((2, 2, 2)));
/// let out = positions.apply(&tokens)?;
/// assert_eq!(out.as_float().unwrap(), &array![[[0.0f32, 1.0], [2.0, 3.0]], [[0.0, 1.0], [2.0, 3.0]]].into_dyn());
///
/// // KerasHub's `start_index` (cached decoding): the rows from position 1 on.
/// let out = positions.call_with_start_index(&tokens, 1)?;
/// assert_eq!(out.as_float().unwrap().slice(ndarray::s![0, .., ..]), array![[2.0f32, 3.0], [4.0, 5.0]]);
///
/// // Longer than the table: an error naming both lengths.
/// let err = positions.apply(&Tensor::from(Array3::<f32>::zeros((1, 4, 2)))).unwrap_err();
/// assert!(err.to_string().contains("sequence_length = 3"));
/// # Ok::<(), ndkeras::Error>(())
/// ```
#[derive(Clone)]
pub struct PositionEmbedding {
    name: String,
    config: PositionEmbeddingConfig,
    initial_weights: Option<Vec<ArrayD<f32>>>,
    embeddings: Option<Weight>,
    /// Whether the table was made from `initial_weights` (which `unbuild` gives back).
    built_from_weights: bool,
}

impl PositionEmbedding {
    /// A position embedding of `sequence_length` positions with KerasHub's defaults:
    /// `glorot_uniform`, trainable, name `position_embedding`, `position_embedding_1`, ...
    ///
    /// A zero `sequence_length` is reported when the layer is built or added to a model.
    pub fn new(sequence_length: usize) -> Self {
        PositionEmbedding {
            name: unique_name("position_embedding"),
            config: PositionEmbeddingConfig {
                sequence_length,
                initializer: Initializer::GlorotUniform { seed: None },
                trainable: true,
            },
            initial_weights: None,
            embeddings: None,
            built_from_weights: false,
        }
    }

    /// How the table is filled at build (KerasHub's `initializer`). Default:
    /// `glorot_uniform`.
    pub fn initializer(mut self, initializer: Initializer) -> Self {
        self.config.initializer = initializer;
        self
    }

    /// The table to start from, as Keras' `weights=[table]`: one array of shape
    /// `(sequence_length, features)`, which becomes the table when the layer is built (the
    /// initializer does not run). Default: none. A wrong count or shape is reported at build.
    pub fn weights(mut self, weights: Vec<ArrayD<f32>>) -> Self {
        self.initial_weights = Some(weights);
        self
    }

    /// The layer's name. Default: `position_embedding`, `position_embedding_1`, ...
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Whether training updates the table. Default: `true`.
    pub fn trainable(mut self, trainable: bool) -> Self {
        self.set_trainable(trainable);
        self
    }

    /// The settings.
    pub fn config(&self) -> &PositionEmbeddingConfig {
        &self.config
    }

    /// The longest sequence the layer embeds.
    pub fn sequence_length(&self) -> usize {
        self.config.sequence_length
    }

    /// The table `(sequence_length, features)`, or `None` until the layer is built.
    pub fn embeddings(&self) -> Option<ArrayView2<'_, f32>> {
        self.embeddings
            .as_ref()
            .and_then(|table| table.view().into_dimensionality::<Ix2>().ok())
    }

    /// KerasHub's `layer(inputs, start_index=start_index)`: rows `start_index ..
    /// start_index + length` of the table, broadcast to the input's shape. Does not build.
    ///
    /// # Errors
    /// [`Error::NotBuilt`] before the table exists, the input errors of [`Layer::check_input`],
    /// and [`Error::IncompatibleShape`] when `start_index + length > sequence_length`.
    pub fn call_with_start_index(&self, inputs: &Tensor, start_index: usize) -> Result<Tensor> {
        self.check_input(inputs)?;
        let mut output = try_zeros(inputs.shape(), || format!("{}: output", self.context()))?;
        self.add_positions(&mut output, start_index)?;
        Ok(Tensor::from(output))
    }

    /// The backward pass of [`PositionEmbedding::call_with_start_index`]: the input's
    /// gradient is zero (the output depends only on its shape); the table's is dense, the
    /// output gradient summed over the leading axes into rows `start_index ..`.
    ///
    /// # Errors
    /// Those of [`PositionEmbedding::call_with_start_index`], and
    /// [`Error::IncompatibleShape`] when the gradient's shape is not the input's.
    pub fn backward_with_start_index(
        &self,
        inputs: &Tensor,
        output_gradient: &ArrayD<f32>,
        start_index: usize,
    ) -> Result<Backward> {
        self.check_input(inputs)?;
        check_gradient(output_gradient, inputs.shape(), &self.context())?;
        let mut weight_gradients = Vec::new();
        if let Some(table) = self.embeddings.as_ref().filter(|t| t.is_trainable()) {
            let gradient = self.table_gradient(output_gradient, start_index)?;
            weight_gradients.push((table.id(), Gradient::Dense(gradient)));
        }
        let input_gradient = try_zeros(inputs.shape(), || {
            format!("{}: input gradient", self.context())
        })?;
        Ok(Backward {
            input_gradient: Some(input_gradient),
            weight_gradients,
        })
    }

    fn context(&self) -> String {
        format!("layer \"{}\" (PositionEmbedding)", self.name)
    }

    /// The table, or [`Error::NotBuilt`].
    fn table(&self) -> Result<&Weight> {
        self.embeddings.as_ref().ok_or_else(|| Error::NotBuilt {
            context: self.context(),
            what: "the position embeddings table".into(),
            hint: "use `apply` (which builds the layer on its first call) or `build` first".into(),
        })
    }

    /// The table's rows `start_index .. start_index + length`, flat, after checking that
    /// they exist.
    fn rows(&self, start_index: usize, length: usize, shape: &[usize]) -> Result<&[f32]> {
        let table = self.table()?;
        let features = table.shape().get(1).copied().unwrap_or(0);
        let sequence_length = self.config.sequence_length;
        let end = start_index
            .checked_add(length)
            .filter(|&end| end <= sequence_length)
            .ok_or_else(|| {
                too_long(
                    &self.context(),
                    start_index,
                    length,
                    sequence_length,
                    shape.iter().map(|&d| Some(d)).collect(),
                )
            })?;
        let flat = table.as_slice().ok_or_else(|| self.layout_error())?;
        // In bounds: end <= sequence_length, and the table holds sequence_length rows.
        flat.get(start_index * features..end * features)
            .ok_or_else(|| self.layout_error())
    }

    fn layout_error(&self) -> Error {
        Error::NotBuilt {
            context: self.context(),
            what: "a contiguous table".into(),
            hint: "set the weights again".into(),
        }
    }

    /// Adds the positions from `start_index` to `values` `(..., length, features)` (standard
    /// layout): `values[..., i, :] += embeddings[start_index + i, :]`. KerasHub's
    /// `ops.slice` + `ops.broadcast_to`, and the sum of `TokenAndPositionEmbedding`.
    pub(super) fn add_positions(&self, values: &mut ArrayD<f32>, start_index: usize) -> Result<()> {
        let context = self.context();
        let shape = values.shape().to_vec();
        let (length, features) = sequence_and_features(&shape, &context)?;
        self.check_features(features, &shape)?;
        let rows = self.rows(start_index, length, &shape)?;
        let flat = values.as_slice_mut().ok_or_else(|| Error::NotBuilt {
            context: context.clone(),
            what: "a contiguous output".into(),
            hint: "this is a bug in ndkeras".into(),
        })?;
        if rows.is_empty() {
            return Ok(());
        }
        for block in flat.chunks_exact_mut(rows.len()) {
            for (value, position) in block.iter_mut().zip(rows) {
                *value += position;
            }
        }
        Ok(())
    }

    /// The table's gradient for an output gradient `(..., length, features)`: the gradient
    /// summed over the leading axes, in rows `start_index .. start_index + length`, zero
    /// elsewhere (dense, like KerasHub's).
    pub(super) fn table_gradient(
        &self,
        gradient: &ArrayD<f32>,
        start_index: usize,
    ) -> Result<ArrayD<f32>> {
        let context = self.context();
        let shape = gradient.shape().to_vec();
        let (length, features) = sequence_and_features(&shape, &context)?;
        self.check_features(features, &shape)?;
        self.rows(start_index, length, &shape)?;
        let sequence_length = self.config.sequence_length;
        let mut table = try_zeros(&[sequence_length, features], || {
            format!("{context}: gradient of the table")
        })?;
        let block = length * features;
        if block == 0 {
            return Ok(table);
        }
        let gradient = gradient.as_standard_layout();
        let (Some(out), Some(flat)) = (table.as_slice_mut(), gradient.as_slice()) else {
            return Err(self.layout_error());
        };
        let start = start_index * features;
        let out = &mut out[start..start + block];
        for chunk in flat.chunks_exact(block) {
            for (acc, g) in out.iter_mut().zip(chunk) {
                *acc += g;
            }
        }
        Ok(table)
    }

    /// Once built, the input's features must be the table's.
    fn check_features(&self, features: usize, shape: &[usize]) -> Result<()> {
        let Some(expected) = self
            .embeddings
            .as_ref()
            .and_then(|t| t.shape().get(1).copied())
        else {
            return Ok(());
        };
        if features == expected {
            return Ok(());
        }
        let mut expected_shape: Shape = vec![None; shape.len()];
        if let Some(last) = expected_shape.last_mut() {
            *last = Some(expected);
        }
        Err(Error::IncompatibleShape {
            context: format!(
                "{}: the input has {features} features, but the table was built for {expected}",
                self.context()
            ),
            expected: expected_shape,
            got: shape.iter().map(|&d| Some(d)).collect(),
        })
    }

    /// `table` with the layer's trainability.
    fn table_weight(&self, table: Weight) -> Weight {
        table.with_trainable(self.config.trainable)
    }
}

impl fmt::Debug for PositionEmbedding {
    /// The settings and the table's shape (never the table).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PositionEmbedding")
            .field("name", &self.name)
            .field("config", &self.config)
            .field(
                "table_shape",
                &self.embeddings.as_ref().map(|t| t.shape().to_vec()),
            )
            .finish()
    }
}

impl Layer for PositionEmbedding {
    fn name(&self) -> &str {
        &self.name
    }

    fn class_name(&self) -> &'static str {
        "PositionEmbedding"
    }

    fn is_trainable(&self) -> bool {
        self.config.trainable
    }

    fn set_trainable(&mut self, trainable: bool) {
        self.config.trainable = trainable;
        if let Some(table) = &mut self.embeddings {
            table.set_trainable(trainable);
        }
    }

    /// A positive `sequence_length` (KerasHub refuses only `None`; a zero-row table fails
    /// later there) and a valid initializer.
    fn validate(&self) -> Result<()> {
        if self.config.sequence_length == 0 {
            return Err(Error::invalid_argument(
                self.context(),
                "sequence_length",
                0,
                "a positive number of positions",
            ));
        }
        self.config.initializer.validate()
    }

    fn is_built(&self) -> bool {
        self.embeddings.is_some()
    }

    /// `(sequence_length, features)`, features from the input's last axis, which must be
    /// known.
    fn weight_shapes_for(&self, input_shape: &[Option<usize>]) -> Result<Vec<Vec<usize>>> {
        match input_shape {
            [_, .., Some(features)] => Ok(vec![vec![self.config.sequence_length, *features]]),
            _ => Err(Error::IncompatibleShape {
                context: format!(
                    "{}: the input needs rank 2 or more and a known last axis (features) to build the table",
                    self.context()
                ),
                expected: vec![None, None, Some(0)],
                got: input_shape.to_vec(),
            }),
        }
    }

    /// The table comes from the initial `weights` when there are any (checked, then moved or
    /// copied once into aligned memory; the initializer does not run), otherwise from the
    /// initializer.
    fn build(&mut self, input_shape: &[Option<usize>]) -> Result<()> {
        if self.is_built() {
            let mut pending = self.initial_weights.take();
            let assigned = assign_pending(self, &mut pending);
            self.initial_weights = pending;
            return assigned;
        }
        self.validate()?;
        let shape = self
            .weight_shapes_for(input_shape)?
            .into_iter()
            .next()
            .unwrap_or_default();
        let (rows, columns) = match shape.as_slice() {
            [rows, columns] => (*rows, *columns),
            _ => return Err(self.layout_error()),
        };
        // Keras would run the initializer first: report what it would refuse.
        self.config.initializer.validate_for(&shape)?;
        let context = format!("{}: embeddings table", self.context());
        let table = match self.initial_weights.as_deref() {
            Some(weights) => {
                check_initial_weights(self, input_shape)?;
                let first = weights.first().ok_or_else(|| Error::WeightCount {
                    layer: self.name.clone(),
                    expected: 1,
                    got: 0,
                })?;
                let prepared = Weight::prepare(first, || context.clone())?;
                let array = self
                    .initial_weights
                    .take()
                    .and_then(|w| w.into_iter().next())
                    .ok_or_else(|| self.layout_error())?;
                self.built_from_weights = true;
                Weight::from_prepared("embeddings", array, prepared)?
            }
            None => {
                let mut table = aligned_zeros(rows, columns, || context.clone())?;
                let values = table.as_slice_mut().ok_or_else(|| self.layout_error())?;
                self.config.initializer.initialize_into(&shape, values)?;
                self.built_from_weights = false;
                Weight::matrix("embeddings", table)
            }
        };
        self.embeddings = Some(self.table_weight(table));
        Ok(())
    }

    fn unbuild(&mut self) {
        let table = self.embeddings.take();
        if std::mem::take(&mut self.built_from_weights)
            && let Some(array) = table.and_then(Weight::into_array)
        {
            self.initial_weights = Some(vec![array]);
        }
    }

    fn initial_weights(&self) -> Option<&[ArrayD<f32>]> {
        self.initial_weights.as_deref()
    }

    /// `f32`, rank 2 or more, at most `sequence_length` positions, and (once built) the
    /// table's number of features.
    fn check_input(&self, inputs: &Tensor) -> Result<()> {
        let context = self.context();
        let values = float_values(inputs, &context)?;
        let (length, features) = sequence_and_features(values.shape(), &context)?;
        if length > self.config.sequence_length {
            return Err(too_long(
                &context,
                0,
                length,
                self.config.sequence_length,
                inputs.keras_shape(),
            ));
        }
        self.check_features(features, values.shape())
    }

    fn call(&self, inputs: &Tensor) -> Result<Tensor> {
        self.call_with_start_index(inputs, 0)
    }

    /// The input's shape (KerasHub's `compute_output_shape`), after checking its rank and a
    /// known length against `sequence_length`.
    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        if input_shape.len() < 2 {
            return Err(Error::IncompatibleShape {
                context: format!(
                    "{}: the input needs a sequence axis and a feature axis",
                    self.context()
                ),
                expected: vec![None, None, None],
                got: input_shape.to_vec(),
            });
        }
        if let Some(Some(length)) = input_shape.get(input_shape.len() - 2)
            && *length > self.config.sequence_length
        {
            return Err(too_long(
                &self.context(),
                0,
                *length,
                self.config.sequence_length,
                input_shape.to_vec(),
            ));
        }
        Ok(input_shape.to_vec())
    }

    /// No mask: the output holds positions, not tokens (Keras 3 drops the mask too).
    fn compute_mask(
        &self,
        _inputs: &Tensor,
        _mask: Option<&ArrayD<bool>>,
    ) -> Result<Option<ArrayD<bool>>> {
        Ok(None)
    }

    /// `true`: a masked input is accepted (its mask is not passed on; see the module docs).
    fn supports_masking(&self) -> bool {
        true
    }

    /// The input's gradient is zero (the output depends only on its shape); the table's is
    /// dense, the output gradient summed over the leading axes.
    fn backward(&mut self, inputs: &Tensor, output_gradient: ArrayD<f32>) -> Result<Backward> {
        self.backward_with_start_index(inputs, &output_gradient, 0)
    }

    fn variables(&self) -> Vec<&Weight> {
        self.embeddings.iter().collect()
    }

    fn variables_mut(&mut self) -> Vec<&mut Weight> {
        self.embeddings.iter_mut().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array3, array};

    #[test]
    fn positions_broadcast_over_leading_axes() {
        let table = array![[1.0f32], [2.0], [3.0]].into_dyn();
        let mut layer = PositionEmbedding::new(3).weights(vec![table]);
        let out = layer
            .apply(&Tensor::from(Array3::<f32>::zeros((2, 2, 1))))
            .unwrap();
        assert_eq!(
            out.as_float().unwrap(),
            &array![[[1.0f32], [2.0]], [[1.0], [2.0]]].into_dyn()
        );
    }

    #[test]
    fn table_gradient_sums_the_batch_into_the_used_rows() {
        let table = array![[1.0f32], [2.0], [3.0]].into_dyn();
        let mut layer = PositionEmbedding::new(3).weights(vec![table]);
        layer
            .apply(&Tensor::from(Array3::<f32>::zeros((2, 2, 1))))
            .unwrap();
        let g = array![[[1.0f32], [2.0]], [[10.0], [20.0]]].into_dyn();
        let table_gradient = layer.table_gradient(&g, 1).unwrap();
        assert_eq!(table_gradient, array![[0.0f32], [11.0], [22.0]].into_dyn());
    }

    #[test]
    fn a_failed_build_leaves_the_weights_pending() {
        let mut layer = PositionEmbedding::new(3).weights(vec![array![[1.0f32]].into_dyn()]);
        assert!(layer.build(&[None, Some(2), Some(1)]).is_err());
        assert!(!layer.is_built());
        assert!(layer.initial_weights().is_some());
    }
}
