//! `TokenAndPositionEmbedding`'s tied output against KerasHub 0.32.0 on Keras 3.15.1 (JAX
//! backend): the `tied_output` entry of `tests/data/keras_hub_position.json`, made by
//! `keras_hub_position.py` beside it. The layer, tied and untied, on its lookup and its
//! reverse call (KerasHub's `layer.token_embedding(x, reverse=True)`): outputs, masks,
//! weight names, the reverse call's gradients; a tiny functional language model (ids ->
//! the layer -> Dense(tanh) -> the same layer in reverse) trained three steps with SGD (tied)
//! and Adam (untied), whose losses and weights match Keras'; then the errors, the JSON
//! round trip and the saved weights. (Needs the `serde` feature, on by default.)

#![cfg(feature = "serde")]

mod common;

use std::sync::OnceLock;

use ndarray::ArrayD;
use ndkeras::layer::{Backward, Gradient};
use ndkeras::optimizers::{Adam, SGD};
use ndkeras::prelude::*;
use serde_json::Value;

fn tied_output() -> &'static Value {
    static ROOT: OnceLock<Value> = OnceLock::new();
    &ROOT.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/keras_hub_position.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    })["tied_output"]
}

fn layer_cases() -> &'static [Value] {
    tied_output()["layer"].as_array().unwrap()
}

fn training_cases() -> &'static [Value] {
    tied_output()["training"].as_array().unwrap()
}

/// Relative 1e-5, absolute 1e-6 (the float32 rounding of a different summation order).
fn close(actual: &ArrayD<f32>, expected: &ArrayD<f32>, what: &str) {
    assert_eq!(actual.shape(), expected.shape(), "{what}: shape");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= 1e-5 * e.abs() + 1e-6,
            "{what}: element {i}: {a} vs KerasHub {e}"
        );
    }
}

fn reverse() -> CallArgs {
    CallArgs::default().reverse(true)
}

fn describe(case: &Value) -> String {
    format!("tie_weights={}", case["tie_weights"])
}

