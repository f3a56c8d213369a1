//! `load_weights` as Keras 2 loads a weights file: by the order of the layers that hold
//! weights (a model built again gets new automatic names), or by name on request, with
//! `skip_mismatch`; and `save_weights` writes `.npz` only.

use ndarray::{Array2, ArrayD, array};
use ndkeras::model::LoadOptions;
use ndkeras::prelude::*;

fn scratch(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ndkeras-load-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Embedding(6, 3) -> Flatten -> Dense(1), automatic names (a new model has new ones).
fn model(table: f32) -> Sequential {
    let mut model = Sequential::new();
    model
        .add(
            Embedding::new(6, 3)
                .input_length(2)
                .weights(vec![Array2::from_elem((6, 3), table).into_dyn()]),
        )
        .unwrap();
    model.add(Flatten::new()).unwrap();
    model
        .add(Dense::new(1).weights(vec![
            Array2::from_elem((6, 1), table).into_dyn(),
            array![table].into_dyn(),
        ]))
        .unwrap();
    model
}

fn weights(model: &Sequential) -> Vec<Vec<ArrayD<f32>>> {
    model.layers().iter().map(|l| l.get_weights()).collect()
}

#[test]
fn a_model_built_again_loads_the_weights_it_saved_by_order() {
    let dir = scratch("order");
    let saved = model(0.5);
    let path = dir.join("w.npz");
    saved.save_weights(&path).unwrap();
    let mut fresh = model(0.0);
    // The names differ (embedding_1 vs embedding ...), the architecture does not.
    assert_ne!(saved.layers()[0].name(), fresh.layers()[0].name());
    fresh.load_weights(&path).unwrap();
    assert_eq!(weights(&fresh), weights(&saved));

    // By name, the same file does not fit: the error says why and what to do.
    let mut other = model(0.0);
    let err = other
        .load_weights_with(&path, LoadOptions::default().by_name(true))
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains(saved.layers()[0].name()), "{message}");
    assert!(message.contains(other.layers()[0].name()), "{message}");
    assert!(message.contains("by order"), "{message}");
    assert_eq!(weights(&other), weights(&model(0.0)), "nothing loaded");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn by_name_with_skip_mismatch_loads_what_matches_and_leaves_the_rest() {
    let dir = scratch("by-name");
    let mut saved = Sequential::new();
    saved
        .add(
            Embedding::new(6, 3)
                .with_name("words")
                .weights(vec![Array2::from_elem((6, 3), 2.0f32).into_dyn()]),
        )
        .unwrap();
    saved.add(GlobalAveragePooling1D::new()).unwrap();
    saved
        .add(Dense::new(4).with_name("head").weights(vec![
            Array2::from_elem((3, 4), 2.0f32).into_dyn(),
            ArrayD::from_elem(vec![4], 2.0f32),
        ]))
        .unwrap();
    let path = dir.join("w.npz");
    saved.save_weights(&path).unwrap();

    // Same "words", a "head" of another width, and a layer the file lacks.
    let mut target = Sequential::new();
    target.add(Embedding::new(6, 3).with_name("words")).unwrap();
    target.add(GlobalAveragePooling1D::new()).unwrap();
    target.add(Dense::new(2).with_name("hidden")).unwrap();
    target.add(Dense::new(1).with_name("head")).unwrap();
    let before = weights(&target);
    assert!(
        target
            .load_weights_with(&path, LoadOptions::default().by_name(true))
            .is_err(),
        "without skip_mismatch, a mismatch fails the load"
    );
    assert_eq!(weights(&target), before, "and changes nothing");
    target
        .load_weights_with(
            &path,
            LoadOptions::default().by_name(true).skip_mismatch(true),
        )
        .unwrap();
    let after = weights(&target);
    assert_eq!(after[0], weights(&saved)[0], "words loaded");
    assert_eq!(after[2..], before[2..], "hidden and head left as they were");

    let err = target
        .load_weights_with(&path, LoadOptions::default().skip_mismatch(true))
        .unwrap_err();
    assert!(err.to_string().contains("by_name"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn weights_are_saved_as_npz_only() {
    let dir = scratch("extension");
    let mut m = model(1.0);
    for name in ["w.weights.h5", "w.h5", "w.keras", "w"] {
        let path = dir.join(name);
        let err = m.save_weights(&path).unwrap_err();
        assert!(err.to_string().contains(".npz"), "{name}: {err}");
        assert!(!path.exists(), "{name}: nothing written");
        assert!(m.load_weights(&path).is_err());
    }
    m.save_weights(dir.join("w.NPZ")).unwrap();
    m.load_weights(dir.join("w.NPZ")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn weights_within_a_layer_are_matched_by_their_names() {
    let dir = scratch("within");
    let mut model = Sequential::new();
    model
        .add(Dense::new(2).with_name("d").weights(vec![
            Array2::from_elem((3, 2), 0.0f32).into_dyn(),
            ArrayD::zeros(vec![2]),
        ]))
        .unwrap();
    // A Dense without a declared input is built by its first input.
    model.predict(array![[1.0f32, 2.0, 3.0]]).unwrap();
    let kernel = Array2::from_shape_fn((3, 2), |(i, j)| (i * 2 + j) as f32).into_dyn();
    let bias = array![7.0f32, 8.0].into_dyn();
    // The bias before the kernel, as another writer may store them.
    let path = dir.join("w.npz");
    ndkeras::io::npy::write_npz(
        &path,
        &[
            ("d/bias".to_string(), bias.view()),
            ("d/kernel".to_string(), kernel.view()),
        ],
    )
    .unwrap();
    for options in [LoadOptions::default(), LoadOptions::default().by_name(true)] {
        model.load_weights_with(&path, options).unwrap();
        assert_eq!(
            model.layers()[0].get_weights(),
            vec![kernel.clone(), bias.clone()]
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(feature = "serde")]
#[test]
fn a_functional_model_read_back_from_json_loads_its_own_weights() {
    let dir = scratch("functional");
    let mut graph = Graph::new();
    let user = graph.input(Input::new(&[1]).dtype(DType::Int64).with_name("user"));
    let item = graph.input(Input::new(&[1]).dtype(DType::Int64).with_name("item"));
    let users = graph
        .apply(
            Embedding::new(5, 2)
                .with_name("user_table")
                .embeddings_initializer(Initializer::Constant(ArrayD::from_elem(vec![5, 2], 1.0))),
            &[user],
        )
        .unwrap();
    let items = graph
        .apply(
            Embedding::new(5, 2)
                .with_name("item_table")
                .embeddings_initializer(Initializer::Constant(ArrayD::from_elem(vec![5, 2], 2.0))),
            &[item],
        )
        .unwrap();
    let u = graph.apply(Flatten::new(), &[users]).unwrap();
    let i = graph.apply(Flatten::new(), &[items]).unwrap();
    let score = graph.apply(Dot::new(1), &[i, u]).unwrap();
    let model = graph.model(&[user, item], &[score]).unwrap();
    let path = dir.join("w.npz");
    model.save_weights(&path).unwrap();
    let mut back = Model::from_json(&model.to_json()).unwrap();
    back.load_weights(&path).unwrap();
    for table in ["user_table", "item_table"] {
        assert_eq!(
            back.get_layer(table).unwrap().get_weights(),
            model.get_layer(table).unwrap().get_weights(),
            "{table}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
