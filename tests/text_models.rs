//! Strings as model inputs: `TextVectorization`, `StringLookup`, `IntegerLookup` and
//! `Hashing` in front of an `Embedding`, in a `Sequential` and in a functional model; `fit`
//! on raw strings with labels, `predict` on strings; the errors for inputs of the wrong
//! element type or shape; no weights, no gradient through the preprocessing layers.

use ndarray::{Array1, Array2, array};
use ndkeras::Error;
use ndkeras::layer::Layer;
use ndkeras::model::{Graph, Input};
use ndkeras::prelude::*;
use ndkeras::preprocessing::{Hashing, IntegerLookup, OutputMode, StringLookup, TextVectorization};

const GOOD: [&str; 6] = [
    "a great film, I loved it",
    "wonderful acting and a great story",
    "loved every minute",
    "great fun, wonderful",
    "what a lovely film",
    "superb, great, loved it",
];
const BAD: [&str; 6] = [
    "a terrible film, I hated it",
    "awful acting and a boring story",
    "hated every minute",
    "boring and awful",
    "what a dull film",
    "terrible, boring, hated it",
];

fn data() -> (Vec<&'static str>, Array1<f32>) {
    let mut texts = Vec::new();
    let mut labels = Vec::new();
    for (good, bad) in GOOD.iter().zip(BAD) {
        texts.push(*good);
        labels.push(1.0f32);
        texts.push(bad);
        labels.push(0.0);
    }
    (texts, Array1::from(labels))
}

fn vectorizer(texts: &[&str]) -> TextVectorization {
    let mut vectorize = TextVectorization::builder()
        .max_tokens(64)
        .output_sequence_length(6)
        .build()
        .unwrap();
    vectorize.adapt(texts).unwrap();
    vectorize
}

fn accuracy(predictions: &ndarray::ArrayD<f32>, labels: &Array1<f32>) -> f32 {
    let hits = predictions
        .iter()
        .zip(labels)
        .filter(|(p, y)| (**p > 0.5) == (**y > 0.5))
        .count();
    hits as f32 / labels.len() as f32
}

#[test]
fn sequential_fits_and_predicts_raw_strings() {
    let (texts, labels) = data();
    let vectorize = vectorizer(&texts);
    let vocabulary = vectorize.vocabulary_size();
    let mut model = Sequential::new();
    model.add(vectorize).unwrap();
    model
        .add(
            Embedding::new(vocabulary, 8)
                .embeddings_initializer(Initializer::RandomUniform {
                    minval: -0.05,
                    maxval: 0.05,
                    seed: Some(3),
                })
                .mask_zero(true),
        )
        .unwrap();
    model.add(GlobalAveragePooling1D::new()).unwrap();
    model
        .add(Dense::new(1).activation(Activation::Sigmoid))
        .unwrap();
    model
        .compile(
            Adam::default().learning_rate(0.05).into(),
            Loss::BinaryCrossentropy,
        )
        .unwrap();
    let history = model
        .fit(
            Tensor::from(texts.clone()),
            labels.clone(),
            FitOptions::default()
                .epochs(40)
                .batch_size(4)
                .verbose(false),
        )
        .unwrap();
    let losses = history.get("loss").unwrap();
    assert!(losses.last().unwrap() < &(losses[0] * 0.5), "{losses:?}");
    let predictions = model.predict(Tensor::from(texts.clone())).unwrap();
    assert_eq!(predictions.shape(), &[12, 1]);
    assert_eq!(accuracy(&predictions, &labels), 1.0);
    // Unseen texts: the words decide.
    let unseen = model
        .predict(Tensor::from(vec![
            "great and wonderful",
            "boring and awful film",
        ]))
        .unwrap();
    assert!(unseen[[0, 0]] > 0.5 && unseen[[1, 0]] < 0.5, "{unseen}");
    // A column of texts (batch, 1) is the same input.
    let column = Array2::from_shape_fn((2, 1), |(i, _)| ["great", "boring"][i].to_string());
    assert_eq!(model.predict(column).unwrap().shape(), &[2, 1]);
    // The vocabulary is not a weight: embedding + kernel + bias.
    let shapes: Vec<Vec<usize>> = model
        .get_weights()
        .iter()
        .map(|w| w.shape().to_vec())
        .collect();
    assert_eq!(shapes, vec![vec![vocabulary, 8], vec![8, 1], vec![1]]);
    assert_eq!(model.layers()[0].count_params().unwrap(), 0);
    assert_eq!(
        model.as_model().input_dtypes(),
        vec![ndkeras::tensor::DType::String]
    );
}

