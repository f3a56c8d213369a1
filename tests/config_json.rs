//! Keras configs: Keras 2's `get_config()` of an Embedding (from the reference vectors) loads
//! and is written back identically; every layer and a whole model round-trip losslessly.

#![cfg(feature = "serde")]

mod common;

use ndkeras::config::layer_from_config;
use ndkeras::prelude::*;
use serde_json::{Value, json};

#[test]
fn keras_2_embedding_config_loads_and_is_written_back_identically() {
    let case = common::case("config/get_config");
    let keras = &case["expected"]["get_config"];
    let layer = Embedding::from_config(keras).unwrap();
    assert_eq!(layer.name(), "embedding");
    assert_eq!((layer.input_dim(), layer.output_dim()), (1000, 64));
    assert!(layer.config().mask_zero);
    assert_eq!(
        layer.config().embeddings_initializer,
        Initializer::default()
    );
    assert_eq!(layer.batch_input_shape(), Some(vec![None, Some(10)]));
    assert_eq!(&layer.get_config(), keras, "our get_config is Keras 2's");
}

#[test]
fn keras_3_embedding_config_loads() {
    let case = common::case("config/get_config");
    let keras3 = &case["expected_keras3"]["get_config"];
    let layer = Embedding::from_config(keras3).unwrap();
    assert_eq!(
        (
            layer.input_dim(),
            layer.output_dim(),
            layer.config().mask_zero
        ),
        (1000, 64, true)
    );
    assert_eq!(
        layer.config().input_length,
        None,
        "Keras 3 has no input_length"
    );
}

#[test]
fn every_layer_round_trips_its_config() {
    let layers: Vec<Box<dyn Layer>> = vec![
        Box::new(
            Embedding::new(50, 8)
                .input_length_per_axis(vec![Some(2), None])
                .embeddings_initializer(Initializer::GlorotNormal { seed: Some(3) })
                .embeddings_regularizer(Regularizer::L1L2 { l1: 0.01, l2: 0.5 })
                .embeddings_constraint(Constraint::MaxNorm {
                    max_value: 1.5,
                    axis: 1,
                })
                .trainable(false)
                .with_name("words"),
        ),
        Box::new(
            Dense::new(3)
                .activation(Activation::Softmax)
                .use_bias(false)
                .kernel_initializer(Initializer::VarianceScaling {
                    scale: 2.0,
                    mode: FanMode::FanOut,
                    distribution: Distribution::Uniform,
                    seed: None,
                })
                .kernel_constraint(Constraint::MinMaxNorm {
                    min_value: 0.5,
                    max_value: 2.0,
                    rate: 0.5,
                    axis: 0,
                })
                .with_name("out"),
        ),
        Box::new(
            Dense::new(1)
                .bias_initializer(Initializer::constant(0.25))
                .kernel_regularizer(Regularizer::L2(0.1)),
        ),
        Box::new(GlobalAveragePooling1D::new().with_name("pool")),
        Box::new(Flatten::new()),
        Box::new(Dropout::new(0.25).seed(9)),
        Box::new(
            Embedding::new(3, 2).embeddings_initializer(Initializer::Constant(
                ndarray::array![[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]].into_dyn(),
            )),
        ),
    ];
    for layer in layers {
        let config = layer.get_config();
        let back = layer_from_config(&json!({"class_name": layer.class_name(), "config": config}))
            .unwrap();
        assert_eq!(back.get_config(), config, "{}", layer.class_name());
        assert_eq!(back.name(), layer.name());
        assert_eq!(back.is_trainable(), layer.is_trainable());
    }
}

#[test]
fn a_model_round_trips_through_json_and_keras_2_model_json_loads() {
    let mut model = Sequential::new().with_name("classifier");
    model
        .add(
            Embedding::new(20, 4)
                .input_length(6)
                .mask_zero(true)
                .with_name("embedding"),
        )
        .unwrap();
    model
        .add(GlobalAveragePooling1D::new().with_name("pool"))
        .unwrap();
    model
        .add(
            Dense::new(1)
                .activation(Activation::Sigmoid)
                .with_name("dense"),
        )
        .unwrap();
    let text = model.to_json();
    let back = Sequential::from_json(&text).unwrap();
    assert_eq!(back.to_json(), text, "lossless");
    assert_eq!(back.output_shape().unwrap(), vec![None, Some(1)]);
    assert_eq!(back.layers().len(), 3);

    // Keras 2's model.to_json() shape: an InputLayer first, then the layers.
    let keras_embedding = common::case("config/get_config")["expected"]["get_config"].clone();
    let mut without_shape = keras_embedding.clone();
    without_shape
        .as_object_mut()
        .unwrap()
        .remove("batch_input_shape");
    without_shape
        .as_object_mut()
        .unwrap()
        .insert("input_length".into(), Value::Null);
    let keras_json = json!({
        "class_name": "Sequential",
        "config": {"name": "sequential", "layers": [
            {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 10], "dtype": "float32", "sparse": false, "ragged": false, "name": "embedding_input"}},
            {"module": "keras.layers", "class_name": "Embedding", "config": without_shape, "registered_name": null},
        ]},
        "keras_version": "2.15.0",
        "backend": "tensorflow",
    });
    let mut loaded = Sequential::from_json(&keras_json.to_string()).unwrap();
    assert_eq!(
        loaded.output_shape().unwrap(),
        vec![None, Some(10), Some(64)]
    );
    let out = loaded
        .predict(ndarray::Array2::<i64>::zeros((2, 10)))
        .unwrap();
    assert_eq!(out.shape(), &[2, 10, 64]);
}

