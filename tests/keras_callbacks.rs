//! Callbacks against tf_keras 2.21 (`tests/data/keras_callbacks.json`, made by
//! `keras_callbacks.py` beside it): where EarlyStopping stops, its best epoch, the weights it
//! restores, the epochs ModelCheckpoint saves, and LearningRateScheduler's rates, for one
//! model whose validation loss has its minimum at the third epoch.

mod common;

use std::sync::OnceLock;

use common::f32_tensor;
use ndkeras::model::callbacks::{
    Callback, CsvLogger, EarlyStopping, LearningRateScheduler, Mode, ModelCheckpoint,
    ReduceLROnPlateau, TerminateOnNaN,
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

/// A number as the generator writes it (non-finite ones as "NaN", "Infinity").
fn keras_float(value: &Value) -> f64 {
    match value.as_str() {
        Some("NaN") => f64::NAN,
        Some("Infinity") => f64::INFINITY,
        Some("-Infinity") => f64::NEG_INFINITY,
        _ => value.as_f64().unwrap(),
    }
}

fn close(actual: f32, expected: f64, what: &str) {
    if !expected.is_finite() {
        assert!(
            actual.is_nan() == expected.is_nan()
                && (expected.is_nan() || f64::from(actual) == expected),
            "{what}: {actual} vs Keras {expected}"
        );
        return;
    }
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
    let (model, history) = fit_case_history(case, callback);
    check_weights(
        &model,
        &case["expected"]["final_weights"],
        case["id"].as_str().unwrap(),
    );
    (model, history)
}

/// Compares `model`'s weights with Keras' list of named weights.
fn check_weights(model: &Sequential, weights: &Value, what: &str) {
    for weight in weights.as_array().unwrap() {
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
            close(*a, *e, &format!("{what}: {path}"));
        }
    }
}

/// [`fit_case`] without the final weights.
fn fit_case_history(case: &Value, callback: &mut dyn Callback) -> (Sequential, History) {
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
                keras_float(keras),
                &format!("{id} {key} epoch {epoch}"),
            );
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

fn case(id: &str) -> &'static Value {
    reference()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap()
}

#[test]
fn reduce_lr_on_plateau_lowers_the_rate_as_keras_does() {
    for id in ["reduce_lr_on_plateau", "reduce_lr_on_plateau_cooldown2"] {
        let case = case(id);
        let args = &case["callbacks"][0]["args"];
        let mut reduce = ReduceLROnPlateau::new(args["monitor"].as_str().unwrap())
            .factor(args["factor"].as_f64().unwrap() as f32)
            .patience(args["patience"].as_u64().unwrap() as usize)
            .min_lr(args["min_lr"].as_f64().unwrap() as f32)
            .cooldown(args["cooldown"].as_u64().unwrap() as usize)
            .min_delta(args["min_delta"].as_f64().unwrap() as f32);
        let (model, history) = fit_case(case, &mut reduce);
        let expected = &case["expected"];
        let rates = history.get("lr").unwrap();
        for (epoch, keras) in expected["lr_per_epoch"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            // The rates are float32 values both sides: exactly equal.
            assert_eq!(
                f64::from(rates[epoch]),
                keras.as_f64().unwrap(),
                "{id} epoch {epoch}"
            );
        }
        assert_eq!(
            f64::from(model.optimizer().unwrap().learning_rate()),
            expected["lr_after_fit"].as_f64().unwrap(),
            "{id}"
        );
        let state = &expected["callback_state"][0];
        close(
            reduce.best(),
            state["best"].as_f64().unwrap(),
            &format!("{id} best"),
        );
        assert_eq!(
            reduce.wait() as u64,
            state["wait"].as_u64().unwrap(),
            "{id} wait"
        );
        assert_eq!(
            reduce.cooldown_counter() as u64,
            state["cooldown_counter"].as_u64().unwrap(),
            "{id} cooldown"
        );
    }
}

