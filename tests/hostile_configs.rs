//! Hostile Keras JSON configs: a short text can ask for any table, any initializer and any
//! nesting. Each ends in `Ok` or an `Err` that says what was wrong: never a panic, an abort on
//! a failed allocation, or a build that runs for minutes.

#![cfg(feature = "serde")]

use ndkeras::prelude::*;
use serde_json::json;

/// A Keras 2 `model.to_json()` of one Embedding that is built as soon as it is read.
fn embedding_model(config: serde_json::Value) -> String {
    let mut layer = json!({
        "name": "embedding",
        "trainable": true,
        "batch_input_shape": [null, 4],
        "dtype": "float32",
        "input_dim": 10,
        "output_dim": 4,
        "embeddings_initializer": {"class_name": "RandomUniform", "config": {"minval": -0.05, "maxval": 0.05, "seed": null}},
        "embeddings_regularizer": null,
        "activity_regularizer": null,
        "embeddings_constraint": null,
        "mask_zero": false,
        "input_length": 4,
    });
    for (key, value) in config.as_object().unwrap() {
        layer[key] = value.clone();
    }
    json!({
        "class_name": "Sequential",
        "config": {"name": "sequential", "layers": [
            {"class_name": "Embedding", "config": layer},
        ]},
    })
    .to_string()
}

fn error_of(text: &str) -> Error {
    match Sequential::from_json(text) {
        Ok(model) => panic!("accepted: {}", model.to_json()),
        Err(error) => error,
    }
}

#[test]
fn tables_that_cannot_exist_are_errors() {
    // 2^40 x 2^40 overflows usize; 10^9 x 64 floats (256 GB) cannot be allocated.
    let err = error_of(&embedding_model(
        json!({"input_dim": 1u64 << 40, "output_dim": 1u64 << 40}),
    ));
    assert!(matches!(err, Error::ShapeOverflow { .. }), "{err:?}");
    let err = error_of(&embedding_model(
        json!({"input_dim": 1_000_000_000u64, "output_dim": 64}),
    ));
    assert!(matches!(err, Error::Allocation { .. }), "{err:?}");
    assert!(err.to_string().contains("embeddings table"), "{err}");
    // The same through every initializer family (Orthogonal refuses such a shape before
    // anything is allocated: see below).
    for initializer in [
        json!({"class_name": "GlorotNormal", "config": {"seed": 1}}),
        json!({"class_name": "Identity", "config": {"gain": 1.0}}),
        json!({"class_name": "Constant", "config": {"value": 0.5}}),
    ] {
        let err = error_of(&embedding_model(json!({
            "input_dim": 1_000_000_000u64,
            "output_dim": 64,
            "embeddings_initializer": initializer,
        })));
        assert!(matches!(err, Error::Allocation { .. }), "{err:?}");
    }
}

#[test]
fn a_large_orthogonal_table_from_a_short_config_is_orthogonal() {
    // 200,000 x 64 from a 400-byte config: a QR factorisation Keras would run too.
    let model = Sequential::from_json(&embedding_model(json!({
        "input_dim": 200_000,
        "output_dim": 64,
        "embeddings_initializer": {"class_name": "Orthogonal", "config": {"gain": 2.0, "seed": 5}},
    })))
    .unwrap();
    let table = model.layer::<Embedding>(0).unwrap().embeddings().unwrap();
    // Columns orthogonal, of norm `gain`: spot-check two of them.
    let (a, b) = (table.column(0), table.column(63));
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let norm: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum();
    assert!(dot.abs() < 1e-3, "{dot}");
    assert!((norm - 4.0).abs() < 1e-3, "{norm}");
}

#[test]
fn an_orthogonal_table_whose_factorisation_would_take_hours_is_refused() {
    // 8192 x 8192 (256 MB, within a 4 GiB limit): about 8x the work ndkeras accepts.
    let err = error_of(&embedding_model(json!({
        "input_dim": 8192,
        "output_dim": 8192,
        "embeddings_initializer": {"class_name": "Orthogonal", "config": {"gain": 1.0, "seed": 1}},
    })));
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    for part in ["Orthogonal", "(8192, 8192)", "2^36", "weights"] {
        assert!(err.to_string().contains(part), "{err} lacks {part}");
    }
    // The largest square table accepted builds (a 1024 x 1024 check keeps the test short).
    let model = Sequential::from_json(&embedding_model(json!({
        "input_dim": 1024,
        "output_dim": 1024,
        "embeddings_initializer": {"class_name": "Orthogonal", "config": {"gain": 1.0, "seed": 1}},
    })))
    .unwrap();
    let table = model.layer::<Embedding>(0).unwrap().embeddings().unwrap();
    let (a, b) = (table.row(0), table.row(1023));
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    assert!(dot.abs() < 1e-4, "{dot}");
}

#[test]
fn parameters_out_of_range_are_named() {
    let cases = [
        (
            json!({"embeddings_initializer": {"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 1e300, "seed": null}}}),
            "stddev",
        ),
        (
            json!({"embeddings_initializer": {"class_name": "RandomUniform", "config": {"minval": 1.0, "maxval": -1.0, "seed": null}}}),
            "minval",
        ),
        (
            json!({"embeddings_initializer": {"class_name": "VarianceScaling", "config": {"scale": -1.0, "mode": "fan_in", "distribution": "uniform", "seed": null}}}),
            "scale",
        ),
        (json!({"input_dim": 0}), "input_dim"),
        (json!({"input_dim": -3}), "input_dim"),
        (json!({"output_dim": "64"}), "output_dim"),
        (json!({"output_dim": 1.5}), "output_dim"),
        (json!({"input_length": -1}), "input_length"),
    ];
    for (config, parameter) in cases {
        let err = error_of(&embedding_model(config.clone()));
        assert!(
            err.to_string().contains(parameter),
            "{config}: {err} does not name {parameter}"
        );
    }
}

#[test]
fn malformed_and_deeply_nested_json_is_an_error() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    for text in [
        "",
        "{",
        "null",
        "[]",
        "{\"class_name\": \"Sequential\"}",
        "{\"class_name\": \"Sequential\", \"config\": {\"layers\": {}}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"layers\": [null]}}",
        "{\"class_name\": \"Sequential\", \"config\": {\"layers\": [{\"class_name\": \"Embedding\"}]}}",
        deep.as_str(),
    ] {
        let err = error_of(text);
        assert!(!err.to_string().is_empty());
    }
    let nested_config = embedding_model(json!({"input_length": [[[[[[1]]]]]]}));
    assert!(Sequential::from_json(&nested_config).is_err());
}

#[test]
fn a_shape_with_many_axes_is_handled() {
    // 10,000 axes of length 1: a valid (if odd) Keras shape; the model builds or refuses it
    // with an error, in either case without a panic.
    let lengths: Vec<u64> = vec![1; 10_000];
    let text = embedding_model(json!({"input_length": lengths, "batch_input_shape": null}));
    match Sequential::from_json(&text) {
        Ok(model) => assert_eq!(model.output_shape().unwrap().len(), 10_002),
        Err(error) => assert!(!error.to_string().is_empty()),
    }
}
