//! `TokenAndPositionEmbedding`: a token [`ReversibleEmbedding`] plus a [`PositionEmbedding`],
//! with the token table's reverse call (tied or untied output logits).

use std::fmt;

use ndarray::ArrayD;

use super::PositionEmbedding;
use crate::error::{Error, Result, Shape};
use crate::initializers::Initializer;
use crate::layer::{
    Backward, BackwardOf, CallArgs, Gradient, Layer, assign_pending, check_initial_weights,
    input_count_error, unique_name, with_explicit_name,
};
use crate::layers::ReversibleEmbedding;
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
    /// Whether the reverse call reads the token table (`true`, KerasHub's default) or its
    /// own `reverse_embeddings` `(embedding_dim, vocabulary_size)`.
    pub tie_weights: bool,
    /// How the tables are filled (KerasHub's `embeddings_initializer`, default `"uniform"`:
    /// `RandomUniform(-0.05, 0.05)`; KerasHub gives each sub-layer a clone of it).
    pub embeddings_initializer: Initializer,
    /// Whether id 0 is padding, masked out for the layers that follow.
    pub mask_zero: bool,
    /// Whether training updates the tables.
    pub trainable: bool,
}

/// Token embedding plus position embedding (KerasHub's
/// `keras_hub.layers.TokenAndPositionEmbedding`): `output[..., i, :] = token_table[id, :] +
/// position_table[start_index + i, :]`; called in reverse, logits over the vocabulary.
///
/// Inside are a [`ReversibleEmbedding`] named `token_embedding` (its lookup's gradient is
/// row-sparse: one row per distinct id) and a [`PositionEmbedding`] named
/// `position_embedding` (its gradient is dense), both filled by `embeddings_initializer`.
/// The weights are KerasHub's, in its order and under its variable paths (so a saved model
/// names them `<layer>/token_embedding/embeddings` as Keras 3 does):
/// `token_embedding/embeddings` `(vocabulary_size, embedding_dim)`, then, with
/// `tie_weights(false)`, `token_embedding/reverse_embeddings` `(embedding_dim,
/// vocabulary_size)`, then `position_embedding/embeddings` `(sequence_length,
/// embedding_dim)`.
///
/// # The reverse call (tied output embeddings)
/// KerasHub's language models call the token embedding in reverse to turn hidden vectors
/// into logits: `layer.token_embedding(h, reverse=True)`. Here the layer itself takes that
/// call: `graph.call_with(layer, &[h], CallArgs::default().reverse(true))` in a functional
/// model, or [`TokenAndPositionEmbedding::reverse_call`]. It is the token
/// [`ReversibleEmbedding`]'s reverse call: `h · Eᵀ` with the token table `E` (tied, the
/// default) or `h · R` with `reverse_embeddings` (untied); no position is involved and the
/// output carries no mask. One layer used at a model's input and, reversed, at its output
/// trains its tied table with the sum of the lookup's row-sparse gradient and the reverse
/// call's dense one, as Keras does. KerasHub exposes no `logit_soft_cap` on this layer (its
/// config has none), and neither does ndkeras: for capped logits use a
/// [`ReversibleEmbedding`] with a [`PositionEmbedding`] added to its output.
///
/// A functional model saved as JSON records the reverse call as a node with the keyword
/// argument `reverse: true` on this layer, which ndkeras reads back; KerasHub's own
/// `call` takes no `reverse` argument, so Keras cannot load such a model (it would call
/// the `token_embedding` sub-layer instead).
///
/// # Shapes
/// - input: ids `(..., length)` of rank 1 or more, `length <= sequence_length`, any integer
///   type (or whole `f32`), each in `[0, vocabulary_size)`;
/// - output: `(..., length, embedding_dim)`, `f32`;
/// - mask (with `mask_zero`): `ids != 0`, as KerasHub; an incoming mask is ignored;
/// - reverse call: `f32` `(..., embedding_dim)` -> `(..., vocabulary_size)`, no mask.
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
/// // The reverse call: logits against the (tied) token table.
/// let hidden = Tensor::from(array![[1.0f32, 0.5]]);
/// let logits = layer.call_with(&[&hidden], CallArgs::default().reverse(true))?;
/// assert_eq!(logits.as_float().unwrap(), &array![[0.0f32, 1.5, 3.0]].into_dyn());
/// # Ok::<(), ndkeras::Error>(())
/// ```
#[derive(Clone)]
pub struct TokenAndPositionEmbedding {
    name: String,
    config: TokenAndPositionEmbeddingConfig,
    token: ReversibleEmbedding,
    position: PositionEmbedding,
    initial_weights: Option<Vec<ArrayD<f32>>>,
    /// Whether the tables were made from `initial_weights` (which `unbuild` gives back).
    built_from_weights: bool,
}

