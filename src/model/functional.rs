//! The functional API (Keras' `keras.Input` and `keras.Model(inputs, outputs)`): a graph of
//! layer calls, with several inputs, several outputs, and layers shared between calls.
//!
//! A [`Graph`] records the calls as they are made, Keras-style: [`Graph::input`] declares an
//! input, [`Graph::add`] adds a layer (it is not called yet), [`Graph::call`] calls a layer on
//! earlier tensors (building it on its first call, from the input shape) and returns the
//! output. Calling one layer at several places shares its weights, and training sums the
//! gradients of every use (two row-sparse gradients of one table merge into one update).
//! [`Graph::model`] turns the graph into a [`Model`] from its inputs to its outputs.
//!
//! ```
//! use ndarray::array;
//! use ndkeras::prelude::*;
//!
//! // One table, two heads: a click probability and a category.
//! let mut graph = Graph::new();
//! let ids = graph.input(Input::new(&[3]).dtype(DType::Int64).with_name("ids"));
//! let rows = graph.apply(Embedding::new(9, 4).mask_zero(true), &[ids])?;
//! let mean = graph.apply(GlobalAveragePooling1D::new(), &[rows])?;
//! let click = graph.apply(Dense::new(1).activation(Activation::Sigmoid).with_name("click"), &[mean])?;
//! let category = graph.apply(Dense::new(3).activation(Activation::Softmax).with_name("category"), &[mean])?;
//! let mut model = graph.model(&[ids], &[click, category])?;
//! model.compile(
//!     Adam::default().learning_rate(0.05).into(),
//!     vec![Loss::BinaryCrossentropy, Loss::SparseCategoricalCrossentropy],
//!     Some(vec![1.0, 0.5]),
//! )?;
//! let x = Tensor::from(array![[1i64, 2, 0], [3, 4, 5]]);
//! let y = vec![Tensor::from(array![[1.0f32], [0.0]]), Tensor::from(array![2i64, 0])];
//! let history = model.fit(vec![x.clone()], y, FitOptions::default().epochs(5).verbose(false))?;
//! assert_eq!(history.get("click_loss").map(<[f32]>::len), Some(5));
//! let [clicks, categories] = &model.predict(vec![x])?[..] else { unreachable!() };
//! assert_eq!((clicks.shape(), categories.shape()), (&[2, 1][..], &[2, 3][..]));
//! # Ok::<(), ndkeras::Error>(())
//! ```
//!
//! # Training
//! [`Model::compile`] takes one loss per output and optional loss weights (Keras'
//! `compile(loss=[..], loss_weights=[..])`); the loss of a step is the weighted sum, plus the
//! regularization penalties. [`Model::fit`] takes one array per input and one per output and
//! reports, as Keras does, `loss` and, with several outputs, `{output}_loss` per epoch.
//!
//! A layer that keeps state between its forward and backward pass (a `Dense` remembers its
//! last pre-activation values) is run again on a call's inputs before that call's backward
//! pass when it is used at several places (every call but its last, whose state it still
//! holds), so every use gets its own gradient. A `Dropout`
//! shared between calls cannot be trained (each use would need its own random mask): it is
//! an error when the model is made.

use std::collections::HashMap;

use ndarray::ArrayD;

use crate::error::{Error, OptDims, Result, Shape};
use crate::layer::{
    CallArgs, Layer, assign_weights, check_initial_weights, prepare_weights, unique_name,
};
use crate::losses::Loss;
use crate::metrics::Metric;
use crate::model::fit::FitOptions;
use crate::model::history::History;
use crate::model::sequential::DEFAULT_BATCH_SIZE;
use crate::model::step::{Scratch, TrainingState};
use crate::optimizers::Optimizer;
use crate::tensor::{DType, Tensor};

/// A model input (Keras' `keras.Input`): the shape of one sample (without the batch axis;
/// `None` where any length is accepted), the element type, and a name.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    shape: Shape,
    dtype: DType,
    name: Option<String>,
}

impl Input {
    /// An input of samples of `shape` (every length known), `float32`, named `input_1`, ...
    pub fn new(shape: &[usize]) -> Input {
        Input::with_shape(shape.iter().map(|&d| Some(d)).collect())
    }

    /// An input of samples of `shape`, `None` where any length is accepted.
    pub fn with_shape(shape: Shape) -> Input {
        Input {
            shape,
            dtype: DType::Float32,
            name: None,
        }
    }

    /// The element type of the samples (ids: an integer type). Default: `float32`.
    pub fn dtype(mut self, dtype: DType) -> Input {
        self.dtype = dtype;
        self
    }

    /// The input's name, by which `predict` and `fit` may also take their data. Default:
    /// `input_1`, `input_2`, ... (Keras' names).
    pub fn with_name(mut self, name: impl Into<String>) -> Input {
        self.name = Some(name.into());
        self
    }
}

/// A tensor of a [`Graph`]: a model input, or the output of one layer call (Keras'
/// `KerasTensor`). It is a handle: copy it freely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SymbolicTensor {
    graph: u64,
    index: usize,
}

/// Refuses a layer name a model cannot hold: one with a `/`, which separates a layer from its
/// weights in weights files (`layer/weight`), so that what `save_weights` writes,
/// `load_weights` reads back (Keras 3 refuses such names when the layer is made).
pub(super) fn check_layer_name(name: &str, model: &str) -> Result<()> {
    if name.contains('/') {
        return Err(Error::Model {
            model: model.into(),
            message: format!(
                "the layer name \"{name}\" contains '/', which separates a layer from its weights in weights files: give the layer a name without '/' with `.with_name(..)` (Keras 3 refuses such names too)"
            ),
        });
    }
    Ok(())
}

/// A layer added to a [`Graph`]: call it with [`Graph::call`], as often as needed (every call
/// uses the same weights).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LayerRef {
    graph: u64,
    index: usize,
}

