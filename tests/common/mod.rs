//! Reading `tests/data/keras_reference.json`: vectors produced by the real Keras
//! (tf_keras 2.21.0; Keras 3.15.1 where it differs). See that folder's README for the format.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod functional;

use std::sync::OnceLock;

use ndarray::{ArrayD, IxDyn};
use ndkeras::prelude::*;
use serde_json::Value;

/// All cases, parsed once per test binary.
pub fn cases() -> &'static [Value] {
    static CASES: OnceLock<Vec<Value>> = OnceLock::new();
    CASES.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/keras_reference.json"
        );
        let text = std::fs::read_to_string(path)
            .expect("tests/data/keras_reference.json is in the repository");
        let root: Value = serde_json::from_str(&text).expect("the reference file is valid JSON");
        root["cases"].as_array().expect("a `cases` list").clone()
    })
}

/// The case with this id.
pub fn case(id: &str) -> &'static Value {
    cases()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no reference case {id}"))
}

/// The cases of a group (`"forward"`, `"init_stats"`, ...).
pub fn group(name: &str) -> Vec<&'static Value> {
    let found: Vec<_> = cases().iter().filter(|c| c["group"] == name).collect();
    assert!(!found.is_empty(), "no cases in group {name}");
    found
}

pub fn shape_of(tensor: &Value) -> Vec<usize> {
    tensor["shape"]
        .as_array()
        .expect("tensor shape")
        .iter()
        .map(|d| d.as_u64().expect("a dimension") as usize)
        .collect()
}

/// A Keras shape with `null` for unknown dimensions.
pub fn keras_shape(value: &Value) -> Vec<Option<usize>> {
    value
        .as_array()
        .expect("a shape list")
        .iter()
        .map(|d| d.as_u64().map(|d| d as usize))
        .collect()
}

fn float(value: &Value) -> f64 {
    match value {
        Value::String(s) if s == "NaN" => f64::NAN,
        Value::String(s) if s == "Infinity" => f64::INFINITY,
        Value::String(s) if s == "-Infinity" => f64::NEG_INFINITY,
        v => v.as_f64().expect("a number"),
    }
}

/// A tensor as `f32` (float32 exact; float64 and integers cast as Keras casts `weights`).
pub fn f32_tensor(tensor: &Value) -> ArrayD<f32> {
    let data: Vec<f32> = tensor["data"]
        .as_array()
        .expect("tensor data")
        .iter()
        .map(|v| float(v) as f32)
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape_of(tensor)), data).expect("data matches shape")
}

/// A tensor as `f64` (for float64 inputs).
pub fn f64_tensor(tensor: &Value) -> ArrayD<f64> {
    let data: Vec<f64> = tensor["data"]
        .as_array()
        .expect("tensor data")
        .iter()
        .map(float)
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape_of(tensor)), data).expect("data matches shape")
}

pub fn bool_tensor(tensor: &Value) -> ArrayD<bool> {
    let data: Vec<bool> = tensor["data"]
        .as_array()
        .expect("tensor data")
        .iter()
        .map(|v| v.as_bool().expect("a bool"))
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape_of(tensor)), data).expect("data matches shape")
}

/// A bool tensor, or `None` where Keras recorded `null` (no mask).
pub fn optional_bool_tensor(value: &Value) -> Option<ArrayD<bool>> {
    (!value.is_null()).then(|| bool_tensor(value))
}

/// An input tensor in the dtype it was fed to Keras.
pub fn input_tensor(tensor: &Value) -> Tensor {
    let shape = IxDyn(&shape_of(tensor));
    let values = tensor["data"].as_array().expect("tensor data");
    let ints = || values.iter().map(|v| v.as_i64().expect("an integer"));
    match tensor["dtype"].as_str().expect("a dtype") {
        "int32" => {
            Tensor::from(ArrayD::from_shape_vec(shape, ints().map(|v| v as i32).collect()).unwrap())
        }
        "int64" => Tensor::from(ArrayD::from_shape_vec(shape, ints().collect()).unwrap()),
        "uint8" => {
            Tensor::from(ArrayD::from_shape_vec(shape, ints().map(|v| v as u8).collect()).unwrap())
        }
        "float32" => Tensor::from(f32_tensor(tensor)),
        other => panic!("unexpected input dtype {other}"),
    }
}

