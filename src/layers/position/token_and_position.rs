//! `TokenAndPositionEmbedding`: a token [`Embedding`] plus a [`PositionEmbedding`].

use std::fmt;

use ndarray::ArrayD;

use super::PositionEmbedding;
use crate::error::{Error, Result, Shape};
use crate::initializers::Initializer;
use crate::layer::{
    Backward, Gradient, Layer, assign_pending, check_initial_weights, unique_name,
    with_explicit_name,
};
use crate::layers::Embedding;
use crate::tensor::Tensor;
use crate::weight::{Weight, WeightId};

/// The settings of a [`TokenAndPositionEmbedding`], with KerasHub's names.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenAndPositionEmbeddingConfig {
    /// Size of the vocabulary: ids are `0..vocabulary_size`.
    pub vocabulary_size: usize,
    /// The longest sequence: the position table has this many rows.
    pub sequence_length: usize,
    /// Length of each vector.
    pub embedding_dim: usize,
    /// How both tables are filled (KerasHub's `embeddings_initializer`, default `"uniform"`:
    /// `RandomUniform(-0.05, 0.05)`; KerasHub gives each table a clone of it).
    pub embeddings_initializer: Initializer,
    /// Whether id 0 is padding, masked out for the layers that follow.
    pub mask_zero: bool,
    /// Whether training updates the tables.
    pub trainable: bool,
}

/// Token embedding plus position embedding (KerasHub's
/// `keras_hub.layers.TokenAndPositionEmbedding`): `output[..., i, :] = token_table[id, :] +
/// position_table[start_index + i, :]`.
///
/// Inside are an [`Embedding`] named `token_embedding` (its gradient is row-sparse: one row
/// per distinct id) and a [`PositionEmbedding`] named `position_embedding` (its gradient is
/// dense), both filled by `embeddings_initializer`. The weights are, in this order,
/// `token_embedding/embeddings` `(vocabulary_size, embedding_dim)` and
/// `position_embedding/embeddings` `(sequence_length, embedding_dim)`, KerasHub's variable
/// paths under the layer's name (so a saved model names them
/// `<layer>/token_embedding/embeddings` as Keras 3 does).
///
/// KerasHub's `tie_weights` (a `reverse` call giving logits from the token table) is not
/// wired here yet: the token table is the tied one (`tie_weights = true`, KerasHub's
/// default), with no reverse call. For tied input and output embeddings, use a
/// [`ReversibleEmbedding`](crate::layers::ReversibleEmbedding) and add a
/// [`PositionEmbedding`] to its output.
///
/// # Shapes
/// - input: ids `(..., length)` of rank 1 or more, `length <= sequence_length`, any integer
///   type (or whole `f32`), each in `[0, vocabulary_size)`;
/// - output: `(..., length, embedding_dim)`, `f32`;
/// - mask (with `mask_zero`): `ids != 0`, as KerasHub; an incoming mask is ignored.
///
/// # Example
/// ```
/// use ndarray::array;
/// use ndkeras::prelude::*;
///
/// let tokens = array![[0.0f32, 0.0], [1.0, 1.0], [2.0, 2.0]].into_dyn();
/// let positions = array![[0.0f32, 0.5], [0.0, 0.25]].into_dyn();
/// let mut layer = TokenAndPositionEmbedding::new(3, 2, 2)
///     .mask_zero(true)
///     .weights(vec![tokens, positions]);
/// let out = layer.apply(&Tensor::from(array![[2i64, 0]]))?;
/// assert_eq!(out.as_float().unwrap(), &array![[[2.0f32, 2.5], [0.0, 0.25]]].into_dyn());
/// assert_eq!(out.mask(), Some(&array![[true, false]].into_dyn()));
/// assert_eq!(
///     layer.weight_names(),
///     ["token_embedding/embeddings", "position_embedding/embeddings"]
/// );
/// # Ok::<(), ndkeras::Error>(())
/// ```
#[derive(Clone)]
pub struct TokenAndPositionEmbedding {
    name: String,
    config: TokenAndPositionEmbeddingConfig,
    token: Embedding,
    position: PositionEmbedding,
    initial_weights: Option<Vec<ArrayD<f32>>>,
    /// Whether the tables were made from `initial_weights` (which `unbuild` gives back).
    built_from_weights: bool,
}

