//! Models on raw strings against tf_keras 2.21 (`tests/data/keras_text_models.json`, made by
//! `keras_text_models.py` beside it): a `Sequential` and two functional models whose
//! `model.to_json()` holds a `TextVectorization` (vocabulary inline, or adapted: the vocabulary
//! file tf_keras saves), a `StringLookup` and a `Hashing` in front of embeddings load with
//! `from_json`, take Keras' weights and predict what tf_keras predicts on a multilingual
//! sample; their JSON round-trips. The configs of the preprocessing layers are tf_keras'; the
//! `"tf_idf"` weights and outputs are tf_keras'. A closure `standardize` is refused in JSON.

#![cfg(feature = "serde")]

use std::sync::OnceLock;

use ndarray::ArrayD;
use ndkeras::Error;
use ndkeras::config::{KerasConfig, layer_from_config};
use ndkeras::layer::Layer;
use ndkeras::model::Model;
use ndkeras::prelude::*;
use ndkeras::preprocessing::{
    IntegerLookup, OutputMode, Standardize, StringLookup, TextVectorization,
};
use serde_json::Value;

fn reference() -> &'static Value {
    static ROOT: OnceLock<Value> = OnceLock::new();
    ROOT.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/keras_text_models.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    })
}

fn array(value: &Value) -> ArrayD<f32> {
    let mut shape = Vec::new();
    let mut probe = value;
    while let Value::Array(items) = probe {
        shape.push(items.len());
        probe = &items[0];
    }
    // null is NaN (tf_keras' mean over an all-padding text).
    fn flatten(v: &Value, out: &mut Vec<f32>) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
            Value::Null => out.push(f32::NAN),
            n => out.push(n.as_f64().unwrap() as f32),
        }
    }
    let mut values = Vec::new();
    flatten(value, &mut values);
    ArrayD::from_shape_vec(shape, values).unwrap()
}

