//! `EmbeddingBag` and `SparseAdam` against PyTorch 2 on CPU
//! (`tests/data/pytorch_embedding_bag.json`, made by `pytorch_embedding_bag.py` beside it):
//! outputs and table gradients of every case, a few SparseAdam steps, PyTorch's error cases;
//! then `EmbedReduce` (keras-rs' formulas), training through every optimizer against
//! `Embedding` + `GlobalAveragePooling1D`, and a model `EmbeddingBag` -> `Dense` trained with
//! `SparseAdam`.

use std::sync::OnceLock;

use ndarray::{Array2, ArrayD, IxDyn, array};
use ndkeras::layer::{Backward, Gradient};
use ndkeras::optimizers::{Adagrad, RMSprop};
use ndkeras::prelude::*;
use serde_json::Value;

fn reference() -> &'static Value {
    static ROOT: OnceLock<Value> = OnceLock::new();
    ROOT.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/pytorch_embedding_bag.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    })
}

/// A nested JSON list of numbers as an array of its shape.
fn floats(value: &Value) -> ArrayD<f32> {
    let mut shape = Vec::new();
    let mut probe = value;
    while let Value::Array(items) = probe {
        shape.push(items.len());
        match items.first() {
            Some(first) => probe = first,
            None => break,
        }
    }
    fn flatten(v: &Value, out: &mut Vec<f32>) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
            n => out.push(n.as_f64().unwrap() as f32),
        }
    }
    let mut values = Vec::new();
    flatten(value, &mut values);
    ArrayD::from_shape_vec(IxDyn(&shape), values).unwrap()
}

fn ids(value: &Value) -> Tensor {
    Tensor::from(floats(value).mapv(|v| v as i64))
}

/// Relative tolerance 1e-6, with an absolute floor of 1e-7 for values that cancel to zero.
fn close(actual: &ArrayD<f32>, expected: &ArrayD<f32>, what: &str) {
    assert_eq!(actual.shape(), expected.shape(), "{what}: shape");
    for (index, (a, e)) in actual.iter().zip(expected.iter()).enumerate() {
        assert!(
            (a - e).abs() <= 1e-7 + 1e-6 * e.abs(),
            "{what}: element {index}: {a} vs PyTorch {e}"
        );
    }
}

fn table() -> Array2<f32> {
    floats(&reference()["table"]).into_dimensionality().unwrap()
}

fn bag_for(case: &Value) -> EmbeddingBag {
    let mut bag = EmbeddingBag::new(7, 4)
        .mode(case["mode"].as_str().unwrap().parse().unwrap())
        .include_last_offset(case["include_last_offset"].as_bool().unwrap())
        .weights(vec![table()]);
    if let Some(p) = case["padding_idx"].as_i64() {
        bag = bag.padding_idx(p as isize);
    }
    bag.build(&[None, None]).unwrap();
    bag
}

fn dense(gradient: &Gradient, shape: &[usize]) -> ArrayD<f32> {
    match gradient {
        Gradient::Dense(g) => g.clone(),
        Gradient::Rows { rows, values } => {
            let mut full = ArrayD::zeros(IxDyn(shape));
            for (k, &row) in rows.iter().enumerate() {
                full.index_axis_mut(ndarray::Axis(0), row)
                    .assign(&values.row(k).into_dyn());
            }
            full
        }
    }
}

fn table_gradient(backward: &Backward) -> ArrayD<f32> {
    assert!(backward.input_gradient.is_none());
    assert_eq!(backward.weight_gradients.len(), 1);
    let gradient = &backward.weight_gradients[0].1;
    if let Gradient::Rows { rows, .. } = gradient {
        assert!(
            rows.windows(2).all(|w| w[0] < w[1]),
            "rows sorted, distinct"
        );
    } else {
        panic!("an EmbeddingBag's gradient is row-sparse");
    }
    dense(gradient, &[7, 4])
}