impl TokenAndPositionEmbedding {
    /// Token and position embeddings with KerasHub's defaults (tied weights, `"uniform"`
    /// initializer, `mask_zero` off, trainable), named `token_and_position_embedding`,
    /// `token_and_position_embedding_1`, ...
    ///
    /// A zero size is reported when the layer is built or added to a model.
    pub fn new(vocabulary_size: usize, sequence_length: usize, embedding_dim: usize) -> Self {
        let config = TokenAndPositionEmbeddingConfig {
            vocabulary_size,
            sequence_length,
            embedding_dim,
            tie_weights: true,
            embeddings_initializer: Initializer::default(),
            mask_zero: false,
            trainable: true,
        };
        let name = unique_name("token_and_position_embedding");
        let (token, position) = sublayers(&name, &config);
        TokenAndPositionEmbedding {
            name,
            config,
            token,
            position,
            initial_weights: None,
            built_from_weights: false,
        }
    }

    /// Whether the reverse call uses the token table (`true`) or a `reverse_embeddings`
    /// weight of its own `(embedding_dim, vocabulary_size)`, filled by the
    /// `embeddings_initializer` (`false`). Default: `true`. A built layer keeps the weights
    /// it has (the setting is ignored there).
    pub fn tie_weights(mut self, tie_weights: bool) -> Self {
        if !self.is_built() {
            self.config.tie_weights = tie_weights;
            self.rebuild_sublayers();
        }
        self
    }

    /// How the tables are filled (KerasHub's `embeddings_initializer`). Default:
    /// `"uniform"` (`RandomUniform(-0.05, 0.05)`).
    pub fn embeddings_initializer(mut self, initializer: Initializer) -> Self {
        self.config.embeddings_initializer = initializer;
        self.rebuild_sublayers();
        self
    }

    /// Whether id 0 is padding: the layer then outputs the mask `ids != 0`. Default: `false`.
    /// On a built layer it takes effect at once (the tables stay).
    pub fn mask_zero(mut self, mask_zero: bool) -> Self {
        self.config.mask_zero = mask_zero;
        if self.is_built() {
            self.token = self.token.mask_zero(mask_zero);
        } else {
            self.rebuild_sublayers();
        }
        self
    }

    /// The tables to start from, in the layer's weight order (Keras'
    /// `weights=[...]`): `[token_table, position_table]`, or, untied, `[token_table,
    /// reverse_embeddings, position_table]`, of shapes `(vocabulary_size, embedding_dim)`,
    /// `(embedding_dim, vocabulary_size)` and `(sequence_length, embedding_dim)`. They
    /// become the tables when the layer is built (the initializer does not run). Default:
    /// none. A wrong count or shape is reported at build.
    pub fn weights(mut self, weights: Vec<ArrayD<f32>>) -> Self {
        self.initial_weights = Some(weights);
        self
    }

    /// The layer's name. Default: `token_and_position_embedding`, ..._1, ...
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self.token = self.token.part_of(context(&self.name));
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

