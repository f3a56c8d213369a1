//! The Keras `Layer.__call__` lifecycle: build once, initializer first, then the initial
//! weights (once), and a failed call that changes nothing.

use ndarray::{ArrayD, array};
use ndkeras::prelude::*;

fn table_a() -> ArrayD<f32> {
    array![[0.5f32, 1.5], [2.5, 3.5], [4.5, 5.5]].into_dyn()
}

fn table_b() -> ArrayD<f32> {
    array![[100.0f32, 99.0], [98.0, 97.0], [96.0, 95.0]].into_dyn()
}

#[test]
fn nothing_exists_before_the_first_call() {
    let layer = Embedding::new(3, 2).weights(vec![table_a()]);
    assert!(!layer.is_built());
    assert!(layer.embeddings().is_none());
    assert!(layer.get_weights().is_empty());
    assert!(matches!(layer.count_params(), Err(Error::NotBuilt { .. })));
    // `call` does not build: it needs a built layer.
    assert!(matches!(
        layer.call(&Tensor::from(vec![0i64])),
        Err(Error::NotBuilt { .. })
    ));
}

#[test]
fn explicit_weights_override_the_initializer() {
    // The initializer alone fills the table at the first call...
    let mut alone = Embedding::new(3, 2).embeddings_initializer(Initializer::Constant(table_b()));
    alone.apply(&Tensor::from(vec![0i64])).unwrap();
    assert_eq!(alone.get_weights(), vec![table_b()]);

    // ...and with weights given too, the weights win, in either builder order.
    let first = Embedding::new(3, 2)
        .embeddings_initializer(Initializer::Constant(table_b()))
        .weights(vec![table_a()]);
    let second = Embedding::new(3, 2)
        .weights(vec![table_a()])
        .embeddings_initializer(Initializer::Constant(table_b()));
    for mut layer in [first, second] {
        let out = layer.apply(&Tensor::from(vec![2i64])).unwrap();
        assert_eq!(out.as_float().unwrap(), &array![[4.5f32, 5.5]].into_dyn());
        assert_eq!(layer.get_weights(), vec![table_a()]);
        assert!(
            layer.initial_weights().is_none(),
            "applied once, then forgotten"
        );
    }

    // Keras runs the initializer before setting the weights, so a broken one fails the build
    // even though the weights alone would have been fine. ndkeras never runs it when weights
    // are given (lazy parameters), but checks it against the shape and reports the same error.
    let mut broken = Embedding::new(3, 2)
        .embeddings_initializer(Initializer::Constant(ArrayD::<f32>::zeros(vec![2, 3])))
        .weights(vec![table_a()]);
    let err = broken.apply(&Tensor::from(vec![0i64])).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert!(!broken.is_built());
    assert_eq!(broken.initial_weights(), Some(&[table_a()][..]));
}

#[test]
fn the_layer_is_built_once_and_initial_weights_are_applied_once() {
    let mut layer = Embedding::new(3, 2).weights(vec![table_a()]);
    layer.apply(&Tensor::from(vec![0i64])).unwrap();
    layer.set_weights(vec![table_b()]).unwrap();
    // A second call neither rebuilds nor re-applies the constructor's weights.
    let out = layer.apply(&Tensor::from(vec![0i64])).unwrap();
    assert_eq!(
        out.as_float().unwrap(),
        &array![[100.0f32, 99.0]].into_dyn()
    );
    // Building again is a no-op, as in Keras.
    layer.build(&[None, Some(5)]).unwrap();
    assert_eq!(layer.get_weights(), vec![table_b()]);
}

#[test]
fn a_manual_build_takes_the_initial_weights() {
    // Keras' manual `build` ignores the constructor's weights (only `__call__` sets them);
    // ndkeras builds the table from them, so they are never dropped silently.
    let mut layer = Embedding::new(3, 2)
        .embeddings_initializer(Initializer::Zeros)
        .weights(vec![table_a()]);
    layer.build(&[None, None]).unwrap();
    assert!(layer.is_built());
    assert!(layer.initial_weights().is_none());
    assert_eq!(layer.get_weights(), vec![table_a()]);
    let out = layer.apply(&Tensor::from(vec![1i64])).unwrap();
    assert_eq!(out.as_float().unwrap(), &array![[2.5f32, 3.5]].into_dyn());
}

