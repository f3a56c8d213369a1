//! ndkeras against the vectors produced by the real Keras 2 (`tests/data/keras_reference.json`).
//!
//! Groups `forward/`, `mask/`, `precedence/`, `init/` are compared bit-exactly,
//! `compute_output_shape/` exactly, `errors/` by category (and by the offending index and its
//! position, taken from TensorFlow's message), `init_stats/` by the `theory` block. Where
//! ndkeras deliberately differs from Keras 2 the test says so and asserts our behaviour.

mod common;

use common::*;
use ndarray::{ArrayD, Ix2};
use ndkeras::layer::weights_from_f64;
use ndkeras::prelude::*;
use serde_json::Value;

/// Runs one eager `layer(x)` case and compares the output bit-exactly.
fn check_eager_call(case: &Value) {
    let id = case["id"].as_str().unwrap();
    let expected = &case["expected"];
    let mut layer = embedding_from_case(case);
    let x = input_tensor(&case["inputs"]["x"]);
    let out = layer.apply(&x).unwrap_or_else(|e| panic!("{id}: {e}"));
    assert_bits_eq(
        out.as_float().unwrap(),
        &f32_tensor(&expected["output"]),
        id,
    );

    if let Some(shape) = expected.get("compute_output_shape") {
        let ours = layer.compute_output_shape(&x.keras_shape());
        if shape["raised"] == true {
            assert!(
                ours.is_err(),
                "{id}: Keras 2 raises in compute_output_shape, we returned {ours:?}"
            );
        } else {
            assert_eq!(ours.unwrap(), keras_shape(&shape["shape"]), "{id}");
        }
    }
    if let Some(mask) = expected.get("compute_mask") {
        let ours = layer.compute_mask(&x, None).unwrap();
        assert_eq!(ours, Some(bool_tensor(mask)), "{id}: compute_mask");
        assert_eq!(out.mask(), Some(&bool_tensor(mask)), "{id}: output mask");
    }
}

#[test]
fn forward_eager_calls_match_keras_bit_for_bit() {
    let mut checked = 0;
    for case in group("forward") {
        if case["config"]["call"]
            .as_str()
            .unwrap()
            .starts_with("layer(x)")
        {
            check_eager_call(case);
            checked += 1;
        }
    }
    assert_eq!(checked, 10, "every eager forward case ran");
}

/// `Sequential(); add(Embedding); compile; predict(x)` cases.
#[test]
fn sequential_predict_matches_keras_2() {
    for id in [
        "forward/seed_b_predict",
        "forward/seed_c_predict",
        "forward/sequential_rank2_input_length",
        "forward/sequential_rank2_no_input_length",
    ] {
        let case = case(id);
        let expected = &case["expected"];
        let mut layer = embedding_from_case(case);
        if let Some(init) = case["config"]["embeddings_initializer"].as_object() {
            assert_eq!(init["class_name"], "Constant");
            let value = f32_tensor(&case["config"]["embeddings_initializer"]["value"]);
            layer = layer.embeddings_initializer(Initializer::Constant(value));
        }
        let mut model = Sequential::new();
        model.add(layer).unwrap();
        model
            .compile("rmsprop".parse().unwrap(), "mse".parse().unwrap())
            .unwrap();
        assert_eq!(
            model.output_shape().unwrap(),
            keras_shape(&expected["model_output_shape_before_predict"]),
            "{id}: output_shape before predict"
        );
        let x = input_tensor(&case["inputs"]["x"]);
        let out = model.predict(x).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_bits_eq(
            &out,
            &f32_tensor(&expected["predict_ndarray"]["output"]),
            id,
        );
        assert_eq!(
            model.output_shape().unwrap(),
            keras_shape(&expected["model_output_shape_after_predict"]),
            "{id}: output_shape after predict"
        );
        assert_eq!(
            model.get_layer(0).unwrap().get_weights(),
            vec![f32_tensor(&expected["weights_after"])],
            "{id}: predict changes no weight"
        );
    }
}