/// One node of a graph: an input, or a call of a layer on earlier nodes.
#[derive(Debug, Clone)]
pub(super) enum Node {
    Input {
        name: String,
        dtype: DType,
        /// With the batch axis.
        shape: Shape,
    },
    Call {
        layer: usize,
        inputs: Vec<usize>,
        shape: Shape,
        /// Keras' keyword arguments of the call (`reverse=True`).
        args: CallArgs,
    },
}

impl Node {
    pub(super) fn shape(&self) -> &Shape {
        match self {
            Node::Input { shape, .. } | Node::Call { shape, .. } => shape,
        }
    }
}

/// The layer calls of a functional model, recorded as they are made. See the
/// [module docs](self).
#[derive(Debug)]
pub struct Graph {
    /// Unique in the process: tensors and layers of another graph are refused.
    id: u64,
    layers: Vec<Box<dyn Layer>>,
    nodes: Vec<Node>,
}

impl Default for Graph {
    fn default() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Graph {
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            layers: Vec::new(),
            nodes: Vec::new(),
        }
    }
}

impl Graph {
    /// An empty graph.
    pub fn new() -> Graph {
        Graph::default()
    }

    /// Declares an input (Keras' `keras.Input(shape, dtype, name)`). Two inputs of one model
    /// cannot share a name: [`Graph::model`] refuses it.
    pub fn input(&mut self, input: Input) -> SymbolicTensor {
        let taken = |name: &str| {
            self.nodes
                .iter()
                .any(|n| matches!(n, Node::Input { name: other, .. } if other == name))
        };
        // Keras names inputs input_1, input_2, ... (1-based), skipping names in use.
        let name = match input.name {
            Some(name) => name,
            None => (1..)
                .map(|k| format!("input_{k}"))
                .find(|name| !taken(name))
                .unwrap_or_default(),
        };
        let mut shape = vec![None];
        shape.extend(input.shape);
        self.nodes.push(Node::Input {
            name,
            dtype: input.dtype,
            shape,
        });
        self.tensor(self.nodes.len() - 1)
    }

    fn tensor(&self, index: usize) -> SymbolicTensor {
        SymbolicTensor {
            graph: self.id,
            index,
        }
    }

    /// The index of a tensor of this graph.
    fn node_of(&self, tensor: SymbolicTensor) -> Result<usize> {
        if tensor.graph != self.id || tensor.index >= self.nodes.len() {
            return Err(foreign_error());
        }
        Ok(tensor.index)
    }

    /// Adds a layer without calling it (to call it several times).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an invalid configuration, [`Error::Model`] for a name
    /// another layer of the graph has, or a name with a `/`.
    pub fn add<L: Layer>(&mut self, layer: L) -> Result<LayerRef> {
        layer.validate()?;
        check_layer_name(layer.name(), "(functional)")?;
        if self.layers.iter().any(|l| l.name() == layer.name()) {
            return Err(Error::Model {
                model: "(functional)".into(),
                message: format!(
                    "all layers must have unique names, and \"{}\" is already used; give the layer another name with `.with_name(..)`",
                    layer.name()
                ),
            });
        }
        self.layers.push(Box::new(layer));
        Ok(LayerRef {
            graph: self.id,
            index: self.layers.len() - 1,
        })
    }

    /// Calls `layer` on `inputs` (one tensor, or a list for a merge layer) and returns its
    /// output. The layer is built on its first call, from the input shape (its initial
    /// `weights` applied); a later call reuses its weights.
    ///
    /// # Errors
    /// [`Error::Model`] for a tensor or layer of another graph; the layer's shape errors (a
    /// shared layer called on an incompatible shape); the build errors.
    pub fn call(&mut self, layer: LayerRef, inputs: &[SymbolicTensor]) -> Result<SymbolicTensor> {
        self.call_with(layer, inputs, CallArgs::default())
    }

    /// [`Graph::call`] with Keras' keyword arguments: `emb(h, reverse=True)` is
    /// `graph.call_with(emb, &[h], CallArgs::default().reverse(true))`. A call with
    /// arguments does not build the layer: call it plainly first.
    ///
    /// # Errors
    /// Those of [`Graph::call`]; [`Error::InvalidArgument`] for an argument the layer does
    /// not take; [`Error::NotBuilt`] for a call with arguments of a layer not built yet.
    pub fn call_with(
        &mut self,
        layer: LayerRef,
        inputs: &[SymbolicTensor],
        args: CallArgs,
    ) -> Result<SymbolicTensor> {
        if layer.graph != self.id || layer.index >= self.layers.len() {
            return Err(foreign_error());
        }
        let index = layer.index;
        let nodes = inputs
            .iter()
            .map(|&t| self.node_of(t))
            .collect::<Result<Vec<usize>>>()?;
        let shapes: Vec<Shape> = nodes
            .iter()
            .map(|&n| self.nodes[n].shape().clone())
            .collect();
        let layer = &mut self.layers[index];
        if !args.is_plain() && !layer.is_built() {
            return Err(Error::NotBuilt {
                context: format!("layer \"{}\" ({})", layer.name(), layer.class_name()),
                what: format!("a call with {args:?}"),
                hint: "call the layer without arguments first (that call builds it)".into(),
            });
        }
        if let [node] = nodes.as_slice()
            && let Node::Input { dtype, shape, .. } = &self.nodes[*node]
        {
            check_input_dtype(layer.as_ref(), *dtype, shape)?;
        }
        if let [shape] = shapes.as_slice()
            && args.is_plain()
            && (!layer.is_built() || layer.initial_weights().is_some())
        {
            check_initial_weights(layer.as_ref(), shape)?;
            layer.build(shape)?;
        }
        let shape = layer.compute_output_shape_with(&shapes, args)?;
        self.nodes.push(Node::Call {
            layer: index,
            inputs: nodes,
            shape,
            args,
        });
        Ok(self.tensor(self.nodes.len() - 1))
    }

