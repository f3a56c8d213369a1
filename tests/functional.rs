//! The functional API against tf_keras 2.21 (`tests/data/keras_functional.json`, made by
//! `keras_functional.py` beside it): each model is rebuilt from its description, given Keras'
//! initial weights, trained as Keras trained it, and compared epoch by epoch.

mod common;

use std::sync::OnceLock;

use common::f32_tensor;
use ndkeras::optimizers::SGD;
use ndkeras::prelude::*;
use serde_json::Value;

fn reference() -> &'static Value {
    static ROOT: OnceLock<Value> = OnceLock::new();
    ROOT.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/keras_functional.json"
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    })
}

fn training_case(id: &str) -> &'static Value {
    reference()["training"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no case {id}"))
}

/// An integer tensor as the `i64` ids a model takes, or a float one as `f32`.
fn tensor(value: &Value) -> Tensor {
    if value["dtype"].as_str().unwrap().starts_with("int") {
        Tensor::from(f32_tensor(value).mapv(|v| v as i64))
    } else {
        Tensor::from(f32_tensor(value))
    }
}

fn loss(name: &str) -> Loss {
    name.parse().unwrap()
}

/// The model of a case, with Keras' initial weights.
fn model_of(case: &Value) -> Model {
    let mut model = common::functional::graph_model(case);
    common::functional::set_weights(&mut model, &case["initial_weights"]);
    model
}

fn close(actual: f32, expected: f64, what: &str) {
    assert!(
        (f64::from(actual) - expected).abs() <= 1e-6 + 1e-5 * expected.abs(),
        "{what}: {actual} vs Keras {expected}"
    );
}

fn assert_weights(model: &Model, expected: &Value, what: &str) {
    for weight in expected.as_array().unwrap() {
        let path = weight["name"].as_str().unwrap();
        let (layer, variable) = path.split_once('/').unwrap();
        let layer = model.get_layer(layer).unwrap();
        let position = layer
            .weight_names()
            .iter()
            .position(|n| n == variable)
            .unwrap();
        let actual = &layer.get_weights()[position];
        let keras = common::f64_tensor(weight);
        assert_eq!(actual.shape(), keras.shape(), "{what} {path}");
        for (a, e) in actual.iter().zip(keras.iter()) {
            close(*a, *e, &format!("{what} {path}"));
        }
    }
}

fn assert_predictions(model: &mut Model, x: &Value, expected: &Value, what: &str) {
    let inputs: Vec<Tensor> = x.as_array().unwrap().iter().map(tensor).collect();
    let outputs = model.predict(inputs).unwrap();
    for (actual, keras) in outputs.iter().zip(expected.as_array().unwrap()) {
        let keras = common::f64_tensor(keras);
        assert_eq!(actual.shape(), keras.shape(), "{what}");
        for (a, e) in actual.iter().zip(keras.iter()) {
            close(*a, *e, what);
        }
    }
}

/// Trains a case epoch by epoch as Keras did, comparing the history and every weight.
fn train_like_keras(id: &str) {
    let case = training_case(id);
    let mut model = model_of(case);
    assert_predictions(
        &mut model,
        &case["x"],
        &case["expected"]["predict_initial"],
        &format!("{id} predict before training"),
    );
    let compile = &case["compile"];
    let optimizer = common::optimizer_from_keras(
        compile["optimizer"]["class_name"].as_str().unwrap(),
        &compile["optimizer"]["config"],
    );
    let losses: Vec<Loss> = match &compile["loss"] {
        Value::String(name) => vec![loss(name)],
        Value::Array(names) => names.iter().map(|n| loss(n.as_str().unwrap())).collect(),
        other => panic!("loss {other}"),
    };
    let loss_weights = compile["loss_weights"]
        .as_array()
        .map(|w| w.iter().map(|v| v.as_f64().unwrap() as f32).collect());
    model.compile(optimizer, losses, loss_weights).unwrap();

    let x: Vec<Tensor> = case["x"].as_array().unwrap().iter().map(tensor).collect();
    let y: Vec<Tensor> = case["y"].as_array().unwrap().iter().map(tensor).collect();
    let batch_size = case["fit"]["batch_size"].as_u64().unwrap() as usize;
    let history = &case["expected"]["history"];
    for (epoch, weights) in case["expected"]["weights_per_epoch"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let ours = model
            .fit(
                x.clone(),
                y.clone(),
                FitOptions::default()
                    .epochs(1)
                    .batch_size(batch_size)
                    .shuffle(false)
                    .verbose(false),
            )
            .unwrap();
        for (key, series) in history.as_object().unwrap() {
            let keras = series[epoch].as_f64().unwrap();
            let value = ours
                .get(key)
                .unwrap_or_else(|| panic!("{id}: no {key} in the history"))[0];
            close(value, keras, &format!("{id} epoch {} {key}", epoch + 1));
        }
        assert_weights(&model, weights, &format!("{id} epoch {}", epoch + 1));
    }
    let evaluated = model.evaluate(x, y).unwrap();
    for (key, keras) in case["expected"]["evaluate"].as_object().unwrap() {
        let value = evaluated
            .iter()
            .find(|(name, _)| name == key)
            .unwrap_or_else(|| panic!("{id}: evaluate has no {key}"))
            .1;
        close(
            value,
            keras.as_f64().unwrap(),
            &format!("{id} evaluate {key}"),
        );
    }
    assert_predictions(
        &mut model,
        &case["x_extra"],
        &case["expected"]["predict_extra"],
        &format!("{id} predict after training"),
    );
}