impl TokenAndPositionEmbedding {
    /// Token and position embeddings with KerasHub's defaults (`"uniform"` initializer,
    /// `mask_zero` off, trainable), named `token_and_position_embedding`,
    /// `token_and_position_embedding_1`, ...
    ///
    /// A zero size is reported when the layer is built or added to a model.
    pub fn new(vocabulary_size: usize, sequence_length: usize, embedding_dim: usize) -> Self {
        let config = TokenAndPositionEmbeddingConfig {
            vocabulary_size,
            sequence_length,
            embedding_dim,
            embeddings_initializer: Initializer::default(),
            mask_zero: false,
            trainable: true,
        };
        let (token, position) = sublayers(&config);
        TokenAndPositionEmbedding {
            name: unique_name("token_and_position_embedding"),
            config,
            token,
            position,
            initial_weights: None,
            built_from_weights: false,
        }
    }

    /// How both tables are filled (KerasHub's `embeddings_initializer`). Default:
    /// `"uniform"` (`RandomUniform(-0.05, 0.05)`).
    pub fn embeddings_initializer(mut self, initializer: Initializer) -> Self {
        self.config.embeddings_initializer = initializer;
        self.rebuild_sublayers();
        self
    }

    /// Whether id 0 is padding: the layer then outputs the mask `ids != 0`. Default: `false`.
    pub fn mask_zero(mut self, mask_zero: bool) -> Self {
        self.config.mask_zero = mask_zero;
        self.rebuild_sublayers();
        self
    }

    /// The tables to start from, as Keras' `weights=[token_table, position_table]`, shapes
    /// `(vocabulary_size, embedding_dim)` and `(sequence_length, embedding_dim)`. They
    /// become the tables when the layer is built (the initializer does not run). Default:
    /// none. A wrong count or shape is reported at build.
    pub fn weights(mut self, weights: Vec<ArrayD<f32>>) -> Self {
        self.initial_weights = Some(weights);
        self
    }

    /// The layer's name. Default: `token_and_position_embedding`, ..._1, ...
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Whether training updates the tables. Default: `true`.
    pub fn trainable(mut self, trainable: bool) -> Self {
        self.set_trainable(trainable);
        self
    }

    /// The settings.
    pub fn config(&self) -> &TokenAndPositionEmbeddingConfig {
        &self.config
    }

    /// The token embedding inside (KerasHub's `token_embedding`).
    pub fn token_embedding(&self) -> &Embedding {
        &self.token
    }

    /// The position embedding inside (KerasHub's `position_embedding`).
    pub fn position_embedding(&self) -> &PositionEmbedding {
        &self.position
    }

    /// KerasHub's `layer(ids, start_index=start_index)`: positions from `start_index` on.
    ///
    /// # Errors
    /// [`Error::NotBuilt`] before the tables exist, the errors of [`Layer::check_input`],
    /// and [`Error::IncompatibleShape`] when `start_index + length > sequence_length`.
    pub fn call_with_start_index(&self, inputs: &Tensor, start_index: usize) -> Result<Tensor> {
        self.check_input(inputs)?;
        let tokens = self.token.call(inputs)?;
        let mut values = tokens.into_float()?;
        self.position.add_positions(&mut values, start_index)?;
        Ok(Tensor::from(values))
    }