    /// Adds `layer` and calls it on `inputs` (for a layer used once).
    ///
    /// # Errors
    /// Those of [`Graph::add`] and [`Graph::call`].
    pub fn apply<L: Layer>(
        &mut self,
        layer: L,
        inputs: &[SymbolicTensor],
    ) -> Result<SymbolicTensor> {
        let layer = self.add(layer)?;
        let called = self.call(layer, inputs);
        if called.is_err() && layer.index + 1 == self.layers.len() {
            // A failed call leaves the graph as it was: the layer (never called) goes, and
            // its name is free again, as in Keras.
            self.layers.pop();
        }
        called
    }

    /// The shape of a tensor of the graph, batch axis first (`None`: any length).
    pub fn shape(&self, tensor: SymbolicTensor) -> Option<&[Option<usize>]> {
        let index = self.node_of(tensor).ok()?;
        self.nodes.get(index).map(|n| n.shape().as_slice())
    }

    /// The model from `inputs` to `outputs` (Keras' `keras.Model(inputs, outputs)`), named
    /// `model`, `model_1`, ... Its layers are in Keras' order (`model.layers`: by depth from
    /// the outputs, deepest first), whatever order they were created in, so `get_weights`
    /// and `set_weights` take the list Keras gives for the same model.
    ///
    /// # Errors
    /// [`Error::Model`] when an input is not a declared input, when an output depends on an
    /// input not given, when there are no outputs, or when a `Dropout` is shared between
    /// calls.
    pub fn model(self, inputs: &[SymbolicTensor], outputs: &[SymbolicTensor]) -> Result<Model> {
        let name = unique_name("model");
        let error = |message: String| Error::Model {
            model: name.clone(),
            message,
        };
        if outputs.is_empty() {
            return Err(error("a model needs at least one output".into()));
        }
        let inputs = inputs
            .iter()
            .map(|&t| self.node_of(t))
            .collect::<Result<Vec<usize>>>()?;
        let outputs = outputs
            .iter()
            .map(|&t| self.node_of(t))
            .collect::<Result<Vec<usize>>>()?;
        for (k, &input) in inputs.iter().enumerate() {
            if !matches!(self.nodes[input], Node::Input { .. }) {
                return Err(error(
                    "the inputs of a model must be tensors made by `Graph::input`".into(),
                ));
            }
            if inputs[..k].contains(&input) {
                return Err(error(
                    "an input is listed twice: each input of a model appears once, as in Keras"
                        .into(),
                ));
            }
        }
        // The nodes the outputs need, in creation order (a node only reads earlier ones).
        let mut needed = vec![false; self.nodes.len()];
        for &output in &outputs {
            needed[output] = true;
        }
        for index in (0..self.nodes.len()).rev() {
            if !needed[index] {
                continue;
            }
            match &self.nodes[index] {
                Node::Call { inputs: from, .. } => from.iter().for_each(|&i| needed[i] = true),
                Node::Input { name, .. } => {
                    if !inputs.contains(&index) {
                        return Err(error(format!(
                            "an output depends on the input \"{name}\", which is not among the model's inputs"
                        )));
                    }
                }
            }
        }
        // Inputs the outputs do not need are still inputs of the model (Keras keeps them).
        inputs.iter().for_each(|&i| needed[i] = true);
        // The model keeps only what its outputs need: the needed nodes, renumbered, and the
        // layers they call, in the order of their first call.
        let mut node_index = vec![usize::MAX; self.nodes.len()];
        let mut layer_index = vec![usize::MAX; self.layers.len()];
        let mut kept_layers: Vec<usize> = Vec::new();
        let mut nodes = Vec::new();
        for (index, node) in self.nodes.into_iter().enumerate() {
            if !needed[index] {
                continue;
            }
            node_index[index] = nodes.len();
            nodes.push(match node {
                Node::Input { .. } => node,
                Node::Call {
                    layer,
                    inputs: from,
                    shape,
                    args,
                } => {
                    if layer_index[layer] == usize::MAX {
                        layer_index[layer] = kept_layers.len();
                        kept_layers.push(layer);
                    }
                    Node::Call {
                        layer: layer_index[layer],
                        inputs: from.iter().map(|&i| node_index[i]).collect(),
                        shape,
                        args,
                    }
                }
            });
        }
        let mut slots: Vec<Option<Box<dyn Layer>>> = self.layers.into_iter().map(Some).collect();
        let layers: Vec<Box<dyn Layer>> = kept_layers
            .iter()
            .filter_map(|&l| slots.get_mut(l).and_then(Option::take))
            .collect();
        let mut uses = vec![0usize; layers.len()];
        for node in &nodes {
            if let Node::Call { layer, .. } = node {
                uses[*layer] += 1;
            }
        }
        // Names are unique across the inputs and the layers, as Keras requires.
        let mut names: Vec<&str> = layers.iter().map(|l| l.name()).collect();
        names.extend(nodes.iter().filter_map(|n| match n {
            Node::Input { name, .. } => Some(name.as_str()),
            Node::Call { .. } => None,
        }));
        for (k, name) in names.iter().enumerate() {
            if names[..k].contains(name) {
                return Err(error(format!(
                    "all inputs and layers must have unique names, and \"{name}\" is used twice"
                )));
            }
        }
        if let Some(shared) = layers
            .iter()
            .zip(&uses)
            .find(|(layer, count)| **count > 1 && layer.class_name() == "Dropout")
        {
            return Err(error(format!(
                "the Dropout layer \"{}\" is called at several places; give each call its own Dropout",
                shared.0.name()
            )));
        }
        let model = Model {
            name,
            layers,
            nodes,
            inputs: inputs.iter().map(|&i| node_index[i]).collect(),
            outputs: outputs.iter().map(|&o| node_index[o]).collect(),
            uses,
            compiled: None,
            training: TrainingState::default(),
            scratch: Scratch::default(),
        };
        Ok(model.in_keras_order())
    }
}