#[test]
fn a_failed_first_call_leaves_the_layer_unbuilt_and_the_weights_pending() {
    let mut layer = Embedding::new(3, 2).weights(vec![table_a()]);
    for bad in [
        Tensor::from(vec![0i64, 3]),
        Tensor::from(vec![-1i32]),
        Tensor::from(vec![0.5f32]),
        Tensor::from(vec![f32::NAN]),
    ] {
        assert!(layer.apply(&bad).is_err());
        assert!(!layer.is_built());
        assert_eq!(layer.initial_weights(), Some(&[table_a()][..]));
    }
    let out = layer.apply(&Tensor::from(vec![1i64])).unwrap();
    assert_eq!(out.as_float().unwrap(), &array![[2.5f32, 3.5]].into_dyn());
}

#[test]
fn a_failed_call_on_a_built_layer_changes_nothing() {
    let mut layer = Embedding::new(3, 2)
        .mask_zero(true)
        .weights(vec![table_a()]);
    layer.apply(&Tensor::from(vec![1i64])).unwrap();
    let before = layer.get_weights();
    assert!(
        layer
            .apply(&Tensor::from(array![[0i64, 1], [2, 3]]))
            .is_err()
    );
    assert!(
        layer
            .set_weights(vec![ArrayD::<f32>::zeros(vec![2, 3])])
            .is_err()
    );
    assert!(layer.set_weights(vec![]).is_err());
    assert_eq!(layer.get_weights(), before);
    assert!(layer.is_built());
}

#[test]
fn apply_attaches_the_output_mask() {
    let mut layer = Embedding::new(3, 2).mask_zero(true);
    let out = layer
        .apply(&Tensor::from(array![[1i64, 0], [0, 2]]))
        .unwrap();
    assert_eq!(
        out.mask(),
        Some(&array![[true, false], [false, true]].into_dyn())
    );
    let mut plain = Embedding::new(3, 2);
    assert_eq!(
        plain.apply(&Tensor::from(vec![1i64, 0])).unwrap().mask(),
        None
    );
}

#[test]
fn count_params_and_trainable() {
    let mut layer = Embedding::new(1000, 64)
        .trainable(false)
        .with_name("frozen");
    layer.build(&[None, Some(10)]).unwrap();
    assert_eq!(layer.count_params().unwrap(), 64_000);
    assert!(!layer.is_trainable());
    assert_eq!(layer.name(), "frozen");
    assert_eq!(layer.class_name(), "Embedding");
}

#[test]
fn default_names_are_unique_per_class() {
    let a = Embedding::new(2, 2);
    let b = Embedding::new(2, 2);
    assert_ne!(a.name(), b.name());
    assert!(a.name().starts_with("embedding") && b.name().starts_with("embedding"));
}

#[test]
fn layers_and_models_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Embedding>();
    assert_send_sync::<Box<dyn Layer>>();
    assert_send_sync::<Sequential>();
    assert_send_sync::<Tensor>();
    assert_send_sync::<Error>();
}

#[test]
fn a_built_layer_is_shared_across_threads_for_inference() {
    let mut layer = Embedding::new(3, 2).weights(vec![table_a()]);
    layer.apply(&Tensor::from(vec![0i64])).unwrap();
    let layer = std::sync::Arc::new(layer);
    let handles: Vec<_> = (0..2i64)
        .map(|id| {
            let layer = layer.clone();
            std::thread::spawn(move || layer.call(&Tensor::from(vec![id])).unwrap())
        })
        .collect();
    let outs: Vec<Tensor> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        outs[1].as_float().unwrap(),
        &array![[2.5f32, 3.5]].into_dyn()
    );
}