#[test]
fn two_outputs_with_loss_weights_and_a_mask_train_as_in_keras() {
    train_like_keras("two_outputs_masked");
}

#[test]
fn a_dot_product_recommender_trains_as_in_keras() {
    train_like_keras("recommender_dot");
}

#[test]
fn a_cosine_recommender_trains_as_in_keras() {
    train_like_keras("recommender_dot_cosine");
}

#[test]
fn two_inputs_sharing_one_table_train_as_in_keras() {
    // Inputs a and b look up one table (their row gradients merge into one update).
    train_like_keras("ranker_shared_table");
}

#[test]
fn a_shared_table_with_momentum_trains_as_in_keras() {
    // SGD momentum keeps moving rows a batch does not touch (row 6 after batch 1).
    train_like_keras("shared_embedding_momentum");
}

#[test]
fn inputs_may_be_given_by_name_and_are_checked() {
    let case = training_case("two_outputs_masked");
    let mut model = model_of(case);
    let x = tensor(&case["x"][0]);
    let by_position = model.predict(vec![x.clone()]).unwrap();
    let by_name = model.predict_named(vec![("ids", x.clone())]).unwrap();
    assert_eq!(by_position, by_name);
    assert_eq!(model.input_names(), vec!["ids"]);
    assert_eq!(model.output_names(), vec!["click", "category"]);

    let err = model.predict_named(vec![("words", x.clone())]).unwrap_err();
    assert!(err.to_string().contains("\"words\""), "{err}");
    let err = model.predict(vec![x.clone(), x.clone()]).unwrap_err();
    assert!(err.to_string().contains("2 input arrays"), "{err}");
    let err = model
        .predict(vec![Tensor::from(ndarray::array![[1i64, 2]])])
        .unwrap_err();
    assert!(matches!(err, Error::IncompatibleShape { .. }), "{err}");
    // An out-of-range id names its position; nothing changes.
    let before = model.get_layer("embedding").unwrap().get_weights();
    let err = model
        .predict(vec![Tensor::from(ndarray::array![[1i64, 2, 3], [4, 9, 0]])])
        .unwrap_err();
    assert!(
        matches!(err, Error::IndexOutOfRange { index: 9, .. }),
        "{err}"
    );
    assert_eq!(model.get_layer("embedding").unwrap().get_weights(), before);
}

#[test]
fn a_graph_refuses_what_cannot_be_a_model() {
    let mut graph = Graph::new();
    let a = graph.input(Input::new(&[2]).dtype(DType::Int64));
    let b = graph.input(Input::new(&[2]).dtype(DType::Int64));
    let table = graph.add(Embedding::new(5, 3)).unwrap();
    let rows_a = graph.call(table, &[a]).unwrap();
    let rows_b = graph.call(table, &[b]).unwrap();
    // An output that needs an input the model is not given.
    let err = Graph::model_error(graph, &[a], &[rows_a, rows_b]);
    assert!(err.contains("input_2"), "{err}");
    // A layer name used twice.
    let mut graph = Graph::new();
    graph.add(Dense::new(1).with_name("d")).unwrap();
    assert!(graph.add(Dense::new(2).with_name("d")).is_err());
    // A Dense called on an incompatible shape after it was built.
    let mut graph = Graph::new();
    let x = graph.input(Input::new(&[3]));
    let y = graph.input(Input::new(&[4]));
    let dense = graph.add(Dense::new(2)).unwrap();
    graph.call(dense, &[x]).unwrap();
    assert!(graph.call(dense, &[y]).is_err());
}