    /// The token embedding inside (KerasHub's `token_embedding`, a
    /// [`ReversibleEmbedding`]).
    pub fn token_embedding(&self) -> &ReversibleEmbedding {
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
        let tokens = self.token.call(inputs).map_err(|e| self.own(e))?;
        let mut values = tokens.into_float()?;
        self.position
            .add_positions(&mut values, start_index)
            .map_err(|e| self.own(e))?;
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
                    .table_gradient(&output_gradient, start_index)
                    .map_err(|e| self.own(e))?,
            )),
            _ => None,
        };
        let outer = (self.name.clone(), self.context());
        let mut backward = self
            .token
            .backward(inputs, output_gradient)
            .map_err(|e| e.within(&outer.0, &outer.1))?;
        if let Some((id, gradient)) = position_gradient {
            backward
                .weight_gradients
                .push((id, Gradient::Dense(gradient)));
        }
        Ok(backward)
    }

    /// The reverse call (KerasHub's `layer.token_embedding(x, reverse=True)`): logits of
    /// shape `(..., vocabulary_size)`, `x · Eᵀ` with the token table (tied) or `x · R` with
    /// `reverse_embeddings` (untied); no mask. See [`ReversibleEmbedding::reverse_call`].
    ///
    /// # Errors
    /// [`Error::NotBuilt`] before the build, [`Error::IncompatibleDtype`] for a non-float
    /// input, [`Error::IncompatibleShape`] when the last axis is not `embedding_dim`; each
    /// names this layer and its `token_embedding`.
    pub fn reverse_call(&self, inputs: &Tensor) -> Result<Tensor> {
        self.token.reverse_call(inputs)
    }

    /// The backward pass of [`TokenAndPositionEmbedding::reverse_call`]: the input gradient
    /// and the dense gradient of the table it read (the token table, tied, or
    /// `reverse_embeddings`). See [`ReversibleEmbedding::reverse_backward`].
    ///
    /// # Errors
    /// Those of [`TokenAndPositionEmbedding::reverse_call`], and
    /// [`Error::IncompatibleShape`] when the gradient's shape is not the output's.
    pub fn reverse_backward(
        &self,
        inputs: &Tensor,
        output_gradient: ArrayD<f32>,
    ) -> Result<Backward> {
        self.token.reverse_backward(inputs, output_gradient)
    }

    fn context(&self) -> String {
        context(&self.name)
    }

    /// An error of a sub-layer, naming this layer first (see [`Error::within`]).
    fn own(&self, error: Error) -> Error {
        error.within(&self.name, &self.context())
    }

    /// Remakes the (unbuilt) sub-layers after a setting changed.
    fn rebuild_sublayers(&mut self) {
        if !self.is_built() {
            let (token, position) = sublayers(&self.name, &self.config);
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

    /// How many weights the layer holds: 2 tied, 3 untied.
    fn weight_count(&self) -> usize {
        if self.config.tie_weights { 2 } else { 3 }
    }

    /// Builds the tables from the pending `weights` (checked by the caller). Each array is
    /// laid out first (the only step that allocates), so that a failure leaves the weights
    /// pending; the sub-layers then take the laid-out arrays without copying them again.
    fn build_from_weights(&mut self, input_shape: &[Option<usize>]) -> Result<()> {
        let context = || format!("{}: set_weights", self.context());
        let expected = self.weight_count();
        let pending = self.initial_weights.as_deref().unwrap_or_default();
        if pending.len() != expected {
            return Err(Error::WeightCount {
                layer: self.name.clone(),
                expected,
                got: pending.len(),
            });
        }
        let prepared = pending
            .iter()
            .map(|array| Weight::prepare(array, context))
            .collect::<Result<Vec<_>>>()?;
        // At most three arrays (the count was checked above).
        let mut laid_out = Vec::with_capacity(expected);
        let arrays = self.initial_weights.take().unwrap_or_default();
        for (array, prepared) in arrays.into_iter().zip(prepared) {
            let weight = Weight::from_prepared("embeddings", array, prepared)?;
            laid_out.push(weight.into_array().ok_or_else(|| Error::NotBuilt {
                context: self.context(),
                what: "owned tables".into(),
                hint: "this is a bug in ndkeras".into(),
            })?);
        }
        let position = laid_out
            .pop()
            .ok_or_else(|| self.internal("the position table"))?;
        let mut built_token = self.token.clone().weights(laid_out);
        let mut built_position = self.position.clone().weights(vec![position]);
        built_token.build(input_shape)?;
        built_position.build(&self.embedded_shape(input_shape))?;
        self.token = built_token;
        self.position = built_position;
        self.built_from_weights = true;
        Ok(())
    }

    fn internal(&self, what: &str) -> Error {
        Error::NotBuilt {
            context: self.context(),
            what: what.into(),
            hint: "this is a bug in ndkeras".into(),
        }
    }

    /// The one input of a reverse call.
    fn one<'a>(&self, inputs: &[&'a Tensor]) -> Result<&'a Tensor> {
        match inputs {
            [one] => Ok(one),
            _ => Err(input_count_error(self, inputs.len())),
        }
    }
}

/// How errors name the layer called `name`.
fn context(name: &str) -> String {
    format!("layer \"{name}\" (TokenAndPositionEmbedding)")
}

