//! `Sequential`: a stack of layers, Keras 2 style.

use ndarray::ArrayD;

use crate::error::{Error, Result, Shape};
use crate::layer::{Layer, call_with_mask, check_initial_weights, needs_build, unique_name};
use crate::losses::Loss;
use crate::model::callbacks::Callback;
use crate::model::fit::FitOptions;
use crate::model::functional::Model;
use crate::model::history::History;
use crate::model::summary;
use crate::optimizers::Optimizer;
use crate::tensor::{DType, Tensor};

/// The input a Keras model declares with `keras.Input(shape, dtype, name)`: its
/// `InputLayer`, kept so that the model's Keras JSON is written back as it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct InputSpec {
    /// The shape with the batch axis (Keras' `batch_input_shape`), e.g. `[None, Some(6)]`.
    pub batch_shape: Shape,
    /// Keras' dtype name: `"int32"`, `"float32"`, ...
    pub dtype: String,
    /// The `InputLayer`'s name (`input_1`).
    pub name: String,
    /// Keras' `sparse` flag (ndkeras takes dense inputs only; kept for the JSON).
    pub sparse: bool,
    /// Keras' `ragged` flag (kept for the JSON).
    pub ragged: bool,
}

/// The dtype of the input Keras 2 makes for a `Sequential` built on its first call:
/// `float32`, whatever the ids' type (Keras casts them), and `string` for texts (the input
/// of a `TextVectorization`, `StringLookup` or `Hashing` first layer).
fn undeclared_input_dtype(x: &Tensor) -> DType {
    match x.dtype() {
        DType::String => DType::String,
        _ => DType::Float32,
    }
}

/// Keras' default `batch_size` for `predict`.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// A linear stack of layers (Keras' `Sequential`).
///
/// When the first layer declares its input shape (an [`Embedding`](crate::layers::Embedding)
/// always does: `(None, input_length)`, or `(None, None)` without `input_length`, as in Keras
/// 2), the model is built as layers are added: each layer is built, and its initial
/// `weights` applied, inside [`Sequential::add`], and [`Sequential::output_shape`] is known
/// right away.
///
/// # Example
/// ```
/// use ndarray::Array2;
/// use ndkeras::prelude::*;
///
/// let mut model = Sequential::new();
/// model.add(Embedding::new(1000, 64).input_length(10))?;
/// assert_eq!(model.output_shape()?, vec![None, Some(10), Some(64)]);
///
/// let x = Array2::<i64>::from_shape_fn((32, 10), |(i, j)| (i * 10 + j) as i64);
/// let y = model.predict(x)?;
/// assert_eq!(y.shape(), &[32, 10, 64]);
/// # Ok::<(), ndkeras::Error>(())
/// ```
#[derive(Debug)]
pub struct Sequential {
    /// The graph: the layers called one after the other, from an input of the model's input
    /// shape once it is known; the compiled optimizer, loss and metrics; the training state.
    /// `Sequential` is this one case of a functional [`Model`]: predict, fit, evaluate and
    /// persistence are the model's.
    pub(super) model: Model,
    /// The model's `batch_input_shape`, once declared (by the first layer or the input).
    pub(super) input_shape: Option<Shape>,
    /// The declared `keras.Input`, if any.
    pub(super) input: Option<InputSpec>,
}

impl Default for Sequential {
    fn default() -> Self {
        Sequential::new()
    }
}

impl Sequential {
    /// An empty model named `sequential`, `sequential_1`, ...
    pub fn new() -> Self {
        Sequential {
            model: Model::empty(unique_name("sequential")),
            input_shape: None,
            input: None,
        }
    }

