//! Rebuilding the functional models of `tests/data/keras_functional.json`.

use std::collections::HashMap;

use ndkeras::prelude::*;
use serde_json::Value;

use super::f32_tensor;

pub fn activation(name: &Value) -> Activation {
    match name.as_str().unwrap_or("linear") {
        "sigmoid" => Activation::Sigmoid,
        "softmax" => Activation::Softmax,
        "linear" => Activation::Linear,
        other => panic!("activation {other}"),
    }
}

/// The layer a case describes (`class_name` and Keras' constructor arguments).
pub fn add_layer(graph: &mut Graph, spec: &Value) -> LayerRef {
    let args = &spec["args"];
    let name = spec["name"].as_str().unwrap();
    let usize_of = |key: &str| args[key].as_u64().unwrap() as usize;
    let added = match spec["class_name"].as_str().unwrap() {
        "Embedding" => graph.add(
            Embedding::new(usize_of("input_dim"), usize_of("output_dim"))
                .mask_zero(args["mask_zero"] == true)
                .with_name(name),
        ),
        "Dense" => graph.add(
            Dense::new(usize_of("units"))
                .activation(activation(&args["activation"]))
                .with_name(name),
        ),
        "GlobalAveragePooling1D" => graph.add(GlobalAveragePooling1D::new().with_name(name)),
        "Flatten" => graph.add(Flatten::new().with_name(name)),
        "Dot" => graph.add(
            Dot::new(args["axes"].as_i64().unwrap() as isize)
                .normalize(args["normalize"] == true)
                .with_name(name),
        ),
        "Concatenate" => graph.add(
            Concatenate::new()
                .axis(args["axis"].as_i64().unwrap_or(-1) as isize)
                .with_name(name),
        ),
        "Add" => graph.add(Add::new().with_name(name)),
        other => panic!("layer {other} is not rebuilt by this test"),
    };
    added.unwrap()
}

/// The model of a case of `keras_functional.json` built through `Graph`, with the inputs'
/// Keras dtypes and names (no weights set: see [`set_weights`]).
pub fn graph_model(case: &Value) -> Model {
    let description = &case["model"];
    let mut graph = Graph::new();
    let mut tensors: HashMap<String, SymbolicTensor> = HashMap::new();
    let mut inputs = Vec::new();
    for input in description["inputs"].as_array().unwrap() {
        let shape: Vec<Option<usize>> = input["shape"].as_array().unwrap()[1..]
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize))
            .collect();
        let dtype = match input["dtype"].as_str().unwrap() {
            "int32" => DType::Int32,
            "float32" => DType::Float32,
            other => panic!("input dtype {other}"),
        };
        let name = input["name"].as_str().unwrap();
        let t = graph.input(Input::with_shape(shape).dtype(dtype).with_name(name));
        tensors.insert(name.to_string(), t);
        inputs.push(t);
    }
    let layers: HashMap<String, LayerRef> = description["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|spec| {
            (
                spec["name"].as_str().unwrap().to_string(),
                add_layer(&mut graph, spec),
            )
        })
        .collect();
    for call in description["calls"].as_array().unwrap() {
        let arguments: Vec<SymbolicTensor> = call["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| tensors[i.as_str().unwrap()])
            .collect();
        let out = graph
            .call(layers[call["layer"].as_str().unwrap()], &arguments)
            .unwrap();
        tensors.insert(call["output"].as_str().unwrap().to_string(), out);
    }
    let outputs: Vec<SymbolicTensor> = description["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| tensors[o.as_str().unwrap()])
        .collect();
    graph
        .model(&inputs, &outputs)
        .unwrap()
        .with_name(description["name"].as_str().unwrap())
}

/// Keras' weights of a case, by layer.
pub fn set_weights(model: &mut Model, weights: &Value) {
    let mut by_layer: HashMap<String, Vec<ndarray::ArrayD<f32>>> = HashMap::new();
    let mut order = Vec::new();
    for weight in weights.as_array().unwrap() {
        let layer = weight["name"]
            .as_str()
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string();
        if !by_layer.contains_key(&layer) {
            order.push(layer.clone());
        }
        by_layer.entry(layer).or_default().push(f32_tensor(weight));
    }
    for layer in order {
        model
            .get_layer_mut(&layer)
            .unwrap()
            .set_weights(by_layer.remove(&layer).unwrap())
            .unwrap();
    }
}
