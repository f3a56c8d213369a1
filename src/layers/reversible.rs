//! `ReversibleEmbedding` (Keras 3's `keras.layers.ReversibleEmbedding`): an [`Embedding`]
//! that can also be called in reverse, projecting vectors back onto the vocabulary (logits).
//!
//! What is guaranteed:
//! - the plain call is the inner [`Embedding`]'s lookup, with its checks, mask
//!   (`ids != 0` with `mask_zero`), row-sparse gradient and `rows_read`;
//! - the reverse call ([`CallArgs::reverse`]) gives `x · Eᵀ` (tied, the default) or `x · R`
//!   (untied, `R` = `reverse_embeddings` of shape `(output_dim, input_dim)`), then
//!   `tanh(z / c) · c` with a `logit_soft_cap` `c`; its output carries no mask (Keras 3's
//!   `compute_mask` returns `None`), a mask on its input is dropped;
//! - its backward pass gives the input gradient and a dense gradient for the table it read,
//!   keyed by the weight's id, so a training step adds the tied table's row-sparse lookup
//!   gradient and dense reverse gradient;
//! - the weights are Keras 3's, in its order: `embeddings`, then (untied) `reverse_embeddings`.
//!
//! Deliberate differences from Keras: a `logit_soft_cap` that is not a positive finite number
//! is refused (Keras would divide by it); tables are float32 only (no quantized or
//! half-precision reversible table, no `reverse_dtype` other than `None`); the reverse call
//! is checked (float32 input whose last axis is `output_dim`) where Keras leaves it to the
//! matmul; there is no LoRA on this layer (a config with `lora_rank` is refused, not read
//! without it).

use std::fmt;

use ndarray::{Array2, ArrayD, ArrayView2, IxDyn};

use crate::constraints::Constraint;
use crate::error::{Error, OptDims, Result, Shape};
use crate::initializers::Initializer;
use crate::layer::{
    Backward, BackwardOf, CallArgs, Gradient, Layer, assign_pending, check_initial_weights,
    check_mask_support, input_count_error, unique_name, with_explicit_name,
};
use crate::layers::Embedding;
use crate::regularizers::Regularizer;
use crate::tensor::Tensor;
use crate::weight::{Weight, WeightId};

/// An embedding whose table also maps vectors back to the vocabulary (Keras 3's
/// `ReversibleEmbedding`): `layer(ids)` looks rows up, `layer(x, reverse=True)` gives logits.
///
/// In a functional model one layer is called twice: on the ids at the input and, with
/// `CallArgs::default().reverse(true)`, on the hidden vectors at the output. With tied
/// weights (the default) both calls read the one table `embeddings`, and training adds the
/// two gradients; with `tie_weights(false)` the reverse call reads its own trainable
/// `reverse_embeddings`, created at the build with the `embeddings_initializer`.
///
/// # Shapes
/// - plain call: ids of any rank `(d0, ..., dn)` (as [`Embedding`]) -> `(d0, ..., dn,
///   output_dim)`; mask (with `mask_zero`) `ids != 0`;
/// - reverse call: `f32` `(..., output_dim)` -> `(..., input_dim)`; no mask;
/// - weights: `embeddings` `(input_dim, output_dim)`, then, untied, `reverse_embeddings`
///   `(output_dim, input_dim)`.
///
/// # Example
/// ```
/// use ndarray::array;
/// use ndkeras::prelude::*;
///
/// let table = array![[1.0f32, 0.0], [0.0, 2.0], [1.0, 1.0]].into_dyn();
/// let mut layer = ReversibleEmbedding::new(3, 2).weights(vec![table]);
/// let rows = layer.apply(&Tensor::from(array![[1i64, 2]]))?;
/// assert_eq!(rows.shape(), &[1, 2, 2]);
/// let logits = layer.call_with(&[&Tensor::from(array![[1.0f32, 1.0]])], CallArgs::default().reverse(true))?;
/// assert_eq!(logits.as_float().unwrap(), &array![[1.0f32, 2.0, 2.0]].into_dyn());
/// # Ok::<(), ndkeras::Error>(())
/// ```
#[derive(Clone)]
pub struct ReversibleEmbedding {
    /// The lookup, named as this layer (its errors name this layer).
    inner: Embedding,
    tie_weights: bool,
    logit_soft_cap: Option<f32>,
    /// `reverse_embeddings` `(output_dim, input_dim)`, untied and built only.
    reverse: Option<Weight>,
    initial_weights: Option<Vec<ArrayD<f32>>>,
    /// Whether the weights were made from `initial_weights` (which `unbuild` gives back).
    built_from_weights: bool,
    /// The layer this one is part of (a `TokenAndPositionEmbedding`'s `token_embedding`),
    /// as its errors name it: `layer "tape" (TokenAndPositionEmbedding)`.
    owner: Option<String>,
}