#[test]
fn seed_a_shapes_and_default_table() {
    let case = case("forward/seed_a_shapes");
    let expected = &case["expected"];
    let mut model = Sequential::new();
    model
        .add(Embedding::new(1000, 64).input_length(10))
        .unwrap();
    model
        .compile("rmsprop".parse().unwrap(), "mse".parse().unwrap())
        .unwrap();
    assert_eq!(
        model.output_shape().unwrap(),
        keras_shape(&expected["model_output_shape_before_predict"])
    );
    let x = input_tensor(&case["inputs"]["x"]);
    let out = model.predict(x.clone()).unwrap();
    assert_eq!(
        out.shape().to_vec(),
        shape_of(&serde_json::json!({"shape": expected["output_shape"]}))
    );

    let table = model.layer::<Embedding>(0).unwrap().embeddings().unwrap();
    assert_eq!(table.shape(), &[1000, 64]);
    // table_within_default_uniform_bounds
    assert!(table.iter().all(|v| (-0.05..0.05).contains(v)));
    // output_equals_table_lookup
    let rows = x.row_indices(1000, "embedding").unwrap();
    for (k, row) in rows.iter().enumerate() {
        let got = &out.as_slice().unwrap()[k * 64..(k + 1) * 64];
        assert_eq!(got, table.row(*row).as_slice().unwrap());
    }
}

/// Keras 2 rounds ids above 2^24 through the float32 input layer of a `Sequential` built from
/// `input_length` (16777217 -> 16777216). ndkeras keeps ids exact on every path: the
/// direct call and predict both give Keras' `exact_lookup`.
#[test]
fn large_ids_stay_exact_through_sequential() {
    let case = case("forward/large_index_sequential_float32_input");
    let expected = &case["expected"];
    let input_dim = case["config"]["input_dim"].as_u64().unwrap() as usize;
    let table = ArrayD::from_shape_fn(vec![input_dim, 1], |i| (i[0] % 7) as f32);
    let layer = Embedding::new(input_dim, 1)
        .input_length(1)
        .embeddings_initializer(Initializer::Zeros)
        .weights(vec![table]);
    let mut model = Sequential::new();
    model.add(layer.clone()).unwrap();
    let x = input_tensor(&case["inputs"]["x"]);
    let exact = f32_tensor(&expected["exact_lookup"]);
    assert_bits_eq(&model.predict(x.clone()).unwrap(), &exact, "predict");
    let mut direct = layer;
    assert_bits_eq(
        direct.apply(&x).unwrap().as_float().unwrap(),
        &f32_tensor(&expected["layer_call"]["output"]),
        "layer call",
    );
    // What Keras 2's predict returned differs from the exact lookup: the rounding we avoid.
    assert_ne!(
        f32_tensor(&expected["sequential_input_length_predict"]["output"]),
        exact
    );
}

#[test]
fn masks_match_keras() {
    for case in group("mask") {
        let id = case["id"].as_str().unwrap();
        let expected = &case["expected"];
        let mut layer = embedding_from_case(case);
        let x = input_tensor(&case["inputs"]["x"]);
        if let Some(incoming) = case["inputs"].get("incoming_mask") {
            layer.apply(&x).unwrap();
            let mask = layer
                .compute_mask(&x, Some(&bool_tensor(incoming)))
                .unwrap();
            assert_eq!(mask, Some(bool_tensor(&expected["compute_mask"])), "{id}");
            continue;
        }
        let out = layer.apply(&x).unwrap();
        assert_bits_eq(
            out.as_float().unwrap(),
            &f32_tensor(&expected["output"]),
            id,
        );
        let expected_mask = optional_bool_tensor(&expected["compute_mask"]);
        assert_eq!(
            layer.compute_mask(&x, None).unwrap(),
            expected_mask,
            "{id}: compute_mask"
        );
        let expected_keras_mask = optional_bool_tensor(&expected["output_keras_mask"]);
        assert_eq!(
            out.mask().cloned(),
            expected_keras_mask,
            "{id}: output mask"
        );
    }
}