#[test]
fn functional_model_on_strings() {
    let (texts, labels) = data();
    let vectorize = vectorizer(&texts);
    let vocabulary = vectorize.vocabulary_size();
    let mut graph = Graph::new();
    let text = graph.input(
        Input::new(&[1])
            .dtype(ndkeras::tensor::DType::String)
            .with_name("text"),
    );
    let ids = graph.apply(vectorize, &[text]).unwrap();
    assert_eq!(graph.shape(ids), Some(&[None, Some(6)][..]));
    let rows = graph
        .apply(Embedding::new(vocabulary, 8).mask_zero(true), &[ids])
        .unwrap();
    let mean = graph.apply(GlobalAveragePooling1D::new(), &[rows]).unwrap();
    let out = graph
        .apply(Dense::new(1).activation(Activation::Sigmoid), &[mean])
        .unwrap();
    let mut model = graph.model(&[text], &[out]).unwrap();
    model
        .compile(
            Adam::default().learning_rate(0.05).into(),
            vec![Loss::BinaryCrossentropy],
            None,
        )
        .unwrap();
    // (batch,) texts are conformed to the declared (batch, 1).
    model
        .fit(
            vec![Tensor::from(texts.clone())],
            vec![Tensor::from(labels.clone())],
            FitOptions::default()
                .epochs(40)
                .batch_size(4)
                .verbose(false),
        )
        .unwrap();
    let predictions = model.predict(vec![Tensor::from(texts.clone())]).unwrap();
    assert_eq!(accuracy(&predictions[0], &labels), 1.0);
}

#[test]
fn hashing_and_lookups_feed_an_embedding() {
    let mut graph = Graph::new();
    let city = graph.input(
        Input::new(&[2])
            .dtype(ndkeras::tensor::DType::String)
            .with_name("city"),
    );
    let user = graph.input(
        Input::new(&[1])
            .dtype(ndkeras::tensor::DType::Int64)
            .with_name("user"),
    );
    let lookup = StringLookup::builder()
        .vocabulary(["東京", "Paris", "café"])
        .build()
        .unwrap();
    let city_ids = graph.apply(lookup, &[city]).unwrap();
    let hashed = graph.apply(Hashing::new(16).unwrap(), &[city]).unwrap();
    let users = IntegerLookup::builder()
        .vocabulary([10, 20, 30])
        .build()
        .unwrap();
    let user_ids = graph.apply(users, &[user]).unwrap();
    let e1 = graph.apply(Embedding::new(4, 3), &[city_ids]).unwrap();
    let e2 = graph.apply(Embedding::new(16, 3), &[hashed]).unwrap();
    let e3 = graph.apply(Embedding::new(4, 3), &[user_ids]).unwrap();
    let joined = graph
        .apply(Concatenate::new().axis(1), &[e1, e2, e3])
        .unwrap();
    let mean = graph
        .apply(GlobalAveragePooling1D::new(), &[joined])
        .unwrap();
    let out = graph.apply(Dense::new(1), &[mean]).unwrap();
    let mut model = graph.model(&[city, user], &[out]).unwrap();
    model
        .compile(Adam::default().into(), vec![Loss::MeanSquaredError], None)
        .unwrap();
    let cities = Tensor::from(vec![["東京", "Paris"], ["café", "Berlin"], ["", "東京"]]);
    let user_ids = Tensor::from(array![[10i64], [30], [99]]);
    let before = model
        .predict(vec![cities.clone(), user_ids.clone()])
        .unwrap();
    assert_eq!(before[0].shape(), &[3, 1]);
    model
        .fit(
            vec![cities.clone(), user_ids.clone()],
            vec![Tensor::from(array![[1.0f32], [0.0], [0.5]])],
            FitOptions::default().epochs(3).verbose(false),
        )
        .unwrap();
    let after = model.predict(vec![cities, user_ids]).unwrap();
    assert_ne!(before[0], after[0]);
}