impl ReversibleEmbedding {
    /// A reversible embedding of `input_dim` ids into vectors of `output_dim`, with Keras 3's
    /// defaults: tied weights, `RandomUniform(-0.05, 0.05)`, no soft cap, `mask_zero` off,
    /// trainable, named `reversible_embedding`, `reversible_embedding_1`, ...
    ///
    /// A zero dimension is reported when the layer is built or added to a model.
    pub fn new(input_dim: usize, output_dim: usize) -> Self {
        let name = unique_name("reversible_embedding");
        let inner = with_explicit_name(|| Embedding::new(input_dim, output_dim)).with_name(name);
        ReversibleEmbedding {
            inner,
            tie_weights: true,
            logit_soft_cap: None,
            reverse: None,
            initial_weights: None,
            built_from_weights: false,
            owner: None,
        }
    }

    /// Names `owner` (`layer "tape" (TokenAndPositionEmbedding)`) in this layer's own
    /// errors: a layer that holds a reversible embedding inside reports the reverse call's
    /// errors under its own name.
    pub(crate) fn part_of(mut self, owner: String) -> Self {
        self.owner = Some(owner);
        self
    }

    /// Whether the reverse call uses the transposed `embeddings` (`true`) or its own
    /// `reverse_embeddings` weight (`false`). Default: `true`. A built layer keeps the
    /// weights it has (the setting is ignored there).
    pub fn tie_weights(mut self, tie_weights: bool) -> Self {
        if !self.is_built() {
            self.tie_weights = tie_weights;
        }
        self
    }

    /// Caps the reverse call's logits smoothly: `tanh(z / cap) · cap`. Must be positive and
    /// finite (checked when the layer is built or added to a model). Default: none.
    pub fn logit_soft_cap(mut self, cap: Option<f32>) -> Self {
        self.logit_soft_cap = cap;
        self
    }

    /// Whether id 0 is padding: the plain call then outputs the mask `ids != 0`.
    /// Default: `false`.
    pub fn mask_zero(mut self, mask_zero: bool) -> Self {
        self.inner = self.inner.mask_zero(mask_zero);
        self
    }

    /// How the tables are filled (Keras' `embeddings_initializer`, also used for
    /// `reverse_embeddings`). Default: `"uniform"` (`RandomUniform(-0.05, 0.05)`).
    pub fn embeddings_initializer(mut self, initializer: Initializer) -> Self {
        self.inner = self.inner.embeddings_initializer(initializer);
        self
    }

    /// Penalty on `embeddings` (not on `reverse_embeddings`, as in Keras). Default: none.
    pub fn embeddings_regularizer(mut self, regularizer: Regularizer) -> Self {
        self.inner = self.inner.embeddings_regularizer(regularizer);
        self
    }

    /// Projection of `embeddings` after each step (not of `reverse_embeddings`, as in
    /// Keras). Default: none.
    pub fn embeddings_constraint(mut self, constraint: Constraint) -> Self {
        self.inner = self.inner.embeddings_constraint(constraint);
        self
    }

    /// The weights to start from, as Keras' `weights=[embeddings]` (tied) or
    /// `[embeddings, reverse_embeddings]` (untied). They become the weights at the build
    /// (the initializer does not run). A wrong count or shape is reported at the build.
    pub fn weights(mut self, weights: Vec<ArrayD<f32>>) -> Self {
        self.initial_weights = Some(weights);
        self
    }

