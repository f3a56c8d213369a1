//! Names as tf_keras 2.21 gives them after `model_from_json`: an explicit name (from a
//! config) neither advances nor is avoided by the counter of automatic names. One test in its
//! own binary, because the counter is process-wide.

#![cfg(feature = "serde")]

use ndkeras::config::layer_from_config;
use ndkeras::prelude::*;
use serde_json::{Value, json};

#[test]
fn names_after_from_json_are_those_tf_keras_gives() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/keras_json.json");
    let root: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let scenario = &root["names_after_loading"];
    let case = root["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == scenario["loads"])
        .unwrap();
    Sequential::from_json(case["to_json"].as_str().unwrap()).unwrap();
    for step in scenario["steps"].as_array().unwrap() {
        let class = step["class_name"].as_str().unwrap();
        let name = match (class, step["explicit_name"].as_str()) {
            ("Embedding", Some(explicit)) => {
                let config = json!({"class_name": "Embedding", "config": {"name": explicit, "input_dim": 3, "output_dim": 2}});
                layer_from_config(&config).unwrap().name().to_string()
            }
            ("Embedding", None) => Embedding::new(3, 2).name().to_string(),
            ("Sequential", None) => Sequential::new().name().to_string(),
            ("Dense", None) => Dense::new(1).name().to_string(),
            ("Flatten", None) => Flatten::new().name().to_string(),
            ("Dropout", None) => Dropout::new(0.5).name().to_string(),
            ("GlobalAveragePooling1D", None) => GlobalAveragePooling1D::new().name().to_string(),
            other => panic!("unexpected step {other:?}"),
        };
        assert_eq!(name, step["name"].as_str().unwrap(), "{step}");
    }
}