    /// The backward pass of [`TokenAndPositionEmbedding::call_with_start_index`]: the token
    /// table's gradient is row-sparse (one row per distinct id, Keras' `IndexedSlices`), the
    /// position table's dense (the output gradient summed over the leading axes, in rows
    /// `start_index ..`); ids have no gradient.
    ///
    /// # Errors
    /// [`Error::IncompatibleShape`] when the gradient's shape is not the output's, and the
    /// errors of [`TokenAndPositionEmbedding::call_with_start_index`].
    pub fn backward_with_start_index(
        &mut self,
        inputs: &Tensor,
        output_gradient: ArrayD<f32>,
        start_index: usize,
    ) -> Result<Backward> {
        self.check_input(inputs)?;
        let position_gradient = match self.position.variables().first() {
            Some(table) if table.is_trainable() => Some((
                table.id(),
                self.position
                    .table_gradient(&output_gradient, start_index)?,
            )),
            _ => None,
        };
        let mut backward = self.token.backward(inputs, output_gradient)?;
        if let Some((id, gradient)) = position_gradient {
            backward
                .weight_gradients
                .push((id, Gradient::Dense(gradient)));
        }
        Ok(backward)
    }

    fn context(&self) -> String {
        format!("layer \"{}\" (TokenAndPositionEmbedding)", self.name)
    }

    /// Remakes the (unbuilt) sub-layers after a setting changed.
    fn rebuild_sublayers(&mut self) {
        if !self.is_built() {
            let (token, position) = sublayers(&self.config);
            self.token = token;
            self.position = position;
        }
    }

    /// The embedded shape for ids of `input_shape`.
    fn embedded_shape(&self, input_shape: &[Option<usize>]) -> Shape {
        let mut shape = input_shape.to_vec();
        shape.push(Some(self.config.embedding_dim));
        shape
    }

    /// Builds both tables from the pending `weights` (checked by the caller). Each array is
    /// laid out first (the only step that allocates), so that a failure leaves the weights
    /// pending; the sub-layers then take the laid-out arrays without copying them again.
    fn build_from_weights(&mut self, input_shape: &[Option<usize>]) -> Result<()> {
        let context = || format!("{}: set_weights", self.context());
        let prepared = match self.initial_weights.as_deref() {
            Some([token, position]) => (
                Weight::prepare(token, context)?,
                Weight::prepare(position, context)?,
            ),
            _ => {
                return Err(Error::WeightCount {
                    layer: self.name.clone(),
                    expected: 2,
                    got: self.initial_weights.as_ref().map_or(0, Vec::len),
                });
            }
        };
        let mut arrays = self.initial_weights.take().unwrap_or_default().into_iter();
        let (Some(token), Some(position)) = (arrays.next(), arrays.next()) else {
            return Err(Error::WeightCount {
                layer: self.name.clone(),
                expected: 2,
                got: 0,
            });
        };
        let laid_out = |array, prepared| {
            Weight::from_prepared("embeddings", array, prepared).map(Weight::into_array)
        };
        let (Some(token), Some(position)) = (
            laid_out(token, prepared.0)?,
            laid_out(position, prepared.1)?,
        ) else {
            return Err(Error::NotBuilt {
                context: self.context(),
                what: "owned tables".into(),
                hint: "this is a bug in ndkeras".into(),
            });
        };
        let mut built_token = self.token.clone().weights(vec![token]);
        let mut built_position = self.position.clone().weights(vec![position]);
        built_token.build(input_shape)?;
        built_position.build(&self.embedded_shape(input_shape))?;
        self.token = built_token;
        self.position = built_position;
        self.built_from_weights = true;
        Ok(())
    }
}

/// KerasHub's sub-layers: `token_embedding` and `position_embedding`, each with a clone of
/// the initializer. Named explicitly, so they do not advance the automatic names.
fn sublayers(config: &TokenAndPositionEmbeddingConfig) -> (Embedding, PositionEmbedding) {
    let token = with_explicit_name(|| {
        Embedding::new(config.vocabulary_size, config.embedding_dim)
            .with_name("token_embedding")
            .embeddings_initializer(config.embeddings_initializer.clone())
            .mask_zero(config.mask_zero)
            .trainable(config.trainable)
    });
    let position = with_explicit_name(|| {
        PositionEmbedding::new(config.sequence_length)
            .with_name("position_embedding")
            .initializer(config.embeddings_initializer.clone())
            .trainable(config.trainable)
    });
    (token, position)
}

impl fmt::Debug for TokenAndPositionEmbedding {
    /// The settings and the tables' shapes (never the tables).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenAndPositionEmbedding")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("weight_shapes", &self.weight_shapes())
            .finish()
    }
}