/// KerasHub's sub-layers: `token_embedding` (a reversible embedding, tied or not) and
/// `position_embedding`, each with a clone of the initializer. Named explicitly, so they do
/// not advance the automatic names.
fn sublayers(
    name: &str,
    config: &TokenAndPositionEmbeddingConfig,
) -> (ReversibleEmbedding, PositionEmbedding) {
    let token = with_explicit_name(|| {
        ReversibleEmbedding::new(config.vocabulary_size, config.embedding_dim)
            .with_name("token_embedding")
            .tie_weights(config.tie_weights)
            .embeddings_initializer(config.embeddings_initializer.clone())
            .mask_zero(config.mask_zero)
            .trainable(config.trainable)
            .part_of(context(name))
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
        let mut shapes = vec![vec![c.vocabulary_size, c.embedding_dim]];
        if !c.tie_weights {
            shapes.push(vec![c.embedding_dim, c.vocabulary_size]);
        }
        shapes.push(vec![c.sequence_length, c.embedding_dim]);
        Ok(shapes)
    }

    /// The tables from the initial `weights` when there are any (checked first; the
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
        let (token, position) = sublayers(&self.name, &self.config);
        self.token = token;
        self.position = position;
        if built_from_weights {
            let arrays: Option<Vec<ArrayD<f32>>> =
                tables.into_iter().map(Weight::into_array).collect();
            let expected = self.weight_count();
            if let Some(arrays) = arrays.filter(|a| a.len() == expected) {
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
        self.token.check_input(inputs).map_err(|e| self.own(e))
    }

    fn call(&self, inputs: &Tensor) -> Result<Tensor> {
        self.call_with_start_index(inputs, 0)
    }

    /// `input_shape + (embedding_dim,)`, after checking a known length.
    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        let output = self.embedded_shape(input_shape);
        self.position
            .compute_output_shape(&output)
            .map_err(|e| self.own(e))
    }

    /// `ids != 0` with `mask_zero`, else `None`; an incoming mask is ignored (KerasHub
    /// re-attaches the token embedding's mask).
    fn compute_mask(
        &self,
        inputs: &Tensor,
        mask: Option<&ArrayD<bool>>,
    ) -> Result<Option<ArrayD<bool>>> {
        self.token
            .compute_mask(inputs, mask)
            .map_err(|e| self.own(e))
    }

    /// `true`: the lookup ignores an incoming mask, the reverse call drops it.
    fn supports_masking(&self) -> bool {
        true
    }

    /// The token table's gradient is row-sparse (one row per distinct id), the position
    /// table's dense (summed over the leading axes); ids have no gradient.
    fn backward(&mut self, inputs: &Tensor, output_gradient: ArrayD<f32>) -> Result<Backward> {
        self.backward_with_start_index(inputs, output_gradient, 0)
    }

    fn rows_read(&self, inputs: &Tensor) -> Result<Vec<(WeightId, Vec<usize>)>> {
        self.token.rows_read(inputs).map_err(|e| self.own(e))
    }

    /// `token_embedding/embeddings`, (untied) `token_embedding/reverse_embeddings`,
    /// `position_embedding/embeddings`: KerasHub's order.
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
    /// (untied) `token_embedding/reverse_embeddings`, `position_embedding/embeddings`.
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

    /// Reverse: the last axis (a known one must be `embedding_dim`) replaced by
    /// `vocabulary_size`.
    fn compute_output_shape_with(&self, input_shapes: &[Shape], args: CallArgs) -> Result<Shape> {
        if !args.reverse {
            return self.compute_output_shape_of(input_shapes);
        }
        if input_shapes.len() != 1 {
            return Err(input_count_error(self, input_shapes.len()));
        }
        self.token.compute_output_shape_with(input_shapes, args)
    }

    /// Reverse: the token embedding's reverse call ([`TokenAndPositionEmbedding::reverse_call`]).
    fn call_with(&self, inputs: &[&Tensor], args: CallArgs) -> Result<Tensor> {
        if !args.reverse {
            return self.call_of(inputs);
        }
        let one = self.one(inputs)?;
        self.token.call_with(&[one], args)
    }

    fn forward_with(
        &mut self,
        inputs: &[&Tensor],
        training: bool,
        args: CallArgs,
    ) -> Result<Tensor> {
        if !args.reverse {
            return self.forward_of(inputs, training);
        }
        let one = self.one(inputs)?;
        self.token.forward_with(&[one], training, args)
    }

    fn backward_with(
        &mut self,
        inputs: &[&Tensor],
        output_gradient: ArrayD<f32>,
        from_logits: bool,
        args: CallArgs,
    ) -> Result<BackwardOf> {
        if !args.reverse {
            return self.backward_of(inputs, output_gradient, from_logits);
        }
        let one = self.one(inputs)?;
        self.token
            .backward_with(&[one], output_gradient, from_logits, args)
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
    fn unbuild_gives_the_untied_weights_back() {
        let weights = vec![
            array![[1.0f32], [2.0], [3.0]].into_dyn(),
            array![[0.5f32, 0.25, 0.125]].into_dyn(),
            array![[10.0f32], [20.0]].into_dyn(),
        ];
        let mut layer = TokenAndPositionEmbedding::new(3, 2, 1)
            .tie_weights(false)
            .weights(weights.clone());
        layer.build(&[None, Some(2)]).unwrap();
        assert_eq!(layer.get_weights(), weights);
        layer.unbuild();
        assert!(!layer.is_built());
        assert_eq!(layer.initial_weights().unwrap(), weights.as_slice());
        layer.build(&[None, Some(2)]).unwrap();
        let logits = layer.reverse_call(&Tensor::from(array![[2.0f32]])).unwrap();
        assert_eq!(
            logits.as_float().unwrap(),
            &array![[1.0f32, 0.5, 0.25]].into_dyn()
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
