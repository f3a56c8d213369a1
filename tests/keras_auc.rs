//! The AUC metric against tf_keras 2.21 (`tests/data/keras_auc.json`, made by `keras_auc.py`
//! beside it): the metric alone batch by batch (its four confusion counts exactly, its result
//! to rtol 1e-5) for ROC and PR with every summation method, compiled into a model (fit
//! history with validation data, evaluate), and the inputs it refuses.

mod common;

use std::sync::OnceLock;

use common::f32_tensor;
use ndarray::{ArrayD, array};
use ndkeras::metrics::{Curve, Metric, MetricKind, MetricState, SummationMethod};
use ndkeras::optimizers::SGD;
use ndkeras::prelude::*;
use serde_json::Value;

fn reference() -> &'static Value {
    static ROOT: OnceLock<Value> = OnceLock::new();
    ROOT.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/keras_auc.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    })
}

fn close(actual: f32, expected: f64, what: &str) {
    assert!(
        (f64::from(actual) - expected).abs() <= 1e-6 + 1e-5 * expected.abs(),
        "{what}: {actual} vs Keras {expected}"
    );
}

/// The metric a Keras AUC config describes.
fn auc_of(config: &Value) -> Metric {
    let mut metric = Metric::auc();
    if let Some(n) = config["num_thresholds"].as_u64() {
        metric = metric.num_thresholds(n as usize);
    }
    if let Some(curve) = config["curve"].as_str() {
        metric = metric.curve(curve.parse().unwrap());
    }
    if let Some(method) = config["summation_method"].as_str() {
        metric = metric.summation_method(method.parse().unwrap());
    }
    match config["name"].as_str() {
        Some(name) => metric.with_name(name),
        None => metric,
    }
}

/// A compile() metrics entry: a string or an AUC object's config.
fn metric(spec: &Value) -> Metric {
    match spec {
        Value::String(name) => name.parse().unwrap(),
        Value::Object(_) => {
            assert_eq!(spec["class_name"], "AUC");
            auc_of(&spec["config"])
        }
        other => panic!("metric {other}"),
    }
}

fn counts(state: &MetricState) -> [&[f32]; 4] {
    match state {
        MetricState::Auc(counts) => [
            counts.true_positives(),
            counts.false_positives(),
            counts.true_negatives(),
            counts.false_negatives(),
        ],
        other => panic!("not an AUC state: {other:?}"),
    }
}

/// The 0/1 sample weights of a batch as a mask over the prediction's positions.
fn mask_of(batch: &Value) -> Option<ArrayD<bool>> {
    let weights = &batch["sample_weight"];
    (!weights.is_null()).then(|| f32_tensor(weights).mapv(|w| w != 0.0))
}

#[test]
fn the_metric_alone_matches_keras_batch_by_batch() {
    let names = [
        "true_positives",
        "false_positives",
        "true_negatives",
        "false_negatives",
    ];
    for case in reference()["metric_alone"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        for run in case["runs"].as_array().unwrap() {
            let metric = auc_of(&run["config"]);
            metric.validate().unwrap();
            let mut state = MetricState::new(&metric);
            let label = format!("{id} {}", run["config"]);
            for (b, (batch, keras)) in case["batches"]
                .as_array()
                .unwrap()
                .iter()
                .zip(run["results"].as_array().unwrap())
                .enumerate()
            {
                let (y_pred, y_true) = (f32_tensor(&batch["y_pred"]), f32_tensor(&batch["y_true"]));
                state
                    .update(&metric, &y_pred, &y_true, mask_of(batch).as_ref())
                    .unwrap();
                for (name, ours) in names.iter().zip(counts(&state)) {
                    let theirs = f32_tensor(&batch[*name]);
                    assert_eq!(
                        ours,
                        theirs.as_slice().unwrap(),
                        "{label} batch {b}: {name}"
                    );
                }
                close(
                    state.result(),
                    keras.as_f64().unwrap(),
                    &format!("{label} batch {b}"),
                );
            }
        }
    }
}

