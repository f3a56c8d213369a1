//! Functional models trained through `fit` against tf_keras 2.21
//! (`tests/data/keras_functional_fit.json`, made by `keras_functional_fit.py` beside it):
//! the epoch logs and `History` (every key, in Keras' order, and every value), `evaluate`
//! (Keras' `return_dict=True`), the final weights, for a model with two outputs and metrics
//! (with `validation_data`, with `validation_split`, and with a `LearningRateScheduler` and
//! an `EarlyStopping` on one output's validation accuracy), a two-input recommender stopped
//! by `EarlyStopping`, a `Sequential` next to the same model written as a graph, and
//! `"mae"` on a softmax output with integer targets (broadcast against the probabilities, as
//! Keras does).

mod common;
#[path = "common/functional_fit.rs"]
mod fit;

use std::sync::OnceLock;

use fit::{EpochLogs, strings};
use ndkeras::model::callbacks::{Callback, EarlyStopping, LearningRateScheduler};
use ndkeras::prelude::*;
use serde_json::Value;

fn reference() -> &'static Value {
    static ROOT: OnceLock<Value> = OnceLock::new();
    ROOT.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/keras_functional_fit.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    })
}

fn case(id: &str) -> &'static Value {
    reference()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no case {id}"))
}

fn options(case: &Value) -> FitOptions {
    let fit = &case["fit"];
    let options = FitOptions::default()
        .epochs(fit["epochs"].as_u64().unwrap() as usize)
        .batch_size(fit["batch_size"].as_u64().unwrap() as usize)
        .shuffle(false)
        .verbose(0);
    match fit["validation_split"].as_f64() {
        Some(split) => options.validation_split(split as f32),
        None => {
            options.validation_data_of(fit::tensors(&case["x_val"]), fit::tensors(&case["y_val"]))
        }
    }
}

/// A trained case: the model, the logs of every epoch, the history.
struct Trained {
    model: Model,
    logs: EpochLogs,
    history: History,
}

/// Fits the functional model of a case as Keras did (with `extra` after the recorder of the
/// logs).
fn train(id: &str, extra: Option<&mut dyn Callback>) -> Trained {
    let case = case(id);
    let mut model = fit::compiled_graph_model(case);
    let mut logs = EpochLogs::default();
    let (x, y) = (fit::tensors(&case["x"]), fit::tensors(&case["y"]));
    let history = match extra {
        Some(callback) => model.fit_with_callbacks(x, y, options(case), &mut [&mut logs, callback]),
        None => model.fit_with_callbacks(x, y, options(case), &mut [&mut logs]),
    }
    .unwrap_or_else(|e| panic!("{id}: fit: {e}"));
    Trained {
        model,
        logs,
        history,
    }
}

/// The keys of the epoch logs are Keras' `History` keys, in Keras' order, and `History`
/// answers exactly those keys.
fn assert_keys(logs: &EpochLogs, history: &History, expected: &Value, id: &str) {
    let keras = strings(&expected["history_keys"]);
    assert_eq!(fit::log_keys(logs, id), keras, "{id}: epoch logs");
    let mut ours = fit::history_keys(history);
    let mut sorted = keras.clone();
    ours.sort();
    sorted.sort();
    assert_eq!(ours, sorted, "{id}: History's keys");
}

fn assert_evaluated(trained: &mut Trained, case: &Value, id: &str) {
    let results = trained
        .model
        .evaluate(fit::tensors(&case["x"]), fit::tensors(&case["y"]))
        .unwrap_or_else(|e| panic!("{id}: evaluate: {e}"));
    fit::assert_evaluate(&results, &case["expected"], id);
}

// ----- 1, 2: two outputs, metrics ["accuracy"] on both ---------------------------------

const TWO_OUTPUT_CASES: [&str; 2] = [
    "two_outputs_validation_data",
    "two_outputs_validation_split",
];

#[test]
fn two_outputs_log_keras_keys_in_keras_order() {
    // loss, click_loss, category_loss, click_accuracy, category_accuracy, then val_ of each.
    for id in TWO_OUTPUT_CASES {
        let trained = train(id, None);
        assert_keys(&trained.logs, &trained.history, &case(id)["expected"], id);
    }
}

#[test]
fn two_outputs_history_matches_keras() {
    for id in TWO_OUTPUT_CASES {
        let trained = train(id, None);
        fit::assert_history_values(&trained.logs, &trained.history, &case(id)["expected"], id);
    }
}