impl Model {
    /// The same model with its layers in Keras' order (`model.layers`: by depth from the
    /// outputs, deepest first; see [`crate::model::order`]), so that `layers`,
    /// `get_weights`, `set_weights` and `summary` list them as Keras does, whatever order
    /// the layers were created or called in. Run before any training state exists.
    fn in_keras_order(mut self) -> Model {
        let order: Vec<usize> = crate::model::order::keras_layer_order(&self)
            .into_iter()
            .filter_map(|entry| match entry {
                crate::model::order::Entry::Layer(layer) => Some(layer),
                crate::model::order::Entry::Input(_) => None,
            })
            .collect();
        let count = self.layers.len();
        let mut new_index = vec![usize::MAX; count];
        for (new, &old) in order.iter().enumerate() {
            if let Some(slot) = new_index.get_mut(old) {
                *slot = new;
            }
        }
        // Every layer of the model is called by a node the outputs need: the order is a
        // permutation. Were it not, the model keeps its order.
        if order.len() != count || new_index.contains(&usize::MAX) {
            return self;
        }
        let mut slots: Vec<Option<Box<dyn Layer>>> = self.layers.drain(..).map(Some).collect();
        self.layers = order
            .iter()
            .filter_map(|&old| slots.get_mut(old).and_then(Option::take))
            .collect();
        self.uses = order
            .iter()
            .map(|&old| self.uses.get(old).copied().unwrap_or(0))
            .collect();
        for node in &mut self.nodes {
            if let Node::Call { layer, .. } = node {
                *layer = new_index[*layer];
            }
        }
        self
    }
}

/// The error for a tensor or layer handle used with a graph it does not belong to.
/// Checks that `layer` takes inputs of `dtype` when it reads a model input of that type with
/// strings on either side (a string input into an `Embedding`, a numeric input into a
/// `TextVectorization`): Keras refuses such a model when it is made (the cast fails), so the
/// mistake is reported here rather than at the first `fit`. The check calls the layer's
/// [`Layer::check_input`] on an empty batch of the input's type.
fn check_input_dtype(layer: &dyn Layer, dtype: DType, shape: &[Option<usize>]) -> Result<()> {
    let takes_strings = matches!(layer.class_name(), "TextVectorization" | "StringLookup");
    if dtype != DType::String && !takes_strings {
        return Ok(());
    }
    let mut dims: Vec<usize> = shape.iter().map(|d| d.unwrap_or(1)).collect();
    if let Some(batch) = dims.first_mut() {
        *batch = 0;
    }
    // The probe holds no element, but ndarray refuses a shape whose other lengths multiply
    // past isize::MAX: such a declared shape is probed with every length 0.
    let fits = dims
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .is_some_and(|n| isize::try_from(n).is_ok());
    if !fits {
        dims.fill(0);
    }
    let dims = ndarray::IxDyn(&dims);
    let probe = match dtype {
        DType::String => Tensor::from(ArrayD::<String>::from_elem(dims, String::new())),
        DType::Int8 => Tensor::from(ArrayD::<i8>::zeros(dims)),
        DType::Int16 => Tensor::from(ArrayD::<i16>::zeros(dims)),
        DType::Int32 => Tensor::from(ArrayD::<i32>::zeros(dims)),
        DType::UInt8 => Tensor::from(ArrayD::<u8>::zeros(dims)),
        DType::UInt16 => Tensor::from(ArrayD::<u16>::zeros(dims)),
        DType::UInt32 => Tensor::from(ArrayD::<u32>::zeros(dims)),
        DType::UInt64 => Tensor::from(ArrayD::<u64>::zeros(dims)),
        DType::Usize => Tensor::from(ArrayD::<usize>::zeros(dims)),
        DType::Float32 => Tensor::from(ArrayD::<f32>::zeros(dims)),
        _ => Tensor::from(ArrayD::<i64>::zeros(dims)),
    };
    layer.check_input(&probe)
}

fn foreign_error() -> Error {
    Error::Model {
        model: "(functional)".into(),
        message: "a tensor or layer of another graph: every tensor and layer of a model comes from the one Graph it is built from".into(),
    }
}

/// A functional model: a graph of layer calls from its inputs to its outputs (Keras'
/// `keras.Model`). Made by [`Graph::model`]; see the [module docs](self).
#[derive(Debug)]
pub struct Model {
    pub(super) name: String,
    pub(super) layers: Vec<Box<dyn Layer>>,
    pub(super) nodes: Vec<Node>,
    pub(super) inputs: Vec<usize>,
    pub(super) outputs: Vec<usize>,
    /// How many calls of each layer the model makes.
    pub(super) uses: Vec<usize>,
    /// What `compile` stored: the optimizer, a loss and a loss weight per output, the
    /// metrics; `None` before `compile`.
    pub(super) compiled: Option<Compiled>,
    /// The optimizer's step count and slot variables.
    pub(super) training: TrainingState,
    /// Buffers training steps reuse.
    pub(super) scratch: Scratch,
}

/// What `compile` stores.
#[derive(Debug, Clone)]
pub(super) struct Compiled {
    pub(super) optimizer: Optimizer,
    pub(super) losses: Vec<Loss>,
    pub(super) loss_weights: Vec<f32>,
    pub(super) metrics: Vec<Metric>,
}

/// The values of every node of one forward pass (inputs included).
pub(super) type Values = Vec<Option<Tensor>>;

impl Model {
    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same model with another name.
    pub fn with_name(mut self, name: impl Into<String>) -> Model {
        self.name = name.into();
        self
    }

    /// The layers the outputs need, in the order of their first call (Keras' `model.layers`, without the inputs).
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    pub(super) fn layers_mut(&mut self) -> &mut [Box<dyn Layer>] {
        &mut self.layers
    }

    /// The layer named `name` (Keras' `get_layer(name=...)`).
    pub fn get_layer(&self, name: &str) -> Option<&dyn Layer> {
        self.layers
            .iter()
            .find(|l| l.name() == name)
            .map(|l| l.as_ref())
    }