/// Asserts bit-exact equality of shape and values (a lookup copies floats).
pub fn assert_bits_eq(actual: &ArrayD<f32>, expected: &ArrayD<f32>, id: &str) {
    assert_eq!(actual.shape(), expected.shape(), "{id}: shape");
    for (i, (a, e)) in actual.iter().zip(expected.iter()).enumerate() {
        assert_eq!(a.to_bits(), e.to_bits(), "{id}: element {i}: {a} != {e}");
    }
}

/// `Embedding(input_dim, output_dim, weights=[W], mask_zero=...)` as the case configures it.
pub fn embedding_from_case(case: &Value) -> Embedding {
    let config = &case["config"];
    let dim = |key: &str| config[key].as_u64().expect("a dimension") as usize;
    let mut layer = Embedding::new(dim("input_dim"), dim("output_dim"))
        .mask_zero(config["mask_zero"].as_bool().unwrap_or(false));
    if let Some(name) = config["name"].as_str() {
        layer = layer.with_name(name);
    }
    if case["inputs"].get("weights").is_some() {
        layer = layer.weights(vec![f32_tensor(&case["inputs"]["weights"])]);
    }
    match &config["input_length"] {
        Value::Number(n) => layer.input_length(n.as_u64().expect("a length") as usize),
        Value::Array(_) => layer.input_length_per_axis(keras_shape(&config["input_length"])),
        _ => layer,
    }
}

