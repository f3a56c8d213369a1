//! Callbacks against tf_keras 2.21 (`tests/data/keras_callbacks.json`, made by
//! `keras_callbacks.py` beside it): where EarlyStopping stops, its best epoch, the weights it
//! restores, the epochs ModelCheckpoint saves, and LearningRateScheduler's rates, for one
//! model whose validation loss has its minimum at the third epoch.

mod common;

use std::sync::OnceLock;

use common::f32_tensor;
use ndkeras::model::callbacks::{
    Callback, EarlyStopping, LearningRateScheduler, Mode, ModelCheckpoint,
};
use ndkeras::prelude::*;
use serde_json::Value;

fn reference() -> &'static Value {
    static ROOT: OnceLock<Value> = OnceLock::new();
    ROOT.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/keras_callbacks.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    })
}

fn ids(value: &Value) -> Tensor {
    Tensor::from(f32_tensor(value).mapv(|v| v as i64))
}

fn close(actual: f32, expected: f64, what: &str) {
    assert!(
        (f64::from(actual) - expected).abs() <= 1e-6 + 1e-5 * expected.abs(),
        "{what}: {actual} vs Keras {expected}"
    );
}

fn early_stopping(args: &Value) -> EarlyStopping {
    let mut stop = EarlyStopping::new(args["monitor"].as_str().unwrap())
        .patience(args["patience"].as_u64().unwrap_or(0) as usize)
        .min_delta(args["min_delta"].as_f64().unwrap_or(0.0) as f32)
        .restore_best_weights(args["restore_best_weights"] == true)
        .start_from_epoch(args["start_from_epoch"].as_u64().unwrap_or(0) as usize);
    if let Some(baseline) = args["baseline"].as_f64() {
        stop = stop.baseline(baseline as f32);
    }
    match args["mode"].as_str() {
        Some("max") => stop.mode(Mode::Max),
        Some("min") => stop.mode(Mode::Min),
        _ => stop,
    }
}

/// Fits a case with its callbacks and compares the history, the epochs run and the final
/// weights; returns the model and the callback for case-specific checks.
fn fit_case(case: &Value, callback: &mut dyn Callback) -> (Sequential, History) {
    let mut model =
        common::sequential_from_case(case, |spec| spec.as_str().unwrap().parse().unwrap());
    let fit = &case["fit"];
    let options = FitOptions::default()
        .epochs(fit["epochs"].as_u64().unwrap() as usize)
        .batch_size(fit["batch_size"].as_u64().unwrap() as usize)
        .shuffle(false)
        .verbose(0);
    let y = Tensor::from(f32_tensor(&case["y"]));
    let validation_y = Tensor::from(f32_tensor(&case["y_val"]));
    let options = options.validation_data(ids(&case["x_val"]), validation_y);
    let history = model
        .fit_with_callbacks(ids(&case["x"]), y, options, &mut [callback])
        .unwrap();
    let id = case["id"].as_str().unwrap();
    let expected = &case["expected"];
    assert_eq!(
        history.epochs() as u64,
        expected["epochs_run"].as_u64().unwrap(),
        "{id}: epochs run"
    );
    for (key, series) in expected["history"].as_object().unwrap() {
        let ours = history.get(key).unwrap_or_else(|| panic!("{id}: no {key}"));
        for (epoch, keras) in series.as_array().unwrap().iter().enumerate() {
            close(
                ours[epoch],
                keras.as_f64().unwrap(),
                &format!("{id} {key} epoch {epoch}"),
            );
        }
    }
    for weight in expected["final_weights"].as_array().unwrap() {
        let path = weight["name"].as_str().unwrap();
        let (layer, variable) = path.split_once('/').unwrap();
        let layer = model.get_layer_by_name(layer).unwrap();
        let index = layer
            .weight_names()
            .iter()
            .position(|n| n == variable)
            .unwrap();
        for (a, e) in layer.get_weights()[index]
            .iter()
            .zip(common::f64_tensor(weight).iter())
        {
            close(*a, *e, &format!("{id} final {path}"));
        }
    }
    (model, history)
}

#[test]
fn early_stopping_stops_and_restores_as_keras_does() {
    for case in reference()["cases"].as_array().unwrap() {
        let callback = &case["callbacks"][0];
        if callback["class_name"] != "EarlyStopping" {
            continue;
        }
        let mut stop = early_stopping(&callback["args"]);
        fit_case(case, &mut stop);
        let state = &case["expected"]["callback_state"][0];
        let id = case["id"].as_str().unwrap();
        assert_eq!(
            stop.stopped_epoch() as u64,
            state["stopped_epoch"].as_u64().unwrap(),
            "{id}"
        );
        assert_eq!(
            stop.best_epoch() as u64,
            state["best_epoch"].as_u64().unwrap(),
            "{id}"
        );
        close(
            stop.best(),
            state["best"].as_f64().unwrap(),
            &format!("{id} best"),
        );
    }
}

#[test]
fn a_checkpoint_saves_the_epochs_keras_saves() {
    let case = reference()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "model_checkpoint_save_best_only")
        .unwrap();
    let dir = std::env::temp_dir().join(format!("ndkeras-keras-checkpoint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut checkpoint = ModelCheckpoint::new(dir.join("best.npz"))
        .monitor("val_loss")
        .save_best_only(true);
    fit_case(case, &mut checkpoint);
    let saved: Vec<u64> = checkpoint
        .saved_epochs()
        .iter()
        .map(|&e| e as u64)
        .collect();
    let keras: Vec<u64> = case["expected"]["saved_epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_u64().unwrap())
        .collect();
    assert_eq!(saved, keras);
    // The file holds the weights Keras' checkpoint file holds.
    let stored = ndkeras::io::npy::read_npz(dir.join("best.npz")).unwrap();
    for weight in case["expected"]["checkpoint_file_weights"]
        .as_array()
        .unwrap()
    {
        let name = weight["name"].as_str().unwrap();
        let (_, ours) = stored.iter().find(|(n, _)| n == name).unwrap();
        for (a, e) in ours.iter().zip(common::f64_tensor(weight).iter()) {
            close(*a, *e, &format!("checkpoint {name}"));
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_learning_rate_schedule_runs_as_in_keras() {
    let case = reference()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "learning_rate_scheduler_halve_from_epoch2")
        .unwrap();
    let mut schedule =
        LearningRateScheduler::new(|epoch, lr| if epoch >= 2 { lr * 0.5 } else { lr });
    let (model, history) = fit_case(case, &mut schedule);
    let keras: Vec<f64> = case["expected"]["lr_per_epoch"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    for (ours, keras) in history.get("lr").unwrap().iter().zip(&keras) {
        close(*ours, *keras, "lr");
    }
    close(
        model.optimizer().unwrap().learning_rate(),
        case["expected"]["lr_after_fit"].as_f64().unwrap(),
        "lr after fit",
    );
}
