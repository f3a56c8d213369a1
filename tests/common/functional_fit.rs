//! Comparing a fit with tf_keras' record of it: the epoch logs (keys in Keras' order and
//! values), `History`, `evaluate(return_dict=True)` and the weights, as
//! `tests/data/keras_functional_fit.json` writes them (`history_keys` + `history`,
//! `evaluate_keys` + `evaluate`, `final_weights`).
//!
//! Included by `tests/functional_fit.rs` as `#[path = "common/functional_fit.rs"] mod fit;`
//! beside `mod common;` (it uses `crate::common`), so `common/mod.rs` and the other test
//! binaries stay as they are.

use ndkeras::model::callbacks::{Callback, Control};
use ndkeras::prelude::*;
use serde_json::Value;

/// The tolerance of the Keras comparisons: rtol 1e-5, with atol 1e-6 for values near zero
/// (see `keras_functional.py`).
pub fn close(actual: f32, expected: f64, what: &str) {
    assert!(
        (f64::from(actual) - expected).abs() <= 1e-6 + 1e-5 * expected.abs(),
        "{what}: {actual} vs Keras {expected}"
    );
}

/// The strings of a JSON list.
pub fn strings(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Records the logs every epoch ends with (their keys in order: Keras' `History` takes its
/// key order from the first epoch's logs).
#[derive(Debug, Default)]
pub struct EpochLogs(pub Vec<Vec<(String, f32)>>);

impl Callback for EpochLogs {
    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        logs: &[(String, f32)],
        _model: &mut Model,
    ) -> ndkeras::Result<Control> {
        self.0.push(logs.to_vec());
        Ok(Control::Continue)
    }
}

/// The keys of the epoch logs, checked to be the same in every epoch.
pub fn log_keys(logs: &EpochLogs, id: &str) -> Vec<String> {
    let first: Vec<String> = logs.0[0].iter().map(|(k, _)| k.clone()).collect();
    for (epoch, epoch_logs) in logs.0.iter().enumerate() {
        let keys: Vec<&String> = epoch_logs.iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            first.iter().collect::<Vec<_>>(),
            "{id}: keys of epoch {epoch}"
        );
    }
    first
}

/// Every key `History::get` answers, in the order of its fields (`loss`, the outputs'
/// losses, `val_loss`, the rest).
pub fn history_keys(history: &History) -> Vec<String> {
    let mut keys = vec!["loss".to_string()];
    keys.extend(history.output_losses.iter().map(|(k, _)| k.clone()));
    if !history.val_loss.is_empty() {
        keys.push("val_loss".to_string());
    }
    keys.extend(history.metrics.iter().map(|(k, _)| k.clone()));
    keys
}

/// Each epoch's logged values and `History`'s series against Keras' `history`.
pub fn assert_history_values(logs: &EpochLogs, history: &History, expected: &Value, id: &str) {
    let epochs = expected["epochs_run"].as_u64().unwrap() as usize;
    assert_eq!(logs.0.len(), epochs, "{id}: epochs logged");
    assert_eq!(history.epochs(), epochs, "{id}: History's epochs");
    for key in strings(&expected["history_keys"]) {
        let keras = expected["history"][&key].as_array().unwrap();
        let series = history
            .get(&key)
            .unwrap_or_else(|| panic!("{id}: History has no {key}"));
        assert_eq!(series.len(), keras.len(), "{id}: History[{key}] length");
        for (epoch, k) in keras.iter().enumerate() {
            let k = k.as_f64().unwrap();
            close(
                series[epoch],
                k,
                &format!("{id}: History[{key}] epoch {epoch}"),
            );
            let logged = logs.0[epoch]
                .iter()
                .find(|(name, _)| *name == key)
                .unwrap_or_else(|| panic!("{id}: no {key} in the logs of epoch {epoch}"))
                .1;
            close(logged, k, &format!("{id}: logs[{key}] epoch {epoch}"));
        }
    }
}

/// `evaluate`'s results: exactly Keras' keys in Keras' order, and its values.
pub fn assert_evaluate(ours: &[(String, f32)], expected: &Value, id: &str) {
    let keys: Vec<&str> = ours.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        strings(&expected["evaluate_keys"]),
        "{id}: evaluate's keys"
    );
    for (key, value) in ours {
        close(
            *value,
            expected["evaluate"][key].as_f64().unwrap(),
            &format!("{id}: evaluate[{key}]"),
        );
    }
}

/// Every weight of `expected` (Keras paths `layer/variable`) against the model's.
pub fn assert_weights(model: &Model, expected: &Value, id: &str) {
    for weight in expected.as_array().unwrap() {
        let path = weight["name"].as_str().unwrap();
        let (layer, variable) = path.split_once('/').unwrap();
        let layer = model
            .get_layer(layer)
            .unwrap_or_else(|| panic!("{id}: no layer {layer}"));
        let position = layer
            .weight_names()
            .iter()
            .position(|n| n == variable)
            .unwrap_or_else(|| panic!("{id}: no weight {path}"));
        let actual = &layer.get_weights()[position];
        let keras = crate::common::f64_tensor(weight);
        assert_eq!(actual.shape(), keras.shape(), "{id}: {path}");
        for (i, (a, e)) in actual.iter().zip(keras.iter()).enumerate() {
            close(*a, *e, &format!("{id}: {path} element {i}"));
        }
    }
}

/// An integer tensor as the `i64` ids a model takes, a float one as `f32`.
pub fn tensor(value: &Value) -> Tensor {
    if value["dtype"].as_str().unwrap().starts_with("int") {
        Tensor::from(crate::common::f32_tensor(value).mapv(|v| v as i64))
    } else {
        Tensor::from(crate::common::f32_tensor(value))
    }
}

/// The tensors of a JSON list.
pub fn tensors(list: &Value) -> Vec<Tensor> {
    list.as_array().unwrap().iter().map(tensor).collect()
}

/// The functional model of a case with Keras' initial weights, compiled as Keras was
/// (`compile.loss` one name or one per output, `loss_weights`, `metrics` by name).
pub fn compiled_graph_model(case: &Value) -> Model {
    let mut model = crate::common::functional::graph_model(case);
    crate::common::functional::set_weights(&mut model, &case["initial_weights"]);
    let compile = &case["compile"];
    let optimizer = crate::common::optimizer_from_keras(
        compile["optimizer"]["class_name"].as_str().unwrap(),
        &compile["optimizer"]["config"],
    );
    let losses: Vec<Loss> = match &compile["loss"] {
        Value::String(name) => vec![name.parse().unwrap()],
        names => strings(names).iter().map(|n| n.parse().unwrap()).collect(),
    };
    let loss_weights = compile["loss_weights"]
        .as_array()
        .map(|w| w.iter().map(|v| v.as_f64().unwrap() as f32).collect());
    let metrics = strings(&compile["metrics"])
        .iter()
        .map(|m| m.parse().unwrap())
        .collect();
    model
        .compile_with_metrics(optimizer, losses, loss_weights, metrics)
        .unwrap();
    model
}
