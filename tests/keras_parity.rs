//! ndkeras against tf_keras 2.21 on the parity cases of issue 7, read from
//! `tests/data/keras_parity.json` (written by `tests/data/keras_parity.py` with the real
//! tf_keras): the penalty of a frozen layer's regularizer in the loss, constraints whose
//! `axis` is a list, and `int8` / `int16` / `uint16` / `uint64` ids.

use std::sync::OnceLock;

use approx::assert_abs_diff_eq;
use ndarray::{ArrayD, IxDyn};
use ndkeras::constraints::Axes;
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

/// The constraint a reference case describes, made through the Rust API.
fn constraint_of(case: &Value) -> Constraint {
    let config = &case["get_config"];
    let number = |field: &str| config[field].as_f64().unwrap() as f32;
    let base = match case["class_name"].as_str().unwrap() {
        "MaxNorm" => Constraint::max_norm(number("max_value")),
        "UnitNorm" => Constraint::unit_norm(),
        "MinMaxNorm" => Constraint::MinMaxNorm {
            min_value: number("min_value"),
            max_value: number("max_value"),
            rate: number("rate"),
            axis: 0,
        },
        other => panic!("unexpected constraint {other}"),
    };
    match &case["axis"] {
        Value::Array(axes) => {
            let axes: Vec<isize> = axes.iter().map(|a| a.as_i64().unwrap() as isize).collect();
            base.with_axes(Axes::list(&axes).unwrap())
        }
        axis => base.with_axis(axis.as_u64().unwrap() as usize),
    }
}

#[test]
fn constraints_over_one_axis_or_an_axis_list_project_as_in_keras() {
    let root = &reference()["constraints"];
    let input = tensor(&root["input"]);
    let mut lists = 0;
    for case in root["cases"].as_array().unwrap() {
        let label = format!("{} axis={}", case["class_name"], case["axis"]);
        let mut weight = input.clone();
        constraint_of(case).apply(&mut weight.view_mut()).unwrap();
        let expected = tensor(&case["output"]);
        for (ours, keras) in weight.iter().zip(&expected) {
            assert!(
                (ours - keras).abs() < 1e-6,
                "{label}: {weight} vs {expected}"
            );
        }
        lists += usize::from(case["axis"].is_array());
    }
    assert_eq!(
        lists, 3,
        "MaxNorm, UnitNorm and MinMaxNorm with axis=[0, 1]"
    );
}

#[test]
fn a_table_under_max_norm_over_every_axis_trains_as_in_keras() {
    // MaxNorm(1.0, axis=[0, 1]) keeps the norm of the whole table at most 1.
    let case = &reference()["constrained_training"];
    let table = tensor(&reference()["frozen_regularizer"][0]["table"]);
    let mut model = Sequential::new();
    model
        .add(
            Embedding::new(3, 2)
                .input_length(2)
                .weights(vec![table])
                .embeddings_constraint(
                    Constraint::max_norm(1.0).with_axes(Axes::list(&[0, 1]).unwrap()),
                ),
        )
        .unwrap();
    model
        .compile(SGD::new(0.1).into(), Loss::MeanSquaredError)
        .unwrap();
    model
        .fit(
            ids(&case["x"]),
            tensor(&case["y"]),
            FitOptions::default().shuffle(false).verbose(false),
        )
        .unwrap();
    let ours = model.layers()[0].get_weights().remove(0);
    assert_all_close(&ours, &tensor(&case["final_table"]), 1e-6);
    let norm = ours.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert_abs_diff_eq!(
        norm,
        case["final_norm"].as_f64().unwrap() as f32,
        epsilon = 1e-5
    );
}

#[cfg(feature = "serde")]
mod configs {
    use super::*;
    use ndkeras::config::{constraint_config, constraint_from_config};

    /// Class and `axis` (its form too: an integer or a list) exactly, numbers to f32.
    fn assert_same_config(ours: &Value, keras: &Value, label: &str) {
        assert_eq!(ours["class_name"], keras["class_name"], "{label}");
        assert_eq!(ours["module"], keras["module"], "{label}");
        let (ours, keras) = (&ours["config"], &keras["config"]);
        assert_eq!(
            ours.as_object().unwrap().len(),
            keras.as_object().unwrap().len(),
            "{label}: {ours} vs {keras}"
        );
        for (key, value) in keras.as_object().unwrap() {
            if key == "axis" {
                assert_eq!(&ours[key], value, "{label}: axis");
            } else {
                let (a, b) = (ours[key].as_f64().unwrap(), value.as_f64().unwrap());
                assert_eq!(a as f32, b as f32, "{label}: {key}");
            }
        }
    }

    #[test]
    fn constraint_configs_round_trip_with_keras_axis_lists() {
        let root = &reference()["constraints"];
        let input = tensor(&root["input"]);
        for case in root["cases"].as_array().unwrap() {
            let label = format!("{} axis={}", case["class_name"], case["axis"]);
            let serialized = &case["serialized"];
            let parsed = constraint_from_config(serialized).unwrap().unwrap();
            assert_eq!(parsed, constraint_of(case), "{label}");
            assert_same_config(&constraint_config(Some(parsed)), serialized, &label);
            // The legacy form (no module) and the class alone read the same way.
            let legacy = serde_json::json!({"class_name": serialized["class_name"], "config": serialized["config"]});
            assert_eq!(constraint_from_config(&legacy).unwrap(), Some(parsed));
            let mut weight = input.clone();
            parsed.apply(&mut weight.view_mut()).unwrap();
            for (ours, keras) in weight.iter().zip(&tensor(&case["output"])) {
                assert!((ours - keras).abs() < 1e-6, "{label}");
            }
        }
    }