/// The layer of a `layer` case: from KerasHub's config, with KerasHub's weights.
fn layer_of(case: &Value) -> TokenAndPositionEmbedding {
    let weights = case["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(common::f32_tensor)
        .collect();
    let mut layer = TokenAndPositionEmbedding::from_config(&case["config"])
        .unwrap()
        .weights(weights);
    let ids = common::input_tensor(&case["ids"]);
    layer.build(&ids.keras_shape()).unwrap();
    layer
}

/// The gradient of `weight` in `backward`, as a dense array.
fn dense_gradient(backward: &Backward, weight: &ndkeras::weight::Weight) -> Option<ArrayD<f32>> {
    let (_, gradient) = backward
        .weight_gradients
        .iter()
        .find(|(id, _)| *id == weight.id())?;
    match gradient {
        Gradient::Dense(g) => Some(g.clone()),
        other => panic!("the reverse call's gradient is dense, got {other:?}"),
    }
}

#[test]
fn the_lookup_and_the_reverse_call_match_keras_hub() {
    for case in layer_cases() {
        let what = describe(case);
        let layer = layer_of(case);
        assert_eq!(layer.config().tie_weights, case["tie_weights"]);
        // The lookup: tokens plus positions, with the mask of `mask_zero`.
        let ids = common::input_tensor(&case["ids"]);
        let out = layer.call_of(&[&ids]).unwrap();
        close(
            out.as_float().unwrap(),
            &common::f32_tensor(&case["output"]),
            &format!("{what}: output"),
        );
        assert_eq!(
            out.mask(),
            common::optional_bool_tensor(&case["mask"]).as_ref(),
            "{what}: mask"
        );
        // The weights, under KerasHub's paths and in its order.
        let paths: Vec<String> = case["weights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["path"].as_str().unwrap().to_string())
            .collect();
        let ours: Vec<String> = layer
            .weight_names()
            .iter()
            .map(|n| format!("{}/{n}", layer.name()))
            .collect();
        assert_eq!(ours, paths, "{what}: weight paths");

        // The reverse call: logits, no mask (even when its input carries one).
        let x = Tensor::from(common::f32_tensor(&case["x"]));
        let logits = layer.call_with(&[&x], reverse()).unwrap();
        close(
            logits.as_float().unwrap(),
            &common::f32_tensor(&case["logits"]),
            &format!("{what}: logits"),
        );
        assert_eq!(case["logits_have_mask"], false);
        assert_eq!(logits.mask(), None, "{what}: logits mask");
        let masked = x.clone().with_mask(out.mask().cloned()).unwrap();
        assert_eq!(layer.call_with(&[&masked], reverse()).unwrap().mask(), None);
        assert_eq!(
            layer
                .compute_output_shape_with(&[vec![None, Some(4), Some(3)]], reverse())
                .unwrap(),
            common::keras_shape(&case["reverse_output_shape"]),
            "{what}: reverse output shape"
        );

        // Its gradients: the input's, and the table it reads (dense); nothing for the
        // position table, which the reverse call does not read.
        let upstream = common::f32_tensor(&case["upstream"]);
        let backward = layer.reverse_backward(&x, upstream).unwrap();
        close(
            backward.input_gradient.as_ref().unwrap(),
            &common::f32_tensor(&case["input_gradient"]),
            &format!("{what}: input gradient"),
        );
        let variables = layer.variables();
        for expected in case["weight_gradients"].as_array().unwrap() {
            let path = expected["path"].as_str().unwrap();
            let index = paths.iter().position(|p| p == path).unwrap();
            let expected = common::f32_tensor(expected);
            match dense_gradient(&backward, variables[index]) {
                Some(gradient) => close(&gradient, &expected, &format!("{what}: {path}")),
                // JAX gives zeros for a table the call does not read; ndkeras gives none.
                None => assert!(expected.iter().all(|&g| g == 0.0), "{what}: {path}"),
            }
        }
        let position = variables.last().unwrap();
        assert!(dense_gradient(&backward, position).is_none());
        assert_eq!(backward.weight_gradients.len(), 1, "{what}");
    }
}

/// The functional model of a training case: ids -> tape -> hidden -> tape(reverse).
fn model_of(case: &Value) -> Model {
    let tie = case["tie_weights"].as_bool().unwrap();
    let mut graph = Graph::new();
    let ids = graph.input(Input::new(&[4]).dtype(DType::Int32).with_name("ids"));
    let tape = graph
        .add(
            TokenAndPositionEmbedding::new(7, 4, 3)
                .tie_weights(tie)
                .with_name("tape"),
        )
        .unwrap();
    let hidden = graph
        .add(
            Dense::new(3)
                .activation(Activation::Tanh)
                .with_name("hidden"),
        )
        .unwrap();
    let h = graph.call(tape, &[ids]).unwrap();
    let h = graph.call(hidden, &[h]).unwrap();
    let logits = graph.call_with(tape, &[h], reverse()).unwrap();
    let mut model = graph.model(&[ids], &[logits]).unwrap().with_name("tiny_lm");
    for (name, weights) in case["initial_weights"].as_object().unwrap() {
        model
            .get_layer_mut(name)
            .unwrap()
            .set_weights(
                weights
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(common::f32_tensor)
                    .collect(),
            )
            .unwrap();
    }
    model
}

fn optimizer_of(case: &Value) -> Optimizer {
    let learning_rate = case["learning_rate"].as_f64().unwrap() as f32;
    match case["optimizer"].as_str().unwrap() {
        "sgd" => SGD::new(learning_rate).into(),
        "adam" => Adam::default().learning_rate(learning_rate).into(),
        other => panic!("unknown optimizer {other}"),
    }
}

#[test]
fn a_tiny_language_model_with_the_tied_output_trains_as_keras() {
    for case in training_cases() {
        let what = format!("{} ({})", describe(case), case["optimizer"]);
        let mut model = model_of(case);
        let x = common::input_tensor(&case["x"]);
        let initial = model.predict(vec![x.clone()]).unwrap();
        close(
            &initial[0],
            &common::f32_tensor(&case["predict_initial"]),
            &format!("{what}: first prediction"),
        );
        model
            .compile(optimizer_of(case), vec![Loss::MeanSquaredError], None)
            .unwrap();
        let history = model
            .fit(
                vec![x.clone()],
                vec![Tensor::from(common::f32_tensor(&case["y"]))],
                FitOptions::default()
                    .epochs(3)
                    .batch_size(4)
                    .shuffle(false)
                    .verbose(false),
            )
            .unwrap();
        let losses: Vec<f32> = case["losses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        close(
            &ArrayD::from_shape_vec(vec![3], history.loss.clone()).unwrap(),
            &ArrayD::from_shape_vec(vec![3], losses).unwrap(),
            &format!("{what}: losses"),
        );
        for (name, weights) in case["final_weights"].as_object().unwrap() {
            let ours = model.get_layer(name).unwrap().get_weights();
            let keras: Vec<ArrayD<f32>> = weights
                .as_array()
                .unwrap()
                .iter()
                .map(common::f32_tensor)
                .collect();
            assert_eq!(ours.len(), keras.len(), "{what}: {name}");
            for (i, (a, e)) in ours.iter().zip(&keras).enumerate() {
                close(a, e, &format!("{what}: {name} weight {i} after 3 steps"));
            }
        }
        let last = model.predict(vec![x]).unwrap();
        close(
            &last[0],
            &common::f32_tensor(&case["predict_final"]),
            &format!("{what}: last prediction"),
        );
    }
}

/// The tied table's gradient in a model is the lookup's row-sparse gradient plus the reverse
/// call's dense one: with a learning rate of 1 and SGD, one step moves the table by minus
/// their sum, which the layer's own backward passes give.
#[test]
fn the_tied_table_gets_the_sum_of_both_gradients() {
    let case = &training_cases()[0];
    assert_eq!(case["tie_weights"], true);
    let mut model = model_of(case);
    let x = common::input_tensor(&case["x"]);
    let y = common::f32_tensor(&case["y"]);

    // Both gradients by hand, from the passes of layers with the model's weights.
    let weights = |name: &str| -> Vec<ArrayD<f32>> {
        case["initial_weights"][name]
            .as_array()
            .unwrap()
            .iter()
            .map(common::f32_tensor)
            .collect()
    };
    let mut tape = TokenAndPositionEmbedding::new(7, 4, 3).weights(weights("tape"));
    let mut hidden = Dense::new(3)
        .activation(Activation::Tanh)
        .weights(weights("hidden"));
    tape.build(&x.keras_shape()).unwrap();
    hidden.build(&[None, Some(4), Some(3)]).unwrap();
    let embedded = tape.forward_of(&[&x], true).unwrap();
    let h = hidden.forward_of(&[&embedded], true).unwrap();
    let logits = tape.call_with(&[&h], reverse()).unwrap();
    let logits = logits.as_float().unwrap();
    // Keras' mean squared error: the mean over every element.
    let gradient = (logits - &y) * (2.0 / logits.len() as f32);
    let back_reverse = tape
        .backward_with(&[&h], gradient, false, reverse())
        .unwrap();
    let dh = back_reverse.input_gradients[0].clone().unwrap();
    let back_hidden = hidden.backward_of(&[&embedded], dh, false).unwrap();
    let de = back_hidden.input_gradients[0].clone().unwrap();
    let back_lookup = tape.backward_of(&[&x], de, false).unwrap();
    let table = tape.variables()[0];
    let mut expected = table.view().to_owned();
    let mut parts = 0;
    for (id, gradient) in back_reverse
        .weight_gradients
        .iter()
        .chain(&back_lookup.weight_gradients)
        .filter(|(id, _)| *id == table.id())
    {
        assert_eq!(*id, table.id());
        match gradient {
            Gradient::Dense(g) => expected -= g,
            Gradient::Rows { rows, values } => {
                for (row, values) in rows.iter().zip(values.rows()) {
                    let mut target = expected.index_axis_mut(ndarray::Axis(0), *row);
                    target -= &values;
                }
            }
        }
        parts += 1;
    }
    assert_eq!(parts, 2, "one dense and one row-sparse gradient");

    model
        .compile(SGD::new(1.0).into(), vec![Loss::MeanSquaredError], None)
        .unwrap();
    model
        .fit(
            vec![x],
            vec![Tensor::from(y)],
            FitOptions::default()
                .epochs(1)
                .batch_size(4)
                .shuffle(false)
                .verbose(false),
        )
        .unwrap();
    let trained = &model.get_layer("tape").unwrap().get_weights()[0];
    close(trained, &expected, "the tied table after one step");
}

#[test]
fn untied_weights_are_built_named_and_counted_in_keras_hub_order() {
    let mut layer = TokenAndPositionEmbedding::new(7, 4, 3)
        .tie_weights(false)
        .with_name("untied");
    layer
        .apply(&Tensor::from(ndarray::array![[1i64, 2, 3]]))
        .unwrap();
    assert_eq!(
        layer.weight_names(),
        [
            "token_embedding/embeddings",
            "token_embedding/reverse_embeddings",
            "position_embedding/embeddings"
        ]
    );
    assert_eq!(
        layer.weight_shapes(),
        vec![vec![7, 3], vec![3, 7], vec![4, 3]]
    );
    assert_eq!(layer.count_params().unwrap(), 21 + 21 + 12);
    // The initializer ("uniform", [-0.05, 0.05]) filled all three.
    for weight in layer.get_weights() {
        assert!(weight.iter().all(|v| v.abs() <= 0.05));
        assert!(weight.iter().any(|&v| v != 0.0));
    }
    // A built layer keeps its weights: tie_weights is ignored there.
    let layer = layer.tie_weights(true);
    assert!(!layer.config().tie_weights);
    assert_eq!(layer.variables().len(), 3);

    // Two initial weights for an untied layer: reported at the build, nothing built.
    let mut short = TokenAndPositionEmbedding::new(7, 4, 3)
        .tie_weights(false)
        .with_name("short")
        .weights(vec![ArrayD::zeros(vec![7, 3]), ArrayD::zeros(vec![4, 3])]);
    let err = short
        .apply(&Tensor::from(ndarray::array![[1i64]]))
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::WeightCount {
                expected: 3,
                got: 2,
                layer,
            } if layer == "short"
        ),
        "{err:?}"
    );
    assert!(!short.is_built() && short.initial_weights().is_some());
}