/// The initializer a Keras config `{class_name, config}` describes.
pub fn initializer_from_keras_config(value: &Value) -> Initializer {
    let class = value["class_name"].as_str().expect("class_name");
    let config = &value["config"];
    let seed = config["seed"].as_u64();
    let number = |key: &str| {
        config[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{class}.{key}"))
    };
    let mut init = match class {
        "RandomUniform" => Initializer::RandomUniform {
            minval: number("minval"),
            maxval: number("maxval"),
            seed,
        },
        "RandomNormal" => Initializer::RandomNormal {
            mean: number("mean"),
            stddev: number("stddev"),
            seed,
        },
        "TruncatedNormal" => Initializer::TruncatedNormal {
            mean: number("mean"),
            stddev: number("stddev"),
            seed,
        },
        "VarianceScaling" => Initializer::VarianceScaling {
            scale: number("scale"),
            mode: config["mode"]
                .as_str()
                .expect("mode")
                .parse()
                .expect("a Keras mode"),
            distribution: config["distribution"]
                .as_str()
                .expect("distribution")
                .parse()
                .expect("a Keras distribution"),
            seed,
        },
        other => other.parse().unwrap_or_else(|e| panic!("{e}")),
    };
    if let Some(seed) = seed {
        init = init.with_seed(seed);
    }
    init
}

/// Parses `Orthogonal(gain=2.0, seed=44)` as written in the orthogonal cases.
pub fn orthogonal_from_text(text: &str) -> (Initializer, f64) {
    let arg = |key: &str| -> f64 {
        let start = text
            .find(&format!("{key}="))
            .unwrap_or_else(|| panic!("{key} in {text}"))
            + key.len()
            + 1;
        let rest = &text[start..];
        let end = rest.find([',', ')']).expect("argument end");
        rest[..end].trim().parse().expect("a number")
    };
    let gain = arg("gain");
    let seed = arg("seed") as u64;
    (
        Initializer::Orthogonal {
            gain,
            seed: Some(seed),
        },
        gain,
    )
}

/// `(position, index)` from TensorFlow's `indices[0,1] = 3 is not in [0, 3)`.
pub fn tf_bad_index(message: &str) -> (Vec<usize>, i128) {
    let start = message
        .find("indices[")
        .expect("a TensorFlow index message")
        + "indices[".len();
    let rest = &message[start..];
    let close = rest.find(']').expect("closing bracket");
    let position = rest[..close]
        .split(',')
        .map(|p| p.trim().parse().expect("a coordinate"))
        .collect();
    let after = rest[close + 1..]
        .trim_start()
        .trim_start_matches('=')
        .trim_start();
    let end = after.find(' ').expect("value end");
    (position, after[..end].parse().expect("an index"))
}

/// The optimizer Keras' `class_name` and `get_config()` describe.
pub fn optimizer_from_keras(class_name: &str, config: &Value) -> Optimizer {
    let f = |key: &str| config[key].as_f64().unwrap() as f32;
    match class_name {
        "SGD" => SGD::new(f("learning_rate"))
            .momentum(f("momentum"))
            .nesterov(config["nesterov"] == true)
            .into(),
        "RMSprop" => RMSprop::default()
            .learning_rate(f("learning_rate"))
            .rho(f("rho"))
            .momentum(f("momentum"))
            .epsilon(f("epsilon"))
            .centered(config["centered"] == true)
            .into(),
        "Adam" => Adam::default()
            .learning_rate(f("learning_rate"))
            .beta_1(f("beta_1"))
            .beta_2(f("beta_2"))
            .epsilon(f("epsilon"))
            .amsgrad(config["amsgrad"] == true)
            .into(),
        "Adagrad" => Adagrad::default()
            .learning_rate(f("learning_rate"))
            .initial_accumulator_value(f("initial_accumulator_value"))
            .epsilon(f("epsilon"))
            .into(),
        other => panic!("unknown optimizer {other}"),
    }
}

/// The Sequential a case of `keras_metrics.json` or `keras_callbacks.json` describes, with
/// Keras' initial weights, compiled as Keras was (`metric` reads a metric's spec).
pub fn sequential_from_case(case: &Value, metric: fn(&Value) -> Metric) -> Sequential {
    let mut model = Sequential::new();
    let length = case["model"]["input"]["shape"][1].as_u64().unwrap() as usize;
    let weight = |name: &str| -> Vec<ndarray::ArrayD<f32>> {
        case["initial_weights"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["name"].as_str().unwrap().starts_with(&format!("{name}/")))
            .map(f32_tensor)
            .collect()
    };
    for layer in case["model"]["layers"].as_array().unwrap() {
        let args = &layer["args"];
        let name = layer["name"].as_str().unwrap();
        match layer["class_name"].as_str().unwrap() {
            "Embedding" => model
                .add(
                    Embedding::new(
                        args["input_dim"].as_u64().unwrap() as usize,
                        args["output_dim"].as_u64().unwrap() as usize,
                    )
                    .input_length(length)
                    .mask_zero(args["mask_zero"] == true)
                    .with_name(name)
                    .weights(weight(name)),
                )
                .unwrap(),
            "GlobalAveragePooling1D" => model
                .add(GlobalAveragePooling1D::new().with_name(name))
                .unwrap(),
            "Dense" => {
                let activation = match args["activation"].as_str().unwrap_or("linear") {
                    "sigmoid" => Activation::Sigmoid,
                    "softmax" => Activation::Softmax,
                    _ => Activation::Linear,
                };
                model
                    .add(
                        Dense::new(args["units"].as_u64().unwrap() as usize)
                            .activation(activation)
                            .with_name(name)
                            .weights(weight(name)),
                    )
                    .unwrap()
            }
            other => panic!("layer {other}"),
        }
    }
    let compile = &case["compile"];
    // The tie models are only evaluated: any optimizer will do.
    let optimizer = match compile["optimizer"]["class_name"].as_str() {
        Some(class_name) => optimizer_from_keras(class_name, &compile["optimizer"]["config"]),
        None => ndkeras::optimizers::SGD::new(0.1).into(),
    };
    let metrics = compile["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(metric)
        .collect();
    model
        .compile_with_metrics(
            optimizer,
            compile["loss"].as_str().unwrap().parse().unwrap(),
            metrics,
        )
        .unwrap();
    model
}
