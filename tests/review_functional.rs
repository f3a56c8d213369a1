//! Review of the functional API against tf_keras 2.21: divergences found by probing, kept as regression tests (a third finding, masks of merge layers checked only when the model runs, is documented in src/doc/keras_for_rust_users.rs).

use ndkeras::prelude::*;

/// Layer order and `get_weights` order of a graph whose layers were created in an order
/// other than Keras' depth order.
///
/// Python (tf_keras 2.21):
/// ```python
/// x = keras.Input((4,), name="x")
/// b1 = keras.layers.Dense(5, name="b1")(x)
/// a1 = keras.layers.Dense(2, name="a1")(x)
/// a2 = keras.layers.Dense(3, name="a2")(a1)
/// c = keras.layers.Concatenate(name="c")([a2, b1])
/// o = keras.layers.Dense(1, name="out")(c)
/// m = keras.Model(x, o)
/// print([l.name for l in m.layers])
/// print([tuple(w.shape) for w in m.get_weights()])
/// # ['x', 'a1', 'a2', 'b1', 'c', 'out']
/// # [(4, 2), (2,), (2, 3), (3,), (4, 5), (5,), (8, 1), (1,)]
/// ```
/// ndkeras: `layers()` is `[b1, a1, a2, c, out]` and `get_weights` starts with b1's
/// `(4, 5)` kernel (the order of first calls), so tf_keras' `get_weights()` list cannot be
/// given to `set_weights` (and would be misassigned silently when shapes coincide); the
/// summary lists the layers in that order too. After `Model::from_json(&model.to_json())`
/// the same model has Keras' order (`a1, a2, b1, c, out`), so the order also changes on a
/// JSON round trip. Cause: `Graph::model` (src/model/functional.rs) keeps layers "in the
/// order of their first call"; only the JSON writer (src/config/functional.rs) sorts by
/// depth as Keras' `_map_graph_network` does.
#[test]
fn graph_model_orders_layers_and_weights_as_keras() {
    let mut g = Graph::new();
    let x = g.input(Input::new(&[4]).with_name("x"));
    let b1 = g.apply(Dense::new(5).with_name("b1"), &[x]).unwrap();
    let a1 = g.apply(Dense::new(2).with_name("a1"), &[x]).unwrap();
    let a2 = g.apply(Dense::new(3).with_name("a2"), &[a1]).unwrap();
    let c = g
        .apply(Concatenate::new().with_name("c"), &[a2, b1])
        .unwrap();
    let o = g.apply(Dense::new(1).with_name("out"), &[c]).unwrap();
    let model = g.model(&[x], &[o]).unwrap();
    let names: Vec<&str> = model.layers().iter().map(|l| l.name()).collect();
    let shapes: Vec<Vec<usize>> = model
        .get_weights()
        .iter()
        .map(|w| w.shape().to_vec())
        .collect();
    assert_eq!(names, ["a1", "a2", "b1", "c", "out"]);
    assert_eq!(
        shapes,
        vec![
            vec![4, 2],
            vec![2],
            vec![2, 3],
            vec![3],
            vec![4, 5],
            vec![5],
            vec![8, 1],
            vec![1]
        ]
    );
}

/// A failed call of a new layer reserves its name in the graph.
///
/// Python (tf_keras 2.21):
/// ```python
/// a = keras.Input((3,), dtype="int32", name="a"); b = keras.Input((4,), name="b")
/// e1 = keras.layers.Embedding(10, 4, name="emb")(a)
/// keras.layers.Concatenate(name="cat")([e1, b])   # ValueError: matching shapes ...
/// c = keras.layers.Concatenate(name="cat")([e1, e1])
/// m = keras.Model([a, b], c); print([l.name for l in m.layers])
/// # ['a', 'emb', 'b', 'cat']
/// ```
/// ndkeras: the retry `graph.apply(Concatenate::new().with_name("cat"), ..)` fails with
/// "all layers must have unique names, and \"cat\" is already used": `Graph::apply` adds the
/// layer (`Graph::add`) before the call is checked, and the failed call leaves it in
/// `graph.layers` (src/model/functional.rs, `apply`).
#[test]
fn a_failed_apply_does_not_reserve_the_layer_name() {
    let mut g = Graph::new();
    let a = g.input(Input::new(&[3]).dtype(DType::Int32).with_name("a"));
    let b = g.input(Input::new(&[4]).with_name("b"));
    let e1 = g
        .apply(Embedding::new(10, 4).with_name("emb"), &[a])
        .unwrap();
    assert!(
        g.apply(Concatenate::new().with_name("cat"), &[e1, b])
            .is_err()
    );
    let c = g
        .apply(Concatenate::new().with_name("cat"), &[e1, e1])
        .unwrap();
    let model = g.model(&[a, b], &[c]).unwrap();
    assert!(model.get_layer("cat").is_some());
}
