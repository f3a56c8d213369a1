//! Training and evaluation on empty data: each is an error naming the call and the empty
//! input, raised before anything is built or trained (weights, optimizer slots and the step
//! count stay as they were). Keras 2 raises `Expected input data to be non-empty` for `fit`,
//! `evaluate` and an empty `validation_data`, and returns a loss of 0 from `train_on_batch`.

use ndarray::{Array2, Array3, ArrayD, array};
use ndkeras::prelude::*;

fn table() -> ArrayD<f32> {
    Array2::<f32>::from_shape_fn((4, 2), |(i, j)| ((i * 2 + j) as f32 * 0.37).sin() * 0.5)
        .into_dyn()
}

/// `Embedding(4, 2)` with Adam, so that a stray step would show in the slots and step count.
fn model(input_length: bool) -> Sequential {
    let embedding = Embedding::new(4, 2).weights(vec![table()]);
    let embedding = if input_length {
        embedding.input_length(2)
    } else {
        embedding
    };
    let mut model = Sequential::new().with_name("m");
    model.add(embedding).unwrap();
    model
        .compile(Adam::default().into(), Loss::MeanSquaredError)
        .unwrap();
    model
}

fn quiet() -> FitOptions {
    FitOptions::default().shuffle(false).verbose(false)
}

fn empty_x() -> Array2<i64> {
    Array2::zeros((0, 2))
}

fn empty_y() -> Array3<f32> {
    Array3::zeros((0, 2, 2))
}

fn x() -> Array2<i64> {
    array![[1i64, 2], [3, 0]]
}

fn y() -> Array3<f32> {
    Array3::from_shape_fn((2, 2, 2), |(i, j, k)| (i + j + k) as f32 * 0.1)
}

fn assert_empty_error(err: &Error, call: &str, input: &str) {
    let message = err.to_string();
    assert!(matches!(err, Error::Model { .. }), "{err:?}");
    for part in [
        "model \"m\"",
        call,
        &format!("0 samples in {input}"),
        "at least one",
    ] {
        assert!(message.contains(part), "{message} lacks {part}");
    }
}

/// The weights after one good step, after `tamper` ran first: equal to those of a model that
/// never saw `tamper` only if the failed call changed no weight, slot or step count.
fn weights_after_one_step(tamper: impl FnOnce(&mut Sequential)) -> ArrayD<f32> {
    let mut model = model(true);
    tamper(&mut model);
    model.train_on_batch(x(), y()).unwrap();
    model.train_on_batch(x(), y()).unwrap();
    model.layers()[0].get_weights().remove(0)
}

#[test]
fn fit_on_zero_samples_is_an_error() {
    let mut m = model(true);
    let err = m.fit(empty_x(), empty_y(), quiet()).unwrap_err();
    assert_empty_error(&err, "fit", "x");
    assert_eq!(m.layers()[0].get_weights(), vec![table()]);
}

#[test]
fn evaluate_on_zero_samples_is_an_error() {
    let mut m = model(true);
    let err = m.evaluate(empty_x(), empty_y()).unwrap_err();
    assert_empty_error(&err, "evaluate", "x");
    let err = m
        .evaluate_with_batch_size(empty_x(), empty_y(), 4)
        .unwrap_err();
    assert_empty_error(&err, "evaluate", "x");
}

#[test]
fn train_on_batch_on_zero_samples_is_an_error_not_nan() {
    let mut m = model(true);
    let err = m.train_on_batch(empty_x(), empty_y()).unwrap_err();
    assert_empty_error(&err, "train_on_batch", "x");
    assert_eq!(m.layers()[0].get_weights(), vec![table()]);
}

#[test]
fn empty_validation_data_is_an_error_before_any_step() {
    let mut m = model(true);
    let err = m
        .fit(x(), y(), quiet().validation_data(empty_x(), empty_y()))
        .unwrap_err();
    assert_empty_error(&err, "fit", "validation_data");
    assert_eq!(m.layers()[0].get_weights(), vec![table()]);
}

#[test]
fn empty_x_with_nonempty_y_names_the_empty_x() {
    let mut m = model(true);
    let err = m.fit(empty_x(), y(), quiet()).unwrap_err();
    assert_empty_error(&err, "fit", "x");
}

#[test]
fn a_failed_empty_call_changes_no_slot_and_no_step_count() {
    let untouched = weights_after_one_step(|_| {});
    let after_errors = weights_after_one_step(|m| {
        // One real step first, so that slots and the step count exist.
        m.train_on_batch(x(), y()).unwrap();
        assert!(m.fit(empty_x(), empty_y(), quiet()).is_err());
        assert!(m.train_on_batch(empty_x(), empty_y()).is_err());
        assert!(m.evaluate(empty_x(), empty_y()).is_err());
        assert!(
            m.fit(x(), y(), quiet().validation_data(empty_x(), empty_y()))
                .is_err()
        );
    });
    let reference = weights_after_one_step(|m| {
        m.train_on_batch(x(), y()).unwrap();
    });
    assert_eq!(after_errors, reference);
    // Adam's step count shows: two steps differ from three.
    assert_ne!(untouched, reference);
}

#[test]
fn an_empty_input_does_not_build_a_deferred_model() {
    // A Dense without an input shape waits for the first data to build.
    let mut m = Sequential::new().with_name("m");
    m.add(Dense::new(1)).unwrap();
    m.compile(SGD::new(0.1).into(), Loss::MeanSquaredError)
        .unwrap();
    let (empty_x, empty_y) = (Array2::<f32>::zeros((0, 3)), Array2::<f32>::zeros((0, 1)));
    let err = m
        .fit(empty_x.clone(), empty_y.clone(), quiet())
        .unwrap_err();
    assert_empty_error(&err, "fit", "x");
    assert!(m.evaluate(empty_x.clone(), empty_y.clone()).is_err());
    assert!(m.train_on_batch(empty_x, empty_y).is_err());
    // A validation_split that leaves nothing to validate is found before the build too.
    let one = (array![[1.0f32, 2.0, 3.0]], array![[0.5f32]]);
    assert!(m.fit(one.0, one.1, quiet().validation_split(0.5)).is_err());
    assert!(!m.layers()[0].is_built());
    assert!(m.input_shape().is_none());
    // The first real call still builds it.
    m.fit(
        array![[1.0f32, 2.0, 3.0], [0.0, 1.0, 0.0]],
        array![[0.5f32], [0.1]],
        quiet(),
    )
    .unwrap();
    assert!(m.layers()[0].is_built());
}

#[test]
fn validation_split_leaving_no_sample_on_one_side_is_an_error_as_in_keras() {
    // Keras 2: "Training data contains 1 samples, which is not sufficient to split it ...".
    let mut m = model(true);
    let err = m
        .fit(
            array![[1i64, 2]],
            Array3::<f32>::zeros((1, 2, 2)),
            quiet().validation_split(0.5),
        )
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Model { .. }), "{err:?}");
    assert!(
        message.contains("validation_split") && message.contains("at least one"),
        "{message}"
    );
    assert_eq!(m.layers()[0].get_weights(), vec![table()]);
    // Enough samples: one is held out, as Keras' floor(n * (1 - split)) does.
    let history = m.fit(x(), y(), quiet().validation_split(0.1)).unwrap();
    assert_eq!(history.val_loss.len(), 1);
}