#[test]
fn terminate_on_nan_ends_training_where_keras_does() {
    for id in ["terminate_on_nan_lr_1e12", "terminate_on_nan_lr_1e30"] {
        let case = case(id);
        let mut terminate = TerminateOnNaN::new();
        let (model, _) = fit_case_history(case, &mut terminate);
        let expected = &case["expected"];
        let stopped = &expected["stopped_at"];
        assert_eq!(
            terminate.stopped_at(),
            Some((
                stopped["epoch"].as_u64().unwrap() as usize,
                stopped["batch"].as_u64().unwrap() as usize
            )),
            "{id}"
        );
        // ndkeras does not apply the step computed from the NaN loss (Keras does): the
        // weights are those of the last finite step, which are finite.
        for weights in model.get_weights() {
            assert!(weights.iter().all(|v| v.is_finite()), "{id}");
        }
        if id == "terminate_on_nan_lr_1e12" {
            // The last finite step ended epoch 0: Keras' weights at that point.
            check_weights(&model, &expected["epoch_end_weights"][0], id);
        }
    }
    // Without the callback, the same run is an error naming where the loss broke.
    let case = case("terminate_on_nan_lr_1e12");
    let mut model =
        common::sequential_from_case(case, |spec| spec.as_str().unwrap().parse().unwrap());
    let options = FitOptions::default()
        .epochs(30)
        .batch_size(4)
        .shuffle(false)
        .verbose(0);
    let err = model
        .fit(
            ids(&case["x"]),
            Tensor::from(f32_tensor(&case["y"])),
            options,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFiniteLoss {
                epoch: 2,
                batch: 1,
                ..
            }
        ),
        "{err:?}"
    );
}

/// Compares two CSV texts: the same lines and non-numeric fields; numbers close.
fn same_csv(ours: &str, keras: &str) {
    assert!(ours.ends_with("\r\n"), "{ours:?}");
    let (ours, keras): (Vec<&str>, Vec<&str>) =
        (ours.split("\r\n").collect(), keras.split("\r\n").collect());
    assert_eq!(ours.len(), keras.len(), "{ours:?} vs {keras:?}");
    for (a, k) in ours.iter().zip(&keras) {
        let (a_fields, k_fields): (Vec<&str>, Vec<&str>) =
            (a.split([',', ';']).collect(), k.split([',', ';']).collect());
        assert_eq!(a_fields.len(), k_fields.len(), "{a} vs {k}");
        for (a, k) in a_fields.iter().zip(&k_fields) {
            match (a.parse::<f64>(), k.parse::<f64>()) {
                (Ok(a), Ok(k)) if a.fract() != 0.0 || k.fract() != 0.0 => {
                    assert!((a - k).abs() <= 1e-6 + 1e-5 * k.abs(), "{a} vs {k}")
                }
                _ => assert_eq!(a, k),
            }
        }
    }
}

#[test]
fn the_csv_log_is_written_as_keras_writes_it() {
    let case = case("csv_logger");
    let dir = std::env::temp_dir().join(format!("ndkeras-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("log.csv");
    std::fs::write(&path, "an old file is overwritten").unwrap();
    let mut logger = CsvLogger::new(&path);
    let (mut model, _) = fit_case(case, &mut logger);
    let expected = &case["expected"];
    same_csv(
        &std::fs::read_to_string(&path).unwrap(),
        expected["csv_text"].as_str().unwrap(),
    );
    // Appending: no second header, the val_ columns filled with NA.
    let mut logger = CsvLogger::new(&path).separator(';').append(true);
    let options = FitOptions::default()
        .epochs(2)
        .batch_size(4)
        .shuffle(false)
        .verbose(0);
    model
        .fit_with_callbacks(
            ids(&case["x"]),
            Tensor::from(f32_tensor(&case["y"])),
            options,
            &mut [&mut logger],
        )
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    // The separators are compared through the raw text's shape: one ';' row per epoch.
    assert_eq!(text.matches(';').count(), 2 * 4);
    same_csv(&text, expected["csv_text_appended"].as_str().unwrap());
    check_weights(
        &model,
        &expected["weights_after_append"],
        "after the appending fit",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