#[test]
fn weights_override_the_initializer_and_set_weights_overrides_both() {
    let case = case("precedence/weights_vs_constant_initializer");
    let expected = &case["expected"];
    let mut layer = embedding_from_case(case).embeddings_initializer(Initializer::Constant(
        f32_tensor(&case["inputs"]["initializer_value"]),
    ));
    assert_eq!(
        layer.is_built(),
        expected["built_after_constructor"].as_bool().unwrap()
    );
    let out = layer.apply(&input_tensor(&case["inputs"]["x"])).unwrap();
    assert_bits_eq(
        out.as_float().unwrap(),
        &f32_tensor(&expected["output"]),
        "output",
    );
    assert_eq!(
        layer.get_weights(),
        vec![f32_tensor(&expected["weights_after_call"])]
    );

    let case = common::case("precedence/set_weights_overrides_weights_kwarg");
    let mut layer = embedding_from_case(case);
    layer.apply(&Tensor::from(vec![0i32])).unwrap();
    layer
        .set_weights(vec![f32_tensor(&case["inputs"]["set_weights"])])
        .unwrap();
    let out = layer.apply(&input_tensor(&case["inputs"]["x"])).unwrap();
    assert_bits_eq(
        out.as_float().unwrap(),
        &f32_tensor(&case["expected"]["output"]),
        "set_weights",
    );
}

#[test]
fn float64_weights_round_to_the_float32_table() {
    let case = case("precedence/weights_float64_cast_to_float32");
    let weights = weights_from_f64(f64_tensor(&case["inputs"]["weights"]));
    let mut layer = Embedding::new(3, 2).weights(vec![weights]);
    let out = layer.apply(&input_tensor(&case["inputs"]["x"])).unwrap();
    assert_bits_eq(
        out.as_float().unwrap(),
        &f32_tensor(&case["expected"]["output"]),
        "float64 weights",
    );
}

#[test]
fn compute_output_shape_follows_keras_2() {
    for case in group("compute_output_shape") {
        let id = case["id"].as_str().unwrap();
        let layer = embedding_from_case(case);
        let input_shape = keras_shape(&case["inputs"]["input_shape"]);
        let ours = layer.compute_output_shape(&input_shape);
        let expected = &case["expected"];
        if expected["raised"] == true {
            let err = ours.expect_err(id);
            assert!(
                matches!(err, Error::IncompatibleShape { .. }),
                "{id}: {err:?}"
            );
            // Keras: "input_length" is 4, but received input has shape (None, 7)
            let keras = expected["message"].as_str().unwrap();
            assert!(err.to_string().contains(keras), "{id}: {err} lacks {keras}");
        } else {
            assert_eq!(
                ours.unwrap(),
                keras_shape(&expected["output_shape"]),
                "{id}"
            );
        }
    }
}

