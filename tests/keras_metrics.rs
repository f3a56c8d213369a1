//! Metrics against tf_keras 2.21 (`tests/data/keras_metrics.json`, made by `keras_metrics.py`
//! beside it): the history of `fit(..., validation_data=...)` with
//! `compile(metrics=[...])`, `evaluate`, how `"accuracy"` resolves, and the tie rules.

mod common;

use std::sync::OnceLock;

use common::f32_tensor;
use ndkeras::metrics::{Metric, MetricKind};
use ndkeras::optimizers::SGD;
use ndkeras::prelude::*;
use serde_json::Value;

fn reference() -> &'static Value {
    static ROOT: OnceLock<Value> = OnceLock::new();
    ROOT.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/keras_metrics.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    })
}

fn ids(value: &Value) -> Tensor {
    Tensor::from(f32_tensor(value).mapv(|v| v as i64))
}

fn targets(value: &Value) -> Tensor {
    Tensor::from(f32_tensor(value))
}

fn metric(spec: &Value) -> Metric {
    match spec {
        Value::String(name) => name.parse().unwrap(),
        Value::Object(_) => {
            let config = &spec["config"];
            let k = config["k"].as_u64().unwrap() as usize;
            let name = config["name"].as_str().unwrap();
            match spec["class_name"].as_str().unwrap() {
                "TopKCategoricalAccuracy" => Metric::top_k_categorical_accuracy(k),
                "SparseTopKCategoricalAccuracy" => Metric::sparse_top_k_categorical_accuracy(k),
                other => panic!("metric {other}"),
            }
            .with_name(name)
        }
        other => panic!("metric {other}"),
    }
}

fn model_of(case: &Value) -> Sequential {
    common::sequential_from_case(case, metric)
}

fn close(actual: f32, expected: f64, what: &str) {
    assert!(
        (f64::from(actual) - expected).abs() <= 1e-6 + 1e-5 * expected.abs(),
        "{what}: {actual} vs Keras {expected}"
    );
}

#[test]
fn fit_history_and_evaluate_report_keras_metrics() {
    for case in reference()["training"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let mut model = model_of(case);
        let fit = &case["fit"];
        let options = FitOptions::default()
            .epochs(fit["epochs"].as_u64().unwrap() as usize)
            .batch_size(fit["batch_size"].as_u64().unwrap() as usize)
            .shuffle(false)
            .verbose(0)
            .validation_data(ids(&case["x_val"]), targets(&case["y_val"]));
        let history = model
            .fit(ids(&case["x"]), targets(&case["y"]), options)
            .unwrap();
        for (key, series) in case["expected"]["history"].as_object().unwrap() {
            let ours = history
                .get(key)
                .unwrap_or_else(|| panic!("{id}: no {key} in the history"));
            for (epoch, keras) in series.as_array().unwrap().iter().enumerate() {
                close(
                    ours[epoch],
                    keras.as_f64().unwrap(),
                    &format!("{id} {key} epoch {epoch}"),
                );
            }
        }
        let evaluated = model
            .evaluate_with_metrics(ids(&case["x"]), targets(&case["y"]))
            .unwrap();
        let names: Vec<&str> = evaluated.iter().map(|(n, _)| n.as_str()).collect();
        let keras_names: Vec<&str> = case["expected"]["metrics_names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert_eq!(names, keras_names, "{id}");
        for (name, value) in &evaluated {
            let keras = case["expected"]["evaluate"][name.as_str()]
                .as_f64()
                .unwrap();
            close(*value, keras, &format!("{id} evaluate {name}"));
        }
    }
}

#[test]
fn metric_functions_follow_keras_tie_rules() {
    for case in reference()["ties"]["functions"].as_array().unwrap() {
        let kwargs = &case["kwargs"];
        let k = kwargs["k"].as_u64().map(|k| k as usize);
        let kind = match case["function"].as_str().unwrap() {
            "binary_accuracy" => MetricKind::BinaryAccuracy {
                threshold: kwargs["threshold"].as_f64().unwrap_or(0.5) as f32,
            },
            "categorical_accuracy" => MetricKind::CategoricalAccuracy,
            "sparse_categorical_accuracy" => MetricKind::SparseCategoricalAccuracy,
            "top_k_categorical_accuracy" => {
                MetricKind::TopKCategoricalAccuracy { k: k.unwrap_or(5) }
            }
            "sparse_top_k_categorical_accuracy" => {
                MetricKind::SparseTopKCategoricalAccuracy { k: k.unwrap_or(5) }
            }
            other => panic!("function {other}"),
        };
        let values = Metric::new(kind)
            .values(&f32_tensor(&case["y_pred"]), &f32_tensor(&case["y_true"]))
            .unwrap();
        let keras = f32_tensor(&case["output"]);
        assert_eq!(
            values, keras,
            "{} {kwargs} {}",
            case["function"], case["note"]
        );
    }
}

#[test]
fn tied_predictions_in_a_model_score_as_in_keras() {
    for case in reference()["ties"]["models"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let mut model = model_of(case);
        let evaluated = model
            .evaluate_with_metrics(ids(&case["x"]), targets(&case["y"]))
            .unwrap();
        for (name, value) in &evaluated {
            let keras = case["expected"]["evaluate"][name.as_str()]
                .as_f64()
                .unwrap();
            close(*value, keras, &format!("{id} {name}"));
        }
    }
}

#[test]
fn metrics_that_cannot_work_are_refused_before_training() {
    let case = &reference()["training"][2]; // sparse categorical
    let mut model = model_of(case);
    let before: Vec<_> = model.layers().iter().map(|l| l.get_weights()).collect();
    // categorical_accuracy needs one-hot rows, not integer classes: refused before any
    // step (Keras compares argmax of a one-column label, always 0, and reports nonsense).
    model
        .compile_with_metrics(
            SGD::new(0.1).into(),
            Loss::SparseCategoricalCrossentropy,
            vec!["categorical_accuracy".parse().unwrap()],
        )
        .unwrap();
    let err = model
        .fit(
            ids(&case["x"]),
            targets(&case["y"]),
            FitOptions::default().verbose(0),
        )
        .unwrap_err();
    assert!(matches!(err, Error::IncompatibleShape { .. }), "{err}");
    let after: Vec<_> = model.layers().iter().map(|l| l.get_weights()).collect();
    assert_eq!(before, after, "nothing trained");
    // Names History could not tell apart.
    for metrics in [
        vec!["accuracy", "accuracy"],
        vec!["loss"],
        vec!["val_accuracy"],
        vec!["click_loss"],
    ] {
        let metrics: Vec<Metric> = metrics
            .iter()
            .map(|n| {
                n.parse::<Metric>()
                    .unwrap_or_else(|_| Metric::new(MetricKind::MeanAbsoluteError).with_name(*n))
            })
            .collect();
        assert!(
            model
                .compile_with_metrics(
                    SGD::new(0.1).into(),
                    Loss::SparseCategoricalCrossentropy,
                    metrics
                )
                .is_err()
        );
    }
}
