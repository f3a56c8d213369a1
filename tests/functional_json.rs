//! A functional model's Keras JSON against tf_keras 2.21 (`tests/data/keras_functional.json`,
//! made by `keras_functional.py` beside it): every training case's `model.to_json()` loads,
//! is written back identically (up to key order), predicts what Keras predicted with the
//! same weights, and a model built through `Graph` writes the JSON Keras wrote. Broken
//! configs are refused with an error that names what is wrong.

#![cfg(feature = "serde")]

mod common;

use std::sync::OnceLock;

use common::f32_tensor;
use ndkeras::prelude::*;
use serde_json::{Value, json};

fn reference() -> &'static Value {
    static ROOT: OnceLock<Value> = OnceLock::new();
    ROOT.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/keras_functional.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    })
}

fn training_cases() -> &'static [Value] {
    let cases = reference()["training"].as_array().unwrap();
    assert!(cases.len() >= 5, "the reference has the training cases");
    cases
}

fn keras_json(case: &Value) -> &str {
    case["expected"]["to_json"].as_str().unwrap()
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// An integer tensor as the `i64` ids a model takes, or a float one as `f32`.
fn tensor(value: &Value) -> Tensor {
    if value["dtype"].as_str().unwrap().starts_with("int") {
        Tensor::from(f32_tensor(value).mapv(|v| v as i64))
    } else {
        Tensor::from(f32_tensor(value))
    }
}

/// Gives each layer the weights Keras started from.
fn set_weights(model: &mut Model, weights: &Value) {
    common::functional::set_weights(model, weights);
}

fn assert_predictions(model: &mut Model, x: &Value, expected: &Value, what: &str) {
    let inputs: Vec<Tensor> = x.as_array().unwrap().iter().map(tensor).collect();
    let outputs = model.predict(inputs).unwrap();
    let expected = expected.as_array().unwrap();
    assert_eq!(outputs.len(), expected.len(), "{what}: outputs");
    for (actual, keras) in outputs.iter().zip(expected) {
        let keras = common::f64_tensor(keras);
        assert_eq!(actual.shape(), keras.shape(), "{what}");
        for (a, e) in actual.iter().zip(keras.iter()) {
            assert!(
                (f64::from(*a) - e).abs() <= 1e-6 + 1e-5 * e.abs(),
                "{what}: {a} vs Keras {e}"
            );
        }
    }
}

#[test]
fn every_keras_functional_json_round_trips() {
    for case in training_cases() {
        let id = case["id"].as_str().unwrap();
        assert_eq!(
            case["expected"]["to_json_roundtrip_identical"], true,
            "{id}: Keras' own round trip is identical"
        );
        let text = keras_json(case);
        let model = Model::from_json(text).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(parse(&model.to_json()), parse(text), "{id}: to_json");
        assert_eq!(
            model.get_config(),
            case["expected"]["get_config"],
            "{id}: get_config"
        );
    }
}

#[test]
fn a_loaded_model_keeps_names_inputs_and_outputs() {
    for case in training_cases() {
        let id = case["id"].as_str().unwrap();
        let description = &case["model"];
        let model = Model::from_json(keras_json(case)).unwrap();
        assert_eq!(model.name(), description["name"], "{id}: model name");
        let inputs: Vec<&str> = description["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap())
            .collect();
        assert_eq!(model.input_names(), inputs, "{id}: inputs");
        let dtypes: Vec<String> = model.input_dtypes().iter().map(|d| d.to_string()).collect();
        let keras_dtypes: Vec<&str> = description["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["dtype"].as_str().unwrap())
            .collect();
        assert_eq!(dtypes, keras_dtypes, "{id}: input dtypes");
        assert_eq!(
            model.output_names(),
            description["output_names"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap())
                .collect::<Vec<_>>(),
            "{id}: outputs"
        );
        // Keras' `model.layers` without the inputs, in Keras' order.
        let layers: Vec<&str> = model.layers().iter().map(|l| l.name()).collect();
        let keras_layers: Vec<&str> = description["model_layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .filter(|n| !inputs.contains(n))
            .collect();
        assert_eq!(layers, keras_layers, "{id}: layers");
    }
}

#[test]
fn a_loaded_model_prints_the_summary_keras_prints() {
    for case in training_cases() {
        let id = case["id"].as_str().unwrap();
        let model = Model::from_json(keras_json(case)).unwrap();
        assert_eq!(
            model.summary(),
            case["expected"]["summary"]
                .as_str()
                .unwrap()
                .trim_end_matches('\n'),
            "{id}"
        );
    }
}

#[test]
fn a_loaded_model_predicts_as_keras_with_the_same_weights() {
    for case in training_cases() {
        let id = case["id"].as_str().unwrap();
        let mut model = Model::from_json(keras_json(case)).unwrap();
        set_weights(&mut model, &case["initial_weights"]);
        assert_predictions(
            &mut model,
            &case["x"],
            &case["expected"]["predict_initial"],
            &format!("{id}: predict after from_json"),
        );
    }
}

fn built_model(case: &Value) -> Model {
    common::functional::graph_model(case)
}

#[test]
fn a_model_built_through_graph_writes_the_json_keras_wrote() {
    for case in training_cases() {
        let id = case["id"].as_str().unwrap();
        let model = built_model(case);
        assert_eq!(parse(&model.to_json()), parse(keras_json(case)), "{id}");
    }
}

#[test]
fn layers_come_out_in_keras_order_whatever_the_order_they_were_added_in() {
    // The ranker's layers added last to first: Keras orders by depth, not by creation.
    let case = training_cases()
        .iter()
        .find(|c| c["id"] == "ranker_shared_table")
        .unwrap();
    let mut reversed = case.clone();
    let layers = reversed["model"]["layers"].as_array_mut().unwrap();
    layers.reverse();
    let model = built_model(&reversed);
    assert_eq!(parse(&model.to_json()), parse(keras_json(case)));
}

#[test]
fn layers_listed_after_their_readers_still_load() {
    // Keras defers a call whose inputs are not made yet; so does from_config.
    let case = &training_cases()[0];
    let mut config = parse(keras_json(case));
    config["config"]["layers"].as_array_mut().unwrap().reverse();
    let mut model = Model::from_json(&config.to_string()).unwrap();
    assert_eq!(parse(&model.to_json()), parse(keras_json(case)));
    set_weights(&mut model, &case["initial_weights"]);
    assert_predictions(
        &mut model,
        &case["x"],
        &case["expected"]["predict_initial"],
        "reversed layers",
    );
}

/// Two float inputs and a `Minimum` named explicitly, written by hand in Keras 2's format.
fn minimum_config(name: &str) -> Value {
    let input = |n: &str| {
        json!({"module": "keras.layers", "class_name": "InputLayer", "registered_name": null,
               "config": {"batch_input_shape": [null, 3], "dtype": "float32", "sparse": false,
                          "ragged": false, "name": n, "optional": false},
               "name": n, "inbound_nodes": []})
    };
    json!({"class_name": "Functional", "keras_version": "2.21.0", "backend": "tensorflow",
        "config": {"name": "pair", "trainable": true,
            "layers": [input("p"), input("q"),
                {"module": "keras.layers", "class_name": "Minimum", "registered_name": null,
                 "config": {"name": name, "trainable": true, "dtype": "float32"},
                 "build_config": {"input_shape": [[null, 3], [null, 3]]},
                 "name": name, "inbound_nodes": [[["p", 0, 0, {}], ["q", 0, 0, {}]]]}],
            "input_layers": [["p", 0, 0], ["q", 0, 0]],
            "output_layers": [[name, 0, 0]]}})
}

#[test]
fn explicit_names_from_a_config_do_not_advance_the_counters() {
    // No other test of this file makes a Minimum, so its counter is this test's alone.
    let first = Minimum::new();
    let config = minimum_config("minimum_5");
    let mut model = Model::from_json(&config.to_string()).unwrap();
    assert_eq!(model.name(), "pair");
    assert_eq!(model.layers()[0].name(), "minimum_5");
    let second = Minimum::new();
    let first_count: usize = first
        .name()
        .strip_prefix("minimum")
        .and_then(|s| s.strip_prefix('_'))
        .map_or(0, |n| n.parse().unwrap());
    assert_eq!(second.name(), format!("minimum_{}", first_count + 1));
    assert_eq!(parse(&model.to_json()), config);
    let out = model
        .predict(vec![
            Tensor::from(ndarray::array![[1.0f32, 5.0, 3.0]].into_dyn()),
            Tensor::from(ndarray::array![[2.0f32, 4.0, 3.0]].into_dyn()),
        ])
        .unwrap();
    assert_eq!(out[0], ndarray::array![[1.0f32, 4.0, 3.0]].into_dyn());
}

#[test]
fn an_input_that_is_also_an_output_and_an_unused_input_round_trip() {
    let mut config = minimum_config("low");
    config["config"]["output_layers"] = json!([["low", 0, 0], ["p", 0, 0]]);
    // An input no output needs: Keras lists it first among the entries of depth 0.
    let mut unused = config["config"]["layers"][0].clone();
    unused["name"] = json!("r");
    unused["config"]["name"] = json!("r");
    let layers = config["config"]["layers"].as_array_mut().unwrap();
    layers.insert(2, unused);
    config["config"]["input_layers"] = json!([["p", 0, 0], ["q", 0, 0], ["r", 0, 0]]);
    let model = Model::from_json(&config.to_string()).unwrap();
    assert_eq!(model.input_names(), ["p", "q", "r"]);
    assert_eq!(model.output_names(), ["low", "p"]);
    assert_eq!(parse(&model.to_json()), config);
}

#[test]
fn a_frozen_model_stays_frozen() {
    let case = &training_cases()[0];
    let mut config = parse(keras_json(case));
    config["config"]["trainable"] = json!(false);
    let model = Model::from_json(&config.to_string()).unwrap();
    let weighted: Vec<_> = model
        .layers()
        .iter()
        .filter(|l| !l.get_weights().is_empty())
        .collect();
    assert_eq!(weighted.len(), 3);
    assert!(weighted.iter().all(|l| !l.is_trainable()));
    assert_eq!(parse(&model.to_json())["config"]["trainable"], false);
}

#[test]
fn a_long_chain_listed_backwards_loads_quickly() {
    // 400 Dense layers, listed from the output back: every call waits for the next entry.
    let n = 400;
    let mut layers = vec![json!({"class_name": "InputLayer",
        "config": {"batch_input_shape": [null, 2], "dtype": "float32", "name": "x"},
        "name": "x", "inbound_nodes": []})];
    for i in (0..n).rev() {
        let source = if i == 0 {
            "x".to_string()
        } else {
            format!("d{}", i - 1)
        };
        layers.push(json!({"class_name": "Dense",
            "config": {"name": format!("d{i}"), "units": 2},
            "name": format!("d{i}"), "inbound_nodes": [[[source, 0, 0, {}]]]}));
    }
    let config = json!({"name": "chain", "layers": layers,
        "input_layers": [["x", 0, 0]], "output_layers": [[format!("d{}", n - 1), 0, 0]]});
    let model = Model::from_config(&config).unwrap();
    assert_eq!(model.layers().len(), n);
    // Written back in Keras' order: the input first, then d0, d1, ...
    let written = model.get_config();
    assert_eq!(written["layers"][1]["name"], "d0");
    assert_eq!(written["layers"][n]["name"], format!("d{}", n - 1));
}

// ----- hostile configs ---------------------------------------------------------------------

/// A change to a config, and words its error names.
type Edit = (Box<dyn Fn(&mut Value)>, &'static [&'static str]);

/// The recommender's config, changed by `edit`, read back: the error.
fn error_of(edit: impl FnOnce(&mut Value)) -> Error {
    let mut config = parse(keras_json(&training_cases()[0]));
    edit(&mut config);
    match Model::from_json(&config.to_string()) {
        Ok(_) => panic!("the edited config was accepted"),
        Err(err) => err,
    }
}

/// The entry named `name` in `layers`.
fn entry<'a>(config: &'a mut Value, name: &str) -> &'a mut Value {
    config["config"]["layers"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["name"] == name)
        .unwrap()
}

fn assert_invalid(err: &Error, words: &[&str]) {
    assert!(
        matches!(err, Error::InvalidArgument { .. }),
        "expected InvalidArgument, got {err:?}"
    );
    let message = err.to_string();
    for word in words {
        assert!(message.contains(word), "{message:?} lacks {word:?}");
    }
}

#[test]
fn an_inbound_node_naming_an_unknown_layer_is_refused() {
    let err = error_of(|c| entry(c, "dense")["inbound_nodes"] = json!([[["nope", 0, 0, {}]]]));
    assert_invalid(
        &err,
        &["layer \"dense\"", "inbound_nodes[0][0]", "nope", "\"dot\""],
    );
}

#[test]
fn a_node_index_beyond_the_calls_of_a_layer_is_refused() {
    let err =
        error_of(|c| entry(c, "flatten")["inbound_nodes"] = json!([[["embedding", 1, 0, {}]]]));
    assert_invalid(
        &err,
        &[
            "layer \"flatten\"",
            "node index below 1",
            "\"embedding\" has 1 call",
        ],
    );
    let err = error_of(|c| entry(c, "embedding")["inbound_nodes"] = json!([[["user", 3, 0, {}]]]));
    assert_invalid(&err, &["layer \"embedding\"", "node index below 1"]);
    let err =
        error_of(|c| entry(c, "embedding")["inbound_nodes"] = json!([[["user", u64::MAX, 0, {}]]]));
    assert_invalid(&err, &["node index below 1"]);
    let err = error_of(|c| entry(c, "embedding")["inbound_nodes"] = json!([[["user", -1, 0, {}]]]));
    assert_invalid(&err, &["inbound_nodes[0][0]", "[layer_name, node_index"]);
}

#[test]
fn calls_that_wait_on_each_other_are_a_cycle_not_a_hang() {
    // flatten reads dense, and dense (through dot) reads flatten.
    let err = error_of(|c| entry(c, "flatten")["inbound_nodes"] = json!([[["dense", 0, 0, {}]]]));
    assert_invalid(&err, &["cycle"]);
    // A layer reading its own output.
    let err = error_of(|c| entry(c, "dense")["inbound_nodes"] = json!([[["dense", 0, 0, {}]]]));
    assert_invalid(&err, &["layer \"dense\"", "cycle"]);
    // A shared layer whose first call reads its second.
    let err = error_of(|c| {
        entry(c, "embedding")["inbound_nodes"] =
            json!([[["embedding", 1, 0, {}]], [["user", 0, 0, {}]]])
    });
    assert_invalid(&err, &["layer \"embedding\"", "cycle"]);
}

#[test]
fn missing_fields_are_named() {
    let cases: Vec<Edit> = vec![
        (
            Box::new(|c| {
                c["config"].as_object_mut().unwrap().remove("layers");
            }),
            &["Functional config", "`layers`", "missing"],
        ),
        (
            Box::new(|c| {
                c["config"].as_object_mut().unwrap().remove("input_layers");
            }),
            &["`input_layers`", "missing"],
        ),
        (
            Box::new(|c| {
                c["config"].as_object_mut().unwrap().remove("output_layers");
            }),
            &["`output_layers`", "missing"],
        ),
        (
            Box::new(|c| {
                entry(c, "dense")
                    .as_object_mut()
                    .unwrap()
                    .remove("inbound_nodes");
            }),
            &["\"dense\"", "`inbound_nodes`", "missing"],
        ),
        (
            Box::new(|c| {
                entry(c, "user")["config"]
                    .as_object_mut()
                    .unwrap()
                    .remove("batch_input_shape");
            }),
            &["InputLayer \"user\"", "`batch_input_shape`", "missing"],
        ),
        (
            Box::new(|c| {
                c["config"]["layers"][3]
                    .as_object_mut()
                    .unwrap()
                    .remove("name");
            }),
            &["`layers[3].name`", "missing"],
        ),
        (
            Box::new(|c| {
                entry(c, "dot").as_object_mut().unwrap().remove("config");
            }),
            &["\"dot\"", "`config`", "missing"],
        ),
        (
            Box::new(|c| {
                entry(c, "dot")["config"]
                    .as_object_mut()
                    .unwrap()
                    .remove("axes");
            }),
            &["Dot config", "`axes`", "missing"],
        ),
        (
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("config");
            }),
            &["Functional config", "`config`", "missing"],
        ),
    ];
    for (edit, words) in cases {
        assert_invalid(&error_of(edit), words);
    }
}