#[test]
fn initializers_give_keras_tables() {
    for case in group("init") {
        let id = case["id"].as_str().unwrap();
        let config = &case["config"];
        let (rows, cols) = (
            config["input_dim"].as_u64().unwrap() as usize,
            config["output_dim"].as_u64().unwrap() as usize,
        );
        let text = config["embeddings_initializer"]
            .as_str()
            .unwrap_or_default();
        let arange = || ArrayD::from_shape_fn(vec![3, 2], |i| (i[0] * 2 + i[1]) as f32);
        let init = match id {
            "init/zeros" => Initializer::Zeros,
            "init/ones" => Initializer::Ones,
            "init/string_zeros" => "zeros".parse().unwrap(),
            "init/constant_scalar" => Initializer::constant(2.5),
            "init/constant_scalar_0_1" => Initializer::constant(0.1),
            "init/constant_array_exact_shape" | "init/constant_python_list" => {
                Initializer::Constant(f32_tensor(&case["expected"]["table"]))
            }
            "init/constant_array_other_shape_same_size" => Initializer::Constant(arange()),
            "init/constant_row_vector_broadcast" => {
                Initializer::Constant(ndarray::array![1.5f32, -2.5].into_dyn())
            }
            "init/identity_gain_2" => Initializer::Identity { gain: 2.0 },
            _ if text.starts_with("Identity") => Initializer::Identity { gain: 1.0 },
            "init/default_initializer_config" => {
                let keras = &case["expected"]["embeddings_initializer"];
                assert_eq!(
                    Initializer::default(),
                    initializer_from_keras_config(keras),
                    "{id}"
                );
                assert_eq!(
                    Embedding::new(10, 4).config().embeddings_initializer,
                    Initializer::default()
                );
                continue;
            }
            other => panic!("unhandled init case {other}"),
        };
        let mut layer = Embedding::new(rows, cols).embeddings_initializer(init);
        let built = layer.build(&[None, None]);
        match id {
            // Keras 2 reshapes a (3, 2) array into a (2, 3) table; we refuse, naming both shapes.
            "init/constant_array_other_shape_same_size" => {
                let err = built.expect_err(id).to_string();
                assert!(err.contains("(3, 2)") && err.contains("(2, 3)"), "{err}");
                assert!(!layer.is_built());
            }
            _ if case["expected"]["raised"] == true => {
                assert!(
                    matches!(built, Err(Error::InvalidArgument { .. })),
                    "{id}: {built:?}"
                );
                assert!(!layer.is_built());
            }
            _ => {
                built.unwrap_or_else(|e| panic!("{id}: {e}"));
                assert_bits_eq(
                    &layer.get_weights()[0],
                    &f32_tensor(&case["expected"]["table"]),
                    id,
                );
            }
        }
    }
}

/// Mean, std and bounds of every random initializer against the formula Keras uses.
#[test]
fn initializer_statistics_match_keras_formulas() {
    for case in group("init_stats") {
        let id = case["id"].as_str().unwrap();
        let config = &case["config"];
        let (rows, cols) = (
            config["input_dim"].as_u64().unwrap() as usize,
            config["output_dim"].as_u64().unwrap() as usize,
        );
        let theory = &config["theory"];
        if id.starts_with("init_stats/orthogonal") {
            let (init, gain) =
                orthogonal_from_text(config["embeddings_initializer"].as_str().unwrap());
            let table = init
                .initialize(&[rows, cols])
                .unwrap()
                .into_dimensionality::<Ix2>()
                .unwrap();
            let table = table.mapv(f64::from);
            let gram = if rows >= cols {
                table.t().dot(&table)
            } else {
                table.dot(&table.t())
            };
            let n = gram.nrows();
            let mut max_error = 0.0f64;
            for i in 0..n {
                for j in 0..n {
                    let target = if i == j { gain * gain } else { 0.0 };
                    max_error = max_error.max((gram[[i, j]] - target).abs());
                }
            }
            assert!(max_error <= 1e-4, "{id}: gram error {max_error}");
            continue;
        }
        let init = match config["embeddings_initializer"].as_str() {
            Some(_) => Initializer::default(), // the "uniform" default
            None => initializer_from_keras_config(&config["embeddings_initializer"]),
        };
        let table = init.initialize(&[rows, cols]).unwrap();
        let n = table.len() as f64;
        let mean = table.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let std = (table
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        let expected_std = theory["expected_std"].as_f64().unwrap();
        let expected_mean = theory["mean"].as_f64().unwrap();
        let standard_error = expected_std / n.sqrt();
        assert!(
            (mean - expected_mean).abs() <= 5.0 * standard_error,
            "{id}: mean {mean}, expected {expected_mean} +- 5 * {standard_error}"
        );
        assert!(
            ((std - expected_std) / expected_std).abs() <= 0.02,
            "{id}: std {std}, expected {expected_std}"
        );
        if let (Some(low), Some(high)) = (theory["low"].as_f64(), theory["high"].as_f64()) {
            let (min, max) = table
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(f64::from(v)), hi.max(f64::from(v)))
                });
            assert!(
                min >= low && max <= high,
                "{id}: [{min}, {max}] outside [{low}, {high}]"
            );
        }
    }
}

