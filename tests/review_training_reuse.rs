//! Review: `fit` (which reuses buffers across steps) gives exactly the weights of the same
//! steps made one by one on fresh models (which reuse nothing).

use ndarray::{Array2, Array3, ArrayD, array};
use ndkeras::prelude::*;

/// Embedding (mask_zero) listed twice as an output, and also pooled into a Dense output;
/// loss weights != 1.
fn model(weights: Option<Vec<ArrayD<f32>>>) -> Model {
    let mut g = Graph::new();
    let ids = g.input(Input::new(&[4]).dtype(DType::Int64).with_name("ids"));
    let emb = g.add(Embedding::new(10, 3).mask_zero(true)).unwrap();
    let e = g.call(emb, &[ids]).unwrap();
    let pool = g.add(GlobalAveragePooling1D::new()).unwrap();
    let p = g.call(pool, &[e]).unwrap();
    let dense = g.add(Dense::new(2)).unwrap();
    let d = g.call(dense, &[p]).unwrap();
    let mut m = g.model(&[ids], &[e, d, e]).unwrap();
    m.compile(
        SGD::new(0.3).into(),
        vec![Loss::MeanSquaredError; 3],
        Some(vec![1.0, 0.5, 2.0]),
    )
    .unwrap();
    if let Some(w) = weights {
        m.set_weights(w).unwrap();
    }
    m
}

#[test]
fn fit_equals_fresh_steps_with_outputs_listed_twice_and_a_mask() {
    let ids = array![
        [1i64, 2, 1, 0],
        [3, 3, 0, 0],
        [9, 8, 7, 6],
        [5, 5, 5, 5],
        [2, 0, 4, 1],
        [6, 1, 1, 1],
        [0, 0, 0, 7]
    ];
    let n = ids.nrows();
    let ye = Array3::from_shape_fn((n, 4, 3), |(i, j, c)| {
        ((i * 7 + j * 3 + c) % 5) as f32 * 0.2 - 0.3
    });
    let yd = Array2::from_shape_fn((n, 2), |(i, c)| ((i + c) % 3) as f32 * 0.5 - 0.2);
    let mut fitted = model(None);
    let start = fitted.get_weights();
    fitted
        .fit(
            vec![Tensor::from(ids.clone())],
            vec![
                Tensor::from(ye.clone()),
                Tensor::from(yd.clone()),
                Tensor::from(ye.clone()),
            ],
            FitOptions::default()
                .epochs(2)
                .batch_size(3)
                .shuffle(false)
                .verbose(0),
        )
        .unwrap();
    let mut weights = start;
    for _ in 0..2 {
        for s in (0..n).step_by(3) {
            let e = (s + 3).min(n);
            let mut fresh = model(Some(weights.clone()));
            let x = ids.slice(ndarray::s![s..e, ..]).to_owned();
            let a = ye.slice(ndarray::s![s..e, .., ..]).to_owned();
            let b = yd.slice(ndarray::s![s..e, ..]).to_owned();
            fresh
                .train_on_batch(
                    vec![Tensor::from(x)],
                    vec![Tensor::from(a.clone()), Tensor::from(b), Tensor::from(a)],
                )
                .unwrap();
            weights = fresh.get_weights();
        }
    }
    assert_eq!(fitted.get_weights(), weights);
}

/// One table looked up by two inputs of different lengths.
fn shared(weights: Option<Vec<ArrayD<f32>>>) -> Model {
    let mut g = Graph::new();
    let a = g.input(Input::new(&[5]).dtype(DType::Int64).with_name("a"));
    let b = g.input(Input::new(&[2]).dtype(DType::Int64).with_name("b"));
    let emb = g.add(Embedding::new(12, 4)).unwrap();
    let ea = g.call(emb, &[a]).unwrap();
    let eb = g.call(emb, &[b]).unwrap();
    let mut m = g.model(&[a, b], &[ea, eb]).unwrap();
    m.compile(
        SGD::new(0.2).into(),
        vec![Loss::MeanSquaredError, Loss::MeanAbsoluteError],
        Some(vec![0.25, 3.0]),
    )
    .unwrap();
    if let Some(w) = weights {
        m.set_weights(w).unwrap();
    }
    m
}

#[test]
fn fit_equals_fresh_steps_with_a_shared_table() {
    let n = 5;
    let a = Array2::from_shape_fn((n, 5), |(i, j)| ((i * 5 + j * 7) % 12) as i64);
    let b = Array2::from_shape_fn((n, 2), |(i, j)| ((11 + 12 - i * 3 + j) % 12) as i64);
    let ya = Array3::from_shape_fn((n, 5, 4), |(i, j, c)| ((i + j + c) % 4) as f32 * 0.3 - 0.4);
    let yb = Array3::from_shape_fn((n, 2, 4), |(i, j, c)| {
        ((i * 2 + j + c) % 3) as f32 * 0.3 - 0.2
    });
    let mut fitted = shared(None);
    let start = fitted.get_weights();
    fitted
        .fit(
            vec![Tensor::from(a.clone()), Tensor::from(b.clone())],
            vec![Tensor::from(ya.clone()), Tensor::from(yb.clone())],
            FitOptions::default()
                .epochs(3)
                .batch_size(2)
                .shuffle(false)
                .verbose(0),
        )
        .unwrap();
    let mut weights = start;
    for _ in 0..3 {
        for s in (0..n).step_by(2) {
            let e = (s + 2).min(n);
            let mut fresh = shared(Some(weights.clone()));
            fresh
                .train_on_batch(
                    vec![
                        Tensor::from(a.slice(ndarray::s![s..e, ..]).to_owned()),
                        Tensor::from(b.slice(ndarray::s![s..e, ..]).to_owned()),
                    ],
                    vec![
                        Tensor::from(ya.slice(ndarray::s![s..e, .., ..]).to_owned()),
                        Tensor::from(yb.slice(ndarray::s![s..e, .., ..]).to_owned()),
                    ],
                )
                .unwrap();
            weights = fresh.get_weights();
        }
    }
    assert_eq!(fitted.get_weights(), weights);
}