#[test]
fn reverse_call_errors_name_the_layer() {
    // Before the build.
    let layer = TokenAndPositionEmbedding::new(7, 4, 3).with_name("early");
    let x = Tensor::from(ArrayD::<f32>::zeros(vec![2, 3]));
    let err = layer.call_with(&[&x], reverse()).unwrap_err();
    assert!(matches!(err, Error::NotBuilt { .. }), "{err:?}");
    assert!(err.to_string().contains("\"early\""), "{err}");

    // A wrong width, ids instead of vectors, two inputs.
    let mut layer = TokenAndPositionEmbedding::new(7, 4, 3).with_name("tape");
    layer
        .apply(&Tensor::from(ndarray::array![[1i64, 2]]))
        .unwrap();
    let wide = Tensor::from(ArrayD::<f32>::zeros(vec![2, 4, 5]));
    let err = layer.call_with(&[&wide], reverse()).unwrap_err();
    assert!(matches!(err, Error::IncompatibleShape { .. }), "{err:?}");
    let text = err.to_string();
    for word in [
        "\"tape\"",
        "TokenAndPositionEmbedding",
        "token_embedding",
        "= 3",
    ] {
        assert!(text.contains(word), "{word:?} missing from: {text}");
    }
    let ids = Tensor::from(ndarray::array![[1i64, 2, 3]]);
    let err = layer.call_with(&[&ids], reverse()).unwrap_err();
    assert!(matches!(err, Error::IncompatibleDtype { .. }), "{err:?}");
    assert!(err.to_string().contains("\"tape\""), "{err}");
    let err = layer.call_with(&[&x, &x], reverse()).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert!(err.to_string().contains("\"tape\""), "{err}");

    // In a graph: refused before the build, and a known wrong width when the call is made.
    let mut graph = Graph::new();
    let h = graph.input(Input::new(&[3]));
    let tape = graph.add(TokenAndPositionEmbedding::new(7, 4, 3)).unwrap();
    let err = graph.call_with(tape, &[h], reverse()).unwrap_err();
    assert!(matches!(err, Error::NotBuilt { .. }), "{err:?}");
    let ids = graph.input(Input::new(&[4]).dtype(DType::Int64));
    let wide = graph.input(Input::new(&[4, 5]));
    graph.call(tape, &[ids]).unwrap();
    let err = graph.call_with(tape, &[wide], reverse()).unwrap_err();
    assert!(matches!(err, Error::IncompatibleShape { .. }), "{err:?}");
    assert!(err.to_string().contains("= 3"), "{err}");
}