    /// The layer's name. Default: `reversible_embedding`, ..._1, ...
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.inner = self.inner.with_name(name);
        self
    }

    /// Whether training updates the weights. Default: `true`.
    pub fn trainable(mut self, trainable: bool) -> Self {
        self.set_trainable(trainable);
        self
    }

    /// The lookup inside: its settings ([`Embedding::config`]) are this layer's.
    pub fn embedding(&self) -> &Embedding {
        &self.inner
    }

    /// Whether the weights are tied.
    pub fn is_tied(&self) -> bool {
        self.tie_weights
    }

    /// The soft cap of the logits, if any.
    pub fn soft_cap(&self) -> Option<f32> {
        self.logit_soft_cap
    }

    /// `reverse_embeddings` `(output_dim, input_dim)`, untied and built only.
    pub fn reverse_embeddings(&self) -> Option<&Array2<f32>> {
        self.reverse.as_ref().and_then(Weight::as_matrix)
    }

    fn context(&self) -> String {
        match &self.owner {
            Some(owner) => format!("{owner}, its \"{}\" (ReversibleEmbedding)", self.name()),
            None => format!("layer \"{}\" (ReversibleEmbedding)", self.name()),
        }
    }

    fn dims(&self) -> (usize, usize) {
        let c = self.inner.config();
        (c.input_dim, c.output_dim)
    }

    /// The reverse call's input as `(rows, output_dim)`, checked: float32, rank 1 or more,
    /// last axis `output_dim`.
    fn reverse_input(&self, inputs: &Tensor) -> Result<Array2<f32>> {
        let (_, output_dim) = self.dims();
        let values = inputs.as_float().ok_or_else(|| Error::IncompatibleDtype {
            context: format!("{}: reverse call", self.context()),
            expected: "float32 vectors".into(),
            got: inputs.dtype().to_string(),
        })?;
        if values.shape().last() != Some(&output_dim) {
            let mut expected: Shape = vec![None; values.ndim().max(1)];
            if let Some(last) = expected.last_mut() {
                *last = Some(output_dim);
            }
            return Err(Error::IncompatibleShape {
                context: format!(
                    "{}: reverse call (the last axis must be output_dim = {output_dim})",
                    self.context()
                ),
                expected,
                got: inputs.keras_shape(),
            });
        }
        let rows = values.len() / output_dim.max(1);
        values
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((rows, output_dim))
            .map_err(|_| self.internal("reshape of the reverse input"))
    }

    fn internal(&self, what: &str) -> Error {
        Error::NotBuilt {
            context: self.context(),
            what: what.into(),
            hint: "this is a bug in ndkeras".into(),
        }
    }

    fn not_built(&self) -> Error {
        Error::NotBuilt {
            context: self.context(),
            what: "a reverse call".into(),
            hint: "call the layer on ids first (that call builds it), or build it".into(),
        }
    }

    /// The float32 table the reverse call reads: `embeddings` (tied) or `reverse_embeddings`.
    fn tied_table(&self) -> Result<ArrayView2<'_, f32>> {
        if !self.inner.is_built() {
            return Err(self.not_built());
        }
        self.inner
            .table_view()
            .ok_or_else(|| Error::InvalidArgument {
                owner: self.context(),
                parameter: "embeddings".into(),
                value: "not a float32 table in memory".into(),
                expected: "a float32 table for a reverse call".into(),
            })
    }

    /// The raw logits `x · Eᵀ` or `x · R`, `(rows, input_dim)`, before the soft cap.
    fn raw_logits(&self, x: &Array2<f32>) -> Result<Array2<f32>> {
        if self.tie_weights {
            Ok(x.dot(&self.tied_table()?.t()))
        } else {
            let reverse = self.reverse_embeddings().ok_or_else(|| self.not_built())?;
            Ok(x.dot(reverse))
        }
    }

    /// The output shape of a reverse call on `shape`: its last axis replaced by `input_dim`.
    fn reversed_shape(&self, shape: &[usize]) -> Vec<usize> {
        let mut out = shape.to_vec();
        if let Some(last) = out.last_mut() {
            *last = self.dims().0;
        }
        out
    }

    /// A `logit_soft_cap` that is `None` or a positive finite number (Keras would divide by
    /// it), or [`Error::InvalidArgument`] naming the layer.
    fn check_soft_cap(&self) -> Result<()> {
        if let Some(cap) = self.logit_soft_cap
            && !(cap.is_finite() && cap > 0.0)
        {
            return Err(Error::invalid_argument(
                self.context(),
                "logit_soft_cap",
                cap,
                "a positive finite number, or None",
            ));
        }
        Ok(())
    }

    /// The reverse call (Keras' `call(inputs, reverse=True)`): logits of shape
    /// `(..., input_dim)`, soft-capped when a cap is set; no mask.
    ///
    /// # Errors
    /// [`Error::NotBuilt`] before the build, [`Error::IncompatibleDtype`] for a non-float
    /// input, [`Error::IncompatibleShape`] when the last axis is not `output_dim`.
    pub fn reverse_call(&self, inputs: &Tensor) -> Result<Tensor> {
        if !self.is_built() {
            return Err(self.not_built());
        }
        // The cap can be set after the build: checked at every reverse call.
        self.check_soft_cap()?;
        let x = self.reverse_input(inputs)?;
        let mut z = self.raw_logits(&x)?;
        if let Some(cap) = self.logit_soft_cap {
            z.mapv_inplace(|v| (v / cap).tanh() * cap);
        }
        let shape = self.reversed_shape(inputs.shape());
        let out = z
            .into_shape_with_order(IxDyn(&shape))
            .map_err(|_| self.internal("reshape of the logits"))?;
        Ok(Tensor::from(out))
    }

    /// The backward pass of [`ReversibleEmbedding::reverse_call`]: with a cap `c`,
    /// `dz = g · (1 - tanh²(z / c))`; the input gradient is `dz · E` (tied) or `dz · Rᵀ`;
    /// the table's gradient is dense: `dzᵀ · x` for `embeddings`, `xᵀ · dz` for
    /// `reverse_embeddings` (summed over all leading axes).
    ///
    /// # Errors
    /// Those of [`ReversibleEmbedding::reverse_call`], and [`Error::IncompatibleShape`] when
    /// the gradient's shape is not the output's.
    pub fn reverse_backward(
        &self,
        inputs: &Tensor,
        output_gradient: ArrayD<f32>,
    ) -> Result<Backward> {
        if !self.is_built() {
            return Err(self.not_built());
        }
        self.check_soft_cap()?;
        let x = self.reverse_input(inputs)?;
        let (input_dim, _) = self.dims();
        let expected = self.reversed_shape(inputs.shape());
        if output_gradient.shape() != expected.as_slice() {
            return Err(Error::IncompatibleShape {
                context: format!("{}: output gradient of the reverse call", self.context()),
                expected: expected.iter().map(|&d| Some(d)).collect(),
                got: output_gradient.shape().iter().map(|&d| Some(d)).collect(),
            });
        }
        let mut dz = output_gradient
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((x.nrows(), input_dim))
            .map_err(|_| self.internal("reshape of the output gradient"))?;
        if let Some(cap) = self.logit_soft_cap {
            let z = self.raw_logits(&x)?;
            dz.zip_mut_with(&z, |g, &z| {
                let t = (z / cap).tanh();
                *g *= 1.0 - t * t;
            });
        }
        let (input_gradient, weight_gradient) = if self.tie_weights {
            let table = self.tied_table()?;
            let id = self
                .inner
                .variables()
                .first()
                .filter(|w| w.is_trainable())
                .map(|w| w.id());
            (dz.dot(&table), id.map(|id| (id, dz.t().dot(&x))))
        } else {
            let reverse = self.reverse_embeddings().ok_or_else(|| self.not_built())?;
            let id = self
                .reverse
                .as_ref()
                .filter(|w| w.is_trainable())
                .map(Weight::id);
            (dz.dot(&reverse.t()), id.map(|id| (id, x.t().dot(&dz))))
        };
        let input_gradient = input_gradient
            .into_shape_with_order(IxDyn(inputs.shape()))
            .map_err(|_| self.internal("reshape of the input gradient"))?;
        Ok(Backward {
            input_gradient: Some(input_gradient),
            weight_gradients: weight_gradient
                .map(|(id, g)| (id, Gradient::Dense(g.into_dyn())))
                .into_iter()
                .collect(),
        })
    }

    /// The one input of a call with arguments.
    fn one<'a>(&self, inputs: &[&'a Tensor]) -> Result<&'a Tensor> {
        match inputs {
            [one] => Ok(one),
            _ => Err(input_count_error(self, inputs.len())),
        }
    }

    /// Builds from the pending `weights`, checked by the caller: `reverse_embeddings` is laid
    /// out first (the step that allocates), then the lookup takes `embeddings`.
    fn build_from_weights(&mut self, input_shape: &[Option<usize>]) -> Result<()> {
        let context = || format!("{}: weights", self.context());
        let prepared = match (self.tie_weights, self.initial_weights.as_deref()) {
            (true, Some([_])) => None,
            (false, Some([_, reverse])) => Some(Weight::prepare(reverse, context)?),
            (_, weights) => {
                return Err(Error::WeightCount {
                    layer: self.name().to_string(),
                    expected: if self.tie_weights { 1 } else { 2 },
                    got: weights.map_or(0, <[_]>::len),
                });
            }
        };
        let mut arrays = self.initial_weights.take().unwrap_or_default().into_iter();
        let table = arrays
            .next()
            .ok_or_else(|| self.internal("the embeddings"))?;
        let reverse = match (prepared, arrays.next()) {
            (Some(prepared), Some(array)) => Some(self.reverse_weight(Weight::from_prepared(
                "reverse_embeddings",
                array,
                prepared,
            )?)),
            _ => None,
        };
        let mut inner = self.inner.clone().weights(vec![table]);
        inner.build(input_shape)?;
        self.inner = inner;
        self.reverse = reverse;
        self.built_from_weights = true;
        Ok(())
    }

    /// A lookup with this layer's settings, not built.
    fn unbuilt_inner(&self) -> Embedding {
        let c = self.inner.config();
        let mut inner =
            with_explicit_name(|| Embedding::new(c.input_dim, c.output_dim).with_name(self.name()))
                .mask_zero(c.mask_zero)
                .embeddings_initializer(c.embeddings_initializer.clone())
                .trainable(c.trainable);
        if let Some(regularizer) = c.embeddings_regularizer {
            inner = inner.embeddings_regularizer(regularizer);
        }
        if let Some(constraint) = c.embeddings_constraint {
            inner = inner.embeddings_constraint(constraint);
        }
        inner
    }

    /// `reverse_embeddings` with the layer's trainability (no regularizer or constraint, as
    /// Keras' `add_weight` in `ReversibleEmbedding.build`).
    fn reverse_weight(&self, weight: Weight) -> Weight {
        weight.with_trainable(self.inner.is_trainable())
    }
}