trait ModelError {
    fn model_error(self, inputs: &[SymbolicTensor], outputs: &[SymbolicTensor]) -> String;
}

impl ModelError for Graph {
    fn model_error(self, inputs: &[SymbolicTensor], outputs: &[SymbolicTensor]) -> String {
        self.model(inputs, outputs).unwrap_err().to_string()
    }
}

#[test]
fn a_functional_model_saves_and_loads_its_weights() {
    let case = training_case("two_outputs_masked");
    let mut trained = model_of(case);
    let mut fresh = model_of(case);
    // Change the first model's weights, save, load into the second.
    let table = trained.get_layer("embedding").unwrap().get_weights()[0].mapv(|v| v * 2.0);
    trained
        .get_layer_mut("embedding")
        .unwrap()
        .set_weights(vec![table.clone()])
        .unwrap();
    let path = std::env::temp_dir().join(format!("ndkeras-functional-{}.npz", std::process::id()));
    trained.save_weights(&path).unwrap();
    fresh.load_weights(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    for layer in ["embedding", "click", "category"] {
        assert_eq!(
            fresh.get_layer(layer).unwrap().get_weights(),
            trained.get_layer(layer).unwrap().get_weights(),
            "{layer}"
        );
    }
}

#[test]
fn the_summary_is_the_one_keras_prints() {
    let case = training_case("two_outputs_masked");
    let model = model_of(case);
    assert_eq!(
        model.summary(),
        case["expected"]["summary"]
            .as_str()
            .unwrap()
            .trim_end_matches('\n')
    );
}

#[test]
fn a_sequential_summary_is_the_one_keras_prints() {
    let case = &reference()["sequential"];
    let mut model = Sequential::new()
        .with_name("sequential")
        .with_input(ndkeras::model::InputSpec {
            batch_shape: vec![None, Some(6)],
            dtype: "int32".into(),
            name: "input_1".into(),
            sparse: false,
            ragged: false,
        })
        .unwrap();
    model
        .add(Embedding::new(20, 3).with_name("embedding"))
        .unwrap();
    model
        .add(GlobalAveragePooling1D::new().with_name("global_average_pooling1d"))
        .unwrap();
    model.add(Dense::new(1).with_name("dense")).unwrap();
    assert_eq!(
        model.summary().unwrap(),
        case["expected"]["summary"]
            .as_str()
            .unwrap()
            .trim_end_matches('\n')
    );
}

#[test]
fn fit_refuses_data_that_does_not_fit_the_model() {
    let case = training_case("two_outputs_masked");
    let mut model = model_of(case);
    model
        .compile(
            Adam::default().into(),
            vec![
                Loss::BinaryCrossentropy,
                Loss::SparseCategoricalCrossentropy,
            ],
            None,
        )
        .unwrap();
    let x: Vec<Tensor> = case["x"].as_array().unwrap().iter().map(tensor).collect();
    let y: Vec<Tensor> = case["y"].as_array().unwrap().iter().map(tensor).collect();
    let before = model.get_layer("embedding").unwrap().get_weights();
    // Validation data of the wrong arity is refused before anything trains.
    let err = model
        .fit(
            x.clone(),
            y.clone(),
            FitOptions::default()
                .validation_data_of(x.clone(), vec![y[0].clone()])
                .verbose(false),
        )
        .unwrap_err();
    assert!(err.to_string().contains("2 outputs"), "{err}");
    let err = model
        .fit(
            x.clone(),
            vec![y[0].clone()],
            FitOptions::default().verbose(false),
        )
        .unwrap_err();
    assert!(err.to_string().contains("2 outputs"), "{err}");
    let err = model
        .compile(Adam::default().into(), vec![Loss::BinaryCrossentropy], None)
        .unwrap_err();
    assert!(err.to_string().contains("one loss per output"), "{err}");
    assert_eq!(model.get_layer("embedding").unwrap().get_weights(), before);
}

#[test]
fn data_by_name_trains_like_data_by_position() {
    let case = training_case("two_outputs_masked");
    let compile = |model: &mut Model| {
        model
            .compile(
                SGD::new(0.1).into(),
                vec![
                    Loss::BinaryCrossentropy,
                    Loss::SparseCategoricalCrossentropy,
                ],
                Some(vec![1.0, 0.5]),
            )
            .unwrap()
    };
    let (mut by_position, mut by_name) = (model_of(case), model_of(case));
    compile(&mut by_position);
    compile(&mut by_name);
    let x = tensor(&case["x"][0]);
    let (click, category) = (tensor(&case["y"][0]), tensor(&case["y"][1]));
    let options = || {
        FitOptions::default()
            .epochs(2)
            .shuffle(false)
            .verbose(false)
    };
    let a = by_position
        .fit(
            vec![x.clone()],
            vec![click.clone(), category.clone()],
            options(),
        )
        .unwrap();
    let b = by_name
        .fit_named(
            vec![("ids", x.clone())],
            vec![("category", category.clone()), ("click", click.clone())],
            options(),
        )
        .unwrap();
    assert_eq!(a, b);
    for layer in ["embedding", "click", "category"] {
        assert_eq!(
            by_position.get_layer(layer).unwrap().get_weights(),
            by_name.get_layer(layer).unwrap().get_weights()
        );
    }
    let evaluated = by_name
        .evaluate_named(
            vec![("ids", x.clone())],
            vec![("click", click.clone()), ("category", category.clone())],
        )
        .unwrap();
    assert_eq!(
        evaluated,
        by_position
            .evaluate(vec![x.clone()], vec![click.clone(), category.clone()])
            .unwrap()
    );
    let err = by_name
        .fit_named(
            vec![("ids", x.clone())],
            vec![("clicks", click.clone())],
            options(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("\"clicks\""), "{err}");

    // One step: the loss before it, and the weights move.
    let before = by_name.get_layer("click").unwrap().get_weights();
    let loss = by_name
        .train_on_batch(vec![x], vec![click, category])
        .unwrap();
    assert!(loss.is_finite() && loss > 0.0);
    assert_ne!(by_name.get_layer("click").unwrap().get_weights(), before);
}

#[test]
fn a_layer_shared_by_two_outputs_gets_each_outputs_loss() {
    // One softmax head on two inputs, both calls outputs: each loss from its own call.
    let mut graph = Graph::new();
    let a = graph.input(Input::new(&[2]).with_name("a"));
    let b = graph.input(Input::new(&[2]).with_name("b"));
    let head = graph
        .add(
            Dense::new(3)
                .activation(Activation::Softmax)
                .kernel_initializer(Initializer::GlorotUniform { seed: Some(1) }),
        )
        .unwrap();
    let (out_a, out_b) = (
        graph.call(head, &[a]).unwrap(),
        graph.call(head, &[b]).unwrap(),
    );
    let mut model = graph.model(&[a, b], &[out_a, out_b]).unwrap();
    assert_eq!(model.output_names().len(), 2);
    assert_ne!(
        model.output_names()[0],
        model.output_names()[1],
        "unique, as Keras makes them"
    );
    model
        .compile(
            SGD::new(0.1).into(),
            vec![Loss::SparseCategoricalCrossentropy; 2],
            None,
        )
        .unwrap();
    let xa = Tensor::from(ndarray::array![[1.0f32, -2.0], [0.5, 0.5]]);
    let xb = Tensor::from(ndarray::array![[-3.0f32, 1.0], [2.0, 2.5]]);
    let labels = ndarray::array![2i64, 0];
    let predicted = model.predict(vec![xa.clone(), xb.clone()]).unwrap();
    let cross_entropy = |p: &ndarray::ArrayD<f32>| -> f32 {
        -(0..2).map(|i| p[[i, labels[i] as usize]].ln()).sum::<f32>() / 2.0
    };
    let evaluated = model
        .evaluate(
            vec![xa, xb],
            vec![Tensor::from(labels.clone()), Tensor::from(labels.clone())],
        )
        .unwrap();
    for (k, p) in predicted.iter().enumerate() {
        let (name, value) = &evaluated[k + 1];
        assert!(
            (value - cross_entropy(p)).abs() < 1e-5,
            "{name}: {value} vs {}",
            cross_entropy(p)
        );
    }
}

#[test]
fn a_model_keeps_only_what_its_outputs_need_and_refuses_ambiguity() {
    let mut graph = Graph::new();
    let x = graph.input(Input::new(&[2]).with_name("x"));
    let kept = graph.apply(Dense::new(1).with_name("kept"), &[x]).unwrap();
    // A dead branch with a heavy penalty, and a layer never called.
    graph
        .apply(
            Dense::new(4)
                .with_name("dead")
                .kernel_regularizer(Regularizer::L2(1000.0)),
            &[x],
        )
        .unwrap();
    graph.add(Dense::new(5).with_name("unused")).unwrap();
    let mut model = graph.model(&[x], &[kept]).unwrap();
    let names: Vec<&str> = model.layers().iter().map(|l| l.name()).collect();
    assert_eq!(names, vec!["kept"]);
    assert_eq!(model.count_params(), 3);
    model
        .compile(SGD::new(0.1).into(), vec![Loss::MeanSquaredError], None)
        .unwrap();
    let x_data = Tensor::from(ndarray::array![[1.0f32, 2.0]]);
    let y = Tensor::from(ndarray::array![[0.0f32]]);
    let loss = model
        .evaluate(vec![x_data.clone()], vec![y.clone()])
        .unwrap()[0]
        .1;
    let out = model.predict(vec![x_data]).unwrap()[0][[0, 0]];
    assert!(
        (loss - out * out).abs() < 1e-5,
        "no penalty from the dead branch"
    );
    let path = std::env::temp_dir().join(format!("ndkeras-kept-{}.npz", std::process::id()));
    model.save_weights(&path).unwrap();
    std::fs::remove_file(&path).unwrap();

    // Handles of another graph, an input listed twice, two inputs with one name.
    let mut first = Graph::new();
    let a = first.input(Input::new(&[2]));
    let layer = first.add(Dense::new(1)).unwrap();
    let mut second = Graph::new();
    let b = second.input(Input::new(&[2]));
    assert!(second.call(layer, &[b]).is_err());
    let own = second.add(Dense::new(1)).unwrap();
    assert!(second.call(own, &[a]).is_err());
    let out = second.call(own, &[b]).unwrap();
    assert!(second.model(&[b, b], &[out]).is_err());
    let mut twins = Graph::new();
    let p = twins.input(Input::new(&[2]).with_name("same"));
    let q = twins.input(Input::new(&[2]).with_name("same"));
    let merged = twins.apply(Add::new(), &[p, q]).unwrap();
    let err = twins.model(&[p, q], &[merged]).unwrap_err();
    assert!(err.to_string().contains("\"same\""), "{err}");
}

#[test]
fn targets_of_outputs_with_unknown_lengths_are_taken_as_given() {
    let mut graph = Graph::new();
    let ids = graph.input(Input::with_shape(vec![None]).dtype(DType::Int64));
    let rows = graph.apply(Embedding::new(5, 2), &[ids]).unwrap();
    let out = graph.apply(Dense::new(1), &[rows]).unwrap();
    let mut model = graph.model(&[ids], &[out]).unwrap();
    model
        .compile(SGD::new(0.1).into(), vec![Loss::MeanSquaredError], None)
        .unwrap();
    let x = Tensor::from(ndarray::array![[1i64, 2, 3], [4, 0, 1]]);
    let y = Tensor::from(ndarray::Array3::<f32>::zeros((2, 3, 1)));
    let history = model
        .fit(vec![x], vec![y], FitOptions::default().verbose(false))
        .unwrap();
    assert!(history.loss[0].is_finite());
}

#[test]
fn call_arguments_a_layer_does_not_take_are_refused_naming_it() {
    let mut graph = Graph::new();
    let x = graph.input(Input::new(&[3]));
    let dense = graph.add(Dense::new(2).with_name("proj")).unwrap();
    // A call with arguments does not build the layer.
    let err = graph
        .call_with(dense, &[x], CallArgs::default().reverse(true))
        .unwrap_err();
    assert!(matches!(err, Error::NotBuilt { .. }), "{err:?}");
    let y = graph.call(dense, &[x]).unwrap();
    let err = graph
        .call_with(dense, &[y], CallArgs::default().reverse(true))
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("proj") && message.contains("reverse"),
        "{message}"
    );
    // The plain call is the default.
    assert!(CallArgs::default().is_plain());
    assert!(graph.call_with(dense, &[x], CallArgs::default()).is_ok());
}