    /// The same model with another name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.model.name = name.into();
        self
    }

    /// The same model with a declared input (Keras' `keras.Input` first in a `Sequential`):
    /// the first layer is built for `input.batch_shape`, whatever shape it declares.
    ///
    /// # Errors
    /// [`Error::Model`] when the model already has layers.
    pub fn with_input(mut self, input: InputSpec) -> Result<Self> {
        if !self.model.layers.is_empty() {
            return Err(self.error("declare the input before adding layers".into()));
        }
        self.input_shape = Some(input.batch_shape.clone());
        self.input = Some(input);
        Ok(self)
    }

    /// The declared input, if any (see [`Sequential::with_input`]).
    pub fn input(&self) -> Option<&InputSpec> {
        self.input.as_ref()
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.model.name
    }

    /// Appends a layer (Keras' `add`).
    ///
    /// The layer's configuration is validated, its name must be new in the model, and, when
    /// the model's input shape is known (from the first layer's declared input shape), the
    /// layer must accept the previous layer's output shape; it is then built and its initial
    /// `weights` applied.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] (configuration), [`Error::Model`] (duplicate name, or a name with a `/`),
    /// [`Error::IncompatibleShape`], and the build errors, including wrong initial `weights`.
    /// On error the model is unchanged and the layer is dropped.
    pub fn add<L: Layer>(&mut self, layer: L) -> Result<()> {
        self.add_boxed(Box::new(layer))
    }

    /// [`Sequential::add`] for a layer already boxed (e.g. from
    /// [`config::layer_from_config`](crate::config::layer_from_config)).
    ///
    /// # Errors
    /// Those of [`Sequential::add`].
    pub fn add_boxed(&mut self, mut layer: Box<dyn Layer>) -> Result<()> {
        layer.validate()?;
        super::functional::check_layer_name(layer.name(), self.name())?;
        if self.model.layers.iter().any(|l| l.name() == layer.name()) {
            return Err(self.error(format!(
                "all layers must have unique names, and \"{}\" is already used; give the layer another name with `.with_name(..)`",
                layer.name()
            )));
        }
        let first = self.model.layers.is_empty();
        let (input_shape, model_input) = if first {
            let declared = match &self.input {
                Some(input) => Some(input.batch_shape.clone()),
                None => layer.batch_input_shape(),
            };
            (declared.clone(), declared)
        } else {
            (self.known_output_shape()?, self.input_shape.clone())
        };
        if let Some(shape) = &input_shape {
            layer.compute_output_shape(shape)?;
            layer.build(shape)?;
        }
        let name = match &self.input {
            Some(input) => input.name.clone(),
            // Keras 2's Sequential names the input it makes `{first layer}_input`.
            None if first => format!("{}_input", layer.name()),
            None => self.model.input_names().first().map_or_else(
                || format!("{}_input", layer.name()),
                |name| name.to_string(),
            ),
        };
        self.model.push_layer(layer);
        let dtype = self.input_dtype();
        let input = model_input.clone().map(|shape| (name, dtype, shape));
        if let Err(error) = self.model.chain(input) {
            // A failed chain leaves the graph as it was; the layer goes again.
            self.model.layers.pop();
            self.model.uses.pop();
            return Err(error);
        }
        self.input_shape = model_input;
        Ok(())
    }

    /// The layers, in order.
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.model.layers
    }

    /// The layer at `index`, or `None` (Keras' `get_layer(index=...)`).
    pub fn get_layer(&self, index: usize) -> Option<&dyn Layer> {
        self.model.layers.get(index).map(|l| l.as_ref())
    }

    /// The layer at `index`, mutably (e.g. to `set_weights`).
    pub fn get_layer_mut(&mut self, index: usize) -> Option<&mut dyn Layer> {
        match self.model.layers.get_mut(index) {
            Some(layer) => Some(layer.as_mut()),
            None => None,
        }
    }

    /// The layer named `name` (Keras' `get_layer(name=...)`).
    pub fn get_layer_by_name(&self, name: &str) -> Option<&dyn Layer> {
        self.model
            .layers
            .iter()
            .find(|l| l.name() == name)
            .map(|l| l.as_ref())
    }

    /// The layer at `index` as its concrete type, or `None` if there is no such layer or it
    /// is another type.
    ///
    /// ```
    /// use ndkeras::prelude::*;
    ///
    /// let mut model = Sequential::new();
    /// model.add(Embedding::new(10, 4))?;
    /// let embedding: &Embedding = model.layer::<Embedding>(0).unwrap();
    /// assert_eq!(embedding.output_dim(), 4);
    /// # Ok::<(), ndkeras::Error>(())
    /// ```
    pub fn layer<T: Layer>(&self, index: usize) -> Option<&T> {
        let layer: &dyn Layer = self.model.layers.get(index)?.as_ref();
        (layer as &dyn std::any::Any).downcast_ref::<T>()
    }

    /// The layer at `index` as its concrete type, mutably.
    pub fn layer_mut<T: Layer>(&mut self, index: usize) -> Option<&mut T> {
        let layer: &mut dyn Layer = self.model.layers.get_mut(index)?.as_mut();
        (layer as &mut dyn std::any::Any).downcast_mut::<T>()
    }

    /// The model's input shape, batch axis included, once known.
    pub fn input_shape(&self) -> Option<&[Option<usize>]> {
        self.input_shape.as_deref()
    }

    /// The output shape, batch axis included (Keras 2's `model.output_shape`), e.g.
    /// `[None, Some(10), Some(64)]`.
    ///
    /// # Errors
    /// [`Error::Model`] for an empty model, [`Error::NotBuilt`] when the input shape is not
    /// known yet.
    pub fn output_shape(&self) -> Result<Shape> {
        if self.model.layers.is_empty() {
            return Err(self.error("the model has no layers: add one first".into()));
        }
        self.known_output_shape()?.ok_or_else(|| Error::NotBuilt {
            context: format!("model \"{}\"", self.name()),
            what: "the output shape".into(),
            hint: "start the model with a layer that declares its input shape (an Embedding does)"
                .into(),
        })
    }

    /// The output shapes of every layer, when the model's input shape is known.
    pub(crate) fn layer_output_shapes(&self) -> Result<Option<Vec<Shape>>> {
        self.input_shape
            .as_deref()
            .map(|shape| self.output_shapes_from(shape))
            .transpose()
    }

    /// The output shape of every layer when the model's input has `shape`.
    pub(super) fn output_shapes_from(&self, shape: &[Option<usize>]) -> Result<Vec<Shape>> {
        let mut shapes: Vec<Shape> = Vec::with_capacity(self.model.layers.len());
        for layer in &self.model.layers {
            let input = shapes.last().map_or(shape, Vec::as_slice);
            let output = layer.compute_output_shape(input)?;
            shapes.push(output);
        }
        Ok(shapes)
    }

    fn known_output_shape(&self) -> Result<Option<Shape>> {
        Ok(self
            .layer_output_shapes()?
            .and_then(|shapes| shapes.last().cloned()))
    }

    /// Stores the optimizer and loss for training (Keras' `compile`), after validating them.
    /// The optimizer starts fresh (step 0, empty slots).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an optimizer parameter out of range.
    pub fn compile(&mut self, optimizer: Optimizer, loss: Loss) -> Result<()> {
        self.compile_with_metrics(optimizer, loss, Vec::new())
    }

    /// [`Sequential::compile`] with metrics (Keras' `compile(..., metrics=["accuracy"])`):
    /// `fit` reports each under its name (and `val_` + name with validation data), and
    /// [`Sequential::evaluate_with_metrics`] returns them. See [`crate::metrics`].
    ///
    /// ```
    /// use ndkeras::prelude::*;
    ///
    /// let mut model = Sequential::new();
    /// model.add(Embedding::new(10, 4).input_length(3))?;
    /// model.add(GlobalAveragePooling1D::new())?;
    /// model.add(Dense::new(1).activation(Activation::Sigmoid))?;
    /// model.compile_with_metrics("adam".parse()?, Loss::BinaryCrossentropy, vec!["accuracy".parse()?])?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Those of [`Sequential::compile`], a metric's parameter errors, and
    /// [`Error::InvalidArgument`] for two metrics of one name or a name Keras reserves.
    pub fn compile_with_metrics(
        &mut self,
        optimizer: Optimizer,
        loss: Loss,
        metrics: Vec<crate::metrics::Metric>,
    ) -> Result<()> {
        self.model
            .set_compiled(optimizer, vec![loss], None, metrics)
    }

    /// Changes the learning rate of the compiled optimizer, keeping its state (Keras'
    /// `model.optimizer.learning_rate = ...`; what learning-rate callbacks do).
    ///
    /// # Errors
    /// [`Error::Model`] before `compile`; [`Error::InvalidArgument`] for a negative or
    /// non-finite rate.
    pub fn set_learning_rate(&mut self, learning_rate: f32) -> Result<()> {
        self.model.set_learning_rate(learning_rate)
    }

    /// The optimizer given to `compile`, with the learning rate it has now.
    pub fn optimizer(&self) -> Option<&Optimizer> {
        self.model.optimizer()
    }

    /// The loss given to `compile`.
    pub fn loss(&self) -> Option<Loss> {
        self.model.losses().first().copied()
    }

    /// The model as the functional [`Model`] it is: the chain of its layers (what callbacks
    /// receive). Its graph exists once the input shape is known.
    pub fn as_model(&self) -> &Model {
        &self.model
    }

    /// [`Sequential::as_model`], mutably: what a callback receives during `fit` (to drive a
    /// callback by hand, for instance).
    pub fn as_model_mut(&mut self) -> &mut Model {
        &mut self.model
    }

    /// A copy of every weight of every layer, in layer order (Keras' `model.get_weights()`).
    /// See [`Model::get_weights`].
    pub fn get_weights(&self) -> Vec<ArrayD<f32>> {
        self.model.get_weights()
    }

    /// Replaces every weight, in the order of [`Sequential::get_weights`] (Keras'
    /// `model.set_weights`); a failed call changes nothing.
    ///
    /// # Errors
    /// Those of [`Model::set_weights`].
    pub fn set_weights(&mut self, weights: Vec<ArrayD<f32>>) -> Result<()> {
        self.model.set_weights(weights)
    }

    /// Runs the model on `x` in batches of 32 (Keras' `predict`).
    ///
    /// Keras 2's input rules apply: an input one axis short of a model input whose last axis
    /// is 1 gets that axis (`predict([1, 2, 0])` on `Embedding(.., input_length=1)` returns
    /// `(3, 1, output_dim)`), an extra trailing axis of length 1 is dropped, and otherwise the
    /// input must have the model's rank and known lengths. An empty batch gives an empty
    /// output of the right shape. Integer ids stay exact (Keras 2 would pass them through a
    /// float32 input layer and round ids above 2^24).
    ///
    /// # Errors
    /// [`Error::IncompatibleShape`] for an input the model cannot take, the layers' errors
    /// (an out-of-range id is reported at its position in `x`), [`Error::Model`] for an empty
    /// model. Nothing is changed by a failed call.
    pub fn predict(&mut self, x: impl Into<Tensor>) -> Result<ArrayD<f32>> {
        self.predict_with_batch_size(x, DEFAULT_BATCH_SIZE)
    }

    /// [`Sequential::predict`] with another `batch_size`; the result is the same, only the
    /// memory held at once differs.
    ///
    /// # Errors
    /// Those of [`Sequential::predict`], and [`Error::InvalidArgument`] for `batch_size == 0`.
    pub fn predict_with_batch_size(
        &mut self,
        x: impl Into<Tensor>,
        batch_size: usize,
    ) -> Result<ArrayD<f32>> {
        if batch_size == 0 {
            return Err(Error::invalid_argument(
                format!("model \"{}\": predict", self.name()),
                "batch_size",
                0,
                "a positive number of samples",
            ));
        }
        let x = self.prepare_input(x.into(), "predict")?;
        // A lone embedding's output is one gather whatever the batch size: batching would
        // only add a copy of every batch into the joined output.
        if let Some(embedding) = self.single_embedding() {
            return call_with_mask(embedding, &x)?.into_float();
        }
        self.model
            .predict_with_batch_size(vec![x], batch_size)?
            .pop()
            .ok_or_else(|| self.error("internal: the model has no output".into()))
    }

    /// [`Sequential::predict`] for an output of any dtype, as Keras returns it: int64 ids
    /// when the model ends with a `TextVectorization` or `StringLookup`, strings from an
    /// inverted lookup, float32 values otherwise (with their mask).
    ///
    /// # Errors
    /// Those of [`Sequential::predict`], but no error for an output that is not float32.
    pub fn predict_tensor(&mut self, x: impl Into<Tensor>) -> Result<Tensor> {
        let x = self.prepare_input(x.into(), "predict")?;
        self.model
            .predict_tensors(vec![x])?
            .pop()
            .ok_or_else(|| self.error("internal: the model has no output".into()))
    }

    /// Conforms `x` to the model input, builds the layers still to build, and makes the
    /// graph when the input shape was not declared (from `x`'s shape).
    pub(super) fn prepare_input(&mut self, x: Tensor, operation: &str) -> Result<Tensor> {
        if self.model.layers.is_empty() {
            return Err(self.error(format!(
                "the model has no layers: add one before {operation}"
            )));
        }
        if x.ndim() == 0 {
            return Err(Error::IncompatibleShape {
                context: format!("model \"{}\": {operation} needs a batch axis", self.name()),
                expected: self.input_shape.clone().unwrap_or_else(|| vec![None]),
                got: Vec::new(),
            });
        }
        let x = match self.input_shape {
            Some(_) => {
                let (mut conformed, _) = self.model.conform_inputs(vec![x], operation)?;
                conformed
                    .pop()
                    .ok_or_else(|| self.error("internal: no input".into()))?
            }
            None => x,
        };
        if self.model.layers.iter().any(|l| needs_build(l.as_ref())) {
            self.build_deferred(&x)?;
        }
        if self.input_shape.is_none() {
            // Keras 2 builds a Sequential without a declared input on its first call; the
            // graph follows the shape of each call's input.
            let mut shape = x.keras_shape();
            shape[0] = None;
            if self.model.chain_input_shape() != Some(&shape) {
                let name = format!("{}_input", self.model.layers[0].name());
                self.model
                    .chain(Some((name, undeclared_input_dtype(&x), shape)))?;
            }
        }
        Ok(x)
    }

    /// [`Sequential::predict`] into a buffer the caller owns, which must have the output's
    /// shape. A model made of one `Embedding` writes straight into `out` without allocating
    /// (reuse the buffer across calls: a fresh large allocation costs page faults); other
    /// models compute the output and copy it. On error `out` is untouched.
    ///
    /// # Errors
    /// Those of [`Sequential::predict`], and [`Error::IncompatibleShape`] when `out` does not
    /// have the output's shape.
    pub fn predict_into(
        &mut self,
        x: impl Into<Tensor>,
        mut out: ndarray::ArrayViewMutD<'_, f32>,
    ) -> Result<()> {
        let x = self.prepare_input(x.into(), "predict")?;
        if let Some(embedding) = self.single_embedding() {
            return embedding.lookup_into(&x, out);
        }
        let output = self.predict_with_batch_size(x, DEFAULT_BATCH_SIZE)?;
        if output.shape() != out.shape() {
            return Err(Error::IncompatibleShape {
                context: format!("model \"{}\": predict_into's output buffer", self.name()),
                expected: output.shape().iter().map(|&d| Some(d)).collect(),
                got: out.shape().iter().map(|&d| Some(d)).collect(),
            });
        }
        out.assign(&output);
        Ok(())
    }

    /// The model's only layer, when it is an `Embedding`.
    fn single_embedding(&self) -> Option<&crate::layers::Embedding> {
        match self.model.layers.as_slice() {
            [layer] => (layer.as_ref() as &dyn std::any::Any).downcast_ref(),
            _ => None,
        }
    }

    /// Trains the model (Keras' `fit`): `epochs` passes over `(x, y)` in batches, each batch
    /// one optimizer step. The model trains as the functional [`Model`] it is: see
    /// [`Model::fit`].
    ///
    /// # Errors
    /// Those of [`Model::fit`], and [`Error::Model`] for a model without layers. Nothing
    /// changes when an error is found before training starts.
    pub fn fit(
        &mut self,
        x: impl Into<Tensor>,
        y: impl Into<Tensor>,
        options: FitOptions,
    ) -> Result<History> {
        self.fit_with_callbacks(x, y, options, &mut [])
    }

    /// [`Sequential::fit`] with callbacks (Keras' `fit(callbacks=[...])`): each runs at the
    /// start and end of training and of every epoch, in order, and may stop training (see
    /// [`crate::model::callbacks`]); callbacks see the model as a [`Model`].
    ///
    /// # Errors
    /// Those of [`Sequential::fit`], and any error a callback returns (training stops there;
    /// the weights are those of the last finished step).
    pub fn fit_with_callbacks(
        &mut self,
        x: impl Into<Tensor>,
        y: impl Into<Tensor>,
        options: FitOptions,
        callbacks: &mut [&mut dyn Callback],
    ) -> Result<History> {
        let x = x.into();
        // Before anything is built: a call that cannot train leaves the model as it was.
        self.model
            .check_fit_call(&options, std::slice::from_ref(&x))?;
        let x = self.prepare_input(x, "fit")?;
        if self.input_shape.is_none()
            && let Some((vx, _)) = &options.validation_data
            && let [vx] = vx.as_slice()
        {
            // Keras 2 relaxes to `None` the axes on which the inputs of an undeclared
            // Sequential differ: validation data of another sequence length is fine.
            self.relax_chain_input(vx)?;
        }
        self.model
            .fit_with_callbacks(vec![x], vec![y.into()], options, callbacks)
    }

    /// The element type of the declared input (Keras' dtype name), `float32` otherwise.
    fn input_dtype(&self) -> DType {
        self.input
            .as_ref()
            .and_then(|input| DType::from_name(&input.dtype))
            .unwrap_or(DType::Float32)
    }

    /// Widens the graph's input (of a Sequential whose input was not declared) to `None` on
    /// every axis where `other` differs, when both have the same rank.
    fn relax_chain_input(&mut self, other: &Tensor) -> Result<()> {
        let Some(current) = self.model.chain_input_shape().cloned() else {
            return Ok(());
        };
        if current.len() != other.ndim() {
            return Ok(());
        }
        let relaxed: Shape = current
            .iter()
            .zip(other.shape())
            .map(|(&known, &length)| known.filter(|&k| k == length))
            .collect();
        if relaxed != current {
            let name = format!("{}_input", self.model.layers[0].name());
            self.model
                .chain(Some((name, undeclared_input_dtype(other), relaxed)))?;
        }
        Ok(())
    }

    /// Frees the batch-sized buffers that training steps reuse (see
    /// [`Model::release_buffers`]): `fit` frees them when it returns; after a loop of
    /// [`Sequential::train_on_batch`], call this if the model stays in memory for other work.
    pub fn release_buffers(&mut self) {
        self.model.release_buffers();
    }

    /// One optimizer step on one batch (Keras' `train_on_batch`); returns the batch loss
    /// computed before the step. See [`Model::train_on_batch`].
    ///
    /// # Errors
    /// Those of [`Sequential::fit`] (zero samples included: Keras 2 returns a loss of 0
    /// there, ndkeras refuses); a failed step changes nothing.
    pub fn train_on_batch(&mut self, x: impl Into<Tensor>, y: impl Into<Tensor>) -> Result<f32> {
        let x = x.into();
        self.model
            .check_data_call("train_on_batch", &x, DEFAULT_BATCH_SIZE)?;
        let x = self.prepare_input(x, "train_on_batch")?;
        self.model.train_on_batch(vec![x], vec![y.into()])
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
        let results = self.evaluated(x.into(), y.into(), batch_size)?;
        results
            .first()
            .map(|(_, loss)| *loss)
            .ok_or_else(|| self.error("internal: evaluate returned no loss".into()))
    }

    /// The loss and every metric of `compile_with_metrics` on `(x, y)`, by Keras' names:
    /// `("loss", ..)` first (Keras' `evaluate(..., return_dict=True)`).
    ///
    /// # Errors
    /// Those of [`Sequential::evaluate`].
    pub fn evaluate_with_metrics(
        &mut self,
        x: impl Into<Tensor>,
        y: impl Into<Tensor>,
    ) -> Result<Vec<(String, f32)>> {
        self.evaluated(x.into(), y.into(), DEFAULT_BATCH_SIZE)
    }

    fn evaluated(&mut self, x: Tensor, y: Tensor, batch_size: usize) -> Result<Vec<(String, f32)>> {
        self.model.check_data_call("evaluate", &x, batch_size)?;
        let x = self.prepare_input(x, "evaluate")?;
        self.model
            .evaluate_with_batch_size(vec![x], vec![y], batch_size)
    }

    /// Builds the layers of a model whose input shape was not declared, from the first input.
    /// Every shape, configuration and initial weight list is checked before any layer is
    /// built; if a build still fails (memory), the layers this call built are unbuilt again,
    /// and a layer that was built before is never unbuilt.
    pub(super) fn build_deferred(&mut self, x: &Tensor) -> Result<()> {
        let mut shape: Shape = x.keras_shape();
        shape[0] = None;
        // The data first (a string tensor given to an id layer is a type error before it is
        // a shape error); then layer i's input is layer i-1's output; all are checked before
        // anything is built.
        if let Some(first) = self.model.layers.first() {
            first.check_input(x)?;
        }
        let mut inputs = vec![shape.clone()];
        inputs.extend(self.output_shapes_from(&shape)?);
        for (layer, input_shape) in self.model.layers.iter().zip(&inputs) {
            if needs_build(layer.as_ref()) {
                layer.validate()?;
                check_initial_weights(layer.as_ref(), input_shape)?;
            }
        }
        // Unbuilt layers first, undone if one fails (memory); then built layers given new
        // `weights`, each replaced as one `set_weights`, so a failure in the first pass
        // leaves them exactly as they were.
        let mut built: Vec<usize> = Vec::with_capacity(self.model.layers.len());
        let undo = |layers: &mut [Box<dyn Layer>], built: &[usize]| {
            for &index in built {
                layers[index].unbuild();
            }
        };
        for (index, input_shape) in inputs.iter().enumerate().take(self.model.layers.len()) {
            if self.model.layers[index].is_built() {
                continue;
            }
            if let Err(error) = self.model.layers[index].build(input_shape) {
                undo(&mut self.model.layers, &built);
                return Err(error);
            }
            built.push(index);
        }
        for (index, input_shape) in inputs.iter().enumerate().take(self.model.layers.len()) {
            if built.contains(&index) || !needs_build(self.model.layers[index].as_ref()) {
                continue;
            }
            if let Err(error) = self.model.layers[index].build(input_shape) {
                undo(&mut self.model.layers, &built);
                return Err(error);
            }
        }
        Ok(())
    }

    /// A Keras-like table of the layers, their output shapes and parameter counts, with the
    /// totals (Keras' `summary()`, returned instead of printed).
    ///
    /// # Errors
    /// [`Error::NotBuilt`] when a layer is not built yet, as in Keras.
    pub fn summary(&self) -> Result<String> {
        summary::render(self)
    }

    pub(super) fn error(&self, message: String) -> Error {
        Error::Model {
            model: self.name().to_string(),
            message,
        }
    }
}