#[test]
fn ill_formed_entries_are_refused() {
    let cases: Vec<Edit> = vec![
        (
            Box::new(|c| entry(c, "dense")["inbound_nodes"] = json!("embedding")),
            &["\"dense\"", "inbound_nodes", "a list of calls"],
        ),
        (
            Box::new(|c| entry(c, "dense")["inbound_nodes"] = json!([[["dot", 0, 1, {}]]])),
            &["\"dense\"", "tensor index 0"],
        ),
        (
            Box::new(|c| {
                entry(c, "dense")["inbound_nodes"] = json!([[["dot", 0, 0, {"training": true}]]])
            }),
            &["\"dense\"", "call arguments ndkeras knows"],
        ),
        (
            // Keras 3's format.
            Box::new(|c| entry(c, "dense")["inbound_nodes"] = json!([{"args": [], "kwargs": {}}])),
            &["\"dense\"", "inbound_nodes[0]", "Keras 2's format"],
        ),
        (
            Box::new(|c| entry(c, "dense")["inbound_nodes"] = json!([])),
            &["\"dense\"", "at least one call"],
        ),
        (
            Box::new(|c| entry(c, "user")["inbound_nodes"] = json!([[["item", 0, 0, {}]]])),
            &["\"user\"", "an input is not called"],
        ),
        (
            Box::new(|c| entry(c, "dot")["name"] = json!("flatten")),
            &["layers[", "a name no other entry has"],
        ),
        (
            Box::new(|c| entry(c, "dot")["config"]["name"] = json!("other")),
            &["\"dot\"", "config.name", "other"],
        ),
        (
            Box::new(|c| entry(c, "user")["config"]["sparse"] = json!(true)),
            &["InputLayer \"user\"", "sparse"],
        ),
        (
            Box::new(|c| entry(c, "user")["config"]["batch_input_shape"] = json!([])),
            &["InputLayer \"user\"", "batch axis"],
        ),
        (
            Box::new(|c| entry(c, "user")["config"]["batch_input_shape"] = json!([null, -1])),
            &["InputLayer \"user\"", "batch_input_shape"],
        ),
        (
            Box::new(|c| c["config"]["input_layers"] = json!([["dense", 0, 0]])),
            &["input_layers[0]", "InputLayer"],
        ),
        (
            Box::new(|c| c["config"]["input_layers"] = json!([["user", 0, 0], ["user", 0, 0]])),
            &["input_layers[1]", "once"],
        ),
        (
            Box::new(|c| c["config"]["output_layers"] = json!([["dense", 1, 0]])),
            &["output_layers[0]", "naming a call"],
        ),
        (
            Box::new(|c| c["config"]["output_layers"] = json!("dense")),
            &["output_layers", "a list of [layer_name"],
        ),
        (
            Box::new(|c| c["config"]["layers"] = json!({"dense": {}})),
            &["`layers`", "a list of layer entries"],
        ),
        (
            Box::new(|c| c["config"]["layers"][2] = json!(7)),
            &["`layers[2]`", "a layer entry"],
        ),
        (
            Box::new(|c| c["config"]["trainable"] = json!("yes")),
            &["trainable", "true or false"],
        ),
    ];
    for (edit, words) in cases {
        assert_invalid(&error_of(edit), words);
    }
}

