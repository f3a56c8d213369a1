//! Review (rev7): `RotaryEmbedding` / `SinePositionEncoding` against KerasHub, and hostile
//! inputs to `Sequential::fit` / `train_on_batch` / `evaluate` with an `Embedding`.
//!
//! The position layers were compared formula by formula with KerasHub HEAD
//! (`keras_hub/src/layers/modeling/rotary_embedding.py`, `sine_position_encoding.py`):
//! inverse frequencies, `denominator_dim`, linear/dynamic scaling, the half-split
//! `rotate_half`, axes (negative too), `start_index` and float32 positions all agree; no
//! failing case was found there. The finding below is in the training loop.

use ndarray::{Array3, ArrayD};
use ndkeras::prelude::*;

/// A Sequential whose `Embedding` reads a computed tensor (the output of a `Reshape`), so
/// its ids are not checked before the first step (`Model::check_ids` checks only the layers
/// that read a model input) and an out-of-range id fails inside a training step.
fn reshaped_model() -> Sequential {
    let table =
        ndarray::Array2::<f32>::from_shape_fn((4, 2), |(i, j)| (i * 2 + j) as f32 * 0.1).into_dyn();
    let mut model = Sequential::new().with_name("m");
    model.add(Reshape::new(&[2])).unwrap();
    model
        .add(Embedding::new(4, 2).weights(vec![table]))
        .unwrap();
    model
        .compile(Adam::default().into(), Loss::MeanSquaredError)
        .unwrap();
    model
}

/// Four samples of two ids each; sample 3 holds id 9, out of range for `input_dim = 4`.
fn data() -> (Array3<i64>, Array3<f32>) {
    let x = Array3::from_shape_vec((4, 2, 1), vec![1i64, 2, 3, 0, 1, 1, 9, 0]).unwrap();
    (x, Array3::<f32>::ones((4, 2, 2)))
}

fn position_of(err: &Error) -> Vec<usize> {
    match err {
        Error::IndexOutOfRange { position, .. } => position.clone(),
        other => panic!("expected IndexOutOfRange, got {other:?}"),
    }
}

/// Wrong: `Model::fit_loop` (src/model/fit.rs) returns the error of a failed
/// `train_step` as the layer raised it, with the id's position counted inside the batch:
/// with `batch_size = 2` and `shuffle = false`, id 9 at sample 3 of `x` is reported "at
/// position [1, 0]" — sample 1, a sample that holds valid ids — and nothing says which
/// batch or epoch failed. `evaluate_data` (same file) and `predict` apply
/// `Error::offset_batch(start)` and report the same id at `[3, 0]`.
///
/// Expected: `fit` names the sample of `x` where the bad id is, as `evaluate` does
/// (`[3, 0]` here, the row of the data given; with shuffling, the row of `x` the batch
/// took it from). Keras raises from the failing batch after applying the earlier ones;
/// ndkeras already leaves the first batch applied and the optimizer state consistent
/// (checked below), only the reported position is wrong.
#[test]
fn fit_reports_a_bad_id_of_a_later_batch_at_its_sample_of_x() {
    let (x, y) = data();

    let mut evaluated = reshaped_model();
    let err = evaluated
        .evaluate_with_batch_size(x.clone(), y.clone(), 2)
        .unwrap_err();
    assert_eq!(position_of(&err), vec![3, 0], "evaluate: {err}");

    let mut model = reshaped_model();
    let options = FitOptions::default()
        .batch_size(2)
        .shuffle(false)
        .verbose(false);
    let err = model.fit(x, y, options).unwrap_err();

    // The first batch was applied and nothing of the failed step was: the same as one
    // step on the first batch alone (this part holds today).
    let mut one_step = reshaped_model();
    let x1 = Array3::from_shape_vec((2, 2, 1), vec![1i64, 2, 3, 0]).unwrap();
    one_step
        .train_on_batch(x1, Array3::<f32>::ones((2, 2, 2)))
        .unwrap();
    let weights: Vec<ArrayD<f32>> = model.get_weights();
    assert_eq!(weights, one_step.get_weights());

    assert_eq!(
        position_of(&err),
        vec![3, 0],
        "fit reports id 9 of sample 3 as: {err}"
    );
}