#[test]
fn two_outputs_evaluate_matches_keras() {
    for id in TWO_OUTPUT_CASES {
        let mut trained = train(id, None);
        assert_evaluated(&mut trained, case(id), id);
    }
}

#[test]
fn two_outputs_final_weights_match_keras() {
    for id in TWO_OUTPUT_CASES {
        let trained = train(id, None);
        fit::assert_weights(&trained.model, &case(id)["expected"]["final_weights"], id);
    }
}

#[test]
fn two_outputs_with_callbacks_log_and_stop_as_keras() {
    // LearningRateScheduler (halve from epoch 1) then EarlyStopping on
    // val_category_accuracy (higher is better: the name ends in "accuracy"), patience 1,
    // restoring the best weights: Keras logs `lr` after every val_ key, stops at epoch 1 and
    // puts epoch 0's weights back.
    let id = "two_outputs_callbacks";
    let case = case(id);
    let expected = &case["expected"];
    let mut schedule =
        LearningRateScheduler::new(|epoch, lr| if epoch >= 1 { lr * 0.5 } else { lr });
    let stop_args = &case["callbacks"][1]["args"];
    let mut stop = early_stopping(stop_args);
    let mut model = fit::compiled_graph_model(case);
    let mut logs = EpochLogs::default();
    let history = model
        .fit_with_callbacks(
            fit::tensors(&case["x"]),
            fit::tensors(&case["y"]),
            options(case),
            &mut [&mut logs, &mut schedule, &mut stop],
        )
        .unwrap();
    assert_keys(&logs, &history, expected, id);
    fit::assert_history_values(&logs, &history, expected, id);
    assert_eq!(
        stop.stopped_epoch() as u64,
        expected["stopped_epoch"].as_u64().unwrap(),
        "{id}: stopped epoch"
    );
    assert_eq!(
        stop.best_epoch() as u64,
        expected["best_epoch"].as_u64().unwrap(),
        "{id}: best epoch"
    );
    fit::close(stop.best(), expected["best"].as_f64().unwrap(), "best");
    fit::close(
        model.optimizer().unwrap().learning_rate(),
        expected["lr_after_fit"].as_f64().unwrap(),
        "lr after fit",
    );
    fit::assert_weights(&model, &expected["final_weights"], id);
    let mut trained = Trained {
        model,
        logs,
        history,
    };
    assert_evaluated(&mut trained, case, id);
}

// ----- 1b: the same with metrics ["accuracy", "mae"] -----------------------------------
// Keras applies the flat list to both outputs; on `category` (softmax over 3 classes,
// integer targets of shape (n,)) it expands the targets to (n, 1) and broadcasts them
// against the (n, 3) probabilities. ndkeras refuses the shapes before the first step.

const MAE_CASE: &str = "two_outputs_mae_validation_data";

#[test]
fn two_outputs_with_mae_on_both_outputs_train_as_keras() {
    let mut trained = train(MAE_CASE, None);
    let expected = &case(MAE_CASE)["expected"];
    assert_keys(&trained.logs, &trained.history, expected, MAE_CASE);
    fit::assert_history_values(&trained.logs, &trained.history, expected, MAE_CASE);
    fit::assert_weights(&trained.model, &expected["final_weights"], MAE_CASE);
    assert_evaluated(&mut trained, case(MAE_CASE), MAE_CASE);
}

// ----- 3: a recommender stopped early ---------------------------------------------------

fn early_stopping(args: &Value) -> EarlyStopping {
    EarlyStopping::new(args["monitor"].as_str().unwrap())
        .patience(args["patience"].as_u64().unwrap() as usize)
        .restore_best_weights(args["restore_best_weights"] == true)
}

#[test]
fn a_recommender_stops_where_keras_stops_and_restores_its_weights() {
    let id = "recommender_early_stopping";
    let case = case(id);
    let expected = &case["expected"];
    let mut stop = early_stopping(&case["callbacks"][0]["args"]);
    let mut trained = train(id, Some(&mut stop));
    assert_keys(&trained.logs, &trained.history, expected, id);
    fit::assert_history_values(&trained.logs, &trained.history, expected, id);
    assert_eq!(
        stop.stopped_epoch() as u64,
        expected["stopped_epoch"].as_u64().unwrap(),
        "{id}: stopped epoch"
    );
    assert_eq!(
        stop.best_epoch() as u64,
        expected["best_epoch"].as_u64().unwrap(),
        "{id}: best epoch"
    );
    fit::close(stop.best(), expected["best"].as_f64().unwrap(), "best");
    // The restored weights, and what evaluate says of them.
    fit::assert_weights(&trained.model, &expected["final_weights"], id);
    assert_evaluated(&mut trained, case, id);
}