#[test]
fn unknown_classes_and_bad_text_are_refused() {
    let err = error_of(|c| c["class_name"] = json!("Sequential"));
    assert!(
        matches!(&err, Error::UnknownName { kind: "model class", name, .. } if name == "Sequential"),
        "{err:?}"
    );
    let err = error_of(|c| entry(c, "dot")["class_name"] = json!("Conv2D"));
    assert!(
        matches!(&err, Error::UnknownName { kind: "layer class", name, .. } if name == "Conv2D"),
        "{err:?}"
    );
    let err = error_of(|c| entry(c, "user")["config"]["dtype"] = json!("complex64"));
    assert!(
        matches!(&err, Error::UnknownName { kind: "input dtype", name, .. } if name == "complex64"),
        "{err:?}"
    );
    let err = Model::from_json("{\"class_name\": \"Functional\", ").unwrap_err();
    assert!(matches!(err, Error::InvalidFile { .. }), "{err:?}");
    assert!(err.to_string().contains("not valid JSON"), "{err}");
}

#[test]
fn a_call_on_shapes_the_layer_cannot_take_is_an_error() {
    // dot's axes=1 on a (None, 4) and a (None, 1, 4) tensor: the lengths disagree.
    let err = error_of(|c| {
        entry(c, "dot")["inbound_nodes"] =
            json!([[["flatten", 0, 0, {}], ["embedding_1", 0, 0, {}]]])
    });
    assert_invalid(&err, &["layer \"dot\"", "(None, 4), (None, 1, 4)"]);
}