#[test]
fn wrong_element_types_are_errors_naming_the_layer() {
    let (texts, _) = data();
    let mut model = Sequential::new();
    model
        .add(vectorizer(&texts).with_name("vectorize"))
        .unwrap();
    model.add(Embedding::new(64, 4)).unwrap();
    let err = model.predict(array![[1i64, 2]]).unwrap_err();
    assert!(matches!(err, Error::IncompatibleDtype { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("\"vectorize\"")
            && message.contains("expected string")
            && message.contains("received int64"),
        "{message}"
    );
    // Texts of shape (batch, 2): Keras' rule asks for rank 1 or a last axis of 1.
    let err = model
        .predict(Tensor::from(vec![["a", "b"], ["c", "d"]]))
        .unwrap_err();
    assert!(matches!(err, Error::IncompatibleShape { .. }), "{err:?}");
    assert!(
        err.to_string().contains("last dimension must be 1"),
        "{err}"
    );

    // Strings straight into an Embedding.
    let mut embedding_only = Sequential::new();
    embedding_only
        .add(Embedding::new(10, 2).with_name("words"))
        .unwrap();
    let err = embedding_only
        .predict(Tensor::from(vec![["the", "cat"]]))
        .unwrap_err();
    assert!(matches!(err, Error::IncompatibleDtype { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("\"words\"")
            && message.contains("integer ids")
            && message.contains("received string"),
        "{message}"
    );
    // ... and into a Dense.
    let mut dense = Sequential::new();
    dense.add(Dense::new(1)).unwrap();
    assert!(matches!(
        dense.predict(Tensor::from(vec![["x"]])),
        Err(Error::IncompatibleDtype { .. })
    ));
}

#[test]
fn output_shapes_follow_keras() {
    let mut tv = TextVectorization::builder().build().unwrap();
    tv.adapt(["a b", "c"]).unwrap();
    assert_eq!(tv.compute_output_shape(&[None]).unwrap(), vec![None, None]);
    assert_eq!(
        tv.compute_output_shape(&[None, Some(1)]).unwrap(),
        vec![None, None]
    );
    assert!(tv.compute_output_shape(&[None, Some(3)]).is_err());
    let fixed = TextVectorization::builder()
        .output_sequence_length(5)
        .build()
        .unwrap();
    assert_eq!(
        fixed.compute_output_shape(&[Some(4)]).unwrap(),
        vec![Some(4), Some(5)]
    );
    let mut multi = TextVectorization::builder()
        .output_mode(OutputMode::MultiHot)
        .max_tokens(10)
        .build()
        .unwrap();
    assert_eq!(
        multi.compute_output_shape(&[None]).unwrap(),
        vec![None, None]
    );
    multi.adapt(["a b", "c"]).unwrap();
    assert_eq!(
        multi.compute_output_shape(&[None, Some(1)]).unwrap(),
        vec![None, Some(4)]
    );
    // [UNK], c, b, a (ties: the token, highest first): no mask id in the vector modes
    // (Keras: (None, 4) too).
    let out = Layer::call(&multi, &Tensor::from(vec!["a a", "c"])).unwrap();
    assert_eq!(
        out.as_float().unwrap(),
        &array![[0.0f32, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0]].into_dyn()
    );
    let padded = TextVectorization::builder()
        .output_mode(OutputMode::Count)
        .max_tokens(8)
        .pad_to_max_tokens(true)
        .build()
        .unwrap();
    assert_eq!(
        padded.compute_output_shape(&[None]).unwrap(),
        vec![None, Some(8)]
    );
    let lookup = StringLookup::builder()
        .vocabulary(["a", "b"])
        .output_mode(OutputMode::MultiHot)
        .build()
        .unwrap();
    assert_eq!(
        lookup.compute_output_shape(&[None, Some(3)]).unwrap(),
        vec![None, Some(3)]
    );
    let ids = StringLookup::builder().vocabulary(["a"]).build().unwrap();
    assert_eq!(
        ids.compute_output_shape(&[None, Some(3)]).unwrap(),
        vec![None, Some(3)]
    );
    let inverse = StringLookup::builder()
        .vocabulary(["a", "b"])
        .invert(true)
        .build()
        .unwrap();
    let tokens = Layer::call(&inverse, &Tensor::from(array![[2i64, 0, 1]])).unwrap();
    assert_eq!(
        tokens.as_strings().unwrap(),
        &array![["b".to_string(), "[UNK]".to_string(), "a".to_string()]].into_dyn()
    );
}

#[test]
fn a_graph_refuses_strings_into_an_id_layer_when_it_is_made() {
    let mut graph = Graph::new();
    let text = graph.input(Input::new(&[3]).dtype(ndkeras::tensor::DType::String));
    let err = graph
        .apply(Embedding::new(10, 2).with_name("ids"), &[text])
        .unwrap_err();
    assert!(matches!(err, Error::IncompatibleDtype { .. }), "{err:?}");
    assert!(err.to_string().contains("\"ids\""), "{err}");
    let numbers = graph.input(Input::new(&[1]).dtype(ndkeras::tensor::DType::Int32));
    let err = graph
        .apply(
            TextVectorization::builder().name("tv").build().unwrap(),
            &[numbers],
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("\"tv\"") && err.to_string().contains("received int32"),
        "{err}"
    );
}

#[test]
fn large_calls_split_across_threads_give_the_same_ids() {
    let words = ["the", "Cat", "sat,", "on", "東京", "😀", "mat.", "zzz"];
    let texts: Vec<String> = (0..5000)
        .map(|i| {
            (0..(i % 13))
                .map(|k| words[(i * 7 + k * 3) % words.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let mut vectorize = TextVectorization::builder()
        .output_sequence_length(8)
        .build()
        .unwrap();
    vectorize.adapt(&texts[..100]).unwrap();
    let ids = vectorize.call(&texts).unwrap();
    for (row, text) in ids.outer_iter().zip(&texts) {
        let mut expected = vectorize.call_ragged(&[text]).unwrap().remove(0);
        expected.resize(8, 0);
        assert_eq!(row.to_vec(), expected, "{text:?}");
    }
    let tokens: Vec<&str> = (0..100_000).map(|i| words[i % words.len()]).collect();
    let lookup = StringLookup::builder()
        .vocabulary(["the", "東京"])
        .build()
        .unwrap();
    let all = lookup.call(&tokens).unwrap();
    for (id, token) in all.iter().zip(&tokens) {
        assert_eq!(*id, lookup.call(&[*token]).unwrap()[0]);
    }
    // Without OOV ids, an unknown token anywhere is still Keras' error.
    let strict = StringLookup::builder()
        .vocabulary(["the"])
        .num_oov_indices(0)
        .build()
        .unwrap();
    let err = strict.call(&tokens).unwrap_err();
    assert!(err.to_string().contains("num_oov_indices"), "{err}");
}

#[test]
fn predict_tensor_returns_ids_and_strings_as_keras_returns_them() {
    let (texts, _) = data();
    let vectorize = vectorizer(&texts);
    let expected = Layer::call(&vectorize, &Tensor::from(texts.clone())).unwrap();
    let mut model = Sequential::new();
    model.add(vectorize).unwrap();
    // Keras returns the int64 ids; `predict` (float32 only) says what it got.
    let ids = model.predict_tensor(texts.clone()).unwrap();
    assert_eq!(ids.dtype(), DType::Int64);
    assert_eq!(ids.data(), expected.data());
    assert!(matches!(
        model.predict(texts.clone()),
        Err(Error::IncompatibleDtype { .. })
    ));

    // Several batches joined, strings included: ids -> tokens through an inverted lookup.
    let mut graph = Graph::new();
    let input = graph.input(Input::new(&[3]).dtype(DType::Int64));
    let inverse = StringLookup::builder()
        .vocabulary(["a", "b"])
        .invert(true)
        .build()
        .unwrap();
    let tokens = graph.apply(inverse, &[input]).unwrap();
    let mut model = graph.model(&[input], &[tokens]).unwrap();
    let x = Array2::from_shape_fn((5, 3), |(i, j)| ((i + j) % 3) as i64);
    let joined = model
        .predict_tensors_with_batch_size(vec![Tensor::from(x.clone())], 2)
        .unwrap();
    let words = ["[UNK]", "a", "b"];
    let expected = x.mapv(|id| words[id as usize].to_string()).into_dyn();
    assert_eq!(joined[0].as_strings().unwrap(), &expected);
}
