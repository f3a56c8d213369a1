//! ndkeras against tf_keras 2.21 on the parity cases of issue 7, read from
//! `tests/data/keras_parity.json` (written by `tests/data/keras_parity.py` with the real
//! tf_keras): the penalty of a frozen layer's regularizer in the loss, constraints whose
//! `axis` is a list, and `int8` / `int16` / `uint16` / `uint64` ids.

use std::sync::OnceLock;

use approx::assert_abs_diff_eq;
use ndarray::{ArrayD, IxDyn};
use ndkeras::prelude::*;
use serde_json::Value;

/// The reference file, parsed once.
fn reference() -> &'static Value {
    static ROOT: OnceLock<Value> = OnceLock::new();
    ROOT.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/keras_parity.json");
        let text = std::fs::read_to_string(path).expect("keras_parity.json is in the repository");
        serde_json::from_str(&text).expect("keras_parity.json is valid JSON")
    })
}

fn tensor(value: &Value) -> ArrayD<f32> {
    let shape: Vec<usize> = value["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data: Vec<f32> = value["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap()
}

fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

fn ids(value: &Value) -> ArrayD<i64> {
    let rows: Vec<Vec<i64>> = value
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect()
        })
        .collect();
    let cols = rows[0].len();
    ArrayD::from_shape_vec(
        IxDyn(&[rows.len(), cols]),
        rows.into_iter().flatten().collect(),
    )
    .unwrap()
}

/// Same shape, and every element within `epsilon` of Keras'.
fn assert_all_close(ours: &ArrayD<f32>, keras: &ArrayD<f32>, epsilon: f32) {
    assert_eq!(ours.shape(), keras.shape());
    for (a, b) in ours.iter().zip(keras) {
        assert_abs_diff_eq!(*a, *b, epsilon = epsilon);
    }
}

fn frozen_case(id: &str) -> &'static Value {
    reference()["frozen_regularizer"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no case {id}"))
}

fn quiet(case: &Value) -> FitOptions {
    FitOptions::default()
        .epochs(case["epochs"].as_u64().unwrap() as usize)
        .batch_size(case["batch_size"].as_u64().unwrap() as usize)
        .shuffle(false)
        .verbose(false)
}

#[test]
fn the_reference_file_was_generated_by_tf_keras() {
    let environment = &reference()["environment"];
    assert_eq!(environment["generated"], true);
    assert_eq!(environment["tf_keras"], "2.21.0");
}

#[test]
fn a_frozen_embeddings_regularizer_is_in_the_loss_as_in_keras() {
    let case = frozen_case("frozen_embedding_l2");
    let table = tensor(&case["table"]);
    let l2 = case["l2"].as_f64().unwrap() as f32;
    let mut model = Sequential::new();
    model
        .add(
            Embedding::new(3, 2)
                .input_length(2)
                .weights(vec![table.clone()])
                .trainable(false)
                .embeddings_regularizer(Regularizer::L2(l2)),
        )
        .unwrap();
    model
        .compile(SGD::new(0.1).into(), Loss::MeanSquaredError)
        .unwrap();
    let (x, y) = (ids(&case["x"]), tensor(&case["y"]));

    let history = model.fit(x.clone(), y.clone(), quiet(case)).unwrap();
    let expected = floats(&case["history_loss"]);
    assert_eq!(history.loss.len(), expected.len());
    for (ours, keras) in history.loss.iter().zip(&expected) {
        assert_abs_diff_eq!(*ours, *keras, epsilon = 1e-5);
    }
    let evaluate = model.evaluate(x.clone(), y.clone()).unwrap();
    assert_abs_diff_eq!(
        evaluate,
        case["evaluate"].as_f64().unwrap() as f32,
        epsilon = 1e-5
    );
    // The frozen table gets no update.
    assert_eq!(model.layers()[0].get_weights(), vec![table]);
    assert_eq!(
        model.layers()[0].get_weights()[0],
        tensor(&case["final_table"])
    );
    // train_on_batch reports the same loss, penalty included.
    let loss = model.train_on_batch(x, y).unwrap();
    assert_abs_diff_eq!(loss, expected[0], epsilon = 1e-5);
}