impl Layer for TokenAndPositionEmbedding {
    fn name(&self) -> &str {
        &self.name
    }

    fn class_name(&self) -> &'static str {
        "TokenAndPositionEmbedding"
    }

    fn is_trainable(&self) -> bool {
        self.config.trainable
    }

    fn set_trainable(&mut self, trainable: bool) {
        self.config.trainable = trainable;
        self.token.set_trainable(trainable);
        self.position.set_trainable(trainable);
    }

    /// Positive `vocabulary_size`, `sequence_length` and `embedding_dim` (KerasHub refuses
    /// only `None`), tables that fit in memory, a valid initializer.
    fn validate(&self) -> Result<()> {
        let c = &self.config;
        for (parameter, value) in [
            ("vocabulary_size", c.vocabulary_size),
            ("sequence_length", c.sequence_length),
            ("embedding_dim", c.embedding_dim),
        ] {
            if value == 0 {
                return Err(Error::invalid_argument(
                    self.context(),
                    parameter,
                    0,
                    "a positive size",
                ));
            }
        }
        self.token.validate()?;
        self.position.validate()
    }

    fn batch_input_shape(&self) -> Option<Shape> {
        None
    }

    fn is_built(&self) -> bool {
        self.token.is_built() && self.position.is_built()
    }

    fn weight_shapes_for(&self, _input_shape: &[Option<usize>]) -> Result<Vec<Vec<usize>>> {
        let c = &self.config;
        Ok(vec![
            vec![c.vocabulary_size, c.embedding_dim],
            vec![c.sequence_length, c.embedding_dim],
        ])
    }

    /// Both tables from the initial `weights` when there are any (checked first; the
    /// initializer does not run), otherwise from the initializer. All or nothing.
    fn build(&mut self, input_shape: &[Option<usize>]) -> Result<()> {
        if self.is_built() {
            let mut pending = self.initial_weights.take();
            let assigned = assign_pending(self, &mut pending);
            self.initial_weights = pending;
            return assigned;
        }
        self.validate()?;
        if input_shape.is_empty() {
            return Err(Error::IncompatibleShape {
                context: format!("{}: the ids need a sequence axis", self.context()),
                expected: vec![None, None],
                got: Vec::new(),
            });
        }
        // Keras would run the initializers first: report what they would refuse.
        for shape in self.weight_shapes_for(input_shape)? {
            self.config.embeddings_initializer.validate_for(&shape)?;
        }
        if self.initial_weights.is_some() {
            check_initial_weights(self, input_shape)?;
            return self.build_from_weights(input_shape);
        }
        self.token.build(input_shape)?;
        if let Err(err) = self.position.build(&self.embedded_shape(input_shape)) {
            self.token.unbuild();
            return Err(err);
        }
        self.built_from_weights = false;
        Ok(())
    }

    fn unbuild(&mut self) {
        let built_from_weights = std::mem::take(&mut self.built_from_weights);
        let mut tables = Vec::new();
        for weight in self
            .token
            .variables_mut()
            .into_iter()
            .chain(self.position.variables_mut())
        {
            // Take each table out (moved, not copied); the sub-layers are remade below.
            let placeholder = Weight::matrix(weight.name().to_string(), Default::default());
            tables.push(std::mem::replace(weight, placeholder));
        }
        let (token, position) = sublayers(&self.config);
        self.token = token;
        self.position = position;
        if built_from_weights {
            let arrays: Option<Vec<ArrayD<f32>>> =
                tables.into_iter().map(Weight::into_array).collect();
            if let Some(arrays) = arrays.filter(|a| a.len() == 2) {
                self.initial_weights = Some(arrays);
            }
        }
    }

    fn initial_weights(&self) -> Option<&[ArrayD<f32>]> {
        self.initial_weights.as_deref()
    }

    /// Ids of rank 1 or more, each in range, at most `sequence_length` of them per sequence.
    fn check_input(&self, inputs: &Tensor) -> Result<()> {
        let shape = inputs.shape();
        let Some(&length) = shape.last() else {
            return Err(Error::IncompatibleShape {
                context: format!(
                    "{}: the ids need a sequence axis (rank 1 or more)",
                    self.context()
                ),
                expected: vec![None, None],
                got: Vec::new(),
            });
        };
        if length > self.config.sequence_length {
            let mut embedded = inputs.keras_shape();
            embedded.push(Some(self.config.embedding_dim));
            return Err(super::too_long(
                &self.context(),
                0,
                length,
                self.config.sequence_length,
                embedded,
            ));
        }
        self.token.check_input(inputs)
    }

    fn call(&self, inputs: &Tensor) -> Result<Tensor> {
        self.call_with_start_index(inputs, 0)
    }

    /// `input_shape + (embedding_dim,)`, after checking a known length.
    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        let output = self.embedded_shape(input_shape);
        self.position.compute_output_shape(&output)
    }

    /// `ids != 0` with `mask_zero`, else `None`; an incoming mask is ignored (KerasHub
    /// re-attaches the token embedding's mask).
    fn compute_mask(
        &self,
        inputs: &Tensor,
        mask: Option<&ArrayD<bool>>,
    ) -> Result<Option<ArrayD<bool>>> {
        self.token.compute_mask(inputs, mask)
    }

    /// `true`: an incoming mask is ignored, as the token embedding ignores it.
    fn supports_masking(&self) -> bool {
        true
    }

    /// The token table's gradient is row-sparse (one row per distinct id), the position
    /// table's dense (summed over the leading axes); ids have no gradient.
    fn backward(&mut self, inputs: &Tensor, output_gradient: ArrayD<f32>) -> Result<Backward> {
        self.backward_with_start_index(inputs, output_gradient, 0)
    }

    fn rows_read(&self, inputs: &Tensor) -> Result<Vec<(WeightId, Vec<usize>)>> {
        self.token.rows_read(inputs)
    }

    fn variables(&self) -> Vec<&Weight> {
        let mut variables = self.token.variables();
        variables.extend(self.position.variables());
        variables
    }

    fn variables_mut(&mut self) -> Vec<&mut Weight> {
        let mut variables = self.token.variables_mut();
        variables.extend(self.position.variables_mut());
        variables
    }

    /// KerasHub's variable paths inside the layer: `token_embedding/embeddings`,
    /// `position_embedding/embeddings`.
    fn weight_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for (layer, weights) in [
            (self.token.name(), self.token.variables()),
            (self.position.name(), self.position.variables()),
        ] {
            names.extend(weights.iter().map(|w| format!("{layer}/{}", w.name())));
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn layer() -> TokenAndPositionEmbedding {
        TokenAndPositionEmbedding::new(3, 2, 1).weights(vec![
            array![[1.0f32], [2.0], [3.0]].into_dyn(),
            array![[10.0f32], [20.0]].into_dyn(),
        ])
    }

    #[test]
    fn unbuild_gives_the_weights_back() {
        let mut layer = layer();
        layer.build(&[None, Some(2)]).unwrap();
        assert!(layer.is_built());
        layer.unbuild();
        assert!(!layer.is_built());
        assert_eq!(
            layer.initial_weights().unwrap(),
            &[
                array![[1.0f32], [2.0], [3.0]].into_dyn(),
                array![[10.0f32], [20.0]].into_dyn()
            ]
        );
        let out = layer.apply(&Tensor::from(array![[2i64, 1]])).unwrap();
        assert_eq!(
            out.as_float().unwrap(),
            &array![[[13.0f32], [22.0]]].into_dyn()
        );
    }

    #[test]
    fn sublayers_do_not_take_automatic_names() {
        let before = unique_name("embedding");
        let _ = TokenAndPositionEmbedding::new(3, 2, 1);
        let after = unique_name("embedding");
        let n = |name: &str| {
            name.rsplit('_')
                .next()
                .and_then(|s| s.parse::<usize>().ok())
                .unwrap_or(0)
        };
        assert_eq!(n(&after), n(&before) + 1);
    }
}