#[test]
fn every_case_matches_pytorch_outputs_and_table_gradients() {
    let cases = reference()["cases"].as_array().unwrap();
    assert!(cases.len() >= 20);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let mut bag = bag_for(case);
        let input = ids(&case["ids"]);
        let offsets = (!case["offsets"].is_null()).then(|| ids(&case["offsets"]));
        let weights =
            (!case["per_sample_weights"].is_null()).then(|| floats(&case["per_sample_weights"]));
        let output = match (&offsets, &weights) {
            (Some(offsets), w) => bag
                .call_with_offsets(&input, offsets, w.as_ref().map(|w| w.view()))
                .unwrap(),
            (None, Some(w)) => bag.call_with_weights(&input, w.view()).unwrap(),
            (None, None) => bag.apply(&input).unwrap(),
        };
        close(
            output.as_float().unwrap(),
            &floats(&case["output"]),
            &format!("{name}: output"),
        );
        let grad_output = floats(&case["grad_output"]);
        let backward = bag
            .backward_with_offsets(
                &input,
                offsets.as_ref(),
                weights.as_ref().map(|w| w.view()),
                &grad_output,
            )
            .unwrap();
        let expected = floats(&case["table_gradient"]);
        close(
            &table_gradient(&backward),
            &expected,
            &format!("{name}: table gradient"),
        );
        if offsets.is_none() && weights.is_none() {
            // The Layer trait's backward (what a model runs) gives the same.
            let backward = bag.backward(&input, grad_output).unwrap();
            close(
                &table_gradient(&backward),
                &expected,
                &format!("{name}: Layer::backward"),
            );
        }
    }
}