#[test]
fn a_frozen_dense_kernel_regularizer_is_in_the_loss_as_in_keras() {
    let case = frozen_case("frozen_dense_l1l2");
    let (l1, l2) = (
        case["l1"].as_f64().unwrap() as f32,
        case["l2"].as_f64().unwrap() as f32,
    );
    let kernel = tensor(&case["kernel"]);
    let mut model = Sequential::new();
    model
        .add(
            Embedding::new(3, 2)
                .input_length(2)
                .weights(vec![tensor(&case["table"])]),
        )
        .unwrap();
    model.add(Flatten::new()).unwrap();
    model
        .add(
            Dense::new(1)
                .weights(vec![kernel.clone(), tensor(&case["bias"])])
                .trainable(false)
                .kernel_regularizer(Regularizer::L1L2 { l1, l2 }),
        )
        .unwrap();
    model
        .compile(SGD::new(0.1).into(), Loss::MeanSquaredError)
        .unwrap();
    let (x, y) = (ids(&case["x"]), tensor(&case["y"]));

    let history = model.fit(x.clone(), y.clone(), quiet(case)).unwrap();
    for (ours, keras) in history.loss.iter().zip(floats(&case["history_loss"])) {
        assert_abs_diff_eq!(*ours, keras, epsilon = 1e-5);
    }
    let evaluate = model.evaluate(x, y).unwrap();
    assert_abs_diff_eq!(
        evaluate,
        case["evaluate"].as_f64().unwrap() as f32,
        epsilon = 1e-5
    );
    // The trainable table moved as Keras moved it; the frozen kernel did not move at all.
    assert_all_close(
        &model.layers()[0].get_weights()[0],
        &tensor(&case["final_table"]),
        1e-5,
    );
    assert_eq!(model.layers()[2].get_weights()[0], kernel);
}

#[test]
fn small_and_wide_integer_ids_look_up_as_in_keras() {
    let root = &reference()["integer_ids"];
    let table = tensor(&root["table"]);
    let mut checked = 0;
    for case in root["cases"].as_array().unwrap() {
        let dtype = case["dtype"].as_str().unwrap();
        let given = ids(&case["ids"]);
        let x: Tensor = match dtype {
            "int8" => given.mapv(|v| v as i8).into(),
            "int16" => given.mapv(|v| v as i16).into(),
            "uint16" => given.mapv(|v| v as u16).into(),
            "uint64" => given.mapv(|v| v as u64).into(),
            other => panic!("unexpected dtype {other}"),
        };
        assert_eq!(x.dtype().name(), dtype);
        let mut layer = Embedding::new(5, 2).weights(vec![table.clone()]);
        let out = layer.apply(&x);
        if case.get("raised").is_some_and(|r| !r.is_null()) {
            // tf_keras raises InvalidArgumentError for a negative id; so do we, by name.
            let err = out.unwrap_err();
            assert!(
                matches!(err, Error::IndexOutOfRange { index: -1, ref position, .. } if position == &vec![0, 1]),
                "{dtype}: {err:?}"
            );
        } else {
            assert_eq!(
                out.unwrap().as_float().unwrap(),
                &tensor(&case["output"]),
                "{dtype}"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 6);
}

#[test]
fn u64_ids_beyond_i64_are_reported_as_given() {
    let mut layer = Embedding::new(5, 2);
    let err = layer
        .apply(&Tensor::from(vec![1u64, u64::MAX]))
        .unwrap_err();
    assert!(
        matches!(err, Error::IndexOutOfRange { index, .. } if index == i128::from(u64::MAX)),
        "{err:?}"
    );
    assert!(err.to_string().contains("18446744073709551615"), "{err}");
    assert!(
        !layer.is_built(),
        "a failed first call leaves the layer unbuilt"
    );
}

#[test]
fn small_integer_ids_train_and_predict_through_a_model() {
    let table = tensor(&reference()["integer_ids"]["table"]);
    let mut model = Sequential::new();
    model
        .add(
            Embedding::new(5, 2)
                .input_length(2)
                .weights(vec![table.clone()]),
        )
        .unwrap();
    model
        .compile(SGD::new(0.1).into(), Loss::MeanSquaredError)
        .unwrap();
    let x16 = ndarray::array![[1i16, 4], [0, 3]];
    let x8 = x16.mapv(|v| v as i8);
    let xu = x16.mapv(|v| v as u16);
    let expected = model.predict(x16.mapv(i64::from)).unwrap();
    assert_eq!(model.predict(x8.clone()).unwrap(), expected);
    assert_eq!(model.predict(xu.clone()).unwrap(), expected);
    let y = ArrayD::<f32>::zeros(IxDyn(&[2, 2, 2]));
    model
        .fit(
            x8,
            y.clone(),
            FitOptions::default().shuffle(false).verbose(false),
        )
        .unwrap();
    // Negative int8 ids are refused before any step, with their position.
    let err = model
        .fit(
            ndarray::array![[1i8, 2], [3, -4]],
            y,
            FitOptions::default().verbose(false),
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::IndexOutOfRange { index: -4, ref position, .. } if position == &vec![1, 1]),
        "{err:?}"
    );
}