#[test]
fn bad_configs_name_what_is_wrong() {
    let err = layer_from_config(&json!({"class_name": "LSTM", "config": {}}))
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("LSTM") && err.to_string().contains("Embedding"),
        "{err}"
    );
    let err = Embedding::from_config(&json!({"name": "e", "input_dim": 3})).unwrap_err();
    assert!(err.to_string().contains("output_dim"), "{err}");
    let err = Embedding::from_config(&json!({"input_dim": 3, "output_dim": 2, "dtype": "float64"}))
        .unwrap_err();
    assert!(err.to_string().contains("dtype"), "{err}");
    let err = Embedding::from_config(&json!({"input_dim": 0, "output_dim": 2})).unwrap_err();
    assert!(err.to_string().contains("input_dim"), "{err}");
    let err = Dense::from_config(&json!({"units": 2, "activation": "gelu"})).unwrap_err();
    assert!(err.to_string().contains("gelu"), "{err}");
    assert!(Sequential::from_json("{not json").is_err());
    assert!(Sequential::from_json(r#"{"class_name": "Functional", "config": {}}"#).is_err());
    let err = Sequential::from_json(r#"{"class_name": "Sequential", "config": {"name": "m"}}"#)
        .unwrap_err();
    assert!(err.to_string().contains("layers"), "{err}");
}

/// `tests/data/keras_json.json`: Sequential models as tf_keras 2.21's `model.to_json()`
/// writes them (made by `tests/data/keras_json.py`).
pub fn keras_json() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/keras_json.json");
    let text = std::fs::read_to_string(path).expect("keras_json.json is in the repository");
    serde_json::from_str(&text).expect("keras_json.json is valid JSON")
}

/// Loads a tf_keras sample and checks that `to_json` gives it back (as JSON values: key order
/// free) and that the layers keep their Keras names.
fn check_round_trip(case: &Value) {
    let id = &case["id"];
    let text = case["to_json"].as_str().unwrap();
    assert_eq!(
        case["keras_round_trip"], true,
        "{id}: tf_keras itself round-trips"
    );
    let model = Sequential::from_json(text).unwrap_or_else(|e| panic!("{id}: {e}"));
    let ours: Value = serde_json::from_str(&model.to_json()).unwrap();
    let keras: Value = serde_json::from_str(text).unwrap();
    assert_eq!(ours, keras, "{id}: to_json(from_json(s)) == s");
    assert_eq!(model.name(), case["names"]["model"], "{id}");
    let names: Vec<&str> = model.layers().iter().map(|l| l.name()).collect();
    assert_eq!(json!(names), case["names"]["layers"], "{id}");
}

#[test]
fn tf_keras_sequential_json_round_trips_without_an_input() {
    let root = keras_json();
    assert_eq!(root["tf_keras"], "2.21.0");
    for id in [
        "embedding_input_length",
        "embedding_input_length_pooling_dense",
    ] {
        let case = root["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap();
        check_round_trip(case);
    }
}

#[test]
fn tf_keras_sequential_json_round_trips() {
    let root = keras_json();
    let cases = root["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    for case in cases {
        check_round_trip(case);
    }
}

#[test]
fn a_declared_input_shape_builds_the_layers_and_its_dtype_is_kept() {
    let root = keras_json();
    let case = |id: &str| {
        root["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()["to_json"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // keras.Input(shape=(4,), dtype="int32", name="ids") -> Embedding (no input_length)
    // -> Flatten -> Dropout -> Dense: Flatten and Dense need the Input's length.
    let mut model = Sequential::from_json(&case("input_embedding_flatten_dense")).unwrap();
    assert_eq!(model.input_shape(), Some(&[None, Some(4)][..]));
    assert_eq!(model.output_shape().unwrap(), vec![None, Some(1)]);
    let input = model.input().unwrap();
    assert_eq!(
        (input.name.as_str(), input.dtype.as_str()),
        ("ids", "int32")
    );
    let out = model
        .predict(ndarray::Array2::<i64>::zeros((3, 4)))
        .unwrap();
    assert_eq!(out.shape(), &[3, 1]);

    // keras.Input(shape=(3,)) -> Dense(2): built at once, float32 input.
    let model = Sequential::from_json(&case("input_dense_only")).unwrap();
    assert_eq!(model.output_shape().unwrap(), vec![None, Some(2)]);
    assert_eq!(model.input().unwrap().dtype, "float32");
    assert_eq!(
        model.layer::<Dense>(0).unwrap().kernel().unwrap().dim(),
        (3, 2)
    );
}

#[test]
fn an_input_layer_after_the_first_layer_is_refused() {
    let text = json!({
        "class_name": "Sequential",
        "config": {"name": "m", "layers": [
            {"class_name": "Dense", "config": {"name": "d", "units": 2}},
            {"class_name": "InputLayer", "config": {"batch_input_shape": [null, 3], "name": "i"}},
        ]},
    })
    .to_string();
    let err = Sequential::from_json(&text).unwrap_err();
    assert!(
        err.to_string().contains("InputLayer") && err.to_string().contains("position 1"),
        "{err}"
    );
}