impl fmt::Debug for ReversibleEmbedding {
    /// The settings and the weights' shapes (never the tables).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReversibleEmbedding")
            .field("name", &self.name())
            .field("config", self.inner.config())
            .field("tie_weights", &self.tie_weights)
            .field("logit_soft_cap", &self.logit_soft_cap)
            .field("weight_shapes", &self.weight_shapes())
            .finish()
    }
}

impl Layer for ReversibleEmbedding {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn class_name(&self) -> &'static str {
        "ReversibleEmbedding"
    }

    fn is_trainable(&self) -> bool {
        self.inner.is_trainable()
    }

    fn set_trainable(&mut self, trainable: bool) {
        self.inner.set_trainable(trainable);
        if let Some(reverse) = &mut self.reverse {
            reverse.set_trainable(trainable);
        }
    }

    /// The [`Embedding`]'s checks, a float32 table, and a positive finite `logit_soft_cap`.
    fn validate(&self) -> Result<()> {
        self.inner.validate()?;
        self.check_soft_cap()
    }

    fn is_built(&self) -> bool {
        self.inner.is_built() && (self.tie_weights || self.reverse.is_some())
    }

    fn weight_shapes_for(&self, _input_shape: &[Option<usize>]) -> Result<Vec<Vec<usize>>> {
        let (input_dim, output_dim) = self.dims();
        let mut shapes = vec![vec![input_dim, output_dim]];
        if !self.tie_weights {
            shapes.push(vec![output_dim, input_dim]);
        }
        Ok(shapes)
    }

    /// `embeddings` (and, untied, `reverse_embeddings`) from the initial `weights` when there
    /// are any (checked first; the initializer does not run), otherwise from the initializer.
    /// All or nothing.
    fn build(&mut self, input_shape: &[Option<usize>]) -> Result<()> {
        if self.is_built() {
            let mut pending = self.initial_weights.take();
            let assigned = assign_pending(self, &mut pending);
            self.initial_weights = pending;
            return assigned;
        }
        self.validate()?;
        let (input_dim, output_dim) = self.dims();
        let initializer = self.inner.config().embeddings_initializer.clone();
        // Keras would run the initializers first: report what they would refuse.
        initializer.validate_for(&[input_dim, output_dim])?;
        if !self.tie_weights {
            initializer.validate_for(&[output_dim, input_dim])?;
        }
        if self.initial_weights.is_some() {
            check_initial_weights(self, input_shape)?;
            return self.build_from_weights(input_shape);
        }
        let reverse = if self.tie_weights {
            None
        } else {
            let values = initializer.initialize(&[output_dim, input_dim])?;
            Some(self.reverse_weight(Weight::new("reverse_embeddings", values)?))
        };
        self.inner.build(input_shape)?;
        self.reverse = reverse;
        self.built_from_weights = false;
        Ok(())
    }

    fn unbuild(&mut self) {
        let built_from_weights = std::mem::take(&mut self.built_from_weights);
        let reverse = self.reverse.take();
        // Take the table out (moved, not copied); the lookup is remade unbuilt.
        let table = self.inner.variables_mut().into_iter().next().map(|weight| {
            let placeholder = Weight::matrix("embeddings", Default::default());
            std::mem::replace(weight, placeholder)
        });
        self.inner = self.unbuilt_inner();
        if built_from_weights {
            let arrays: Option<Vec<ArrayD<f32>>> = table
                .into_iter()
                .chain(reverse)
                .map(Weight::into_array)
                .collect();
            let expected = if self.tie_weights { 1 } else { 2 };
            if let Some(arrays) = arrays.filter(|a| a.len() == expected) {
                self.initial_weights = Some(arrays);
            }
        }
    }

    fn initial_weights(&self) -> Option<&[ArrayD<f32>]> {
        self.initial_weights.as_deref()
    }

    fn check_input(&self, inputs: &Tensor) -> Result<()> {
        self.inner.check_input(inputs)
    }

    /// The lookup (Keras' `call(inputs)`).
    fn call(&self, inputs: &Tensor) -> Result<Tensor> {
        self.inner.call(inputs)
    }

    /// `input_shape + (output_dim,)`.
    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        self.inner.compute_output_shape(input_shape)
    }

    /// `ids != 0` with `mask_zero`, else `None`; an incoming mask is ignored.
    fn compute_mask(
        &self,
        inputs: &Tensor,
        mask: Option<&ArrayD<bool>>,
    ) -> Result<Option<ArrayD<bool>>> {
        self.inner.compute_mask(inputs, mask)
    }

    /// `true`: the lookup ignores an incoming mask, the reverse call drops it.
    fn supports_masking(&self) -> bool {
        true
    }

    /// The lookup's row-sparse gradient of `embeddings`.
    fn backward(&mut self, inputs: &Tensor, output_gradient: ArrayD<f32>) -> Result<Backward> {
        self.inner.backward(inputs, output_gradient)
    }

    fn rows_read(&self, inputs: &Tensor) -> Result<Vec<(WeightId, Vec<usize>)>> {
        self.inner.rows_read(inputs)
    }

    /// `embeddings`, then (untied) `reverse_embeddings`: Keras 3's order.
    fn variables(&self) -> Vec<&Weight> {
        let mut variables = self.inner.variables();
        variables.extend(self.reverse.iter());
        variables
    }

    fn variables_mut(&mut self) -> Vec<&mut Weight> {
        let mut variables = self.inner.variables_mut();
        variables.extend(self.reverse.iter_mut());
        variables
    }

    /// Reverse: the last axis replaced by `input_dim` (a known last axis must be
    /// `output_dim`).
    fn compute_output_shape_with(&self, input_shapes: &[Shape], args: CallArgs) -> Result<Shape> {
        if !args.reverse {
            return self.compute_output_shape_of(input_shapes);
        }
        let [shape] = input_shapes else {
            return Err(input_count_error(self, input_shapes.len()));
        };
        let (input_dim, output_dim) = self.dims();
        match shape.last() {
            Some(None) => {}
            Some(Some(dim)) if *dim == output_dim => {}
            _ => {
                let mut expected: Shape = vec![None; shape.len().max(1)];
                if let Some(last) = expected.last_mut() {
                    *last = Some(output_dim);
                }
                return Err(Error::IncompatibleShape {
                    context: format!(
                        "{}: reverse call on {} (the last axis must be output_dim = {output_dim})",
                        self.context(),
                        OptDims(shape)
                    ),
                    expected,
                    got: shape.clone(),
                });
            }
        }
        let mut out = shape.clone();
        if let Some(last) = out.last_mut() {
            *last = Some(input_dim);
        }
        Ok(out)
    }

    fn call_with(&self, inputs: &[&Tensor], args: CallArgs) -> Result<Tensor> {
        if !args.reverse {
            return self.call_of(inputs);
        }
        let one = self.one(inputs)?;
        check_mask_support(self, one)?;
        self.reverse_call(one)
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
        // Nothing to remember: the backward pass recomputes the logits it needs, so the two
        // calls of one layer never overwrite each other's state.
        self.call_with(inputs, args)
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
        if from_logits {
            // The reverse call reports no logits (`output_logits` is `None`).
            return Err(self.internal("a gradient with respect to logits"));
        }
        let backward = self.reverse_backward(one, output_gradient)?;
        Ok(BackwardOf {
            input_gradients: vec![backward.input_gradient],
            weight_gradients: backward.weight_gradients,
        })
    }
}
