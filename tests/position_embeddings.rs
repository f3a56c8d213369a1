//! KerasHub's position layers against KerasHub 0.32.0 on Keras 3.15.1 (JAX backend):
//! `tests/data/keras_hub_position.json`, made by `keras_hub_position.py` beside it. Each
//! case is rebuilt from Keras' own `get_config()`, given Keras' weights, and compared on its
//! output, mask, input gradient and weight gradients; then the configs, the weight names,
//! the errors ndkeras returns where KerasHub is silent, and a small model that trains.
//! (Needs the `serde` feature, on by default: the layers are rebuilt from Keras' configs.)

#![cfg(feature = "serde")]

mod common;

use std::sync::OnceLock;

use ndarray::{Array2, Array3, ArrayD, IxDyn, array};
use ndkeras::layer::{Backward, Gradient};
use ndkeras::optimizers::SGD;
use ndkeras::prelude::*;
use serde_json::Value;

fn reference() -> &'static Value {
    static ROOT: OnceLock<Value> = OnceLock::new();
    ROOT.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/keras_hub_position.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    })
}

fn cases() -> &'static [Value] {
    reference()["cases"].as_array().unwrap()
}

fn case(id: &str) -> &'static Value {
    cases()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no case {id}"))
}

fn close(actual: &ArrayD<f32>, expected: &ArrayD<f32>, what: &str) {
    assert_eq!(actual.shape(), expected.shape(), "{what}: shape");
    for (index, (a, e)) in actual.iter().zip(expected.iter()).enumerate() {
        assert!(
            (a - e).abs() <= 1e-6 + 1e-5 * e.abs(),
            "{what}: element {index}: {a} vs KerasHub {e}"
        );
    }
}