    /// The layer named `name`, mutably (e.g. to `set_weights` or freeze it).
    pub fn get_layer_mut(&mut self, name: &str) -> Option<&mut dyn Layer> {
        match self.layers.iter_mut().find(|l| l.name() == name) {
            Some(layer) => Some(layer.as_mut()),
            None => None,
        }
    }

    /// The names of the inputs, in order.
    pub fn input_names(&self) -> Vec<&str> {
        self.inputs
            .iter()
            .filter_map(|&i| match &self.nodes[i] {
                Node::Input { name, .. } => Some(name.as_str()),
                Node::Call { .. } => None,
            })
            .collect()
    }

    /// The declared element types of the inputs, in order.
    pub fn input_dtypes(&self) -> Vec<DType> {
        self.inputs
            .iter()
            .filter_map(|&i| match &self.nodes[i] {
                Node::Input { dtype, .. } => Some(*dtype),
                Node::Call { .. } => None,
            })
            .collect()
    }

    /// The names of the outputs (the names of the layers whose calls produce them), in
    /// order; `fit` reports each output's loss as `{name}_loss`.
    ///
    /// A layer that gives two outputs names them `dense`, `dense_1`, as Keras'
    /// `Functional._set_output_names` does.
    pub fn output_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::with_capacity(self.outputs.len());
        let mut counts: HashMap<String, usize> = HashMap::new();
        for &i in &self.outputs {
            let base = match &self.nodes[i] {
                Node::Call { layer, .. } => self.layers[*layer].name(),
                Node::Input { name, .. } => name.as_str(),
            };
            let mut proposal = base.to_string();
            while names.contains(&proposal) {
                let count = counts.entry(base.to_string()).or_insert(1);
                proposal = format!("{base}_{count}");
                *count += 1;
            }
            names.push(proposal);
        }
        names
    }

    /// The output shapes, batch axis first.
    pub fn output_shapes(&self) -> Vec<Shape> {
        self.outputs
            .iter()
            .map(|&i| self.nodes[i].shape().clone())
            .collect()
    }

    /// A copy of every weight of every layer, layer by layer in [`Model::layers`] order, a
    /// shared layer's once (Keras' `model.get_weights()`).
    ///
    /// Like any Rust copy, a copy that does not fit in memory aborts the process: see
    /// [`Model::try_get_weights`].
    pub fn get_weights(&self) -> Vec<ArrayD<f32>> {
        self.layers.iter().flat_map(|l| l.get_weights()).collect()
    }

    /// [`Model::get_weights`] with fallible copies.
    ///
    /// # Errors
    /// [`Error::Allocation`] when a copy does not fit in memory.
    pub fn try_get_weights(&self) -> Result<Vec<ArrayD<f32>>> {
        let mut all = Vec::new();
        for layer in &self.layers {
            all.extend(layer.try_get_weights()?);
        }
        Ok(all)
    }

    /// Replaces every weight (Keras' `model.set_weights`): one array per weight, in the
    /// order of [`Model::get_weights`]. Every array is checked and copied before the first
    /// weight changes, so a failed call changes nothing.
    ///
    /// # Errors
    /// [`Error::Model`] for the wrong number of arrays, and the errors of
    /// [`Layer::set_weights`] (shape, non-finite values, memory) naming the layer.
    pub fn set_weights(&mut self, weights: Vec<ArrayD<f32>>) -> Result<()> {
        let expected: usize = self.layers.iter().map(|l| l.variables().len()).sum();
        if weights.len() != expected {
            return Err(self.error(format!(
                "set_weights received a list of {} weight arrays, but the model holds {expected} (the arrays of get_weights, layer by layer)",
                weights.len()
            )));
        }
        let mut arrays = weights.into_iter();
        let mut per_layer = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let own: Vec<ArrayD<f32>> = arrays.by_ref().take(layer.variables().len()).collect();
            let prepared = prepare_weights(layer.as_ref(), &own)?;
            per_layer.push((own, prepared));
        }
        // Rows an optimizer with momentum keeps lazily (during `fit`, between a batch and a
        // callback) take their pending moves now, so that none lands on the new values.
        self.flush_lazy_rows();
        for (layer, (own, prepared)) in self.layers.iter_mut().zip(per_layer) {
            assign_weights(layer.as_mut(), own, prepared)?;
        }
        Ok(())
    }

    /// Every trainable and frozen weight's scalars (Keras' `count_params`): a shared
    /// layer's weights count once.
    pub fn count_params(&self) -> usize {
        self.layers
            .iter()
            .flat_map(|l| l.variables())
            .map(|w| w.len())
            .sum()
    }

    pub(super) fn error(&self, message: String) -> Error {
        Error::Model {
            model: self.name.clone(),
            message,
        }
    }

    /// Conforms `x` (one tensor per input, in order) to the inputs and checks it: Keras 2's
    /// `_conform_to_reference_input` (an input one axis short of a declared input whose last
    /// axis is 1 gets that axis; an extra trailing axis of length 1 is dropped), then the
    /// count, rank and known lengths, and one batch size. Returns the tensors and the batch
    /// size.
    pub(super) fn conform_inputs(
        &self,
        x: Vec<Tensor>,
        operation: &str,
    ) -> Result<(Vec<Tensor>, usize)> {
        if x.len() != self.inputs.len() {
            return Err(self.error(format!(
                "{operation} received {} input arrays, but the model has {} inputs ({:?})",
                x.len(),
                self.inputs.len(),
                self.input_names()
            )));
        }
        let mut batch = None;
        let mut conformed = Vec::with_capacity(x.len());
        for (tensor, (&index, name)) in x
            .into_iter()
            .zip(self.inputs.iter().zip(self.input_names()))
        {
            let shape = self.nodes[index].shape();
            if tensor.ndim() == 0 {
                return Err(Error::IncompatibleShape {
                    context: format!(
                        "model \"{}\": {operation} needs a batch axis in input \"{name}\"",
                        self.name
                    ),
                    expected: shape.clone(),
                    got: Vec::new(),
                });
            }
            let tensor = if tensor.ndim() + 1 == shape.len() && shape.last() == Some(&Some(1)) {
                tensor.expand_last_axis()
            } else if tensor.ndim() == shape.len() + 1 && tensor.shape().last() == Some(&1) {
                tensor.squeeze_last_axis()
            } else {
                tensor
            };
            let fits = tensor.ndim() == shape.len()
                && shape
                    .iter()
                    .zip(tensor.shape())
                    .skip(1)
                    .all(|(e, &g)| e.is_none_or(|e| e == g));
            if !fits {
                return Err(Error::IncompatibleShape {
                    context: format!(
                        "model \"{}\": input \"{name}\" is incompatible with the model input {}",
                        self.name,
                        OptDims(shape)
                    ),
                    expected: shape.clone(),
                    got: tensor.keras_shape(),
                });
            }
            let rows = tensor.shape().first().copied().unwrap_or(0);
            match batch {
                None => batch = Some(rows),
                Some(b) if b != rows => {
                    return Err(self.error(format!(
                        "{operation}: input \"{name}\" has {rows} samples, the first input has {b}: every input needs one row per sample"
                    )));
                }
                Some(_) => {}
            }
            conformed.push(tensor);
        }
        Ok((conformed, batch.unwrap_or(0)))
    }

    /// The shape of every node when the inputs have `shapes` (batch axis first): the
    /// declared shapes made precise by the data's lengths.
    pub(super) fn node_shapes_for(&self, shapes: &[Shape]) -> Result<Vec<Shape>> {
        let mut known: Vec<Shape> = Vec::with_capacity(self.nodes.len());
        for (index, node) in self.nodes.iter().enumerate() {
            let shape = match node {
                Node::Input { shape, .. } => self
                    .inputs
                    .iter()
                    .position(|&i| i == index)
                    .and_then(|k| shapes.get(k))
                    .unwrap_or(shape)
                    .clone(),
                Node::Call {
                    layer,
                    inputs,
                    args,
                    ..
                } => {
                    let from: Vec<Shape> = inputs.iter().map(|&i| known[i].clone()).collect();
                    self.layers[*layer].compute_output_shape_with(&from, *args)?
                }
            };
            known.push(shape);
        }
        Ok(known)
    }

    /// Orders `x` given by input name into the inputs' order.
    fn by_name(&self, x: Vec<(&str, Tensor)>) -> Result<Vec<Tensor>> {
        self.order_by_name(x, &self.input_names(), "input")
    }

    /// Orders `y` given by output name into the outputs' order.
    fn by_output_name(&self, y: Vec<(&str, Tensor)>) -> Result<Vec<Tensor>> {
        let names = self.output_names();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        self.order_by_name(y, &names, "output")
    }

    fn order_by_name(
        &self,
        given: Vec<(&str, Tensor)>,
        names: &[&str],
        what: &str,
    ) -> Result<Vec<Tensor>> {
        let mut slots: Vec<Option<Tensor>> = vec![None; names.len()];
        for (name, tensor) in given {
            let Some(position) = names.iter().position(|n| *n == name) else {
                return Err(self.error(format!(
                    "no {what} is named \"{name}\": the {what}s are {names:?}"
                )));
            };
            if slots[position].replace(tensor).is_some() {
                return Err(self.error(format!("the {what} \"{name}\" was given twice")));
            }
        }
        slots
            .into_iter()
            .zip(names)
            .map(|(slot, name)| {
                slot.ok_or_else(|| {
                    self.error(format!("no data was given for the {what} \"{name}\""))
                })
            })
            .collect()
    }

    /// [`Model::fit`] with the inputs and the targets given by name (Keras' dictionaries).
    ///
    /// # Errors
    /// Those of [`Model::fit`], and [`Error::Model`] for an unknown, repeated or missing name.
    pub fn fit_named(
        &mut self,
        x: Vec<(&str, Tensor)>,
        y: Vec<(&str, Tensor)>,
        options: FitOptions,
    ) -> Result<History> {
        let (x, y) = (self.by_name(x)?, self.by_output_name(y)?);
        self.fit(x, y, options)
    }

    /// [`Model::evaluate`] with the inputs and the targets given by name.
    ///
    /// # Errors
    /// Those of [`Model::evaluate`], and [`Error::Model`] for an unknown, repeated or missing
    /// name.
    pub fn evaluate_named(
        &mut self,
        x: Vec<(&str, Tensor)>,
        y: Vec<(&str, Tensor)>,
    ) -> Result<Vec<(String, f32)>> {
        let (x, y) = (self.by_name(x)?, self.by_output_name(y)?);
        self.evaluate(x, y)
    }

    /// Every id of every input checked by the layers that read the inputs, so that bad data
    /// never trains half an epoch.
    pub(super) fn check_ids(&self, x: &[Tensor]) -> Result<()> {
        for index in 0..self.nodes.len() {
            if let Node::Call { layer, inputs, .. } = &self.nodes[index]
                && let [input] = inputs.as_slice()
                && let Some(position) = self.inputs.iter().position(|i| i == input)
            {
                self.layers[*layer].check_input(&x[position])?;
            }
        }
        Ok(())
    }

    /// One forward pass over a batch: every node's value. With `forward`, the layers' forward
    /// pass (which keeps what the backward pass and the loss's logits need), in training mode
    /// or not; without, their plain call (`predict`).
    pub(super) fn run(&mut self, x: &[Tensor], forward: Option<bool>) -> Result<Values> {
        let mut values: Values = vec![None; self.nodes.len()];
        for (&index, tensor) in self.inputs.iter().zip(x) {
            values[index] = Some(tensor.clone());
        }
        for index in 0..self.nodes.len() {
            let Node::Call {
                layer,
                inputs,
                args,
                ..
            } = &self.nodes[index]
            else {
                continue;
            };
            let arguments: Vec<&Tensor> = inputs
                .iter()
                .map(|&i| values[i].as_ref())
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| self.error("internal: a node ran before its inputs".into()))?;
            let output = match forward {
                Some(training) => self.layers[*layer].forward_with(&arguments, training, *args)?,
                None => self.layers[*layer].call_with(&arguments, *args)?,
            };
            values[index] = Some(output);
        }
        Ok(values)
    }

    /// The values of the output nodes, in output order, taken out of a forward pass's values
    /// (an output listed twice is copied).
    pub(super) fn output_values(&self, mut values: Values) -> Result<Vec<Tensor>> {
        let mut outputs = Vec::with_capacity(self.outputs.len());
        for (k, &output) in self.outputs.iter().enumerate() {
            let value = if self.outputs[k + 1..].contains(&output) {
                values[output].clone()
            } else {
                values[output].take()
            };
            outputs.push(
                value.ok_or_else(|| self.error("internal: an output was not computed".into()))?,
            );
        }
        Ok(outputs)
    }

    /// The outputs of `x` (one tensor per input, in order), in batches of 32 (Keras'
    /// `predict`): one array per output.
    ///
    /// # Errors
    /// [`Error::Model`] for the wrong number of inputs or different sample counts;
    /// [`Error::IncompatibleShape`] for an input of the wrong shape; the layers' errors (an
    /// out-of-range id names its position in its batch).
    pub fn predict(&mut self, x: Vec<Tensor>) -> Result<Vec<ArrayD<f32>>> {
        self.predict_with_batch_size(x, DEFAULT_BATCH_SIZE)
    }

    /// [`Model::predict`] with the inputs given by name.
    ///
    /// # Errors
    /// Those of [`Model::predict`], and [`Error::Model`] for an unknown or missing name.
    pub fn predict_named(&mut self, x: Vec<(&str, Tensor)>) -> Result<Vec<ArrayD<f32>>> {
        let x = self.by_name(x)?;
        self.predict(x)
    }

    /// [`Model::predict`] with another batch size (the same result).
    ///
    /// # Errors
    /// Those of [`Model::predict`], and [`Error::InvalidArgument`] for `batch_size == 0`.
    pub fn predict_with_batch_size(
        &mut self,
        x: Vec<Tensor>,
        batch_size: usize,
    ) -> Result<Vec<ArrayD<f32>>> {
        self.predict_tensors_with_batch_size(x, batch_size)?
            .into_iter()
            .map(Tensor::into_float)
            .collect()
    }

    /// [`Model::predict`] for outputs of any dtype, as Keras returns them: int64 ids from a
    /// `TextVectorization` or `StringLookup` output, strings from an inverted lookup, float32
    /// values otherwise (with their masks).
    ///
    /// # Errors
    /// Those of [`Model::predict`], but no error for an output that is not float32.
    pub fn predict_tensors(&mut self, x: Vec<Tensor>) -> Result<Vec<Tensor>> {
        self.predict_tensors_with_batch_size(x, DEFAULT_BATCH_SIZE)
    }

    /// [`Model::predict_tensors`] with another `batch_size`.
    ///
    /// # Errors
    /// Those of [`Model::predict_with_batch_size`].
    pub fn predict_tensors_with_batch_size(
        &mut self,
        x: Vec<Tensor>,
        batch_size: usize,
    ) -> Result<Vec<Tensor>> {
        if batch_size == 0 {
            return Err(Error::invalid_argument(
                format!("model \"{}\": predict", self.name),
                "batch_size",
                0,
                "a positive number of samples",
            ));
        }
        let (x, rows) = self.conform_inputs(x, "predict")?;
        let mut parts: Vec<Vec<Tensor>> = vec![Vec::new(); self.outputs.len()];
        let mut start = 0;
        loop {
            let end = (start + batch_size).min(rows);
            let values = if start == 0 && end == rows {
                self.run(&x, None)?
            } else {
                let batch: Vec<Tensor> = x.iter().map(|t| t.slice_batch(start, end)).collect();
                self.run(&batch, None).map_err(|e| e.offset_batch(start))?
            };
            for (part, value) in parts.iter_mut().zip(self.output_values(values)?) {
                part.push(value);
            }
            start = end;
            if start >= rows {
                break;
            }
        }
        parts
            .into_iter()
            .map(|mut part| {
                if part.len() == 1
                    && let Some(only) = part.pop()
                {
                    return Ok(only);
                }
                Tensor::concatenate_batches(&part, &self.name)
            })
            .collect()
    }
}