#[test]
fn fit_history_and_evaluate_report_keras_auc() {
    let ids = |v: &Value| Tensor::from(f32_tensor(v).mapv(|v| v as i64));
    let targets = |v: &Value| Tensor::from(f32_tensor(v));
    for case in reference()["models"].as_array().unwrap() {
        let id = case["id"].as_str().unwrap();
        let mut model = common::sequential_from_case(case, metric);
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
        let expected = &case["expected"];
        for key in expected["history_keys"].as_array().unwrap() {
            let key = key.as_str().unwrap();
            let ours = history
                .get(key)
                .unwrap_or_else(|| panic!("{id}: no {key} in the history"));
            let series = expected["history"][key].as_array().unwrap();
            assert_eq!(ours.len(), series.len(), "{id} {key}");
            for (epoch, keras) in series.iter().enumerate() {
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
        let keras_names: Vec<&str> = expected["metrics_names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap())
            .collect();
        assert_eq!(names, keras_names, "{id}");
        for (name, value) in &evaluated {
            let keras = expected["evaluate"][name.as_str()].as_f64().unwrap();
            close(*value, keras, &format!("{id} evaluate {name}"));
        }
    }
}

#[test]
fn names_and_defaults_are_keras() {
    let defaults = &reference()["default_config"];
    let auc = Metric::auc();
    assert_eq!(auc.name(), "auc");
    assert_eq!(
        auc.kind(),
        MetricKind::Auc {
            num_thresholds: defaults["num_thresholds"].as_u64().unwrap() as usize,
            curve: defaults["curve"].as_str().unwrap().parse().unwrap(),
            summation_method: defaults["summation_method"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap(),
        }
    );
    assert_eq!(defaults["multi_label"], false);
    assert_eq!(defaults["from_logits"], false);
    // "AUC" is reported as "auc", as Keras names the object; "auc" (unknown to tf_keras
    // 2.21, which fails on the first batch) is the same metric.
    assert_eq!("AUC".parse::<Metric>().unwrap(), auc);
    assert_eq!("auc".parse::<Metric>().unwrap(), auc);
    assert!(
        reference()["lowercase_name"]["fit_with_metrics_auc_raised"]["type"] == "TypeError",
        "the reference records Keras 2 failing on \"auc\""
    );
    assert_eq!("pr".parse::<Curve>().unwrap(), Curve::Pr);
    assert_eq!(
        "Majoring".parse::<SummationMethod>().unwrap(),
        SummationMethod::Majoring
    );
    let err = "PR_GAIN".parse::<Curve>().unwrap_err();
    assert!(matches!(err, Error::UnknownName { .. }), "{err}");
    assert!(err.to_string().contains("ROC"), "{err}");
    let err = "trapezoid".parse::<SummationMethod>().unwrap_err();
    assert!(err.to_string().contains("minoring"), "{err}");
}

#[test]
fn labels_outside_zero_one_are_refused_where_keras_counts_them_as_positives() {
    let auc = Metric::auc();
    for case in reference()["unchecked_labels"].as_array().unwrap() {
        // Keras counts the label as a positive: the same result as with a 1 there.
        assert_eq!(case["keras_result"], case["keras_result_with_label_1"]);
        let (y_true, y_pred) = (f32_tensor(&case["y_true"]), f32_tensor(&case["y_pred"]));
        let mut state = MetricState::new(&auc);
        let err = state.update(&auc, &y_pred, &y_true, None).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
        let message = err.to_string();
        let label = y_true[[0, 0]];
        let words = [
            "metric \"auc\"",
            "y_true",
            &format!("{label}"),
            "[0, 0] of the batch",
            "[0, 1]",
        ];
        for words in words {
            assert!(message.contains(words), "{words:?} in {message}");
        }
        assert_eq!(
            state,
            MetricState::new(&auc),
            "a refused batch changes nothing"
        );
        // Where the mask leaves it out, the label is not looked at.
        let keep = array![false, true, true, true].into_dyn();
        state.update(&auc, &y_pred, &y_true, Some(&keep)).unwrap();
        assert_eq!(counts(&state)[0][0], 1.0, "one kept positive");
    }
    // A fit whose targets AUC refuses fails with the same error (the position is in the
    // batch: sample 5 is the second of the second batch of 4).
    let case = &reference()["models"][0];
    let mut model = common::sequential_from_case(case, metric);
    let x = Tensor::from(f32_tensor(&case["x"]).mapv(|v| v as i64));
    let mut y = f32_tensor(&case["y"]);
    y[[5, 0]] = 2.0;
    let options = FitOptions::default()
        .verbose(0)
        .shuffle(false)
        .batch_size(4);
    let err = model.fit(x, Tensor::from(y), options).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("2 at position [1, 0] of the batch"),
        "{err}"
    );
}

#[test]
fn num_thresholds_must_exceed_one_as_keras_requires() {
    let errors = &reference()["num_thresholds_errors"];
    for n in [0usize, 1] {
        assert!(
            errors[n.to_string()]["message"]
                .as_str()
                .unwrap()
                .contains("> 1"),
            "Keras refuses {n}"
        );
        let err = Metric::auc().num_thresholds(n).validate().unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("num_thresholds") && message.contains("> 1"),
            "{message}"
        );
        // compile refuses it, and so does a state updated without validating first.
        let mut model = common::sequential_from_case(&reference()["models"][0], metric);
        let err = model
            .compile_with_metrics(
                SGD::new(0.1).into(),
                Loss::BinaryCrossentropy,
                vec![Metric::auc().num_thresholds(n)],
            )
            .unwrap_err();
        assert!(err.to_string().contains("num_thresholds"), "{err}");
        let metric = Metric::auc().num_thresholds(n);
        let mut state = MetricState::new(&metric);
        let p = array![[0.5f32]].into_dyn();
        assert!(state.update(&metric, &p, &p, None).is_err());
    }
    assert!(Metric::auc().num_thresholds(2).validate().is_ok());
}

#[test]
fn auc_is_not_a_mean_of_per_sample_values() {
    let p = array![[0.2f32], [0.8]].into_dyn();
    let t = array![[0.0f32], [1.0]].into_dyn();
    let err = Metric::auc().values(&p, &t).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    assert!(err.to_string().contains("MetricState"), "{err}");
    // Its parameters belong to AUC only: set on another metric, validate says so.
    let err = "mae"
        .parse::<Metric>()
        .unwrap()
        .num_thresholds(50)
        .validate()
        .unwrap_err();
    assert!(
        err.to_string().contains("num_thresholds") && err.to_string().contains("AUC"),
        "{err}"
    );
    // A state is updated with the metric it was made for.
    let mut state = MetricState::new(&Metric::auc());
    let err = state
        .update(&Metric::auc().curve(Curve::Pr), &p, &t, None)
        .unwrap_err();
    assert!(err.to_string().contains("made for"), "{err}");
    // Targets that do not fit the predictions.
    let err = state
        .update(
            &Metric::auc(),
            &p,
            &array![0.0f32, 1.0, 1.0].into_dyn(),
            None,
        )
        .unwrap_err();
    assert!(matches!(err, Error::IncompatibleShape { .. }), "{err}");
    // Before any batch, 0 as Keras; a perfect ranking gives 1.
    assert_eq!(state.result(), 0.0);
    state.update(&Metric::auc(), &p, &t, None).unwrap();
    assert_eq!(state.result(), 1.0);
}