#[test]
fn keras_hub_configs_load_with_tie_weights() {
    for case in layer_cases() {
        let config = &case["config"];
        let layer = TokenAndPositionEmbedding::from_config(config).unwrap();
        assert_eq!(layer.config().tie_weights, config["tie_weights"]);
        assert_eq!(
            layer.token_embedding().is_tied(),
            config["tie_weights"].as_bool().unwrap()
        );
        let ours = layer.get_config();
        for key in [
            "tie_weights",
            "mask_zero",
            "vocabulary_size",
            "sequence_length",
            "embedding_dim",
            "name",
        ] {
            assert_eq!(ours[key], config[key], "{key}");
        }
        let back = TokenAndPositionEmbedding::from_config(&ours).unwrap();
        assert_eq!(back.get_config(), ours);
    }
    // A tie_weights that is not a boolean is refused, naming the field.
    let mut config = layer_cases()[0]["config"].clone();
    config["tie_weights"] = serde_json::json!("yes");
    let err = TokenAndPositionEmbedding::from_config(&config).unwrap_err();
    assert!(err.to_string().contains("tie_weights"), "{err}");
}

#[test]
fn the_model_json_round_trips_with_its_reverse_call() {
    for case in training_cases() {
        let model = model_of(case);
        let text = model.to_json();
        let parsed: Value = serde_json::from_str(&text).unwrap();
        let tape = parsed["config"]["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["config"]["name"] == "tape")
            .unwrap();
        assert_eq!(tape["class_name"], "TokenAndPositionEmbedding");
        assert_eq!(tape["config"]["tie_weights"], case["tie_weights"]);
        let nodes = tape["inbound_nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[1][0][3]["reverse"], true, "{}", tape["inbound_nodes"]);

        let mut back = Model::from_json(&text).unwrap();
        assert_eq!(back.to_json(), text);
        let mut original = model_of(case);
        back.set_weights(original.get_weights()).unwrap();
        let x = common::input_tensor(&case["x"]);
        assert_eq!(
            back.predict(vec![x.clone()]).unwrap(),
            original.predict(vec![x]).unwrap()
        );
    }
}

#[test]
fn untied_weights_are_saved_under_keras_paths_and_load_back() {
    let case = &training_cases()[1];
    assert_eq!(case["tie_weights"], false);
    let mut trained = model_of(case);
    let mut fresh = model_of(case);
    let doubled: Vec<ArrayD<f32>> = trained
        .get_layer("tape")
        .unwrap()
        .get_weights()
        .into_iter()
        .map(|w| w * 2.0)
        .collect();
    trained
        .get_layer_mut("tape")
        .unwrap()
        .set_weights(doubled.clone())
        .unwrap();
    let path = std::env::temp_dir().join(format!("ndkeras-tied-tape-{}.npz", std::process::id()));
    trained.save_weights(&path).unwrap();
    let names: Vec<String> = ndkeras::io::npy::read_npz(&path)
        .unwrap()
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("tape/"))
        .collect();
    fresh.load_weights(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let keras_paths: Vec<&str> = case["weight_paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(names, keras_paths);
    assert_eq!(fresh.get_layer("tape").unwrap().get_weights(), doubled);
}