#[test]
fn the_recommender_without_a_callback_runs_every_epoch_as_keras() {
    // The curve EarlyStopping cuts short: val_loss falls to epoch 3 and rises after.
    let id = "recommender_early_stopping";
    let mut case = case(id).clone();
    let expected = case["expected"]["without_callback"].clone();
    case["fit"]["epochs"] = expected["epochs_run"].clone();
    let mut model = fit::compiled_graph_model(&case);
    let mut logs = EpochLogs::default();
    let history = model
        .fit_with_callbacks(
            fit::tensors(&case["x"]),
            fit::tensors(&case["y"]),
            options(&case),
            &mut [&mut logs],
        )
        .unwrap();
    fit::assert_history_values(&logs, &history, &expected, id);
}

// ----- 4: a Sequential is one case of the graph -----------------------------------------

/// Fits the Sequential twin as Keras did; returns it, its logs, its history.
fn fit_sequential() -> (Sequential, EpochLogs, History) {
    let twin = case("sequential_and_functional");
    // The twin's record is a case as `common::sequential_from_case` reads it.
    let mut model = common::sequential_from_case(&twin["sequential"], |m| {
        m.as_str().unwrap().parse().unwrap()
    });
    let mut logs = EpochLogs::default();
    let history = model
        .fit_with_callbacks(
            fit::tensor(&twin["x"]),
            fit::tensor(&twin["y"]),
            options_of_twin(twin),
            &mut [&mut logs],
        )
        .unwrap();
    (model, logs, history)
}

fn options_of_twin(twin: &Value) -> FitOptions {
    let fit = &twin["fit"];
    FitOptions::default()
        .epochs(fit["epochs"].as_u64().unwrap() as usize)
        .batch_size(fit["batch_size"].as_u64().unwrap() as usize)
        .shuffle(false)
        .verbose(0)
        .validation_data(fit::tensor(&twin["x_val"]), fit::tensor(&twin["y_val"]))
}

/// Fits the functional twin as Keras did.
fn fit_functional() -> (Model, EpochLogs, History) {
    let twin = case("sequential_and_functional");
    let mut model = fit::compiled_graph_model(&twin["functional"]);
    let mut logs = EpochLogs::default();
    let history = model
        .fit_with_callbacks(
            vec![fit::tensor(&twin["x"])],
            vec![fit::tensor(&twin["y"])],
            options_of_twin(twin),
            &mut [&mut logs],
        )
        .unwrap();
    (model, logs, history)
}

#[test]
fn keras_trains_its_sequential_and_functional_twins_identically() {
    // What the generator found; the tests below hold ndkeras to the same.
    assert_eq!(case("sequential_and_functional")["keras_identical"], true);
}

#[test]
fn a_sequential_trains_as_keras_trains_it() {
    let twin = case("sequential_and_functional");
    let id = "sequential twin";
    let expected = &twin["sequential"]["expected"];
    let (mut model, logs, history) = fit_sequential();
    assert_keys(&logs, &history, expected, id);
    fit::assert_history_values(&logs, &history, expected, id);
    fit::assert_weights(model.as_model(), &expected["final_weights"], id);
    let results = model
        .evaluate_with_metrics(fit::tensor(&twin["x"]), fit::tensor(&twin["y"]))
        .unwrap();
    fit::assert_evaluate(&results, expected, id);
}

#[test]
fn its_functional_twin_trains_as_keras_trains_it() {
    let twin = case("sequential_and_functional");
    let id = "functional twin";
    let expected = &twin["functional"]["expected"];
    let (model, logs, history) = fit_functional();
    let mut trained = Trained {
        model,
        logs,
        history,
    };
    assert_keys(&trained.logs, &trained.history, expected, id);
    fit::assert_history_values(&trained.logs, &trained.history, expected, id);
    fit::assert_weights(&trained.model, &expected["final_weights"], id);
    let results = trained
        .model
        .evaluate(vec![fit::tensor(&twin["x"])], vec![fit::tensor(&twin["y"])])
        .unwrap();
    fit::assert_evaluate(&results, expected, id);
}

#[test]
fn a_sequential_and_its_functional_twin_train_bit_for_bit_alike() {
    let (sequential, sequential_logs, sequential_history) = fit_sequential();
    let (functional, functional_logs, functional_history) = fit_functional();
    assert_eq!(sequential_history, functional_history);
    assert_eq!(sequential_logs.0, functional_logs.0);
    assert_eq!(sequential.get_weights(), functional.get_weights());
}
