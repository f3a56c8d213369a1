//! `ReversibleEmbedding` against Keras 3.15.1 (`tests/data/keras3_reversible.json`, made by
//! `keras3_reversible.py` beside it): the lookup and its mask, the reverse call's logits
//! (tied and untied, with and without a soft cap), the gradients of the reverse call, and a
//! functional model that uses one layer at its input and (reversed) at its output, trained
//! three steps with SGD. Then the errors, the JSON round trip of that model and its saved
//! weights.

#![cfg(feature = "serde")]

use std::sync::OnceLock;

use ndarray::ArrayD;
use ndkeras::layer::Gradient;
use ndkeras::prelude::*;
use serde_json::Value;

fn reference() -> &'static Value {
    static ROOT: OnceLock<Value> = OnceLock::new();
    ROOT.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/keras3_reversible.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    })
}

fn shape(t: &Value) -> Vec<usize> {
    t["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect()
}

fn floats(t: &Value) -> ArrayD<f32> {
    let data = t["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    ArrayD::from_shape_vec(shape(t), data).unwrap()
}

fn tensor(t: &Value) -> Tensor {
    match t["dtype"].as_str().unwrap() {
        "int64" => {
            let data = t["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect();
            Tensor::from(ArrayD::from_shape_vec(shape(t), data).unwrap())
        }
        _ => Tensor::from(floats(t)),
    }
}

fn mask(t: &Value) -> Option<ArrayD<bool>> {
    if t.is_null() {
        return None;
    }
    let data = t["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_bool().unwrap())
        .collect();
    Some(ArrayD::from_shape_vec(shape(t), data).unwrap())
}

fn assert_close(actual: &ArrayD<f32>, expected: &ArrayD<f32>, what: &str) {
    assert_eq!(actual.shape(), expected.shape(), "{what}: shape");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let tolerance = 1e-5 * e.abs() + 1e-6;
        assert!(
            (a - e).abs() <= tolerance,
            "{what}: element {i}: {a} vs Keras {e}"
        );
    }
}

fn reverse() -> CallArgs {
    CallArgs::default().reverse(true)
}

/// The layer of a `layer` case, built from the case's weights.
fn layer_of(case: &Value) -> ReversibleEmbedding {
    let inputs = &reference()["inputs"];
    let tie = case["tie_weights"].as_bool().unwrap();
    let mut weights = vec![floats(&inputs["embeddings"])];
    if !tie {
        weights.push(floats(&inputs["reverse_embeddings"]));
    }
    ReversibleEmbedding::new(6, 4)
        .tie_weights(tie)
        .logit_soft_cap(case["logit_soft_cap"].as_f64().map(|c| c as f32))
        .mask_zero(true)
        .with_name("emb")
        .weights(weights)
}

fn layer_cases() -> &'static [Value] {
    reference()["layer"].as_array().unwrap()
}

fn describe(case: &Value) -> String {
    format!(
        "tie_weights={} logit_soft_cap={}",
        case["tie_weights"], case["logit_soft_cap"]
    )
}

#[test]
fn the_lookup_and_its_mask_are_keras() {
    let inputs = &reference()["inputs"];
    for case in layer_cases() {
        let mut layer = layer_of(case);
        let out = layer.apply(&tensor(&inputs["ids"])).unwrap();
        assert_close(
            out.as_float().unwrap(),
            &floats(&case["output"]),
            &describe(case),
        );
        assert_eq!(
            out.mask(),
            mask(&case["mask"]).as_ref(),
            "{}",
            describe(case)
        );
        assert_eq!(
            layer.weight_names(),
            case["weight_names"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn reverse_logits_are_keras_tied_and_untied_with_and_without_a_soft_cap() {
    let inputs = &reference()["inputs"];
    for case in layer_cases() {
        let mut layer = layer_of(case);
        layer.apply(&tensor(&inputs["ids"])).unwrap();
        let logits = layer
            .call_with(&[&tensor(&inputs["x"])], reverse())
            .unwrap();
        assert_close(
            logits.as_float().unwrap(),
            &floats(&case["logits"]),
            &describe(case),
        );
        // Keras attaches no mask to the reverse call, even on a masked input.
        assert!(case["logits_mask"].is_null());
        let masked = tensor(&inputs["x"])
            .with_mask(Some(ArrayD::from_elem(vec![2, 3], true)))
            .unwrap();
        assert_eq!(layer.call_with(&[&masked], reverse()).unwrap().mask(), None);
    }
}

#[test]
fn reverse_gradients_are_keras() {
    let inputs = &reference()["inputs"];
    for case in layer_cases() {
        let mut layer = layer_of(case);
        layer.apply(&tensor(&inputs["ids"])).unwrap();
        let x = tensor(&inputs["x"]);
        layer.forward_with(&[&x], true, reverse()).unwrap();
        let backward = layer
            .backward_with(&[&x], floats(&inputs["upstream"]), false, reverse())
            .unwrap();
        assert_close(
            backward.input_gradients[0].as_ref().unwrap(),
            &floats(&case["input_gradient"]),
            &format!("{}: input gradient", describe(case)),
        );
        // Keras' gradients cover every trainable variable; the reverse call reads one table.
        let expected = case["weight_gradients"].as_array().unwrap();
        let tie = case["tie_weights"].as_bool().unwrap();
        let read = if tie { 0 } else { 1 };
        let variables = layer.variables();
        assert_eq!(backward.weight_gradients.len(), 1);
        let (id, gradient) = &backward.weight_gradients[0];
        assert_eq!(*id, variables[read].id());
        let Gradient::Dense(gradient) = gradient else {
            panic!("a dense gradient for the reverse call");
        };
        assert_close(
            gradient,
            &floats(&expected[read]),
            &format!("{}: weight gradient", describe(case)),
        );
        if !tie {
            // The reverse call does not read `embeddings`: Keras' gradient there is zero.
            assert!(floats(&expected[0]).iter().all(|&g| g == 0.0));
        }
    }
}

/// The functional model of a training case: ids -> emb -> pool -> hidden -> emb(reverse).
fn model_of(case: &Value) -> Model {
    let tie = case["tie_weights"].as_bool().unwrap();
    let mut graph = Graph::new();
    let ids = graph.input(Input::new(&[3]).dtype(DType::Int64).with_name("ids"));
    let emb = graph
        .add(
            ReversibleEmbedding::new(6, 4)
                .tie_weights(tie)
                .logit_soft_cap(case["logit_soft_cap"].as_f64().map(|c| c as f32))
                .with_name("emb"),
        )
        .unwrap();
    let pool = graph
        .add(GlobalAveragePooling1D::new().with_name("pool"))
        .unwrap();
    let hidden = graph.add(Dense::new(4).with_name("hidden")).unwrap();
    let h = graph.call(emb, &[ids]).unwrap();
    let h = graph.call(pool, &[h]).unwrap();
    let h = graph.call(hidden, &[h]).unwrap();
    let logits = graph.call_with(emb, &[h], reverse()).unwrap();
    let mut model = graph.model(&[ids], &[logits]).unwrap().with_name("tied_lm");
    for (name, weights) in case["initial_weights"].as_object().unwrap() {
        model
            .get_layer_mut(name)
            .unwrap()
            .set_weights(weights.as_array().unwrap().iter().map(floats).collect())
            .unwrap();
    }
    model
}

fn training_cases() -> &'static [Value] {
    reference()["training"].as_array().unwrap()
}

#[test]
fn a_tied_language_model_trains_as_keras() {
    for case in training_cases() {
        let what = describe(case);
        let mut model = model_of(case);
        let x = tensor(&case["x"]);
        let initial = model.predict(vec![x.clone()]).unwrap();
        assert_close(&initial[0], &floats(&case["predict_initial"]), &what);
        let learning_rate = case["learning_rate"].as_f64().unwrap() as f32;
        model
            .compile(
                SGD::new(learning_rate).into(),
                vec![Loss::MeanSquaredError],
                None,
            )
            .unwrap();
        let history = model
            .fit(
                vec![x.clone()],
                vec![tensor(&case["y"])],
                FitOptions::default()
                    .epochs(3)
                    .batch_size(4)
                    .shuffle(false)
                    .verbose(false),
            )
            .unwrap();
        let losses: Vec<f32> = case["loss"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_close(
            &ArrayD::from_shape_vec(vec![3], history.loss.clone()).unwrap(),
            &ArrayD::from_shape_vec(vec![3], losses).unwrap(),
            &format!("{what}: losses"),
        );
        for (name, weights) in case["final_weights"].as_object().unwrap() {
            let ours = model.get_layer(name).unwrap().get_weights();
            let keras: Vec<ArrayD<f32>> = weights.as_array().unwrap().iter().map(floats).collect();
            assert_eq!(ours.len(), keras.len(), "{what}: {name}");
            for (i, (a, e)) in ours.iter().zip(&keras).enumerate() {
                assert_close(a, e, &format!("{what}: {name} weight {i}"));
            }
        }
        let last = model.predict(vec![x]).unwrap();
        assert_close(&last[0], &floats(&case["predict_final"]), &what);
    }
}

#[test]
fn the_model_json_round_trips_with_its_reverse_call() {
    for case in training_cases() {
        let model = model_of(case);
        let text = model.to_json();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        let layers = parsed["config"]["layers"].as_array().unwrap();
        let emb = layers
            .iter()
            .find(|l| l["config"]["name"] == "emb")
            .unwrap();
        assert_eq!(emb["class_name"], "ReversibleEmbedding");
        assert_eq!(emb["module"], "keras.layers");
        assert_eq!(emb["config"]["tie_weights"], case["tie_weights"]);
        assert_eq!(emb["config"]["logit_soft_cap"], case["logit_soft_cap"]);
        let nodes = emb["inbound_nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[1][0][3]["reverse"], true, "{}", emb["inbound_nodes"]);

        let mut back = Model::from_json(&text).unwrap();
        assert_eq!(back.to_json(), text);
        let mut original = model_of(case);
        back.set_weights(original.get_weights()).unwrap();
        let x = tensor(&case["x"]);
        assert_eq!(
            back.predict(vec![x.clone()]).unwrap(),
            original.predict(vec![x]).unwrap()
        );
    }
}

#[test]
fn saved_weights_load_back_by_keras_names() {
    let case = &training_cases()[2]; // untied: two tables
    let mut trained = model_of(case);
    let mut fresh = model_of(case);
    let doubled: Vec<ArrayD<f32>> = trained
        .get_layer("emb")
        .unwrap()
        .get_weights()
        .into_iter()
        .map(|w| w * 2.0)
        .collect();
    trained
        .get_layer_mut("emb")
        .unwrap()
        .set_weights(doubled.clone())
        .unwrap();
    let path = std::env::temp_dir().join(format!("ndkeras-reversible-{}.npz", std::process::id()));
    trained.save_weights(&path).unwrap();
    fresh.load_weights(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(fresh.get_layer("emb").unwrap().get_weights(), doubled);
    assert_eq!(
        fresh.get_layer("emb").unwrap().weight_names(),
        ["embeddings", "reverse_embeddings"]
    );
}

#[test]
fn keras_configs_load_and_write_their_keys_back() {
    for case in layer_cases() {
        let config = &case["config"];
        let layer = ReversibleEmbedding::from_config(config).unwrap();
        assert_eq!(layer.name(), "emb");
        assert_eq!(layer.is_tied(), config["tie_weights"].as_bool().unwrap());
        assert_eq!(
            layer.soft_cap().map(f64::from),
            config["logit_soft_cap"].as_f64()
        );
        assert!(layer.embedding().config().mask_zero);
        let ours = layer.get_config();
        for key in [
            "tie_weights",
            "reverse_dtype",
            "logit_soft_cap",
            "input_dim",
            "output_dim",
            "mask_zero",
        ] {
            assert_eq!(ours[key], config[key], "{key}");
        }
        let dynamic: Box<dyn Layer> = ndkeras::config::layer_from_config(&serde_json::json!({
            "class_name": "ReversibleEmbedding",
            "config": config,
        }))
        .unwrap();
        assert_eq!(dynamic.class_name(), "ReversibleEmbedding");
    }
}

fn assert_invalid(err: &Error, words: &[&str]) {
    assert!(
        matches!(err, Error::InvalidArgument { .. }),
        "not an invalid argument: {err:?}"
    );
    let text = err.to_string();
    for word in words {
        assert!(text.contains(word), "{word:?} missing from: {text}");
    }
}

#[test]
fn a_reverse_call_before_the_build_is_an_error() {
    let layer = ReversibleEmbedding::new(6, 4).with_name("early");
    let x = Tensor::from(ArrayD::<f32>::zeros(vec![2, 4]));
    let err = layer.call_with(&[&x], reverse()).unwrap_err();
    assert!(matches!(err, Error::NotBuilt { .. }), "{err:?}");
    assert!(err.to_string().contains("early"), "{err}");

    // A graph refuses it too, before anything is built.
    let mut graph = Graph::new();
    let h = graph.input(Input::new(&[4]));
    let emb = graph.add(ReversibleEmbedding::new(6, 4)).unwrap();
    let err = graph.call_with(emb, &[h], reverse()).unwrap_err();
    assert!(matches!(err, Error::NotBuilt { .. }), "{err:?}");
}

#[test]
fn a_reverse_input_of_the_wrong_width_or_type_is_an_error() {
    let mut layer = ReversibleEmbedding::new(6, 4).with_name("width");
    layer.apply(&Tensor::from(vec![1i64, 2])).unwrap();
    let x = Tensor::from(ArrayD::<f32>::zeros(vec![2, 3, 5]));
    let err = layer.call_with(&[&x], reverse()).unwrap_err();
    assert!(matches!(err, Error::IncompatibleShape { .. }), "{err:?}");
    let text = err.to_string();
    for word in ["width", "(2, 3, 5)", "(None, None, 4)", "output_dim = 4"] {
        assert!(text.contains(word), "{word:?} missing from: {text}");
    }
    let ids = Tensor::from(vec![1i64, 2, 3, 4]);
    let err = layer.call_with(&[&ids], reverse()).unwrap_err();
    assert!(matches!(err, Error::IncompatibleDtype { .. }), "{err:?}");
    assert!(err.to_string().contains("float32"), "{err}");

    // In a graph the shape is checked when the call is made.
    let mut graph = Graph::new();
    let ids = graph.input(Input::new(&[3]).dtype(DType::Int64));
    let wide = graph.input(Input::new(&[5]));
    let emb = graph.add(ReversibleEmbedding::new(6, 4)).unwrap();
    graph.call(emb, &[ids]).unwrap();
    let err = graph.call_with(emb, &[wide], reverse()).unwrap_err();
    assert!(matches!(err, Error::IncompatibleShape { .. }), "{err:?}");
    assert!(err.to_string().contains("output_dim = 4"), "{err}");
}

#[test]
fn a_soft_cap_that_is_not_positive_and_finite_is_refused() {
    for cap in [0.0f32, -1.0, f32::NAN, f32::INFINITY] {
        let mut layer = ReversibleEmbedding::new(6, 4)
            .logit_soft_cap(Some(cap))
            .with_name("capped");
        let err = layer.apply(&Tensor::from(vec![1i64])).unwrap_err();
        assert_invalid(&err, &["capped", "logit_soft_cap", "positive finite"]);
        assert!(!layer.is_built());
    }
    let mut config = ReversibleEmbedding::new(6, 4).get_config();
    config["logit_soft_cap"] = serde_json::json!(-0.5);
    let err = ReversibleEmbedding::from_config(&config).unwrap_err();
    assert_invalid(
        &err,
        &["ReversibleEmbedding config", "logit_soft_cap", "-0.5"],
    );
}

#[test]
fn a_reverse_dtype_other_than_null_is_refused() {
    let mut config = ReversibleEmbedding::new(6, 4).get_config();
    config["reverse_dtype"] = serde_json::json!("bfloat16");
    let err = ReversibleEmbedding::from_config(&config).unwrap_err();
    assert_invalid(
        &err,
        &[
            "ReversibleEmbedding config",
            "reverse_dtype",
            "bfloat16",
            "null",
        ],
    );
}

#[test]
fn other_layers_refuse_the_reverse_argument() {
    let mut graph = Graph::new();
    let x = graph.input(Input::new(&[4]));
    let dense = graph.add(Dense::new(2).with_name("plain")).unwrap();
    graph.call(dense, &[x]).unwrap();
    let err = graph.call_with(dense, &[x], reverse()).unwrap_err();
    assert_invalid(&err, &["plain"]);
}

#[test]
fn untied_weights_are_built_and_counted_in_keras_order() {
    let mut layer = ReversibleEmbedding::new(6, 4).tie_weights(false);
    layer.apply(&Tensor::from(vec![1i64])).unwrap();
    assert_eq!(layer.weight_shapes(), vec![vec![6, 4], vec![4, 6]]);
    assert_eq!(layer.count_params().unwrap(), 48);
    // The initializer (uniform in [-0.05, 0.05]) filled both.
    for weight in layer.get_weights() {
        assert!(weight.iter().all(|v| v.abs() <= 0.05));
        assert!(weight.iter().any(|&v| v != 0.0));
    }
    // A wrong count of initial weights is reported at the build, naming the layer.
    let mut layer = ReversibleEmbedding::new(6, 4)
        .tie_weights(false)
        .with_name("short")
        .weights(vec![ArrayD::zeros(vec![6, 4])]);
    let err = layer.apply(&Tensor::from(vec![1i64])).unwrap_err();
    assert!(
        matches!(
            err,
            Error::WeightCount {
                expected: 2,
                got: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!layer.is_built());
}

#[test]
fn unbuild_gives_the_initial_weights_back() {
    let table = ArrayD::from_shape_fn(vec![6, 4], |d| (d[0] * 4 + d[1]) as f32);
    let reverse_table = ArrayD::from_shape_fn(vec![4, 6], |d| (d[0] * 6 + d[1]) as f32);
    let mut layer = ReversibleEmbedding::new(6, 4)
        .tie_weights(false)
        .weights(vec![table.clone(), reverse_table.clone()]);
    layer.build(&[None, Some(2)]).unwrap();
    layer.unbuild();
    assert!(!layer.is_built());
    assert_eq!(
        layer.initial_weights().unwrap(),
        &[table.clone(), reverse_table.clone()]
    );
    layer.apply(&Tensor::from(vec![1i64])).unwrap();
    assert_eq!(layer.get_weights(), vec![table, reverse_table]);
}