/// Every value of a Keras config replaced by junk, and every key removed, in turn: each
/// read ends, with a model or an error, and never panics.
#[test]
fn no_single_change_to_a_config_makes_reading_panic() {
    fn paths(value: &Value, at: String, out: &mut Vec<String>) {
        out.push(at.clone());
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    paths(
                        v,
                        format!("{at}/{}", key.replace('~', "~0").replace('/', "~1")),
                        out,
                    );
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    paths(v, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let junk = [
        json!(null),
        json!(-1),
        json!(0),
        json!(2),
        json!(0.5),
        json!("x"),
        json!([]),
        json!({}),
        json!(true),
    ];
    for case in training_cases().iter().take(3) {
        let original = parse(keras_json(case));
        let mut all = Vec::new();
        paths(&original, String::new(), &mut all);
        for path in all.iter().filter(|p| !p.is_empty()) {
            for value in &junk {
                let mut edited = original.clone();
                *edited.pointer_mut(path).unwrap() = value.clone();
                let _ = Model::from_json(&edited.to_string());
            }
            let (parent, key) = path.rsplit_once('/').unwrap();
            let mut edited = original.clone();
            match edited.pointer_mut(parent).unwrap() {
                Value::Object(map) => {
                    map.remove(&key.replace("~1", "/").replace("~0", "~"));
                }
                Value::Array(items) => {
                    items.remove(key.parse::<usize>().unwrap());
                }
                _ => unreachable!(),
            }
            let _ = Model::from_json(&edited.to_string());
        }
    }
}
