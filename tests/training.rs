//! Training against the Keras 2 training vectors (`train/`, `model/`): weights after every
//! step and epoch losses, rtol 1e-5 / atol 1e-6 as the reference README advises.

mod common;

use common::*;
use ndarray::ArrayD;
use ndkeras::optimizers::SGD;
use ndkeras::prelude::*;
use serde_json::Value;

fn assert_close(actual: &ArrayD<f32>, expected: &ArrayD<f32>, what: &str) {
    assert_eq!(actual.shape(), expected.shape(), "{what}: shape");
    for (i, (&a, &e)) in actual.iter().zip(expected.iter()).enumerate() {
        let tolerance = 1e-6 + 1e-5 * e.abs();
        assert!(
            (a - e).abs() <= tolerance,
            "{what}: element {i}: {a} vs Keras {e}"
        );
    }
}

fn assert_close_scalar(actual: f32, expected: f64, what: &str) {
    let e = expected as f32;
    assert!(
        (actual - e).abs() <= 1e-6 + 1e-5 * e.abs(),
        "{what}: {actual} vs Keras {e}"
    );
}

/// The optimizer a case names, with the parameters Keras reports in `optimizer_config`.
fn optimizer_of(case: &Value) -> Optimizer {
    let id = case["id"].as_str().unwrap();
    common::optimizer_from_keras(
        id.rsplit('/').next().unwrap(),
        &case["expected"]["optimizer_config"],
    )
}

fn embedding_model(case: &Value) -> Sequential {
    let mask_zero = case["config"]["model"]
        .as_str()
        .unwrap()
        .contains("mask_zero=True");
    let table = f32_tensor(&case["inputs"]["initial_weights"]);
    let (rows, cols) = (table.shape()[0], table.shape()[1]);
    let mut model = Sequential::new();
    model
        .add(
            Embedding::new(rows, cols)
                .mask_zero(mask_zero)
                .weights(vec![table]),
        )
        .unwrap();
    model
        .compile(optimizer_of(case), Loss::MeanSquaredError)
        .unwrap();
    model
}

fn fit_settings(case: &Value) -> (usize, usize) {
    let fit = &case["config"]["fit"];
    (
        fit["batch_size"].as_u64().unwrap() as usize,
        fit["epochs"].as_u64().unwrap() as usize,
    )
}

#[test]
fn embedding_training_matches_keras_step_by_step() {
    let cases = group("train");
    assert_eq!(cases.len(), 13);
    for case in cases {
        let id = case["id"].as_str().unwrap();
        let expected = &case["expected"];
        let x = input_tensor(&case["inputs"]["x"]);
        let y = f32_tensor(&case["inputs"]["y"]);
        let (batch_size, epochs) = fit_settings(case);
        let n = x.shape()[0];

        // Step by step with train_on_batch, in fit's order (shuffle off).
        let mut model = embedding_model(case);
        assert_close(
            &model.predict(x.clone()).unwrap(),
            &f32_tensor(&expected["initial_prediction"]),
            id,
        );
        let steps = expected["steps"].as_array().unwrap();
        let mut step = 0;
        for _ in 0..epochs {
            for start in (0..n).step_by(batch_size) {
                let end = (start + batch_size).min(n);
                let xb = ndarray_rows(&x, start, end);
                let yb = y
                    .slice_axis(ndarray::Axis(0), (start..end).into())
                    .to_owned();
                let before = model.get_layer(0).unwrap().get_weights()[0].clone();
                let loss = model.train_on_batch(xb, yb).unwrap();
                assert!(loss.is_finite());
                let after = model.get_layer(0).unwrap().get_weights()[0].clone();
                assert_close(
                    &after,
                    &f32_tensor(&steps[step]["weights"]),
                    &format!("{id} step {}", step + 1),
                );
                // The rows Keras changed are exactly the rows we changed.
                let changed: Vec<usize> = (0..after.shape()[0])
                    .filter(|&r| {
                        after.index_axis(ndarray::Axis(0), r)
                            != before.index_axis(ndarray::Axis(0), r)
                    })
                    .collect();
                let keras_changed: Vec<usize> = expected["rows_changed_by_step"][step]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_u64().unwrap() as usize)
                    .collect();
                assert_eq!(
                    changed,
                    keras_changed,
                    "{id} step {}: rows changed",
                    step + 1
                );
                step += 1;
            }
        }
        assert_eq!(step, steps.len(), "{id}: every recorded step was checked");

        // The same through fit: per-epoch losses and final weights.
        let mut model = embedding_model(case);
        let history = model
            .fit(
                x.clone(),
                y.clone(),
                FitOptions::default()
                    .epochs(epochs)
                    .batch_size(batch_size)
                    .shuffle(false)
                    .verbose(false),
            )
            .unwrap();
        let keras_losses = expected["epoch_losses"].as_array().unwrap();
        assert_eq!(history.loss.len(), keras_losses.len(), "{id}");
        for (epoch, (ours, keras)) in history.loss.iter().zip(keras_losses).enumerate() {
            assert_close_scalar(
                *ours,
                keras.as_f64().unwrap(),
                &format!("{id} epoch {} loss", epoch + 1),
            );
        }
        assert_close(
            &model.get_layer(0).unwrap().get_weights()[0],
            &f32_tensor(&expected["final_weights"]),
            id,
        );
    }
}

