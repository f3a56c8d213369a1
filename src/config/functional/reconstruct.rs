//! `Model::from_json` / `from_config`: a Keras 2 functional config replayed through [`Graph`]
//! (tf_keras' `functional.reconstruct_from_config`), every field checked on the way.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use serde_json::{Value, json};

use crate::config::{LayerSink, bool_or, dispatch_layer_config, missing, shape_from, str_field};
use crate::error::{Error, Result};
use crate::layer::{CallArgs, Layer, with_explicit_name};
use crate::model::{Graph, Input, LayerRef, Model, SymbolicTensor};
use crate::tensor::DType;

/// The owner named in errors about the model's own fields.
const OWNER: &str = "Functional";

/// The model classes [`Model::from_json`] reads (`Model` is what Keras 2.3 wrote).
const MODEL_CLASSES: &[&str] = &["Functional", "Model"];

impl Model {
    /// A model from JSON written by [`Model::to_json`] or by Keras 2's `model.to_json()`
    /// (`class_name` `Functional`, or `Model` as Keras 2.3 wrote it). See
    /// [`Model::from_config`].
    ///
    /// # Errors
    /// [`Error::InvalidFile`] for text that is not JSON; [`Error::UnknownName`] for another
    /// model class; those of [`Model::from_config`].
    pub fn from_json(text: &str) -> Result<Model> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Error::invalid_file("model JSON", format!("not valid JSON: {e}")))?;
        let class = str_field(&value, "class_name", "model")?;
        if !MODEL_CLASSES.contains(&class) {
            return Err(Error::UnknownName {
                kind: "model class",
                name: class.to_string(),
                valid: MODEL_CLASSES.to_vec(),
            });
        }
        let config = value
            .get("config")
            .ok_or_else(|| missing(OWNER, "config"))?;
        Model::from_config(config)
    }

    /// A model from its config (what [`Model::get_config`] and Keras 2's `get_config()`
    /// return): the inputs from the `InputLayer` entries (`batch_input_shape` or Keras 3's
    /// `batch_shape`, `dtype`, `name`), every other layer from its entry as
    /// [`layer_from_config`](crate::config::layer_from_config) reads it, then each call of
    /// `inbound_nodes` made through [`Graph::call`], which builds the layers from the input
    /// shapes; weights come from the initializers. Names are kept (explicit names do not
    /// advance the automatic counters).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the entry and the field for: a missing or
    /// ill-typed field; two entries with one name; a layer entry whose `config` names another
    /// layer; an `InputLayer` that is sparse, ragged, optional, of an unknown `dtype` or
    /// called; a layer that is never called; a call input that is not `[layer_name,
    /// node_index, tensor_index, kwargs]`, names no entry, has a node index beyond the calls
    /// of its layer, a tensor index other than 0 or call arguments; calls that wait on each
    /// other in a cycle; an `input_layers` entry that is not an `InputLayer` or is listed
    /// twice; an `output_layers` entry that names no call. [`Error::UnknownName`] for a layer
    /// class ndkeras does not have. The errors of each layer's `from_config`, of
    /// [`Graph::add`], [`Graph::call`] (a call on incompatible shapes) and [`Graph::model`].
    pub fn from_config(config: &Value) -> Result<Model> {
        if !config.is_object() {
            return Err(wrong_brief(OWNER, "config", config, "a JSON object"));
        }
        let name = match config.get("name") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_str()
                    .ok_or_else(|| wrong_brief(OWNER, "name", v, "a string"))?,
            ),
        };
        let trainable = bool_or(config, "trainable", OWNER, true)?;
        let entries = config
            .get("layers")
            .ok_or_else(|| missing(OWNER, "layers"))?;
        let entries = entries
            .as_array()
            .ok_or_else(|| wrong_brief(OWNER, "layers", entries, "a list of layer entries"))?;

        let mut graph = Graph::new();
        let plan = Plan::read(entries, &mut graph)?;
        let outputs = plan.make_calls(&mut graph)?;
        let input_tensors = plan.model_inputs(config)?;
        let output_tensors = plan.model_outputs(config, &outputs)?;
        let mut model = match name {
            Some(name) => {
                with_explicit_name(|| graph.model(&input_tensors, &output_tensors))?.with_name(name)
            }
            None => graph.model(&input_tensors, &output_tensors)?,
        };
        if !trainable {
            let names: Vec<String> = model.layers().iter().map(|l| l.name().into()).collect();
            for name in names {
                if let Some(layer) = model.get_layer_mut(&name) {
                    layer.set_trainable(false);
                }
            }
        }
        Ok(model)
    }
}

