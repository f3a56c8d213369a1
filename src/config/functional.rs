//! `Model::get_config` / `to_json` / `from_config` / `from_json`: a functional model in
//! Keras 2's format, as tf_keras 2.21's `model.to_json()` writes it.
//!
//! ```json
//! {"class_name": "Functional",
//!  "config": {"name": "model", "trainable": true,
//!             "layers": [{"class_name": "InputLayer", "name": "user", "inbound_nodes": [], ...},
//!                        {"class_name": "Embedding", "name": "embedding",
//!                         "build_config": {"input_shape": [null, 1]},
//!                         "inbound_nodes": [[["user", 0, 0, {}]]], ...}, ...],
//!             "input_layers": [["user", 0, 0], ...],
//!             "output_layers": [["dense", 0, 0]]},
//!  "keras_version": "2.21.0", "backend": "tensorflow"}
//! ```
//!
//! What is written, as tf_keras writes it (`functional.get_network_config`):
//! - `layers` in Keras' order (`_map_graph_network`: by depth from the outputs, deepest
//!   first, ties in the order a depth-first walk from the outputs meets them), one
//!   `InputLayer` entry per input and one entry per layer called on the way to the outputs;
//!   layers the outputs do not need are left out.
//! - `inbound_nodes`: one list per call of the layer, in the order of the calls, each listing
//!   the call's inputs as `[layer_name, node_index, tensor_index, {}]`, where `node_index`
//!   counts the calls of that layer that belong to the model (an input's is 0).
//! - `build_config`: `{"input_shape": ...}`, the input shape of the layer's *first* call (a
//!   list of shapes for a merge layer), as Keras records it when the layer is built.
//! - `trainable` of the model: `false` only when every layer with weights is frozen (ndkeras
//!   has no model-level flag; reading `false` freezes every layer, as Keras' `model.trainable
//!   = False` does). Layers without weights always write `"trainable": true`.
//!
//! What is read (`reconstruct`): the same format, `class_name` `Functional` (or Keras 2.3's
//! `Model`). Layer names, the model's name and the order of `input_layers` and
//! `output_layers` are kept; explicit names do not advance the automatic counters
//! (`Embedding::new` afterwards is still named `embedding`). The calls are replayed through
//! [`Graph`](crate::model::Graph) in an order where each call's inputs exist and each layer's
//! calls keep their order (Keras' `reconstruct_from_config` defers a call whose inputs are
//! not made yet in the same way); `build_config` is not needed (the shapes follow from the
//! inputs) and is not checked. The weights come from the initializers (give them with
//! `set_weights` on the layers).
//!
//! Guaranteed: a tf_keras 2.21 functional JSON built from the layers ndkeras has loads, and
//! [`Model::to_json`] of it equals it as a JSON value (keys in any order). A config that
//! cannot describe a model — an inbound node naming an unknown layer, a node index beyond the
//! layer's calls, calls that wait on each other in a cycle, a missing or ill-typed field —
//! is an [`Error::InvalidArgument`](crate::Error::InvalidArgument) naming the entry and the field, never a panic or a hang.
//! Not kept: a fixed batch size in an `InputLayer` (written back as `null`); `sparse`,
//! `ragged` and `optional` inputs and call arguments (`kwargs`) are refused.

mod reconstruct;

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::config::model::KERAS_VERSION;
use crate::config::{KerasConfig, wrap};
use crate::model::Model;
use crate::model::order::{Entry, keras_layer_order};
use crate::tensor::DType;

impl Model {
    /// The model's config as tf_keras 2.21's `model.get_config()` returns it (Keras 2's
    /// functional format): `name`, `trainable`, `layers`, `input_layers` (`[name, 0, 0]` per
    /// input) and `output_layers` (`[layer_name, node_index, 0]` per output).
    ///
    /// - `layers` is in Keras' order (`model.layers`: by depth from the outputs, deepest
    ///   first, ties in the order a depth-first walk from the outputs meets them), whatever
    ///   order the layers were added in: one `InputLayer` entry per input, one entry per
    ///   layer the outputs need (layers they do not need are left out).
    /// - Each layer's `inbound_nodes` has one list per call, in the order of the calls, of
    ///   the call's inputs as `[layer_name, node_index, 0, {}]`, where `node_index` counts
    ///   the calls of that layer in the model (a shared layer has several).
    /// - `build_config` is `{"input_shape": ...}`, the input shape of the layer's first call
    ///   (a list of shapes for a merge layer), as Keras records it.
    /// - `trainable` is `false` only when every layer with weights is frozen (ndkeras has
    ///   no model-level flag); layers without weights always write `"trainable": true`.
    pub fn get_config(&self) -> Value {
        let calls = CallIndices::of(self);
        let layers: Vec<Value> = keras_layer_order(self)
            .into_iter()
            .filter_map(|entry| match entry {
                Entry::Input(node) => self
                    .input_node(node)
                    .map(|(name, dtype, shape)| input_layer_entry(name, dtype, shape)),
                Entry::Layer(layer) => self.layer_entry(layer, &calls),
            })
            .collect();
        let references = |nodes: &[usize]| -> Vec<Value> {
            nodes
                .iter()
                .filter_map(|&node| calls.reference(self, node))
                .map(|(name, index)| json!([name, index, 0]))
                .collect()
        };
        // Keras' `model.trainable = False` freezes every layer; ndkeras has no model-level
        // flag, so a model whose every layer with weights is frozen is written as frozen.
        let mut weighted = self
            .layers()
            .iter()
            .filter(|layer| !layer.variables().is_empty())
            .peekable();
        let trainable = weighted.peek().is_none() || weighted.any(|layer| layer.is_trainable());
        json!({
            "name": self.name(),
            "trainable": trainable,
            "layers": layers,
            "input_layers": references(self.input_nodes()),
            "output_layers": references(self.output_nodes()),
        })
    }