/// One row of a functional model's summary.
pub(crate) struct SummaryRow {
    /// `name (ClassName)`.
    pub(crate) label: String,
    /// The output shape, or `multiple` for a layer whose calls give different shapes.
    pub(crate) shape: String,
    pub(crate) params: usize,
    /// `layer[node][tensor]` of every input of every call.
    pub(crate) connections: Vec<String>,
}

impl Model {
    /// A Keras-like table of the inputs and layers, their output shapes, parameter counts
    /// and connections, with the totals (Keras' `model.summary()`, returned instead of
    /// printed). A shared layer has one row listing every call it makes.
    pub fn summary(&self) -> String {
        crate::model::summary::render_functional(self)
    }

    pub(crate) fn summary_rows(&self) -> Vec<SummaryRow> {
        // Each call's index among its layer's calls (Keras' node index).
        let mut call_index: HashMap<usize, usize> = HashMap::new();
        let mut calls_of: Vec<Vec<usize>> = vec![Vec::new(); self.layers.len()];
        let mut first_use: Vec<usize> = Vec::new();
        for index in 0..self.nodes.len() {
            if let Node::Call { layer, .. } = &self.nodes[index] {
                call_index.insert(index, calls_of[*layer].len());
                if calls_of[*layer].is_empty() {
                    first_use.push(*layer);
                }
                calls_of[*layer].push(index);
            }
        }
        let source = |node: usize| -> String {
            match &self.nodes[node] {
                Node::Input { name, .. } => format!("{name}[0][0]"),
                Node::Call { layer, .. } => format!(
                    "{}[{}][0]",
                    self.layers[*layer].name(),
                    call_index.get(&node).copied().unwrap_or(0)
                ),
            }
        };
        let mut rows: Vec<SummaryRow> = self
            .inputs
            .iter()
            .filter_map(|&i| match &self.nodes[i] {
                Node::Input { name, shape, .. } => Some(SummaryRow {
                    label: format!("{name} (InputLayer)"),
                    shape: format!("[{}]", OptDims(shape)),
                    params: 0,
                    connections: Vec::new(),
                }),
                Node::Call { .. } => None,
            })
            .collect();
        for layer in first_use {
            let calls = &calls_of[layer];
            let shapes: Vec<&Shape> = calls.iter().map(|&c| self.nodes[c].shape()).collect();
            let shape = if shapes.windows(2).all(|w| w[0] == w[1]) {
                shapes
                    .first()
                    .map_or_else(String::new, |s| OptDims(s).to_string())
            } else {
                "multiple".to_string()
            };
            let connections = calls
                .iter()
                .flat_map(|&c| match &self.nodes[c] {
                    Node::Call { inputs, .. } => inputs.clone(),
                    Node::Input { .. } => Vec::new(),
                })
                .map(source)
                .collect();
            let layer = &self.layers[layer];
            rows.push(SummaryRow {
                label: format!("{} ({})", layer.name(), layer.class_name()),
                shape,
                params: layer.variables().iter().map(|w| w.len()).sum(),
                connections,
            });
        }
        rows
    }
}