/// A call input of `inbound_nodes`: the `node`-th call of the entry named `layer`.
struct Reference<'a> {
    layer: &'a str,
    node: usize,
    /// The call's keyword arguments (Keras writes them beside every input of the call).
    args: CallArgs,
    /// The reference as written, for errors.
    text: &'a Value,
}

/// What an entry of `layers` became.
enum Made<'a> {
    Input(SymbolicTensor),
    Layer {
        layer: LayerRef,
        /// Each call: its inputs.
        calls: Vec<Vec<Reference<'a>>>,
    },
}

/// The entries of a config, read and added to a graph, before any call is made.
struct Plan<'a> {
    names: Vec<&'a str>,
    made: Vec<Made<'a>>,
    by_name: HashMap<&'a str, usize>,
}

/// Adds each layer a config makes to a graph.
struct IntoGraph<'g>(&'g mut Graph);

impl LayerSink for IntoGraph<'_> {
    type Output = LayerRef;
    fn take<L: Layer>(self, layer: L) -> Result<LayerRef> {
        self.0.add(layer)
    }
}

/// An error about the entry `name` of `layers`.
fn entry_error(
    name: &str,
    field: impl Into<String>,
    value: impl std::fmt::Display,
    expected: impl Into<String>,
) -> Error {
    Error::invalid_argument(
        format!("Functional config, layer \"{name}\""),
        field,
        value,
        expected,
    )
}