#[test]
fn max_mode_sends_each_gradient_to_the_first_row_holding_the_maximum() {
    let table = array![[1.0f32, 5.0], [3.0, 5.0], [3.0, 0.0]];
    let mut bag = EmbeddingBag::new(3, 2)
        .mode(BagMode::Max)
        .weights(vec![table]);
    let ids = Tensor::from(array![[1i64, 2, 0]]);
    let out = bag.apply(&ids).unwrap();
    assert_eq!(out.as_float().unwrap(), &array![[3.0f32, 5.0]].into_dyn());
    let backward = bag
        .backward(&ids, array![[10.0f32, 20.0]].into_dyn())
        .unwrap();
    match &backward.weight_gradients[0].1 {
        Gradient::Rows { rows, values } => {
            assert_eq!(rows, &vec![1]);
            assert_eq!(values, &array![[10.0f32, 20.0]]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn sparse_adam_steps_match_pytorch() {
    for run in reference()["sparse_adam"].as_array().unwrap() {
        let name = run["name"].as_str().unwrap();
        let learning_rate = run["learning_rate"].as_f64().unwrap() as f32;
        let initial: Array2<f32> = floats(&run["initial_table"]).into_dimensionality().unwrap();
        let mut model = Sequential::new();
        if name.starts_with("EmbeddingBag") {
            let mut bag = EmbeddingBag::new(7, 4).weights(vec![initial]);
            bag = if name.contains("sum") {
                bag.mode(BagMode::Sum)
            } else {
                bag.mode(BagMode::Mean)
            };
            if name.contains("padding_idx 0") {
                bag = bag.padding_idx(0);
            }
            model.add(bag).unwrap();
        } else {
            model
                .add(Embedding::new(7, 4).weights(vec![initial]))
                .unwrap();
        }
        model
            .compile(
                SparseAdam::default().learning_rate(learning_rate).into(),
                Loss::MeanSquaredError,
            )
            .unwrap();
        for (k, step) in run["steps"].as_array().unwrap().iter().enumerate() {
            let loss = model
                .train_on_batch(ids(&step["ids"]), floats(&step["target"]))
                .unwrap();
            let expected_loss = step["loss"].as_f64().unwrap() as f32;
            assert!(
                (loss - expected_loss).abs() <= 1e-5 * expected_loss.abs(),
                "{name}, step {k}: loss {loss} vs PyTorch {expected_loss}"
            );
            close(
                &model.get_weights()[0],
                &floats(&step["table"]),
                &format!("{name}, step {k}: table"),
            );
        }
    }
}

fn built_bag() -> EmbeddingBag {
    let mut bag = EmbeddingBag::new(7, 4)
        .with_name("bags")
        .weights(vec![table()]);
    bag.build(&[None, None]).unwrap();
    bag
}

fn message(err: &Error) -> String {
    err.to_string()
}

#[test]
fn bad_offsets_are_errors_naming_the_layer_and_the_position() {
    let bag = built_bag();
    let ids = Tensor::from(vec![1i64, 2, 0, 3]);
    for (offsets, words) in [
        (vec![1i64, 2], vec!["offsets[0]", "has to be 0"]),
        (vec![0, 5], vec!["5 at offsets[1]", "within the 4 ids"]),
        (vec![0, 3, 1], vec!["1 at offsets[2]", "non-decreasing"]),
        (vec![0, -2], vec!["-2 at offsets[1]", "never negative"]),
    ] {
        let err = bag
            .call_with_offsets(&ids, &Tensor::from(offsets), None)
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
        let text = message(&err);
        assert!(text.contains("layer \"bags\""), "{text}");
        for word in words {
            assert!(text.contains(word), "{text} lacks {word}");
        }
    }
    let closed = built_bag().include_last_offset(true);
    let err = closed
        .call_with_offsets(&ids, &Tensor::from(Vec::<i64>::new()), None)
        .unwrap_err();
    assert!(message(&err).contains("at least one offset"), "{err}");
    let err = closed
        .call_with_offsets(&ids, &Tensor::from(vec![0i64, 2, 3]), None)
        .unwrap_err();
    assert!(message(&err).contains("3 at offsets[2]"), "{err}");
    let fine = closed
        .call_with_offsets(&ids, &Tensor::from(vec![0i64, 2, 4]), None)
        .unwrap();
    assert_eq!(fine.shape(), &[2, 4]);
}

#[test]
fn pytorchs_argument_errors() {
    let mut bag = built_bag();
    // per_sample_weights only in sum mode (PyTorch's NotImplementedError).
    let ids = Tensor::from(vec![1i64, 2, 0, 3]);
    let offsets = Tensor::from(vec![0i64]);
    let ones = ArrayD::<f32>::ones(IxDyn(&[4]));
    let err = bag
        .call_with_offsets(&ids, &offsets, Some(ones.view()))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    assert!(message(&err).contains("mode 'sum'"), "{err}");
    // ... of the ids' shape.
    let sum = built_bag().mode(BagMode::Sum);
    let three = ArrayD::<f32>::ones(IxDyn(&[3]));
    let err = sum
        .call_with_offsets(&ids, &offsets, Some(three.view()))
        .unwrap_err();
    assert!(matches!(err, Error::IncompatibleShape { .. }), "{err}");
    let mut nan = ones.clone();
    nan[2] = f32::NAN;
    let err = sum
        .call_with_offsets(&ids, &offsets, Some(nan.view()))
        .unwrap_err();
    assert!(message(&err).contains("NaN at position [2]"), "{err}");
    // 2-D ids take no offsets; 1-D ids need them; 3-D ids are refused.
    let err = bag
        .call_with_offsets(&Tensor::from(array![[1i64, 2]]), &offsets, None)
        .unwrap_err();
    assert!(message(&err).contains("offsets has to be None"), "{err}");
    let err = bag.apply(&ids).unwrap_err();
    assert!(message(&err).contains("need offsets"), "{err}");
    let err = bag
        .apply(&Tensor::from(ndarray::Array3::<i64>::zeros((1, 1, 1))))
        .unwrap_err();
    assert!(matches!(err, Error::IncompatibleShape { .. }), "{err}");
    // An id out of range, with its position.
    let err = bag
        .apply(&Tensor::from(array![[1i64, 2], [7, 0]]))
        .unwrap_err();
    assert!(
        matches!(&err, Error::IndexOutOfRange { index: 7, position, input_dim: 7, .. } if position == &vec![1, 0]),
        "{err}"
    );
    let err = bag
        .call_with_offsets(&Tensor::from(vec![1i64, -1]), &offsets, None)
        .unwrap_err();
    assert!(
        matches!(err, Error::IndexOutOfRange { index: -1, .. }),
        "{err}"
    );
    // padding_idx outside -num_embeddings..num_embeddings.
    let mut bad = EmbeddingBag::new(7, 4).padding_idx(7);
    let err = bad.apply(&Tensor::from(array![[1i64]])).unwrap_err();
    assert!(message(&err).contains("-7 through 6"), "{err}");
    assert!(!bad.is_built());
}

#[test]
fn padding_and_empty_bags_give_zeros_in_every_mode() {
    for mode in [BagMode::Sum, BagMode::Mean, BagMode::Max] {
        let mut bag = EmbeddingBag::new(7, 4)
            .mode(mode)
            .padding_idx(-7)
            .weights(vec![table()]);
        let out = bag.apply(&Tensor::from(array![[0i64, 0], [0, 0]])).unwrap();
        assert!(out.as_float().unwrap().iter().all(|&v| v == 0.0), "{mode}");
        let out = bag
            .call_with_offsets(
                &Tensor::from(vec![3i64]),
                &Tensor::from(vec![0i64, 1, 1]),
                None,
            )
            .unwrap();
        let out = out.as_float().unwrap();
        assert!(
            out.slice(ndarray::s![1.., ..]).iter().all(|&v| v == 0.0),
            "{mode}"
        );
        // No gradient reaches the padding row.
        let backward = bag
            .backward(
                &Tensor::from(array![[0i64, 1]]),
                ArrayD::ones(IxDyn(&[1, 4])),
            )
            .unwrap();
        assert!(
            table_gradient(&backward)
                .index_axis(ndarray::Axis(0), 0)
                .iter()
                .all(|&v| v == 0.0)
        );
    }
}

#[test]
fn a_frozen_bag_has_no_gradient_and_an_unbuilt_one_no_output() {
    let mut bag = built_bag().trainable(false);
    let backward = bag
        .backward(&Tensor::from(array![[1i64]]), ArrayD::ones(IxDyn(&[1, 4])))
        .unwrap();
    assert!(backward.weight_gradients.is_empty());
    let unbuilt = EmbeddingBag::new(3, 2);
    let err = unbuilt.call(&Tensor::from(array![[1i64]])).unwrap_err();
    assert!(matches!(err, Error::NotBuilt { .. }), "{err}");
    let err = bag
        .backward(&Tensor::from(array![[1i64]]), ArrayD::ones(IxDyn(&[2, 4])))
        .unwrap_err();
    assert!(matches!(err, Error::IncompatibleShape { .. }), "{err}");
}

/// `EmbeddingBag(mean)` is `Embedding` + `GlobalAveragePooling1D` on bags without padding:
/// trained from the same table and kernel with any optimizer, both give the same weights.
#[test]
fn every_optimizer_trains_a_bag_as_it_trains_embedding_and_pooling() {
    let kernel = array![[0.5f32], [-0.25], [0.125], [1.0]];
    let x = array![[1i64, 2, 2], [3, 4, 1], [6, 6, 6], [0, 5, 1]];
    let y = array![[1.0f32], [0.0], [1.0], [0.0]];
    let optimizers: Vec<Optimizer> = vec![
        SGD::new(0.1).into(),
        SGD::new(0.1).momentum(0.9).into(),
        RMSprop::default().learning_rate(0.01).momentum(0.5).into(),
        Adam::default().learning_rate(0.01).into(),
        Adam::default().learning_rate(0.01).lazy(true).into(),
        Adagrad::default().learning_rate(0.1).into(),
        SparseAdam::default().learning_rate(0.01).into(),
    ];
    for optimizer in optimizers {
        let mut bag_model = Sequential::new();
        bag_model
            .add(EmbeddingBag::new(7, 4).weights(vec![table()]))
            .unwrap();
        bag_model
            .add(Dense::new(1).weights(vec![kernel.clone().into_dyn(), ArrayD::zeros(IxDyn(&[1]))]))
            .unwrap();
        let mut pooled = Sequential::new();
        pooled
            .add(Embedding::new(7, 4).weights(vec![table()]))
            .unwrap();
        pooled.add(GlobalAveragePooling1D::new()).unwrap();
        pooled
            .add(Dense::new(1).weights(vec![kernel.clone().into_dyn(), ArrayD::zeros(IxDyn(&[1]))]))
            .unwrap();
        for model in [&mut bag_model, &mut pooled] {
            model.compile(optimizer, Loss::MeanSquaredError).unwrap();
        }
        // Steps that touch different rows, so the lazy catch-up of untouched rows matters.
        for range in [0..2, 2..4, 0..4, 1..3] {
            let xs = x.slice(ndarray::s![range.clone(), ..]).to_owned();
            let ys = y.slice(ndarray::s![range, ..]).to_owned();
            let a = bag_model.train_on_batch(xs.clone(), ys.clone()).unwrap();
            let b = pooled.train_on_batch(xs, ys).unwrap();
            assert!(
                (a - b).abs() <= 1e-6 * b.abs().max(1e-3),
                "{optimizer}: {a} vs {b}"
            );
        }
        for (a, b) in bag_model.get_weights().iter().zip(pooled.get_weights()) {
            for (u, v) in a.iter().zip(b.iter()) {
                assert!(
                    (u - v).abs() <= 1e-5 * v.abs().max(1.0),
                    "{optimizer}: {u} vs {v}"
                );
            }
        }
    }
}

#[test]
fn a_bag_model_trains_with_sparse_adam_and_leaves_untouched_rows_alone() {
    let mut model = Sequential::new();
    model
        .add(
            EmbeddingBag::new(50, 8)
                .padding_idx(0)
                .embeddings_initializer(Initializer::RandomNormal {
                    mean: 0.0,
                    stddev: 0.1,
                    seed: Some(3),
                }),
        )
        .unwrap();
    model
        .add(Dense::new(1).activation(Activation::Sigmoid))
        .unwrap();
    model
        .compile(
            SparseAdam::default().learning_rate(0.05).into(),
            Loss::BinaryCrossentropy,
        )
        .unwrap();
    // Label 1 for bags holding an id below 20; id 0 is padding; ids 40.. never appear.
    let mut x = Array2::<i64>::zeros((64, 5));
    let mut y = Array2::<f32>::zeros((64, 1));
    for b in 0..64 {
        for k in 0..4 {
            x[[b, k]] = 1 + ((b * 7 + k * 13) % 39) as i64;
        }
        y[[b, 0]] = f32::from(u8::from(x.row(b).iter().any(|&id| (1..20).contains(&id))));
    }
    let before = model.get_weights()[0].clone();
    let history = model
        .fit(
            x,
            y,
            FitOptions::default().epochs(15).batch_size(16).verbose(0),
        )
        .unwrap();
    assert!(
        history.loss[14] < 0.8 * history.loss[0],
        "{:?}",
        history.loss
    );
    let after = &model.get_weights()[0];
    for row in [0usize, 40, 49] {
        assert_eq!(
            after.index_axis(ndarray::Axis(0), row),
            before.index_axis(ndarray::Axis(0), row),
            "row {row}"
        );
    }
    assert!(
        after
            .index_axis(ndarray::Axis(0), 0)
            .iter()
            .all(|&v| v == 0.0)
    );
}

#[test]
fn embed_reduce_follows_keras_rs_combiners() {
    let table = array![[0.0f32, 0.0], [1.0, 2.0], [3.0, 5.0], [-4.0, 8.0]];
    let ids = Tensor::from(array![[1i64, 2, 3], [2, 2, 0]]);
    let w = array![[1.0f32, 2.0, 0.5], [0.0, 0.0, 0.0]];
    let rows = |ids: &[usize], weights: &[f32]| -> [f32; 2] {
        let mut s = [0.0f32; 2];
        for (&i, &wi) in ids.iter().zip(weights) {
            s[0] += wi * table[[i, 0]];
            s[1] += wi * table[[i, 1]];
        }
        s
    };
    let s0 = rows(&[1, 2, 3], &[1.0, 2.0, 0.5]);
    for (combiner, divisor) in [
        (Combiner::Sum, 1.0f32),
        (Combiner::Mean, 3.5),
        (Combiner::SqrtN, (1.0f32 + 4.0 + 0.25).sqrt()),
    ] {
        let mut layer = EmbedReduce::new(4, 2)
            .combiner(combiner)
            .weights(vec![table.clone()]);
        layer.apply(&ids).unwrap();
        let out = layer.call_with_weights(&ids, w.view().into_dyn()).unwrap();
        let out = out.as_float().unwrap();
        assert!((out[[0, 0]] - s0[0] / divisor).abs() < 1e-6, "{combiner}");
        assert!((out[[0, 1]] - s0[1] / divisor).abs() < 1e-6, "{combiner}");
        // All weights zero: divide_no_nan gives zeros (and sum gives 0 too).
        assert_eq!(
            out.index_axis(ndarray::Axis(0), 1)
                .iter()
                .copied()
                .collect::<Vec<f32>>(),
            vec![0.0, 0.0],
            "{combiner}"
        );
    }
    // Unweighted mean of a 2-D input, and a 1-D input is not reduced.
    let mut mean = EmbedReduce::new(4, 2).weights(vec![table.clone()]);
    let out = mean.apply(&ids).unwrap();
    assert_eq!(
        out.as_float()
            .unwrap()
            .index_axis(ndarray::Axis(0), 1)
            .iter()
            .copied()
            .collect::<Vec<f32>>(),
        vec![2.0, 10.0 / 3.0]
    );
    let out = mean.apply(&Tensor::from(vec![3i64, 1])).unwrap();
    assert_eq!(
        out.as_float().unwrap(),
        &array![[-4.0f32, 8.0], [1.0, 2.0]].into_dyn()
    );
    // For a 1-D input, `sum` multiplies by the weights, `mean` ignores them.
    let one_d = Tensor::from(vec![3i64, 1]);
    let weights = array![2.0f32, 0.0];
    let out = mean
        .call_with_weights(&one_d, weights.view().into_dyn())
        .unwrap();
    assert_eq!(
        out.as_float().unwrap(),
        &array![[-4.0f32, 8.0], [1.0, 2.0]].into_dyn()
    );
    let mut sum = EmbedReduce::new(4, 2)
        .combiner(Combiner::Sum)
        .weights(vec![table.clone()]);
    sum.apply(&one_d).unwrap();
    let out = sum
        .call_with_weights(&one_d, weights.view().into_dyn())
        .unwrap();
    assert_eq!(
        out.as_float().unwrap(),
        &array![[-8.0f32, 16.0], [0.0, 0.0]].into_dyn()
    );
    // Rank 3 is refused, as in keras-rs.
    let err = mean
        .apply(&Tensor::from(ndarray::Array3::<i64>::zeros((1, 1, 1))))
        .unwrap_err();
    assert!(message(&err).contains("rank 3"), "{err}");
}

#[test]
fn embed_reduce_masks_and_ragged_rows() {
    let table = array![[9.0f32, 9.0], [1.0, 2.0], [3.0, 5.0]];
    let mut masked = EmbedReduce::new(3, 2)
        .mask_zero(true)
        .weights(vec![table.clone()]);
    let out = masked
        .apply(&Tensor::from(array![[1i64, 0, 2], [0, 0, 0]]))
        .unwrap();
    assert_eq!(out.mask(), None);
    assert_eq!(
        out.as_float().unwrap(),
        &array![[2.0f32, 3.5], [0.0, 0.0]].into_dyn()
    );
    // An incoming mask does the same.
    let mut plain = EmbedReduce::new(3, 2).weights(vec![table.clone()]);
    let ids = Tensor::from(array![[1i64, 0, 2]])
        .with_mask(Some(array![[true, false, true]].into_dyn()))
        .unwrap();
    let out = plain.apply(&ids).unwrap();
    assert_eq!(out.as_float().unwrap(), &array![[2.0f32, 3.5]].into_dyn());
    // Its gradient leaves the masked row out.
    let backward = plain
        .backward(&ids, array![[2.0f32, 4.0]].into_dyn())
        .unwrap();
    match &backward.weight_gradients[0].1 {
        Gradient::Rows { rows, values } => {
            assert_eq!(rows, &vec![1, 2]);
            assert_eq!(values, &array![[1.0f32, 2.0], [1.0, 2.0]]);
        }
        other => panic!("{other:?}"),
    }
    // Ragged rows: (ids, row lengths).
    let flat = Tensor::from(vec![1i64, 2, 2, 0]);
    let out = masked.call_ragged(&flat, &[1, 0, 3], None).unwrap();
    assert_eq!(
        out.as_float().unwrap(),
        &array![[1.0f32, 2.0], [0.0, 0.0], [3.0, 5.0]].into_dyn()
    );
    let err = masked.call_ragged(&flat, &[1, 2], None).unwrap_err();
    assert!(
        message(&err).contains("add up to 3, but there are 4 ids"),
        "{err}"
    );
}

#[test]
fn embed_reduce_trains_in_a_model() {
    let mut model = Sequential::new();
    model
        .add(
            EmbedReduce::new(20, 4)
                .combiner(Combiner::SqrtN)
                .mask_zero(true),
        )
        .unwrap();
    model.add(Dense::new(1)).unwrap();
    model
        .compile(
            Adam::default().learning_rate(0.05).lazy(true).into(),
            Loss::MeanSquaredError,
        )
        .unwrap();
    let x = array![[1i64, 2, 0], [3, 0, 0], [4, 5, 6], [7, 1, 0]];
    let y = array![[1.0f32], [-1.0], [0.5], [2.0]];
    let history = model
        .fit(
            x,
            y,
            FitOptions::default().epochs(30).batch_size(4).verbose(0),
        )
        .unwrap();
    assert!(
        history.loss[29] < 0.5 * history.loss[0],
        "{:?}",
        history.loss
    );
}

#[cfg(feature = "serde")]
#[test]
fn configs_round_trip_and_models_reload_from_json() {
    let bag = EmbeddingBag::new(7, 4)
        .mode(BagMode::Sum)
        .padding_idx(-2)
        .include_last_offset(true)
        .embeddings_regularizer(Regularizer::L2(0.01))
        .with_name("bags");
    let config = bag.get_config();
    assert_eq!(config["num_embeddings"], 7);
    assert_eq!(config["mode"], "sum");
    assert_eq!(config["padding_idx"], -2);
    assert_eq!(config["include_last_offset"], true);
    let back = EmbeddingBag::from_config(&config).unwrap();
    assert_eq!(back.get_config(), config);
    assert_eq!(back.padding_row(), Some(5));

    let reduce = EmbedReduce::new(9, 3)
        .combiner(Combiner::SqrtN)
        .mask_zero(true)
        .with_name("reduce");
    let config = reduce.get_config();
    assert_eq!(config["combiner"], "sqrtn");
    assert_eq!(
        EmbedReduce::from_config(&config).unwrap().get_config(),
        config
    );
    // A keras-rs (Keras 3) config: a DTypePolicy dict, the default combiner when absent.
    let keras_rs = serde_json::json!({
        "name": "embed_reduce", "trainable": true,
        "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}},
        "input_dim": 10, "output_dim": 4, "mask_zero": false,
        "embeddings_initializer": {"module": "keras.initializers", "class_name": "RandomUniform",
            "config": {"minval": -0.05, "maxval": 0.05, "seed": null}},
        "embeddings_regularizer": null, "activity_regularizer": null, "embeddings_constraint": null
    });
    let layer = EmbedReduce::from_config(&keras_rs).unwrap();
    assert_eq!(layer.config().combiner, Combiner::Mean);
    let err = EmbedReduce::from_config(
        &serde_json::json!({"input_dim": 2, "output_dim": 2, "combiner": "max"}),
    )
    .unwrap_err();
    assert!(matches!(err, Error::UnknownName { .. }), "{err}");
    let err = EmbeddingBag::from_config(
        &serde_json::json!({"num_embeddings": 2, "embedding_dim": 2, "padding_idx": 2}),
    )
    .unwrap_err();
    assert!(message(&err).contains("padding_idx"), "{err}");

    let mut model = Sequential::new();
    model
        .add(EmbeddingBag::new(7, 4).mode(BagMode::Max).with_name("bags"))
        .unwrap();
    model.add(Dense::new(2).with_name("out")).unwrap();
    let json = model.to_json();
    assert!(json.contains("\"ndkeras>EmbeddingBag\""), "{json}");
    let mut reloaded = Sequential::from_json(&json).unwrap();
    assert_eq!(reloaded.to_json(), json);
    reloaded.set_weights(model.get_weights()).unwrap();
    let x = array![[1i64, 2, 3], [4, 5, 6]];
    assert_eq!(
        reloaded.predict(x.clone()).unwrap(),
        model.predict(x).unwrap()
    );
}