    /// The architecture as tf_keras 2.21's `model.to_json()` writes it: `{"class_name":
    /// "Functional", "config": ..., "keras_version": "2.21.0", "backend": "tensorflow"}`, the
    /// config being [`Model::get_config`]. Weights are not included.
    ///
    /// ```
    /// use ndkeras::prelude::*;
    ///
    /// let mut graph = Graph::new();
    /// let user = graph.input(Input::new(&[1]).dtype(DType::Int32).with_name("user"));
    /// let item = graph.input(Input::new(&[1]).dtype(DType::Int32).with_name("item"));
    /// let table = graph.add(Embedding::new(10, 4).with_name("ids"))?; // shared by both
    /// let u = graph.call(table, &[user])?;
    /// let i = graph.call(table, &[item])?;
    /// let u = graph.apply(Flatten::new().with_name("u"), &[u])?;
    /// let i = graph.apply(Flatten::new().with_name("i"), &[i])?;
    /// let score = graph.apply(Dot::new(1).with_name("score"), &[u, i])?;
    /// let model = graph.model(&[user, item], &[score])?.with_name("recommender");
    ///
    /// let text = model.to_json();
    /// assert!(text.contains(r#"[["item",0,0,{}]]"#)); // the table's second call
    /// let back = Model::from_json(&text)?;
    /// assert_eq!(back.name(), "recommender");
    /// assert_eq!(back.get_config(), model.get_config());
    /// # Ok::<(), ndkeras::Error>(())
    /// ```
    pub fn to_json(&self) -> String {
        json!({
            "class_name": "Functional",
            "config": self.get_config(),
            "keras_version": KERAS_VERSION,
            "backend": "tensorflow",
        })
        .to_string()
    }

    /// The entry of `layer` in `layers`, with its calls; `None` for a layer the outputs do not
    /// need.
    fn layer_entry(&self, layer: usize, calls: &CallIndices) -> Option<Value> {
        let own = calls.calls_of.get(layer).filter(|c| !c.is_empty())?;
        let layer_ref = self.layers().get(layer)?;
        let inbound: Vec<Value> = own
            .iter()
            .map(|&node| {
                let inputs = self.call_node(node).map_or(&[][..], |(_, inputs)| inputs);
                // Keras writes the call's keyword arguments beside each of its inputs.
                let kwargs = match self.call_args(node) {
                    Some(args) if args.reverse => json!({"reverse": true}),
                    _ => json!({}),
                };
                Value::Array(
                    inputs
                        .iter()
                        .filter_map(|&input| calls.reference(self, input))
                        .map(|(name, index)| json!([name, index, 0, kwargs]))
                        .collect(),
                )
            })
            .collect();
        let mut entry = wrap(layer_ref.class_name(), layer_ref.get_config());
        let object = entry.as_object_mut()?;
        if let Some(shape) = calls
            .first_call
            .get(layer)
            .copied()
            .flatten()
            .and_then(|node| self.build_shape(node))
        {
            object.insert("build_config".into(), json!({ "input_shape": shape }));
        }
        object.insert("name".into(), json!(layer_ref.name()));
        object.insert("inbound_nodes".into(), Value::Array(inbound));
        Some(entry)
    }

    /// The shape a layer was built for by its first call `first`, as Keras records it
    /// (`_build_input_shape`): the call's input shape, or the list of them for a call on
    /// several tensors.
    fn build_shape(&self, first: usize) -> Option<Value> {
        let (_, inputs) = self.call_node(first)?;
        let shapes: Vec<Value> = inputs
            .iter()
            .map(|&input| json!(self.node_shape(input).unwrap_or(&[])))
            .collect();
        match <[Value; 1]>::try_from(shapes) {
            Ok([one]) => Some(one),
            Err(many) => Some(Value::Array(many)),
        }
    }
}