/// Rows `start..end` of an id tensor (the test's own batching).
fn ndarray_rows(x: &Tensor, start: usize, end: usize) -> Tensor {
    match x.data() {
        TensorData::Int32(a) => Tensor::from(
            a.slice_axis(ndarray::Axis(0), (start..end).into())
                .to_owned(),
        ),
        TensorData::Int64(a) => Tensor::from(
            a.slice_axis(ndarray::Axis(0), (start..end).into())
                .to_owned(),
        ),
        other => panic!("unexpected ids {other:?}"),
    }
}

#[test]
fn embedding_pooling_dense_model_matches_keras() {
    for id in [
        "model/embedding_gap_dense/unmasked/SGD",
        "model/embedding_gap_dense/masked/SGD",
    ] {
        let case = case(id);
        let inputs = &case["inputs"];
        let expected = &case["expected"];
        let mask_zero = id.contains("/masked/");
        let table = f32_tensor(&inputs["embedding_weights"]);
        let (rows, cols) = (table.shape()[0], table.shape()[1]);
        let build = || {
            let mut model = Sequential::new();
            model
                .add(
                    Embedding::new(rows, cols)
                        .input_length(5)
                        .mask_zero(mask_zero)
                        .weights(vec![table.clone()]),
                )
                .unwrap();
            model.add(GlobalAveragePooling1D::new()).unwrap();
            model
                .add(Dense::new(1).weights(vec![
                    f32_tensor(&inputs["dense_kernel"]),
                    f32_tensor(&inputs["dense_bias"]),
                ]))
                .unwrap();
            model
                .compile(SGD::new(0.1).into(), Loss::MeanSquaredError)
                .unwrap();
            model
        };
        let x = input_tensor(&inputs["x"]);
        let y = f32_tensor(&inputs["y"]);
        let (batch_size, epochs) = fit_settings(case);

        let mut model = build();
        assert_close(
            &model.predict(x.clone()).unwrap(),
            &f32_tensor(&expected["initial_prediction"]),
            id,
        );
        for (step, recorded) in expected["steps"].as_array().unwrap().iter().enumerate() {
            model.train_on_batch(x.clone(), y.clone()).unwrap();
            let weights = &recorded["weights"];
            assert_close(
                &model.get_layer(0).unwrap().get_weights()[0],
                &f32_tensor(&weights["embeddings"]),
                &format!("{id} step {step} table"),
            );
            let dense = model.get_layer(2).unwrap().get_weights();
            assert_close(
                &dense[0],
                &f32_tensor(&weights["dense_kernel"]),
                &format!("{id} step {step} kernel"),
            );
            assert_close(
                &dense[1],
                &f32_tensor(&weights["dense_bias"]),
                &format!("{id} step {step} bias"),
            );
        }
        if mask_zero {
            assert_eq!(expected["row0_unchanged"], true);
            assert_eq!(
                model.get_layer(0).unwrap().get_weights()[0].row_0(),
                table.row_0()
            );
        }

        let mut model = build();
        let history = model
            .fit(
                x.clone(),
                y,
                FitOptions::default()
                    .epochs(epochs)
                    .batch_size(batch_size)
                    .shuffle(false)
                    .verbose(false),
            )
            .unwrap();
        for (ours, keras) in history
            .loss
            .iter()
            .zip(expected["epoch_losses"].as_array().unwrap())
        {
            assert_close_scalar(*ours, keras.as_f64().unwrap(), &format!("{id} epoch loss"));
        }
        assert_close(
            &model.predict(x).unwrap(),
            &f32_tensor(&expected["final_prediction"]),
            &format!("{id} final prediction"),
        );
    }
}

trait Row0 {
    fn row_0(&self) -> ArrayD<f32>;
}

impl Row0 for ArrayD<f32> {
    fn row_0(&self) -> ArrayD<f32> {
        self.index_axis(ndarray::Axis(0), 0).to_owned()
    }
}

#[test]
fn masked_pooling_over_only_padding_is_nan_as_in_keras() {
    let case = case("model/gap_masked_all_padding_row");
    let table = f32_tensor(&case["inputs"]["embedding_weights"]);
    let (rows, cols) = (table.shape()[0], table.shape()[1]);
    let mut model = Sequential::new();
    model
        .add(
            Embedding::new(rows, cols)
                .mask_zero(true)
                .weights(vec![table]),
        )
        .unwrap();
    model.add(GlobalAveragePooling1D::new()).unwrap();
    let pooled = model.predict(input_tensor(&case["inputs"]["x"])).unwrap();
    let expected = f32_tensor(&case["expected"]["pooled"]);
    assert_eq!(pooled.shape(), expected.shape());
    for (a, e) in pooled.iter().zip(expected.iter()) {
        assert!(
            (a.is_nan() && e.is_nan()) || (a - e).abs() <= 1e-6,
            "{a} vs {e}"
        );
    }
}