/// Keras raises `indices[0,1] = 3 is not in [0, 3)`; we return `IndexOutOfRange` with the same
/// index and position, for direct calls and inside `predict`.
#[test]
fn out_of_range_and_negative_ids_are_errors_at_keras_positions() {
    let ids = [
        "errors/index_equal_input_dim_call",
        "errors/index_equal_input_dim_predict",
        "errors/index_large_call",
        "errors/negative_index_call",
        "errors/negative_index_minus_input_dim_call",
        "errors/negative_index_below_minus_input_dim_call",
        "errors/negative_index_predict",
    ];
    for id in ids {
        let case = case(id);
        let (position, index) = tf_bad_index(case["expected"]["message"].as_str().unwrap());
        let x = input_tensor(&case["inputs"]["x"]);
        let mut layer = embedding_from_case(case);
        let err = if id.ends_with("_predict") {
            let mut model = Sequential::new();
            model.add(layer).unwrap();
            let before = model.get_layer(0).unwrap().get_weights();
            let err = model.predict(x).unwrap_err();
            assert_eq!(
                model.get_layer(0).unwrap().get_weights(),
                before,
                "{id}: weights unchanged"
            );
            err
        } else {
            let err = layer.apply(&x).unwrap_err();
            assert!(
                !layer.is_built(),
                "{id}: a failed first call leaves the layer unbuilt"
            );
            err
        };
        match &err {
            Error::IndexOutOfRange {
                layer,
                index: got,
                position: at,
                input_dim,
            } => {
                assert_eq!((got, at, *input_dim), (&index, &position, 3), "{id}");
                assert_eq!(layer, "embedding", "{id}");
            }
            other => panic!("{id}: expected IndexOutOfRange, got {other:?}"),
        }
        assert!(err.to_string().contains("[0, 3)"), "{id}: {err}");
    }
}

/// Keras truncates float ids (0.9 -> 0, 3.5 -> 3); ndkeras refuses fractional ids, naming the
/// first one and its position, and accepts whole-number floats exactly.
#[test]
fn fractional_float_ids_are_refused_whole_ones_are_looked_up() {
    for id in [
        "errors/float_input_call",
        "errors/float_input_predict",
        "errors/float_input_out_of_range_call",
    ] {
        let case = case(id);
        let x = input_tensor(&case["inputs"]["x"]);
        let values = x.as_float().unwrap().clone();
        let (first, &value) = values
            .iter()
            .enumerate()
            .find(|(_, v)| v.fract() != 0.0)
            .unwrap();
        let mut layer = embedding_from_case(case);
        let err = if id.ends_with("_predict") {
            let mut model = Sequential::new();
            model.add(layer).unwrap();
            model.predict(x.clone()).unwrap_err()
        } else {
            layer.apply(&x).unwrap_err()
        };
        match err {
            Error::NonIntegerIndex {
                value: got,
                position,
                ..
            } => {
                assert_eq!(got, value, "{id}");
                assert_eq!(position, vec![0, first], "{id}");
            }
            other => panic!("{id}: expected NonIntegerIndex, got {other:?}"),
        }
        // The ids Keras actually looked up, given as whole floats, give Keras' output.
        if case["expected"]["raised"] == false {
            let truncated = Tensor::from(values.mapv(f32::trunc));
            let mut layer = embedding_from_case(case);
            let out = layer.apply(&truncated).unwrap();
            assert_bits_eq(
                out.as_float().unwrap(),
                &f32_tensor(&case["expected"]["output"]),
                id,
            );
        }
    }
}