/// Keras' numbering of the calls: each call of the model's graph is the `n`-th call of its
/// layer (an input is node 0 of its `InputLayer`).
struct CallIndices {
    /// For each call node of the model, its index among its layer's calls.
    index: HashMap<usize, usize>,
    /// For each layer, its call nodes in the model, in the order they were made.
    calls_of: Vec<Vec<usize>>,
    /// For each layer, its first call in the graph (the one that built it), in the model or
    /// not.
    first_call: Vec<Option<usize>>,
}

impl CallIndices {
    fn of(model: &Model) -> CallIndices {
        let mut calls_of: Vec<Vec<usize>> = vec![Vec::new(); model.layers().len()];
        let mut index = HashMap::new();
        for node in model.node_order() {
            if let Some((layer, _)) = model.call_node(node)
                && let Some(calls) = calls_of.get_mut(layer)
            {
                index.insert(node, calls.len());
                calls.push(node);
            }
        }
        let mut first_call = vec![None; model.layers().len()];
        for node in (0..model.node_count()).rev() {
            if let Some((layer, _)) = model.call_node(node)
                && let Some(first) = first_call.get_mut(layer)
            {
                *first = Some(node);
            }
        }
        CallIndices {
            index,
            calls_of,
            first_call,
        }
    }

    /// `(layer name, node index)` of the tensor a node makes.
    fn reference<'m>(&self, model: &'m Model, node: usize) -> Option<(&'m str, usize)> {
        if let Some((name, _, _)) = model.input_node(node) {
            return Some((name, 0));
        }
        let (layer, _) = model.call_node(node)?;
        Some((model.layers().get(layer)?.name(), *self.index.get(&node)?))
    }
}

/// An entry of Keras' `layers` list: an input (by its node) or a layer (by its position).
/// An `InputLayer` entry as tf_keras 2.21 writes it in a functional model.
fn input_layer_entry(name: &str, dtype: DType, shape: &[Option<usize>]) -> Value {
    let mut entry = super::model::input_layer(&crate::model::InputSpec {
        batch_shape: shape.to_vec(),
        dtype: keras_dtype(dtype).to_string(),
        name: name.to_string(),
        sparse: false,
        ragged: false,
    });
    if let Some(object) = entry.as_object_mut() {
        object.insert("name".into(), json!(name));
        object.insert("inbound_nodes".into(), json!([]));
    }
    entry
}

/// Keras' name of an element type (`usize` has none: the unsigned type of its width).
fn keras_dtype(dtype: DType) -> &'static str {
    match dtype {
        DType::Usize if usize::BITS == 32 => "uint32",
        DType::Usize => "uint64",
        other => other.name(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{Add, Dense, Embedding, Flatten};
    use crate::model::{Graph, Input};

    /// `x -> a -> b`, and `b` also reads `x`: Keras puts `x` (the deepest) first, then `a`,
    /// then `b`.
    #[test]
    fn layers_are_ordered_by_depth_as_keras_does() {
        let mut graph = Graph::new();
        let x = graph.input(Input::new(&[4]).with_name("x"));
        let add = graph.add(Add::new().with_name("b")).unwrap();
        let a = graph.apply(Dense::new(4).with_name("a"), &[x]).unwrap();
        let b = graph.call(add, &[a, x]).unwrap();
        let model = graph.model(&[x], &[b]).unwrap();
        // `b` was added first but is the shallowest.
        let names: Vec<&str> = keras_layer_order(&model)
            .into_iter()
            .map(|entry| match entry {
                Entry::Input(_) => "x",
                Entry::Layer(index) => model.layers()[index].name(),
            })
            .collect();
        assert_eq!(names, vec!["x", "a", "b"]);
    }

    #[test]
    fn a_shared_layer_counts_its_calls() {
        let mut graph = Graph::new();
        let l = graph.input(Input::new(&[2]).dtype(DType::Int32).with_name("l"));
        let r = graph.input(Input::new(&[2]).dtype(DType::Int32).with_name("r"));
        let table = graph.add(Embedding::new(5, 2).with_name("t")).unwrap();
        let lt = graph.call(table, &[l]).unwrap();
        let rt = graph.call(table, &[r]).unwrap();
        let lf = graph.apply(Flatten::new().with_name("lf"), &[lt]).unwrap();
        let rf = graph.apply(Flatten::new().with_name("rf"), &[rt]).unwrap();
        let sum = graph.apply(Add::new().with_name("s"), &[lf, rf]).unwrap();
        let model = graph.model(&[l, r], &[sum]).unwrap();
        let config = model.get_config();
        let rf = config["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "rf")
            .unwrap();
        assert_eq!(rf["inbound_nodes"], json!([[["t", 1, 0, {}]]]));
    }
}
