//! Review of training against tf_keras 2.21: cross-entropies on probabilities that sit exactly
//! on Keras' clipping bounds.
//!
//! Checked and matching tf_keras 2.21 to float32 rounding (3 `train_on_batch` steps, ids
//! repeated within a batch, `Embedding(6, 3)` + mse): SGD with momentum and with Nesterov,
//! RMSprop plain and with momentum + centered, Adam with and without amsgrad, Adagrad;
//! `Embedding(mask_zero)` + `GlobalAveragePooling1D` + `Dense(sigmoid)` with
//! binary cross-entropy under Adam, RMSprop(momentum), SGD(Nesterov), Adagrad; a masked
//! per-position `Dense` with mse under centered RMSprop. No test here for those.

use ndarray::{ArrayD, array};
use ndkeras::prelude::*;

/// `Embedding(4, 3)` whose output is taken as probabilities, some entries exactly on
/// Keras' clipping bounds `1e-7` and `1 - 1e-7` (float32).
fn probability_table_model(loss: Loss) -> Sequential {
    let eps = 1e-7f32;
    let one = 1.0f32 - eps;
    let table = array![
        [0.2f32, 0.3, 0.5],
        [eps, one, 0.4],
        [0.6, eps, one],
        [0.1, 0.1, 0.8]
    ]
    .into_dyn();
    let mut model = Sequential::new();
    model.add(Embedding::new(4, 3).input_length(2)).unwrap();
    model.compile(SGD::new(0.1).into(), loss).unwrap();
    model.set_weights(vec![table]).unwrap();
    model
}

fn assert_close(got: f32, want: f32, what: &str) {
    assert!(
        (got - want).abs() <= 1e-5 * want.abs().max(1e-6),
        "{what}: ndkeras {got}, tf_keras {want}"
    );
}

/// tf_keras clips probabilities with `tf.clip_by_value`, whose gradient passes where the
/// value is *inside or on* the bounds (`_ClipByValueGrad` zeroes only `x < min` and
/// `x > max`). ndkeras zeroes the gradient on the bounds too (`p > EPSILON && p < 1 - EPSILON`
/// in `Loss::block`, `src/losses.rs`), so a probability of exactly `1e-7` never moves.
///
/// Python (tf_keras 2.21):
/// ```python
/// eps = np.float32(1e-7); one = np.float32(1) - eps
/// T = np.array([[0.2,0.3,0.5],[eps,one,0.4],[0.6,eps,one],[0.1,0.1,0.8]], np.float32)
/// x = np.array([[1,2],[3,1]])
/// y = np.array([[[1,0,1],[0,1,0]],[[1,1,0],[0,0,1]]], np.float32)
/// m = keras.Sequential([keras.layers.Embedding(4,3,input_length=2)])
/// m.compile(keras.optimizers.SGD(0.1), "binary_crossentropy")
/// m.build((None,2)); m.set_weights([T]); m.train_on_batch(x, y)
/// m.get_weights()[0].ravel()
/// # [0.2, 0.3, 0.5, 41666.66015625, -69904.0625, 0.44166666, 0.57916671, 41666.66796875,
/// #  -34951.53125, 0.18333325, 0.18333325, 0.75833338]
/// ```
/// ndkeras: the entries `[1][0]` and `[2][1]` (exactly `1e-7`, target 1) stay `1e-7`;
/// tf_keras moves them to 41666.66 (gradient `-1/(12 * 2e-7)`, as the eager
/// `tf.GradientTape` of `BinaryCrossentropy()` also gives). Only those entries are checked:
/// at `1 - 1e-7` tf_keras' graph optimizer rewrites `1 - p + eps` as `(1 + eps) - p`, which
/// moves the values there (and the reported loss, 7.13009 vs the eager 7.15109) by a graph
/// rewrite no library could be asked to mirror.
#[test]
fn binary_crossentropy_gradient_passes_on_the_clip_bound_as_in_tf_keras() {
    let mut model = probability_table_model(Loss::BinaryCrossentropy);
    let x = array![[1i64, 2], [3, 1]];
    let y = array![
        [[1.0f32, 0., 1.], [0., 1., 0.]],
        [[1., 1., 0.], [0., 0., 1.]]
    ];
    model.train_on_batch(x, y).unwrap();
    let w: ArrayD<f32> = model.get_weights().remove(0);
    assert_close(w[[1, 0]], 41666.66, "row 1, column 0 (p = 1e-7, target 1)");
    assert_close(w[[2, 1]], 41666.668, "row 2, column 1 (p = 1e-7, target 1)");
    assert_close(
        w[[1, 2]],
        0.441_666_66,
        "row 1, column 2 (inside the bounds)",
    );
}

/// The same for `sparse_categorical_crossentropy` on probabilities: tf_keras takes
/// `log(clip_by_value(p, 1e-7, 1 - 1e-7))` as logits, and the clip's gradient passes on both
/// bounds; ndkeras zeroes it there (`inside = row[j] > EPSILON && row[j] < 1.0 - EPSILON` in
/// `sparse_cross_entropy`, `src/losses.rs`).
///
/// Python (tf_keras 2.21), table and `x` as above:
/// ```python
/// m.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
/// m.build((None,2)); m.set_weights([T])
/// m.train_on_batch(x, np.array([[0,1],[2,2]], np.float32))   # 8.629642486572266
/// m.get_weights()[0].ravel()
/// # [0.2, 0.3, 0.5, 249999.953125, 0.96428561, 0.42678571, 0.58437502, 249999.984375,
/// #  0.98437488, 0.075, 0.075, 0.80625004]
/// ```
/// ndkeras gives the same loss but keeps `[1][0]`, `[2][1]` at `1e-7` and `[1][1]`, `[2][2]`
/// at `0.9999999`.
#[test]
fn sparse_categorical_crossentropy_gradient_passes_on_the_clip_bounds_as_in_tf_keras() {
    let mut model = probability_table_model(Loss::SparseCategoricalCrossentropy);
    let x = array![[1i64, 2], [3, 1]];
    let y = array![[0.0f32, 1.], [2., 2.]];
    let loss = model.train_on_batch(x, y).unwrap();
    assert_close(loss, 8.629_642, "loss");
    let keras = [
        0.2f32,
        0.3,
        0.5,
        249_999.95,
        0.964_285_6,
        0.426_785_7,
        0.584_375,
        249_999.98,
        0.984_374_9,
        0.075,
        0.075,
        0.806_25,
    ];
    let w: Vec<f32> = model.get_weights()[0].iter().copied().collect();
    for (i, (&got, &want)) in w.iter().zip(&keras).enumerate() {
        assert_close(got, want, &format!("table entry {i}"));
    }
}