/// Read access to the graph for the Keras JSON of a functional model (`crate::config`).
#[cfg_attr(not(feature = "serde"), allow(dead_code))]
impl Model {
    /// The number of nodes of the graph (inputs and calls, needed by the outputs or not);
    /// nodes are numbered in the order they were made.
    pub(crate) fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The nodes, each after its inputs, in the order they were made (a model keeps only the
    /// nodes its outputs need).
    pub(crate) fn node_order(&self) -> std::ops::Range<usize> {
        0..self.nodes.len()
    }

    /// The input nodes of the model, in order.
    pub(crate) fn input_nodes(&self) -> &[usize] {
        &self.inputs
    }

    /// The output nodes of the model, in order.
    pub(crate) fn output_nodes(&self) -> &[usize] {
        &self.outputs
    }

    /// The name, element type and shape (batch axis first) of an input node; `None` for a
    /// call or a node that does not exist.
    pub(crate) fn input_node(&self, node: usize) -> Option<(&str, DType, &[Option<usize>])> {
        match self.nodes.get(node)? {
            Node::Input { name, dtype, shape } => Some((name.as_str(), *dtype, shape.as_slice())),
            Node::Call { .. } => None,
        }
    }

    /// The layer (its position in [`Model::layers`]) and the input nodes of a call node;
    /// `None` for an input or a node that does not exist.
    pub(crate) fn call_node(&self, node: usize) -> Option<(usize, &[usize])> {
        match self.nodes.get(node)? {
            Node::Call { layer, inputs, .. } => Some((*layer, inputs.as_slice())),
            Node::Input { .. } => None,
        }
    }

    /// The call arguments of a call node; `None` for an input or a node that does not exist.
    pub(crate) fn call_args(&self, node: usize) -> Option<CallArgs> {
        match self.nodes.get(node)? {
            Node::Call { args, .. } => Some(*args),
            Node::Input { .. } => None,
        }
    }

    /// The shape (batch axis first) of a node's output; `None` for a node that does not
    /// exist.
    pub(crate) fn node_shape(&self, node: usize) -> Option<&[Option<usize>]> {
        self.nodes.get(node).map(|n| n.shape().as_slice())
    }
}

/// A `Sequential`'s graph: its layers called one after the other.
impl Model {
    /// A model with no layers and no input yet (a `Sequential` before its first layer).
    pub(super) fn empty(name: String) -> Model {
        Model {
            name,
            layers: Vec::new(),
            nodes: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            uses: Vec::new(),
            compiled: None,
            training: TrainingState::default(),
            scratch: Scratch::default(),
        }
    }