fn bool_tensor(value: &Value) -> ArrayD<bool> {
    let data: Vec<bool> = value["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_bool().unwrap())
        .collect();
    ArrayD::from_shape_vec(IxDyn(&common::shape_of(value)), data).unwrap()
}

fn input_of(case: &Value) -> Tensor {
    let input = &case["input"];
    let values = common::f32_tensor(input);
    if input["dtype"].as_str().unwrap().starts_with("int") {
        Tensor::from(values.mapv(|v| v as i64))
    } else {
        Tensor::from(values)
    }
}

fn start_index(case: &Value) -> usize {
    case["call_kwargs"]["start_index"].as_u64().unwrap_or(0) as usize
}

fn weights_of(case: &Value) -> Vec<ArrayD<f32>> {
    case["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(common::f32_tensor)
        .collect()
}

/// A layer's gradients as dense arrays in weight order (a row-sparse gradient scattered into
/// the table's shape, as JAX gives it).
fn dense_gradients(layer: &dyn Layer, backward: &Backward) -> Vec<ArrayD<f32>> {
    layer
        .variables()
        .iter()
        .map(|weight| {
            let (_, gradient) = backward
                .weight_gradients
                .iter()
                .find(|(id, _)| *id == weight.id())
                .expect("a gradient for every trainable weight");
            match gradient {
                Gradient::Dense(g) => g.clone(),
                Gradient::Rows { rows, values } => {
                    let mut dense = ArrayD::<f32>::zeros(IxDyn(weight.shape()));
                    for (row, values) in rows.iter().zip(values.rows()) {
                        dense
                            .index_axis_mut(ndarray::Axis(0), *row)
                            .assign(&values.into_dyn());
                    }
                    dense
                }
            }
        })
        .collect()
}

/// Output, mask, input gradient and weight gradients of one case.
fn check_case(case: &Value) {
    let id = case["id"].as_str().unwrap();
    let config = &case["config"];
    let start = start_index(case);
    let inputs = input_of(case);
    let upstream = common::f32_tensor(&case["upstream"]);
    let (output, backward, layer): (Tensor, Backward, Box<dyn Layer>) =
        match case["class_name"].as_str().unwrap() {
            "PositionEmbedding" => {
                let mut layer = PositionEmbedding::from_config(config)
                    .unwrap()
                    .weights(weights_of(case));
                layer.build(&inputs.keras_shape()).unwrap();
                let output = layer.call_with_start_index(&inputs, start).unwrap();
                let backward = layer
                    .backward_with_start_index(&inputs, &upstream, start)
                    .unwrap();
                (output, backward, Box::new(layer))
            }
            "SinePositionEncoding" => {
                let mut layer = SinePositionEncoding::from_config(config).unwrap();
                let output = layer.call_with_start_index(&inputs, start).unwrap();
                let backward = layer.backward(&inputs, upstream).unwrap();
                (output, backward, Box::new(layer))
            }
            "RotaryEmbedding" => {
                let layer = RotaryEmbedding::from_config(config).unwrap();
                let output = layer.call_with_start_index(&inputs, start).unwrap();
                let backward = Backward {
                    input_gradient: Some(layer.input_gradient(&inputs, &upstream, start).unwrap()),
                    weight_gradients: Vec::new(),
                };
                (output, backward, Box::new(layer))
            }
            "TokenAndPositionEmbedding" => {
                let mut layer = TokenAndPositionEmbedding::from_config(config)
                    .unwrap()
                    .weights(weights_of(case));
                layer.build(&inputs.keras_shape()).unwrap();
                let mut output = layer.call_with_start_index(&inputs, start).unwrap();
                let mask = layer.compute_mask(&inputs, None).unwrap();
                output = output.with_mask(mask).unwrap();
                let backward = layer
                    .backward_with_start_index(&inputs, upstream, start)
                    .unwrap();
                (output, backward, Box::new(layer))
            }
            other => panic!("unknown class {other}"),
        };
    close(
        output.as_float().unwrap(),
        &common::f32_tensor(&case["output"]),
        &format!("{id}: output"),
    );
    let expected_mask = (!case["mask"].is_null()).then(|| bool_tensor(&case["mask"]));
    assert_eq!(output.mask(), expected_mask.as_ref(), "{id}: mask");
    match (&backward.input_gradient, &case["input_gradient"]) {
        (Some(actual), expected) if !expected.is_null() => close(
            actual,
            &common::f32_tensor(expected),
            &format!("{id}: input gradient"),
        ),
        (None, Value::Null) => {}
        (actual, expected) => panic!("{id}: input gradient {actual:?} vs KerasHub {expected}"),
    }
    let expected: Vec<ArrayD<f32>> = case["weight_gradients"]
        .as_array()
        .unwrap()
        .iter()
        .map(common::f32_tensor)
        .collect();
    let actual = dense_gradients(layer.as_ref(), &backward);
    assert_eq!(
        actual.len(),
        expected.len(),
        "{id}: number of weight gradients"
    );
    for (k, (a, e)) in actual.iter().zip(&expected).enumerate() {
        close(a, e, &format!("{id}: gradient of weight {k}"));
    }
    // The weights, named as Keras 3 names their paths under the layer.
    let names: Vec<String> = case["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let path = w["path"].as_str().unwrap();
            path.split_once('/').unwrap().1.to_string()
        })
        .collect();
    assert_eq!(layer.weight_names(), names, "{id}: weight names");
    let shape: Vec<Option<usize>> = common::keras_shape(&case["compute_output_shape"]);
    assert_eq!(
        layer.compute_output_shape(&inputs.keras_shape()).unwrap(),
        shape,
        "{id}: compute_output_shape"
    );
}

fn check_group(prefix: &str) {
    let group: Vec<&Value> = cases()
        .iter()
        .filter(|c| c["id"].as_str().unwrap().starts_with(prefix))
        .collect();
    assert!(!group.is_empty(), "no cases for {prefix}");
    for case in group {
        check_case(case);
    }
}

#[test]
fn position_embedding_matches_keras_hub() {
    check_group("position_embedding");
}

#[test]
fn sine_position_encoding_matches_keras_hub() {
    check_group("sine_");
}

#[test]
fn rotary_embedding_matches_keras_hub() {
    check_group("rotary_");
}

#[test]
fn token_and_position_embedding_matches_keras_hub() {
    check_group("token_and_position_");
}

#[test]
fn masks_follow_keras_3() {
    for id in ["position_embedding", "sine_default"] {
        let case = case(id);
        assert_eq!(case["masked_call"]["output_mask"], Value::Null);
        let inputs = input_of(case)
            .with_mask(Some(bool_tensor(&case["masked_call"]["input_mask"])))
            .unwrap();
        let mut layer = ndkeras::config::layer_from_config(&serde_json::json!({
            "class_name": case["class_name"], "config": case["config"]
        }))
        .unwrap();
        if id == "position_embedding" {
            layer.build(&inputs.keras_shape()).unwrap();
        }
        let out = layer.apply(&inputs).unwrap();
        assert_eq!(out.mask(), None, "{id}: Keras 3 drops the mask");
    }
    // RotaryEmbedding: Keras 3 drops the mask with a warning; ndkeras refuses it.
    let case = case("rotary_default");
    assert_eq!(case["masked_call"]["warned"], true);
    let inputs = input_of(case)
        .with_mask(Some(bool_tensor(&case["masked_call"]["input_mask"])))
        .unwrap();
    let err = RotaryEmbedding::from_config(&case["config"])
        .unwrap()
        .apply(&inputs)
        .unwrap_err();
    assert!(matches!(err, Error::MaskNotSupported { .. }), "{err}");
}

/// Keras 3's config with its `DTypePolicy` dict replaced by ndkeras' `"float32"`.
fn as_ndkeras(config: &Value) -> Value {
    let mut config = config.clone();
    config["dtype"] = serde_json::json!("float32");
    config
}

/// Initializer configs compared by class and seed (Keras 3.15 adds `input_axes` and
/// `output_axes` to the Glorot initializers, which ndkeras does not write).
fn same_initializer(ours: &Value, keras: &Value) -> bool {
    ours["class_name"] == keras["class_name"]
        && ["seed", "minval", "maxval", "mean", "stddev"]
            .iter()
            .all(|k| ours["config"][k] == keras["config"][k])
}

#[test]
fn configs_have_keras_hub_keys_and_values() {
    let configs = reference()["configs"].as_object().unwrap();
    assert_eq!(configs.len(), 8);
    for (id, keras) in configs {
        let class = id.split('_').next().unwrap();
        let wrapped = serde_json::json!({"class_name": class, "config": keras});
        let layer = ndkeras::config::layer_from_config(&wrapped).map_err(|e| format!("{id}: {e}"));
        let ours = layer.unwrap().get_config();
        let keras = as_ndkeras(keras);
        let ours_keys: Vec<&String> = ours.as_object().unwrap().keys().collect();
        let keras_keys: Vec<&String> = keras.as_object().unwrap().keys().collect();
        assert_eq!(ours_keys, keras_keys, "{id}: keys");
        for key in keras_keys {
            let (a, b) = (&ours[key], &keras[key]);
            if key.ends_with("initializer") {
                assert!(same_initializer(a, b), "{id}.{key}: {a} vs {b}");
            } else {
                assert_eq!(a, b, "{id}.{key}");
            }
        }
        // Read back: the same JSON.
        let again = ndkeras::config::layer_from_config(
            &serde_json::json!({"class_name": class, "config": ours}),
        )
        .unwrap();
        assert_eq!(again.get_config(), ours, "{id}: round trip");
    }
}

#[test]
fn token_and_position_weights_are_named_like_keras_3() {
    let keras = reference()["token_and_position_weights"]
        .as_array()
        .unwrap();
    let mut layer =
        TokenAndPositionEmbedding::new(7, 5, 3).with_name("token_and_position_embedding");
    layer
        .apply(&Tensor::from(Array2::<i64>::zeros((1, 5))))
        .unwrap();
    let ours: Vec<String> = layer
        .weight_names()
        .iter()
        .map(|n| format!("{}/{n}", layer.name()))
        .collect();
    let paths: Vec<String> = keras
        .iter()
        .map(|w| w["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ours, paths);
    assert_eq!(layer.weight_shapes(), vec![vec![7, 3], vec![5, 3]]);
}

#[test]
fn sequences_longer_than_the_table_are_errors_naming_both_lengths() {
    let mut layer = PositionEmbedding::new(3).with_name("pos");
    let err = layer
        .apply(&Tensor::from(Array3::<f32>::zeros((1, 4, 2))))
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::IncompatibleShape { .. }), "{text}");
    assert!(
        text.contains("\"pos\"")
            && text.contains("4 positions")
            && text.contains("sequence_length = 3"),
        "{text}"
    );
    assert!(
        !layer.is_built(),
        "a failed first call leaves the layer unbuilt"
    );

    let mut tape = TokenAndPositionEmbedding::new(10, 3, 2).with_name("tape");
    let err = tape
        .apply(&Tensor::from(array![[1i64, 2, 3, 4]]))
        .unwrap_err();
    assert!(
        err.to_string().contains("\"tape\"") && err.to_string().contains("sequence_length = 3"),
        "{err}"
    );
    let err = layer
        .compute_output_shape(&[None, Some(5), Some(2)])
        .unwrap_err();
    assert!(err.to_string().contains("sequence_length = 3"), "{err}");
}

#[test]
fn start_index_past_the_table_is_an_error_where_jax_clamps() {
    let reference = &reference()["jax_clamps_start_index"];
    let table = common::f32_tensor(&reference["table"]);
    let mut layer = PositionEmbedding::new(5)
        .with_name("clamp")
        .weights(vec![table]);
    let x = Tensor::from(Array3::<f32>::zeros((1, 3, 2)));
    layer.apply(&x).unwrap();
    // KerasHub on JAX returns rows 2..5 for start_index 4 (dynamic_slice clamps the start).
    assert_eq!(
        common::f32_tensor(&reference["output"]).as_slice().unwrap(),
        &[4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    );
    let err = layer.call_with_start_index(&x, 4).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("start_index 4")
            && text.contains("3 positions")
            && text.contains("sequence_length = 5"),
        "{text}"
    );
    // Within the table it works, on every layer that takes a start_index.
    let out = layer.call_with_start_index(&x, 2).unwrap();
    assert_eq!(
        out.as_float().unwrap().as_slice().unwrap(),
        &[4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    );
}

#[test]
fn invalid_settings_are_refused_by_validate() {
    let zero = |layer: &dyn Layer, parameter: &str| {
        let err = layer.validate().unwrap_err();
        assert!(
            matches!(&err, Error::InvalidArgument { parameter: p, .. } if p == parameter),
            "{parameter}: {err}"
        );
    };
    zero(&PositionEmbedding::new(0), "sequence_length");
    zero(&TokenAndPositionEmbedding::new(0, 4, 2), "vocabulary_size");
    zero(&TokenAndPositionEmbedding::new(5, 0, 2), "sequence_length");
    zero(&TokenAndPositionEmbedding::new(5, 4, 0), "embedding_dim");
    zero(
        &SinePositionEncoding::new().max_wavelength(0.0),
        "max_wavelength",
    );
    zero(
        &SinePositionEncoding::new().max_wavelength(f64::NAN),
        "max_wavelength",
    );
    zero(
        &RotaryEmbedding::new().max_wavelength(-1.0),
        "max_wavelength",
    );
    zero(
        &RotaryEmbedding::new().scaling_factor(0.0),
        "scaling_factor",
    );
    zero(
        &RotaryEmbedding::new().denominator_dim(Some(0)),
        "denominator_dim",
    );
    // A zero size is also refused when the layer is first called.
    let err = PositionEmbedding::new(0)
        .apply(&Tensor::from(Array3::<f32>::zeros((1, 1, 2))))
        .unwrap_err();
    assert!(err.to_string().contains("sequence_length"), "{err}");
    // YaRN is not implemented; unknown rope types are refused (KerasHub would not scale).
    let err = "yarn".parse::<RopeType>().unwrap_err();
    assert!(err.to_string().contains("not implemented"), "{err}");
    assert!(matches!(
        "cubic".parse::<RopeType>(),
        Err(Error::UnknownName { .. })
    ));
}

#[test]
fn bad_inputs_are_errors() {
    // Rotary: odd feature dimension, equal axes, axes out of range.
    let x = Tensor::from(Array3::<f32>::zeros((1, 2, 3)));
    let err = RotaryEmbedding::new().apply(&x).unwrap_err();
    assert!(err.to_string().contains("must be even, got 3"), "{err}");
    let err = RotaryEmbedding::new()
        .sequence_axis(2)
        .apply(&Tensor::from(Array3::<f32>::zeros((1, 2, 4))))
        .unwrap_err();
    assert!(err.to_string().contains("sequence_axis"), "{err}");
    let err = RotaryEmbedding::new()
        .feature_axis(-4)
        .apply(&Tensor::from(Array3::<f32>::zeros((1, 2, 4))))
        .unwrap_err();
    assert!(err.to_string().contains("rank 3"), "{err}");
    // Integer ids where features are expected; rank 1 where a sequence axis is needed.
    let err = SinePositionEncoding::new()
        .apply(&Tensor::from(array![[1i64, 2]]))
        .unwrap_err();
    assert!(matches!(err, Error::IncompatibleDtype { .. }), "{err}");
    let err = PositionEmbedding::new(4)
        .apply(&Tensor::from(vec![1.0f32, 2.0]))
        .unwrap_err();
    assert!(matches!(err, Error::IncompatibleShape { .. }), "{err}");
    // Features that differ from the built table.
    let mut layer = PositionEmbedding::new(4);
    layer
        .apply(&Tensor::from(Array3::<f32>::zeros((1, 2, 3))))
        .unwrap();
    let err = layer
        .apply(&Tensor::from(Array3::<f32>::zeros((1, 2, 5))))
        .unwrap_err();
    assert!(
        err.to_string().contains("5 features") && err.to_string().contains("built for 3"),
        "{err}"
    );
    // Ids out of range.
    let mut tape = TokenAndPositionEmbedding::new(3, 4, 2);
    let err = tape.apply(&Tensor::from(array![[1i64, 3]])).unwrap_err();
    assert!(
        matches!(err, Error::IndexOutOfRange { index: 3, .. }),
        "{err}"
    );
    // Initial weights of the wrong shape, reported at build, naming both shapes.
    let mut tape = TokenAndPositionEmbedding::new(3, 4, 2).weights(vec![
        ArrayD::zeros(IxDyn(&[3, 2])),
        ArrayD::zeros(IxDyn(&[5, 2])),
    ]);
    let err = tape.apply(&Tensor::from(array![[1i64, 2]])).unwrap_err();
    assert!(matches!(err, Error::WeightShape { index: 1, .. }), "{err}");
    assert!(!tape.is_built() && tape.initial_weights().is_some());
}

/// TokenAndPositionEmbedding -> GlobalAveragePooling1D -> Dense, three SGD steps, as Keras 3
/// trained it: same losses and weights.
#[test]
fn a_sequential_model_trains_as_keras_3() {
    let t = &reference()["training"];
    let initial: Vec<ArrayD<f32>> = t["initial_weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(common::f32_tensor)
        .collect();
    let mut model = Sequential::new();
    model
        .add(
            TokenAndPositionEmbedding::new(6, 4, 3)
                .mask_zero(true)
                .with_name("tape")
                .weights(initial[..2].to_vec()),
        )
        .unwrap();
    model
        .add(GlobalAveragePooling1D::new().with_name("pool"))
        .unwrap();
    model
        .add(
            Dense::new(1)
                .with_name("dense")
                .weights(initial[2..].to_vec()),
        )
        .unwrap();
    let lr = t["learning_rate"].as_f64().unwrap() as f32;
    model
        .compile(SGD::new(lr).into(), Loss::MeanSquaredError)
        .unwrap();
    let x = common::f32_tensor(&t["x"]).mapv(|v| v as i64);
    let y = common::f32_tensor(&t["y"]);
    for (step, keras) in t["losses"].as_array().unwrap().iter().enumerate() {
        let loss = model.train_on_batch(x.clone(), y.clone()).unwrap();
        let keras = keras.as_f64().unwrap() as f32;
        assert!(
            (loss - keras).abs() <= 1e-6 + 1e-5 * keras.abs(),
            "step {step}: loss {loss} vs Keras {keras}"
        );
    }
    let ours: Vec<ArrayD<f32>> = model
        .layers()
        .iter()
        .flat_map(|layer| layer.get_weights())
        .collect();
    for (k, (a, e)) in ours
        .iter()
        .zip(t["final_weights"].as_array().unwrap())
        .enumerate()
    {
        close(
            a,
            &common::f32_tensor(e),
            &format!("weight {k} after training"),
        );
    }
    let names: Vec<String> = model
        .layers()
        .iter()
        .flat_map(|layer| {
            let name = layer.name().to_string();
            layer
                .weight_names()
                .into_iter()
                .map(move |w| format!("sequential/{name}/{w}"))
        })
        .collect();
    let keras_names: Vec<String> = t["weight_paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, keras_names);
}

/// The KerasHub pattern `tokens + PositionEmbedding(tokens)` in a functional model: the
/// token mask reaches the pooling through the `Add`, and the model trains.
#[test]
fn a_functional_model_with_position_embeddings_trains() {
    let mut graph = Graph::new();
    let ids = graph.input(Input::new(&[4]).dtype(DType::Int64));
    let tokens = graph
        .apply(
            Embedding::new(8, 4)
                .mask_zero(true)
                .embeddings_initializer(Initializer::GlorotUniform { seed: Some(1) }),
            &[ids],
        )
        .unwrap();
    let positions = graph
        .apply(
            PositionEmbedding::new(4).initializer(Initializer::GlorotUniform { seed: Some(2) }),
            &[tokens],
        )
        .unwrap();
    let summed = graph.apply(Add::new(), &[tokens, positions]).unwrap();
    let rotated = graph.apply(SinePositionEncoding::new(), &[summed]).unwrap();
    let both = graph.apply(Add::new(), &[summed, rotated]).unwrap();
    let pooled = graph.apply(GlobalAveragePooling1D::new(), &[both]).unwrap();
    let out = graph
        .apply(
            Dense::new(1).kernel_initializer(Initializer::GlorotUniform { seed: Some(3) }),
            &[pooled],
        )
        .unwrap();
    let mut model = graph.model(&[ids], &[out]).unwrap();
    model
        .compile(SGD::new(0.1).into(), vec![Loss::MeanSquaredError], None)
        .unwrap();
    let x = Tensor::from(array![[1i64, 2, 0, 0], [3, 4, 5, 0], [6, 7, 1, 2]]);
    let y = Tensor::from(array![[1.0f32], [-1.0], [0.5]]);
    let first = model
        .train_on_batch(vec![x.clone()], vec![y.clone()])
        .unwrap();
    let mut last = first;
    for _ in 0..30 {
        last = model
            .train_on_batch(vec![x.clone()], vec![y.clone()])
            .unwrap();
    }
    assert!(last < first, "loss {first} -> {last}");
}

/// TokenAndPositionEmbedding in a functional model (its mask consumed by the pooling)
/// trains.
#[test]
fn token_and_position_embedding_trains_in_a_functional_model() {
    let mut graph = Graph::new();
    let ids = graph.input(Input::new(&[4]).dtype(DType::Int64));
    let embedded = graph
        .apply(
            TokenAndPositionEmbedding::new(8, 4, 3)
                .mask_zero(true)
                .embeddings_initializer(Initializer::GlorotUniform { seed: Some(4) }),
            &[ids],
        )
        .unwrap();
    let pooled = graph
        .apply(GlobalAveragePooling1D::new(), &[embedded])
        .unwrap();
    let out = graph.apply(Dense::new(1), &[pooled]).unwrap();
    let mut model = graph.model(&[ids], &[out]).unwrap();
    model
        .compile(SGD::new(0.2).into(), vec![Loss::MeanSquaredError], None)
        .unwrap();
    let x = Tensor::from(array![[1i64, 2, 0, 0], [3, 4, 5, 0], [6, 7, 1, 2]]);
    let y = Tensor::from(array![[1.0f32], [-1.0], [0.5]]);
    let first = model
        .train_on_batch(vec![x.clone()], vec![y.clone()])
        .unwrap();
    let mut last = first;
    for _ in 0..30 {
        last = model
            .train_on_batch(vec![x.clone()], vec![y.clone()])
            .unwrap();
    }
    assert!(last < first, "loss {first} -> {last}");
    let predicted = model
        .predict(vec![Tensor::from(array![[1i64, 2, 0, 0]])])
        .unwrap();
    assert_eq!(predicted[0].shape(), &[1, 1]);
}

/// The token table's gradient is row-sparse (only the ids looked up), the position table's
/// dense; a frozen layer gives none.
#[test]
fn token_gradient_is_row_sparse_and_position_gradient_dense() {
    let mut layer = TokenAndPositionEmbedding::new(100, 4, 2);
    let ids = Tensor::from(array![[5i64, 7, 5]]);
    layer.apply(&ids).unwrap();
    let backward = layer
        .backward(&ids, ArrayD::ones(IxDyn(&[1, 3, 2])))
        .unwrap();
    assert_eq!(backward.input_gradient, None);
    match &backward.weight_gradients[..] {
        [
            (_, Gradient::Rows { rows, values }),
            (_, Gradient::Dense(position)),
        ] => {
            assert_eq!(rows, &[5, 7]);
            assert_eq!(values, &array![[2.0f32, 2.0], [1.0, 1.0]]);
            assert_eq!(
                position,
                &array![[1.0f32, 1.0], [1.0, 1.0], [1.0, 1.0], [0.0, 0.0]].into_dyn()
            );
        }
        other => panic!("{other:?}"),
    }
    layer.set_trainable(false);
    let frozen = layer
        .backward(&ids, ArrayD::ones(IxDyn(&[1, 3, 2])))
        .unwrap();
    assert!(frozen.weight_gradients.is_empty());
}

fn tape_model() -> Sequential {
    let mut model = Sequential::new();
    model
        .add(TokenAndPositionEmbedding::new(6, 4, 3).with_name("tape"))
        .unwrap();
    model
}

/// A model with a TokenAndPositionEmbedding saves its tables under Keras 3's variable paths.
#[test]
fn token_and_position_weights_are_saved_under_keras_paths() {
    let mut model = tape_model();
    model.predict(array![[1i64, 2, 3, 0]]).unwrap();
    let path =
        std::env::temp_dir().join(format!("ndkeras-position-keys-{}.npz", std::process::id()));
    model.save_weights(&path).unwrap();
    let saved = ndkeras::io::npy::read_npz(&path);
    let _ = std::fs::remove_file(&path);
    let names: Vec<String> = saved.unwrap().into_iter().map(|(name, _)| name).collect();
    assert_eq!(
        names,
        [
            "tape/token_embedding/embeddings",
            "tape/position_embedding/embeddings"
        ]
    );
}

/// Loading them back needs `model/persistence.rs` to split a saved name at its first `/`
/// (the layer name; Keras 3 forbids `/` in layer names) instead of its last: reported to
/// the owner of that file, checked to pass with that one-line change.
#[test]
fn token_and_position_weights_load_back() {
    let x = array![[1i64, 2, 3, 0]];
    let mut model = tape_model();
    let before = model.predict(x.clone()).unwrap();
    let path = std::env::temp_dir().join(format!("ndkeras-position-{}.npz", std::process::id()));
    model.save_weights(&path).unwrap();
    let mut other = tape_model();
    other.predict(x.clone()).unwrap();
    let loaded = other.load_weights(&path);
    let _ = std::fs::remove_file(&path);
    loaded.unwrap();
    assert_eq!(other.predict(x).unwrap(), before);
}

/// A functional model with the position layers goes through Keras JSON and back.
#[test]
fn functional_json_round_trips_the_position_layers() {
    let mut graph = Graph::new();
    let ids = graph.input(Input::new(&[4]).dtype(DType::Int64));
    let tokens = graph
        .apply(TokenAndPositionEmbedding::new(8, 4, 4), &[ids])
        .unwrap();
    let rotated = graph
        .apply(RotaryEmbedding::new().scaling_factor(2.0), &[tokens])
        .unwrap();
    let sine = graph
        .apply(
            SinePositionEncoding::new().max_wavelength(100.0),
            &[rotated],
        )
        .unwrap();
    let learned = graph.apply(PositionEmbedding::new(6), &[rotated]).unwrap();
    let summed = graph.apply(Add::new(), &[rotated, sine, learned]).unwrap();
    let pooled = graph
        .apply(GlobalAveragePooling1D::new(), &[summed])
        .unwrap();
    let model = graph.model(&[ids], &[pooled]).unwrap();
    let back = Model::from_json(&model.to_json()).unwrap();
    assert_eq!(back.get_config(), model.get_config());
    // KerasHub's layers are written as Keras 3 serialises them: their own module and
    // registered name, so that Keras can find the class again.
    let json: serde_json::Value = serde_json::from_str(&model.to_json()).unwrap();
    let layers = json["config"]["layers"].as_array().unwrap();
    let rotary = layers
        .iter()
        .find(|l| l["class_name"] == "RotaryEmbedding")
        .unwrap();
    assert_eq!(
        rotary["module"],
        "keras_hub.src.layers.modeling.rotary_embedding"
    );
    assert_eq!(rotary["registered_name"], "keras_hub>RotaryEmbedding");
    let add = layers.iter().find(|l| l["class_name"] == "Add").unwrap();
    assert_eq!(add["module"], "keras.layers");
}