fn weights(value: &Value) -> Vec<ArrayD<f32>> {
    value.as_array().unwrap().iter().map(array).collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn assert_close(got: &ArrayD<f32>, expected: &ArrayD<f32>, tolerance: f32, what: &str) {
    assert_eq!(got.shape(), expected.shape(), "{what}");
    for (k, (g, e)) in got.iter().zip(expected).enumerate() {
        if e.is_nan() {
            assert!(g.is_nan(), "{what}: element {k}: {g} vs NaN");
            continue;
        }
        assert!(
            (g - e).abs() <= tolerance * (1.0 + e.abs()),
            "{what}: element {k}: {g} vs {e}"
        );
    }
}

#[test]
fn a_keras_sequential_with_an_inline_vocabulary_predicts_as_keras() {
    let case = &reference()["sequential_inline"];
    let json = case["json"].as_str().unwrap();
    let mut model = Sequential::from_json(json).unwrap();
    assert_eq!(model.layers()[0].class_name(), "TextVectorization");
    model.set_weights(weights(&case["weights"])).unwrap();
    let inputs = strings(&case["inputs"]);
    let predictions = model.predict(Tensor::from(inputs)).unwrap();
    assert_close(
        &predictions,
        &array(&case["predictions"]),
        1e-5,
        "sequential_inline",
    );
    // Written back, read again: the same JSON (the input keeps its `string` dtype).
    let written = model.to_json();
    let parsed: Value = serde_json::from_str(&written).unwrap();
    assert_eq!(
        parsed["config"]["layers"][0]["config"]["dtype"], "string",
        "{written}"
    );
    assert_eq!(Sequential::from_json(&written).unwrap().to_json(), written);
}

#[test]
fn a_keras_functional_model_with_an_adapted_vocabulary_predicts_as_keras() {
    let case = &reference()["functional_adapted"];
    let json = case["json"].as_str().unwrap();
    let mut model = Model::from_json(json).unwrap();
    // The adapted vocabulary is an asset in tf_keras, not part of the JSON.
    let path = std::env::temp_dir().join(format!(
        "ndkeras_text_models_{}_vocabulary.txt",
        std::process::id()
    ));
    std::fs::write(&path, case["vocabulary_file"].as_str().unwrap()).unwrap();
    let load_vocabulary = |model: &mut Model| {
        let layer = model.get_layer_mut("vectorize").unwrap();
        let vectorize = (layer as &mut dyn std::any::Any)
            .downcast_mut::<TextVectorization>()
            .unwrap();
        assert_eq!(vectorize.vocabulary_size(), 2);
        vectorize.load_vocabulary(&path).unwrap();
        assert_eq!(vectorize.vocabulary_size(), 30);
    };
    load_vocabulary(&mut model);
    model.set_weights(weights(&case["weights"])).unwrap();
    let inputs = strings(&case["inputs"]);
    let predictions = model.predict(vec![Tensor::from(inputs)]).unwrap();
    assert_close(
        &predictions[0],
        &array(&case["predictions"]),
        1e-5,
        "functional_adapted",
    );
    // Written back, read again and given its vocabulary: the same JSON.
    let written = model.to_json();
    let mut again = Model::from_json(&written).unwrap();
    load_vocabulary(&mut again);
    std::fs::remove_file(&path).ok();
    assert_eq!(again.to_json(), written);
}

#[test]
fn a_keras_functional_model_with_a_lookup_and_hashing_predicts_as_keras() {
    let case = &reference()["functional_lookups"];
    let mut model = Model::from_json(case["json"].as_str().unwrap()).unwrap();
    model.set_weights(weights(&case["weights"])).unwrap();
    let rows: Vec<Vec<String>> = case["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(strings)
        .collect();
    let flat: Vec<String> = rows.concat();
    let inputs = ndarray::Array2::from_shape_vec((rows.len(), 3), flat).unwrap();
    let predictions = model.predict(vec![Tensor::from(inputs)]).unwrap();
    assert_close(
        &predictions[0],
        &array(&case["predictions"]),
        1e-5,
        "functional_lookups",
    );
    let written = model.to_json();
    assert_eq!(Model::from_json(&written).unwrap().to_json(), written);
}

#[test]
fn layer_configs_are_the_ones_tf_keras_writes() {
    for case in reference()["layer_configs"].as_array().unwrap() {
        let class = case["class_name"].as_str().unwrap();
        let mut expected = case["config"].clone();
        let object = expected.as_object_mut().unwrap();
        // Not needed to rebuild the layer; Keras writes it for a built layer only.
        object.remove("batch_input_shape");
        if case["adapted"].as_bool().unwrap() {
            // The adapted vocabulary is not in the config, so neither is its size.
            object.remove("vocabulary_size");
        }
        let entry = serde_json::json!({"class_name": class, "config": case["config"]});
        let layer = layer_from_config(&entry).unwrap_or_else(|e| panic!("{class}: {e}"));
        let mut written = layer.get_config();
        if case["adapted"].as_bool().unwrap() {
            written.as_object_mut().unwrap().remove("vocabulary_size");
        }
        assert_eq!(written, expected, "{class} {}", case["kwargs"]);
        // And read back: the same config.
        let again = layer_from_config(
            &serde_json::json!({"class_name": class, "config": layer.get_config()}),
        )
        .unwrap();
        assert_eq!(again.get_config(), layer.get_config(), "{class}");
    }
}

#[test]
fn closures_and_unsupported_settings_are_refused_in_json() {
    let custom = TextVectorization::builder()
        .standardize(Standardize::Custom(std::sync::Arc::new(|t: &str| {
            t.to_uppercase()
        })))
        .name("shout")
        .build()
        .unwrap();
    let config = custom.get_config();
    assert_eq!(config["standardize"], "ndkeras>rust_closure");
    let err = TextVectorization::from_config(&config).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("standardize")
            && message.contains("custom function")
            && message.contains("Standardize::Custom"),
        "{message}"
    );
    // A Keras registered function is refused the same way.
    let mut keras_fn = config.clone();
    keras_fn["standardize"] = serde_json::json!("my_package>custom_standardize");
    assert!(TextVectorization::from_config(&keras_fn).is_err());
    let mut split = TextVectorization::builder().build().unwrap().get_config();
    split["split"] = Value::Null;
    let err = TextVectorization::from_config(&split).unwrap_err();
    assert!(err.to_string().contains("split"), "{err}");
    let mut ragged = split.clone();
    ragged["split"] = serde_json::json!("whitespace");
    ragged["ragged"] = serde_json::json!(true);
    let err = TextVectorization::from_config(&ragged).unwrap_err();
    assert!(err.to_string().contains("ragged"), "{err}");
    let err = StringLookup::from_config(&serde_json::json!({"vocabulary": "/tmp/vocab.txt"}))
        .unwrap_err();
    assert!(err.to_string().contains("load_vocabulary"), "{err}");
}

#[test]
fn tf_idf_matches_keras() {
    for case in reference()["tf_idf"].as_array().unwrap() {
        let class = case["class_name"].as_str().unwrap();
        let kwargs = &case["kwargs"];
        let what = format!("{class}({kwargs})");
        let idf = array(&case["idf_weights"]);
        let expected = array(&case["outputs"]);
        let usize_of = |key: &str| kwargs.get(key).and_then(Value::as_u64).map(|n| n as usize);
        let pad = kwargs
            .get("pad_to_max_tokens")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let given_idf = kwargs.get("idf_weights").map(|w| {
            w.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect::<Vec<_>>()
        });
        match class {
            "TextVectorization" => {
                let mut builder = TextVectorization::builder()
                    .output_mode(OutputMode::TfIdf)
                    .pad_to_max_tokens(pad);
                if let Some(n) = usize_of("max_tokens") {
                    builder = builder.max_tokens(n);
                }
                if let Some(n) = usize_of("ngrams") {
                    builder = builder.ngrams(n);
                }
                if let Some(vocabulary) = kwargs.get("vocabulary") {
                    builder = builder
                        .vocabulary(strings(vocabulary))
                        .idf_weights(given_idf.clone().unwrap());
                }
                let mut layer = builder.build().unwrap();
                if let Some(texts) = case.get("adapt") {
                    layer.adapt(strings(texts)).unwrap();
                }
                assert_eq!(
                    layer.get_vocabulary(true).unwrap(),
                    strings(&case["vocabulary"]),
                    "{what}"
                );
                let weights = ArrayD::from_shape_vec(
                    vec![layer.lookup().idf_weights().len()],
                    layer.lookup().idf_weights().to_vec(),
                )
                .unwrap();
                assert_close(&weights, &idf, 1e-6, &what);
                let out = layer.call_encoded(&strings(&case["inputs"])).unwrap();
                assert_close(&out.into_dyn(), &expected, 1e-6, &what);
            }
            "StringLookup" => {
                let mut builder = StringLookup::builder()
                    .output_mode(OutputMode::TfIdf)
                    .pad_to_max_tokens(pad);
                if let Some(n) = usize_of("max_tokens") {
                    builder = builder.max_tokens(n);
                }
                if let Some(n) = usize_of("num_oov_indices") {
                    builder = builder.num_oov_indices(n);
                }
                if let Some(mask) = kwargs.get("mask_token").and_then(Value::as_str) {
                    builder = builder.mask_token(mask);
                }
                if let Some(vocabulary) = kwargs.get("vocabulary") {
                    builder = builder
                        .vocabulary(strings(vocabulary))
                        .idf_weights(given_idf.clone().unwrap());
                }
                let mut layer = builder.build().unwrap();
                if let Some(tokens) = case.get("adapt") {
                    layer.adapt(strings(tokens)).unwrap();
                }
                assert_eq!(
                    layer.get_vocabulary(true).unwrap(),
                    strings(&case["vocabulary"]),
                    "{what}"
                );
                let weights = ArrayD::from_shape_vec(
                    vec![layer.idf_weights().len()],
                    layer.idf_weights().to_vec(),
                )
                .unwrap();
                assert_close(&weights, &idf, 1e-6, &what);
                let rows: Vec<Vec<String>> = case["inputs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(strings)
                    .collect();
                let out = layer.call_encoded(&rows).unwrap();
                assert_close(&out.into_dyn(), &expected, 1e-6, &what);
                // The same through the Layer trait, on a string tensor.
                let flat =
                    ndarray::Array2::from_shape_vec((rows.len(), rows[0].len()), rows.concat())
                        .unwrap();
                let through = Layer::call(&layer, &Tensor::from(flat)).unwrap();
                assert_close(through.as_float().unwrap(), &expected, 1e-6, &what);
            }
            "IntegerLookup" => {
                let mut layer = IntegerLookup::builder()
                    .output_mode(OutputMode::TfIdf)
                    .mask_token(kwargs["mask_token"].as_i64().unwrap())
                    .build()
                    .unwrap();
                let data: Vec<i64> = case["adapt"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_i64().unwrap())
                    .collect();
                layer.adapt(data).unwrap();
                let vocabulary: Vec<i64> = case["vocabulary"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_i64().unwrap())
                    .collect();
                assert_eq!(layer.get_vocabulary(true).unwrap(), vocabulary, "{what}");
                let weights = ArrayD::from_shape_vec(
                    vec![layer.idf_weights().len()],
                    layer.idf_weights().to_vec(),
                )
                .unwrap();
                assert_close(&weights, &idf, 1e-6, &what);
                let rows: Vec<Vec<i64>> = case["inputs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| {
                        r.as_array()
                            .unwrap()
                            .iter()
                            .map(|v| v.as_i64().unwrap())
                            .collect()
                    })
                    .collect();
                let out = layer.call_encoded(&rows).unwrap();
                assert_close(&out.into_dyn(), &expected, 1e-6, &what);
            }
            other => panic!("{other}"),
        }
    }
    // Keras' rules: tf_idf with a vocabulary needs its weights, of the same length.
    let err = StringLookup::builder()
        .output_mode(OutputMode::TfIdf)
        .vocabulary(["a"])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("idf_weights"), "{err}");
    let err = StringLookup::builder()
        .output_mode(OutputMode::TfIdf)
        .vocabulary(["a", "b"])
        .idf_weights([1.0])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("same length"), "{err}");
    let err = StringLookup::builder()
        .vocabulary(["a"])
        .idf_weights([1.0])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("tf_idf"), "{err}");
}