    /// Appends a layer to a `Sequential`'s layers; [`Model::chain`] then calls it.
    pub(super) fn push_layer(&mut self, layer: Box<dyn Layer>) {
        self.layers.push(layer);
        self.uses.push(1);
    }

    /// Makes the graph the chain of the layers from `input` (its name, element type and
    /// shape with the batch axis): the input, then each layer called on the previous output.
    /// Without an input (its shape not known yet), the graph has no nodes. On error the
    /// graph is unchanged.
    ///
    /// # Errors
    /// A layer's shape errors.
    pub(super) fn chain(&mut self, input: Option<(String, DType, Shape)>) -> Result<()> {
        let mut nodes = Vec::with_capacity(self.layers.len() + 1);
        if let Some((name, dtype, shape)) = input {
            nodes.push(Node::Input { name, dtype, shape });
            for (index, layer) in self.layers.iter().enumerate() {
                let shape = layer.compute_output_shape(nodes[index].shape())?;
                nodes.push(Node::Call {
                    layer: index,
                    inputs: vec![index],
                    shape,
                    args: CallArgs::default(),
                });
            }
        }
        let last = nodes.len().checked_sub(1);
        self.inputs = last.map(|_| 0).into_iter().collect();
        self.outputs = last.into_iter().collect();
        self.nodes = nodes;
        self.uses = vec![1; self.layers.len()];
        Ok(())
    }

    /// The shape of the chain's input (batch axis first), once it has one.
    pub(super) fn chain_input_shape(&self) -> Option<&Shape> {
        self.inputs.first().map(|&i| self.nodes[i].shape())
    }
}