#[test]
fn wrong_initial_weights_are_reported_at_build_and_change_nothing() {
    for id in [
        "errors/weights_wrong_shape_transposed",
        "errors/weights_wrong_shape_rows",
        "errors/weights_wrong_shape_flat",
    ] {
        let case = case(id);
        let mut layer = embedding_from_case(case);
        let err = layer
            .apply(&input_tensor(&case["inputs"]["x"]))
            .unwrap_err();
        // Keras: Layer embedding weight shape (3, 2) is not compatible with provided weight shape (2, 3).
        let keras = case["expected"]["message"].as_str().unwrap();
        let provided = &keras[keras.find("provided weight shape ").unwrap() + 22..keras.len() - 1];
        assert!(matches!(err, Error::WeightShape { .. }), "{id}: {err:?}");
        let text = err.to_string();
        assert!(
            text.contains("(3, 2)") && text.contains(provided),
            "{id}: {text}"
        );
        assert!(!layer.is_built(), "{id}");
        assert!(
            layer.initial_weights().is_some(),
            "{id}: the weights are still pending"
        );
    }
    let w = f32_tensor(&case("errors/weights_two_arrays")["inputs"]["weights"]);
    for (id, weights) in [
        ("errors/weights_two_arrays", vec![w.clone(), w.clone()]),
        ("errors/weights_empty_list", vec![]),
    ] {
        let got = weights.len();
        let mut layer = Embedding::new(3, 2).with_name("embedding").weights(weights);
        let err = layer.apply(&Tensor::from(vec![0i32, 1])).unwrap_err();
        assert_eq!(
            err,
            Error::WeightCount {
                layer: "embedding".into(),
                expected: 1,
                got
            },
            "{id}"
        );
        assert!(
            case(id)["expected"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("length {got}"))
        );
        assert!(!layer.is_built());
    }
}

#[test]
fn set_weights_checks_count_and_shape_like_keras() {
    let w = f32_tensor(&case("errors/set_weights_shape_mismatch")["inputs"]["weights"]);
    let cases: [(&str, Vec<ArrayD<f32>>); 3] = [
        (
            "errors/set_weights_shape_mismatch",
            vec![ArrayD::<f32>::zeros(vec![4, 2])],
        ),
        ("errors/set_weights_two_arrays", vec![w.clone(), w.clone()]),
        ("errors/set_weights_empty_list", vec![]),
    ];
    for (id, weights) in cases {
        let mut layer = embedding_from_case(case(id));
        layer.apply(&Tensor::from(ndarray::array![[0i32]])).unwrap();
        let before = layer.get_weights();
        let err = layer.set_weights(weights).unwrap_err();
        assert!(
            matches!(err, Error::WeightShape { .. } | Error::WeightCount { .. }),
            "{id}: {err:?}"
        );
        assert_eq!(layer.get_weights(), before, "{id}: unchanged");
    }
    // An unbuilt layer holds 0 weights, as Keras says ("expecting 0 weights").
    let mut layer = Embedding::new(3, 2).with_name("embedding");
    let err = layer.set_weights(vec![w]).unwrap_err();
    assert_eq!(
        err,
        Error::WeightCount {
            layer: "embedding".into(),
            expected: 0,
            got: 1
        }
    );
    assert!(
        case("errors/set_weights_before_build")["expected"]["message"]
            .as_str()
            .unwrap()
            .contains("expecting 0 weights")
    );
}

#[test]
fn zero_dimensions_are_rejected() {
    let case = case("errors/constructor_validation");
    for (variant, input_dim, output_dim) in [("input_dim_0", 0, 3), ("output_dim_0", 3, 0)] {
        assert_eq!(case["expected"][variant]["raised"], true);
        let err = Embedding::try_new(input_dim, output_dim).unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument { .. }),
            "{variant}: {err:?}"
        );
        let keras = case["expected"][variant]["message"].as_str().unwrap();
        assert!(keras.contains("should be positive"));
        assert!(err.to_string().contains("positive"), "{err}");
        // The infallible builder reports it when added or called.
        let mut model = Sequential::new();
        assert!(model.add(Embedding::new(input_dim, output_dim)).is_err());
        assert!(model.layers().is_empty());
        let mut layer = Embedding::new(input_dim, output_dim);
        assert!(layer.apply(&Tensor::from(vec![0i64])).is_err());
        assert!(!layer.is_built());
    }
    assert_eq!(
        case["expected"]["input_dim_numpy_int"]["table_shape"],
        serde_json::json!([3, 2])
    );
    assert!(Embedding::try_new(3, 2).is_ok());
}