    #[test]
    fn a_negative_axis_is_read_and_written_as_an_integer() {
        let config =
            serde_json::json!({"class_name": "MaxNorm", "config": {"max_value": 1.0, "axis": -1}});
        let parsed = constraint_from_config(&config).unwrap().unwrap();
        assert_eq!(
            parsed,
            Constraint::max_norm(1.0).with_axes(Axes::single(-1))
        );
        assert_eq!(constraint_config(Some(parsed))["config"]["axis"], -1);
        // axis=-1 on a 2-D table is axis 1 (Keras' reference case above).
        let case = reference()["constraints"]["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["class_name"] == "MaxNorm" && c["axis"] == 1)
            .unwrap();
        let mut weight = tensor(&reference()["constraints"]["input"]);
        parsed.apply(&mut weight.view_mut()).unwrap();
        assert_all_close(&weight, &tensor(&case["output"]), 1e-6);
    }

    #[test]
    fn a_bad_axis_in_a_config_is_an_error_naming_it() {
        for (axis, words) in [
            (serde_json::json!("0"), "an integer or a list of integers"),
            (serde_json::json!(0.5), "an integer or a list of integers"),
            (
                serde_json::json!([0, "1"]),
                "an integer or a list of integers",
            ),
            (serde_json::json!([0, 0]), "given twice"),
            (
                serde_json::json!([0, 1, 2, 3, 4, 5, 6, 7, 8]),
                "at most 8 axes",
            ),
        ] {
            let config = serde_json::json!({"class_name": "UnitNorm", "config": {"axis": axis}});
            let err = constraint_from_config(&config).unwrap_err();
            let message = err.to_string();
            assert!(
                matches!(err, Error::InvalidArgument { .. })
                    && message.contains("axis")
                    && message.contains(words),
                "{axis}: {message}"
            );
        }
        let config = serde_json::json!({"class_name": "MaxNorm", "config": {"max_value": "2"}});
        assert!(constraint_from_config(&config).is_err());
    }

    #[test]
    fn an_embedding_config_with_an_axis_list_trains_as_in_keras() {
        let case = &reference()["constrained_training"];
        let mut layer_config = case["layer_config"].clone();
        // The initial table comes from `weights`, as in the generator.
        layer_config["name"] = serde_json::json!("constrained");
        let embedding = Embedding::from_config(&layer_config).unwrap();
        let written = embedding.get_config();
        assert_eq!(
            written["embeddings_constraint"]["config"]["axis"],
            serde_json::json!([0, 1])
        );
        let table = tensor(&reference()["frozen_regularizer"][0]["table"]);
        let mut model = Sequential::new();
        model.add(embedding.weights(vec![table])).unwrap();
        model
            .compile(SGD::new(0.1).into(), Loss::MeanSquaredError)
            .unwrap();
        model
            .fit(
                ids(&case["x"]),
                tensor(&case["y"]),
                FitOptions::default().shuffle(false).verbose(false),
            )
            .unwrap();
        assert_all_close(
            &model.layers()[0].get_weights()[0],
            &tensor(&case["final_table"]),
            1e-6,
        );
    }
}

#[test]
fn sigmoid_with_categorical_crossentropy_uses_the_probabilities_on_purpose() {
    // tf_keras takes the softmax cross-entropy of the sigmoid's logits (any cached logits
    // will do); ndkeras computes the loss of the probabilities the model outputs, as Keras 3
    // does on JAX, PyTorch and NumPy.
    let case = &reference()["deliberate_differences"]["sigmoid_categorical_crossentropy"];
    let mut model = Sequential::new();
    model
        .add(
            Dense::new(3)
                .use_bias(false)
                .activation(Activation::Sigmoid)
                .weights(vec![tensor(&case["kernel"])]),
        )
        .unwrap();
    model
        .compile(SGD::new(0.1).into(), Loss::CategoricalCrossentropy)
        .unwrap();
    let ours = model
        .evaluate(tensor(&case["x"]), tensor(&case["y"]))
        .unwrap();
    let probability = case["probability_formula"].as_f64().unwrap() as f32;
    let keras = case["keras_evaluate"].as_f64().unwrap() as f32;
    assert_abs_diff_eq!(ours, probability, epsilon = 1e-5);
    assert!(
        (ours - keras).abs() > 0.1,
        "the difference is real: {ours} vs {keras}"
    );
}

#[test]
fn flatten_after_mask_zero_is_an_error_on_purpose() {
    // tf_keras drops the mask silently; ndkeras refuses instead of losing it.
    let keras = &reference()["deliberate_differences"]["flatten_after_mask_zero"];
    assert!(keras["raised"].is_null() && keras["output_mask"].is_null());
    let mut model = Sequential::new();
    model
        .add(Embedding::new(3, 2).mask_zero(true).input_length(2))
        .unwrap();
    model.add(Flatten::new().with_name("flat")).unwrap();
    let err = model.predict(ndarray::array![[1i64, 0]]).unwrap_err();
    assert!(
        matches!(err, Error::MaskNotSupported { ref layer, .. } if layer == "flat"),
        "{err:?}"
    );
}