impl<'a> Plan<'a> {
    /// Reads every entry: declares the inputs and adds the layers to `graph`; reads the calls.
    fn read(entries: &'a [Value], graph: &mut Graph) -> Result<Plan<'a>> {
        let mut plan = Plan {
            names: Vec::with_capacity(entries.len()),
            made: Vec::with_capacity(entries.len()),
            by_name: HashMap::with_capacity(entries.len()),
        };
        for (position, entry) in entries.iter().enumerate() {
            let field = format!("layers[{position}]");
            if !entry.is_object() {
                return Err(Error::invalid_argument(
                    format!("{OWNER} config"),
                    field,
                    brief(entry),
                    "a layer entry (a JSON object)",
                ));
            }
            let name = match entry.get("name") {
                Some(Value::String(name)) => name.as_str(),
                Some(other) => {
                    return Err(wrong_brief(
                        OWNER,
                        &format!("{field}.name"),
                        other,
                        "a string",
                    ));
                }
                None => return Err(missing(OWNER, &format!("{field}.name"))),
            };
            if plan.by_name.insert(name, position).is_some() {
                return Err(wrong_brief(
                    OWNER,
                    &format!("{field}.name"),
                    &json!(name),
                    "a name no other entry has (calls refer to layers by name)",
                ));
            }
            let class = str_field(entry, "class_name", &format!("{OWNER} {field}"))?;
            let inbound = match entry.get("inbound_nodes") {
                Some(Value::Array(nodes)) => nodes.as_slice(),
                Some(other) => {
                    return Err(entry_error(
                        name,
                        "inbound_nodes",
                        brief(other),
                        "a list of calls, each a list of [layer_name, node_index, tensor_index, kwargs]",
                    ));
                }
                None => {
                    return Err(missing(
                        &format!("{OWNER} layer \"{name}\""),
                        "inbound_nodes",
                    ));
                }
            };
            let made = if class == "InputLayer" {
                if !inbound.is_empty() {
                    return Err(entry_error(
                        name,
                        "inbound_nodes",
                        brief(&Value::Array(inbound.to_vec())),
                        "[] (an input is not called)",
                    ));
                }
                Made::Input(graph.input(input_from_entry(entry, name)?))
            } else {
                if inbound.is_empty() {
                    return Err(entry_error(
                        name,
                        "inbound_nodes",
                        "[]",
                        "at least one call (ndkeras keeps no layer the model does not call)",
                    ));
                }
                let calls = inbound
                    .iter()
                    .enumerate()
                    .map(|(k, node)| read_call(name, k, node))
                    .collect::<Result<Vec<_>>>()?;
                let layer = add_layer(entry, name, graph)?;
                Made::Layer { layer, calls }
            };
            plan.names.push(name);
            plan.made.push(made);
        }
        plan.check_references()?;
        Ok(plan)
    }

    /// Checks that every call input names an entry and a call it has.
    fn check_references(&self) -> Result<()> {
        for (name, made) in self.names.iter().zip(&self.made) {
            let Made::Layer { calls, .. } = made else {
                continue;
            };
            for (k, call) in calls.iter().enumerate() {
                for (i, reference) in call.iter().enumerate() {
                    let field = format!("inbound_nodes[{k}][{i}]");
                    let Some(&target) = self.by_name.get(reference.layer) else {
                        return Err(entry_error(
                            name,
                            field,
                            reference.text,
                            format!("the name of an entry of `layers` ({})", self.known_names()),
                        ));
                    };
                    let count = match self.made.get(target) {
                        Some(Made::Layer { calls, .. }) => calls.len(),
                        _ => 1,
                    };
                    if reference.node >= count {
                        return Err(entry_error(
                            name,
                            field,
                            reference.text,
                            format!(
                                "a node index below {count}: \"{}\" has {count} call{}",
                                reference.layer,
                                if count == 1 { "" } else { "s" }
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn known_names(&self) -> String {
        let shown: Vec<String> = self
            .names
            .iter()
            .take(20)
            .map(|n| format!("\"{n}\""))
            .collect();
        let more = self.names.len().saturating_sub(shown.len());
        if more > 0 {
            format!("{}, and {more} more", shown.join(", "))
        } else {
            shown.join(", ")
        }
    }

    /// Makes every call, each once its inputs exist and after the earlier calls of its layer
    /// (a topological order of the calls; Keras' `reconstruct_from_config` gets one by
    /// deferring calls whose inputs are not made yet). Returns each entry's outputs, one per
    /// call (an input's one tensor).
    fn make_calls(&self, graph: &mut Graph) -> Result<Vec<Vec<SymbolicTensor>>> {
        // Number the calls: call `k` of entry `e` is `first[e] + k`.
        let mut first = Vec::with_capacity(self.made.len());
        let mut total = 0usize;
        for made in &self.made {
            first.push(total);
            if let Made::Layer { calls, .. } = made {
                total += calls.len();
            }
        }
        let id = |entry: usize, call: usize| first.get(entry).map(|f| f + call);
        let mut owner: Vec<(usize, usize)> = Vec::with_capacity(total);
        let mut waiting = vec![0usize; total];
        let mut readers: Vec<Vec<usize>> = vec![Vec::new(); total];
        for (e, made) in self.made.iter().enumerate() {
            let Made::Layer { calls, .. } = made else {
                continue;
            };
            for (k, call) in calls.iter().enumerate() {
                let this = owner.len();
                owner.push((e, k));
                let mut needs: Vec<usize> = Vec::new();
                if k > 0 {
                    needs.push(this - 1);
                }
                for reference in call {
                    let target = self.by_name.get(reference.layer).copied();
                    if let Some(target) = target
                        && matches!(self.made.get(target), Some(Made::Layer { .. }))
                        && let Some(needed) = id(target, reference.node)
                    {
                        needs.push(needed);
                    }
                }
                needs.sort_unstable();
                needs.dedup();
                waiting[this] = needs.len();
                for needed in needs {
                    // Every index is below `total`: node indices were checked on reading.
                    if let Some(list) = readers.get_mut(needed) {
                        list.push(this);
                    }
                }
            }
        }

        let mut outputs: Vec<Vec<SymbolicTensor>> = self
            .made
            .iter()
            .map(|made| match made {
                Made::Input(tensor) => vec![*tensor],
                Made::Layer { calls, .. } => Vec::with_capacity(calls.len()),
            })
            .collect();
        // The ready call listed first goes first: for a list in Keras' order (inputs before
        // readers) this is the order Keras' passes over the list make the calls in.
        let mut ready: BinaryHeap<Reverse<usize>> = (0..total)
            .filter(|&c| waiting[c] == 0)
            .map(Reverse)
            .collect();
        let mut made_calls = 0usize;
        while let Some(Reverse(call)) = ready.pop() {
            let (e, k) = owner[call];
            if let Made::Layer { layer, calls } = &self.made[e] {
                let inputs = calls[k]
                    .iter()
                    .map(|reference| {
                        self.by_name
                            .get(reference.layer)
                            .and_then(|&target| outputs.get(target))
                            .and_then(|made| made.get(reference.node))
                            .copied()
                            .ok_or_else(|| Error::Model {
                                model: "(functional config)".into(),
                                message: "internal: a call was made before its inputs".into(),
                            })
                    })
                    .collect::<Result<Vec<_>>>()?;
                // Keras writes the call's arguments beside each input: they are one call's.
                let args = calls[k].first().map(|r| r.args).unwrap_or_default();
                if calls[k].iter().any(|r| r.args != args) {
                    return Err(Error::Model {
                        model: "(functional config)".into(),
                        message: "the inputs of one call give different call arguments".into(),
                    });
                }
                let tensor = graph.call_with(*layer, &inputs, args)?;
                outputs[e].push(tensor);
            }
            made_calls += 1;
            for &reader in &readers[call] {
                waiting[reader] -= 1;
                if waiting[reader] == 0 {
                    ready.push(Reverse(reader));
                }
            }
        }
        if made_calls < total {
            return Err(self.cycle_error(&waiting, &owner));
        }
        Ok(outputs)
    }

    /// The error for calls that wait on each other: names the first such call and an input
    /// it waits for.
    fn cycle_error(&self, waiting: &[usize], owner: &[(usize, usize)]) -> Error {
        let stuck = (0..waiting.len()).find(|&c| waiting[c] > 0);
        let Some(&(e, k)) = stuck.and_then(|c| owner.get(c)) else {
            return Error::Model {
                model: "(functional config)".into(),
                message: "internal: calls left unmade without a cycle".into(),
            };
        };
        let name = self.names.get(e).copied().unwrap_or("?");
        let text = match self.made.get(e) {
            Some(Made::Layer { calls, .. }) => Value::Array(
                calls
                    .get(k)
                    .map(|c| c.iter().map(|r| r.text.clone()).collect())
                    .unwrap_or_default(),
            ),
            _ => Value::Null,
        };
        entry_error(
            name,
            format!("inbound_nodes[{k}]"),
            brief(&text),
            format!(
                "inputs that can be computed before call {k} of \"{name}\": its inputs depend on the call itself (the calls form a cycle)"
            ),
        )
    }

    /// The model's inputs from `input_layers`, in order.
    fn model_inputs(&self, config: &Value) -> Result<Vec<SymbolicTensor>> {
        let mut tensors: Vec<SymbolicTensor> = Vec::new();
        for (i, (name, node, text)) in coordinates(config, "input_layers")?.into_iter().enumerate()
        {
            let field = format!("input_layers[{i}]");
            let tensor = match self.by_name.get(name).and_then(|&e| self.made.get(e)) {
                Some(Made::Input(tensor)) if node == 0 => *tensor,
                _ => {
                    return Err(wrong_brief(
                        OWNER,
                        &field,
                        text,
                        "[name, 0, 0] naming an InputLayer entry of `layers`",
                    ));
                }
            };
            if tensors.contains(&tensor) {
                return Err(wrong_brief(OWNER, &field, text, "each input listed once"));
            }
            tensors.push(tensor);
        }
        Ok(tensors)
    }

    /// The model's outputs from `output_layers`, in order.
    fn model_outputs(
        &self,
        config: &Value,
        outputs: &[Vec<SymbolicTensor>],
    ) -> Result<Vec<SymbolicTensor>> {
        coordinates(config, "output_layers")?
            .into_iter()
            .enumerate()
            .map(|(i, (name, node, text))| {
                self.by_name
                    .get(name)
                    .and_then(|&e| outputs.get(e))
                    .and_then(|calls| calls.get(node))
                    .copied()
                    .ok_or_else(|| {
                        wrong_brief(
                            OWNER,
                            &format!("output_layers[{i}]"),
                            text,
                            "[layer_name, node_index, 0] naming a call of an entry of `layers`",
                        )
                    })
            })
            .collect()
    }
}

/// `input_layers` or `output_layers`: a list of `[layer_name, node_index, tensor_index]`
/// (or one such triple, as old Keras versions wrote for one tensor).
fn coordinates<'a>(config: &'a Value, field: &str) -> Result<Vec<(&'a str, usize, &'a Value)>> {
    let value = config.get(field).ok_or_else(|| missing(OWNER, field))?;
    let expected = "a list of [layer_name, node_index, tensor_index]";
    let items = value
        .as_array()
        .ok_or_else(|| wrong_brief(OWNER, field, value, expected))?;
    let single = items.first().is_some_and(Value::is_string);
    let items: Vec<&Value> = if single {
        vec![value]
    } else {
        items.iter().collect()
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let bad = || wrong_brief(OWNER, &format!("{field}[{i}]"), item, expected);
            match item.as_array().map(Vec::as_slice) {
                Some([Value::String(name), node, tensor]) => {
                    let node = index_of(node).ok_or_else(bad)?;
                    if index_of(tensor) != Some(0) {
                        return Err(wrong_brief(
                            OWNER,
                            &format!("{field}[{i}]"),
                            item,
                            "tensor index 0 (every ndkeras layer has one output)",
                        ));
                    }
                    Ok((name.as_str(), node, item))
                }
                _ => Err(bad()),
            }
        })
        .collect()
}

/// An invalid field of `owner`'s config, its value cut to a readable length.
fn wrong_brief(owner: &str, field: &str, value: &Value, expected: &str) -> Error {
    Error::invalid_argument(format!("{owner} config"), field, brief(value), expected)
}

/// A value for an error message, cut to a readable length.
fn brief(value: &Value) -> String {
    const LIMIT: usize = 200;
    let text = value.to_string();
    match text.char_indices().nth(LIMIT) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text,
    }
}

fn index_of(value: &Value) -> Option<usize> {
    value.as_u64().and_then(|n| usize::try_from(n).ok())
}

/// Call `k` of the entry `name`: its list of inputs.
fn read_call<'a>(name: &str, k: usize, node: &'a Value) -> Result<Vec<Reference<'a>>> {
    let expected = "a list of call inputs, each [layer_name, node_index, tensor_index, kwargs] (Keras 2's format)";
    let inputs = match node.as_array() {
        Some(inputs) if !inputs.is_empty() => inputs,
        _ => {
            return Err(entry_error(
                name,
                format!("inbound_nodes[{k}]"),
                brief(node),
                expected,
            ));
        }
    };
    inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let field = format!("inbound_nodes[{k}][{i}]");
            let bad = || entry_error(name, field.clone(), brief(input), expected);
            let (layer, node_index, tensor, kwargs) = match input.as_array().map(Vec::as_slice) {
                Some([Value::String(layer), node, tensor]) => (layer, node, tensor, None),
                Some([Value::String(layer), node, tensor, kwargs]) => {
                    (layer, node, tensor, Some(kwargs))
                }
                _ => return Err(bad()),
            };
            let node_index = index_of(node_index).ok_or_else(bad)?;
            if index_of(tensor) != Some(0) {
                return Err(entry_error(
                    name,
                    field,
                    input,
                    "tensor index 0 (every ndkeras layer has one output)",
                ));
            }
            let mut args = CallArgs::default();
            match kwargs {
                None | Some(Value::Null) => {}
                Some(Value::Object(map)) => {
                    for (key, value) in map {
                        match (key.as_str(), value) {
                            ("reverse", Value::Bool(reverse)) => args = args.reverse(*reverse),
                            _ => {
                                return Err(entry_error(
                                    name,
                                    field,
                                    input,
                                    "call arguments ndkeras knows: {} or {\"reverse\": true}",
                                ));
                            }
                        }
                    }
                }
                Some(_) => {
                    return Err(entry_error(
                        name,
                        field,
                        input,
                        "a dictionary of call arguments",
                    ));
                }
            }
            Ok(Reference {
                layer: layer.as_str(),
                node: node_index,
                args,
                text: input,
            })
        })
        .collect()
}

/// Makes the layer of a (non-input) entry and adds it to `graph`. The layer is named after
/// the entry (the name calls refer to it by); a `config` naming another layer is refused.
fn add_layer(entry: &Value, name: &str, graph: &mut Graph) -> Result<LayerRef> {
    let config = entry
        .get("config")
        .ok_or_else(|| missing(&format!("{OWNER} layer \"{name}\""), "config"))?;
    match config.get("name") {
        None | Some(Value::Null) => {
            // Keras always writes the name in the config too; one written only beside it
            // names the layer all the same.
            let mut entry = entry.clone();
            if let Some(config) = entry.get_mut("config").and_then(Value::as_object_mut) {
                config.insert("name".into(), json!(name));
            }
            dispatch_layer_config(&entry, IntoGraph(graph))
        }
        Some(Value::String(own)) if own == name => dispatch_layer_config(entry, IntoGraph(graph)),
        Some(other) => Err(entry_error(
            name,
            "config.name",
            other,
            format!("\"{name}\", the entry's name (calls refer to the layer by it)"),
        )),
    }
}

/// The [`Input`] of an `InputLayer` entry (Keras 2's `batch_input_shape` or Keras 3's
/// `batch_shape`; `dtype` defaults to `float32`). A fixed batch size is dropped.
fn input_from_entry(entry: &Value, name: &str) -> Result<Input> {
    let owner = format!("{OWNER} InputLayer \"{name}\"");
    let config = entry
        .get("config")
        .ok_or_else(|| missing(&owner, "config"))?;
    if !config.is_object() {
        return Err(wrong_brief(&owner, "config", config, "a JSON object"));
    }
    match config.get("name") {
        None | Some(Value::Null) => {}
        Some(Value::String(own)) if own == name => {}
        Some(other) => {
            return Err(entry_error(
                name,
                "config.name",
                other,
                format!("\"{name}\", the entry's name"),
            ));
        }
    }
    let shape = config
        .get("batch_input_shape")
        .or_else(|| config.get("batch_shape"))
        .ok_or_else(|| missing(&owner, "batch_input_shape"))?;
    let batch_shape = shape_from(shape, "batch_input_shape", &owner)?;
    let Some((_, sample)) = batch_shape.split_first() else {
        return Err(wrong_brief(
            &owner,
            "batch_input_shape",
            shape,
            "a shape with the batch axis first",
        ));
    };
    let dtype = match config.get("dtype") {
        None | Some(Value::Null) => DType::Float32,
        Some(Value::String(dtype)) => {
            DType::from_name(dtype).ok_or_else(|| Error::UnknownName {
                kind: "input dtype",
                name: dtype.clone(),
                valid: DType::ALL.iter().map(|d| d.name()).collect(),
            })?
        }
        Some(other) => return Err(wrong_brief(&owner, "dtype", other, "a dtype name")),
    };
    for flag in ["sparse", "ragged", "optional"] {
        if bool_or(config, flag, &owner, false)? {
            return Err(wrong_brief(
                &owner,
                flag,
                &json!(true),
                "false (ndkeras inputs are dense, fixed-rank and required)",
            ));
        }
    }
    Ok(Input::with_shape(sample.to_vec())
        .dtype(dtype)
        .with_name(name))
}
