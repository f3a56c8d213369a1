//! Hostile calls: bad weights, impossible sizes and out-of-range parameters end in an error
//! that says what was wrong, and a failed call leaves every layer and model as it was.

use ndarray::{Array2, ArrayD, array};
use ndkeras::prelude::*;

fn table() -> ArrayD<f32> {
    array![[0.5f32, 1.5], [2.5, 3.5], [4.5, 5.5]].into_dyn()
}

fn with_nan() -> ArrayD<f32> {
    let mut bad = table();
    bad[[1, 0]] = f32::NAN;
    bad
}

fn assert_pending(layer: &dyn Layer, expected: &[ArrayD<f32>]) {
    assert!(!layer.is_built(), "{} is built", layer.name());
    let pending = layer
        .initial_weights()
        .expect("the weights are still pending");
    assert_eq!(pending.len(), expected.len());
    for (got, want) in pending.iter().zip(expected) {
        assert_eq!(got.shape(), want.shape());
        // NaN != NaN: compare bit patterns.
        assert!(
            got.iter()
                .zip(want)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "the pending weights changed"
        );
    }
}

#[test]
fn a_nan_in_initial_weights_leaves_the_layer_unbuilt_and_the_weights_pending() {
    let mut layer = Embedding::new(3, 2).weights(vec![with_nan()]);
    for _ in 0..2 {
        // The second call fails the same way: it never looks up random vectors.
        let err = layer.apply(&Tensor::from(vec![0i64])).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
        for part in ["NaN", "[1, 0]", "weight 0", "finite"] {
            assert!(message.contains(part), "{message} lacks {part}");
        }
        assert_pending(&layer, &[with_nan()]);
    }

    let mut kernel = Array2::<f32>::ones((3, 1)).into_dyn();
    kernel[[2, 0]] = f32::INFINITY;
    let bias = ArrayD::<f32>::zeros(vec![1]);
    let mut dense = Dense::new(1).weights(vec![kernel.clone(), bias.clone()]);
    let err = dense
        .apply(&Tensor::from(array![[1.0f32, 2.0, 3.0]]))
        .unwrap_err();
    assert!(err.to_string().contains("inf"), "{err}");
    assert_pending(&dense, &[kernel, bias]);
}

#[test]
fn a_deferred_model_build_is_all_or_nothing() {
    let good = vec![
        Array2::<f32>::ones((3, 2)).into_dyn(),
        ArrayD::<f32>::zeros(vec![2]),
    ];
    let mut bad_kernel = Array2::<f32>::ones((2, 1)).into_dyn();
    bad_kernel[[1, 0]] = f32::NAN;
    let bad = vec![bad_kernel, ArrayD::<f32>::zeros(vec![1])];
    let mut model = Sequential::new();
    model.add(Dense::new(2).weights(good.clone())).unwrap();
    model.add(Dense::new(1).weights(bad.clone())).unwrap();
    let x = array![[1.0f32, 2.0, 3.0]];
    for _ in 0..2 {
        assert!(model.predict(x.clone()).is_err());
        assert_pending(model.get_layer(0).unwrap(), &good);
        assert_pending(model.get_layer(1).unwrap(), &bad);
    }
}

#[test]
fn a_model_build_that_runs_out_of_memory_unbuilds_the_layers_it_built() {
    let good = vec![
        Array2::<f32>::ones((3, 2)).into_dyn(),
        ArrayD::<f32>::zeros(vec![2]),
    ];
    let mut model = Sequential::new();
    model.add(Dense::new(2).weights(good.clone())).unwrap();
    // A (2, 2^34) kernel: 128 GiB, more than any machine that runs these tests can give.
    model.add(Dense::new(1 << 34)).unwrap();
    let err = model.predict(array![[1.0f32, 2.0, 3.0]]).unwrap_err();
    assert!(matches!(err, Error::Allocation { .. }), "{err:?}");
    assert!(err.to_string().contains("bytes"), "{err}");
    assert_pending(model.get_layer(0).unwrap(), &good);
    assert!(!model.get_layer(1).unwrap().is_built());
}

#[test]
fn impossible_tables_are_allocation_errors_not_aborts() {
    // 2^36 floats (256 GiB): valid dimensions, but no memory for them.
    let mut layer = Embedding::new(1 << 30, 64);
    let err = layer.apply(&Tensor::from(vec![0i64])).unwrap_err();
    assert!(matches!(err, Error::Allocation { .. }), "{err:?}");
    assert!(err.to_string().contains("embeddings table"), "{err}");
    assert!(!layer.is_built());
}

#[test]
fn initializer_parameters_must_fit_in_float32() {
    let cases = [
        (
            Initializer::RandomNormal {
                mean: 0.0,
                stddev: 1e300,
                seed: Some(1),
            },
            "1e300",
        ),
        (
            Initializer::RandomUniform {
                minval: -1.0,
                maxval: 1e39,
                seed: None,
            },
            "1e39",
        ),
        (
            Initializer::TruncatedNormal {
                mean: 3e38,
                stddev: 1e37,
                seed: None,
            },
            "1e37",
        ),
        (
            Initializer::Orthogonal {
                gain: -1e39,
                seed: None,
            },
            "-1e39",
        ),
    ];
    for (init, given) in cases {
        let err = init.validate().unwrap_err();
        let message = err.to_string();
        assert!(message.contains("float32"), "{message}");
        assert!(message.contains(given), "{message} does not show {given}");
        assert!(
            !message.contains("inf"),
            "{message} shows a value not given"
        );
        let mut layer = Embedding::new(4, 3).embeddings_initializer(init);
        assert!(layer.apply(&Tensor::from(vec![0i64])).is_err());
        assert!(!layer.is_built());
    }
    // The largest normal distribution that fits is still accepted.
    let fits = Initializer::RandomNormal {
        mean: 0.0,
        stddev: 1e36,
        seed: Some(1),
    };
    let values = fits.initialize(&[100, 10]).unwrap();
    assert!(values.iter().all(|v| v.is_finite()));
}

#[test]
fn explicit_weights_skip_the_initializer_but_not_its_errors() {
    // The initializer is never run when weights are given, but what Keras would raise when
    // running it is still reported, and the weights stay pending.
    let mut layer = Embedding::new(3, 2)
        .embeddings_initializer(Initializer::Identity { gain: 1.0 })
        .weights(vec![table()]);
    layer.apply(&Tensor::from(vec![2i64])).unwrap();
    assert_eq!(layer.get_weights(), vec![table()]);

    let mut layer = Embedding::new(3, 2)
        .embeddings_initializer(Initializer::Constant(ArrayD::zeros(vec![2, 2])))
        .weights(vec![table()]);
    assert!(layer.apply(&Tensor::from(vec![2i64])).is_err());
    assert_pending(&layer, &[table()]);
}

#[cfg(feature = "mmap")]
#[test]
fn a_mapped_table_without_rows_or_columns_is_an_error() {
    use ndkeras::io::npy;
    let dir = std::env::temp_dir().join(format!("ndkeras-hostile-calls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (shape, parameter) in [((3, 0), "output_dim"), ((0, 4), "input_dim")] {
        let path = dir.join(format!("empty-{}x{}.npy", shape.0, shape.1));
        npy::write_npy(&path, &Array2::<f32>::zeros(shape).into_dyn().view()).unwrap();
        let err = Embedding::from_mapped(npy::map_npy(&path).unwrap()).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
        assert!(err.to_string().contains(parameter), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(feature = "mmap")]
#[test]
fn what_save_weights_writes_load_weights_reads() {
    use ndkeras::io::npy;
    let dir = std::env::temp_dir().join(format!("ndkeras-hostile-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A NaN reaches a table only through a memory map, whose values are never scanned (it
    // opens in O(1)); the file is written by hand, since ndkeras' writers refuse NaN.
    let table_path = dir.join("nan.npy");
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    let mut header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }".to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    for v in [1.0f32, f32::NAN, 3.0, 4.0] {
        bytes.extend(v.to_le_bytes());
    }
    std::fs::write(&table_path, bytes).unwrap();
    let layer = Embedding::from_mapped(npy::map_npy(&table_path).unwrap())
        .unwrap()
        .with_name("mapped")
        .trainable(false);
    let mut model = Sequential::new();
    model.add(layer).unwrap();

    let weights_path = dir.join("model.npz");
    std::fs::write(&weights_path, b"the previous file").unwrap();
    let err = model.save_weights(&weights_path).unwrap_err();
    let message = err.to_string();
    for part in ["NaN", "mapped/embeddings", "[0, 1]"] {
        assert!(message.contains(part), "{message} lacks {part}");
    }
    assert_eq!(std::fs::read(&weights_path).unwrap(), b"the previous file");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failed_model_build_never_unbuilds_a_layer_built_before() {
    let mut manual = Dense::new(1).weights(vec![
        Array2::<f32>::from_elem((2, 1), 0.25).into_dyn(),
        ArrayD::<f32>::zeros(vec![1]),
    ]);
    manual.build(&[None, Some(2)]).unwrap();
    let built_with = manual.get_weights();
    // Weights given after the build are pending until the model is built.
    let pending = vec![
        Array2::<f32>::from_elem((2, 1), 4.0).into_dyn(),
        ArrayD::<f32>::ones(vec![1]),
    ];
    let manual = manual.weights(pending.clone());
    let mut model = Sequential::new();
    model
        .add(Dense::new(2).weights(vec![
            Array2::<f32>::ones((3, 2)).into_dyn(),
            ArrayD::<f32>::zeros(vec![2]),
        ]))
        .unwrap();
    model.add(manual).unwrap();
    model.add(Dense::new(1 << 34)).unwrap();
    let err = model.predict(array![[1.0f32, 2.0, 3.0]]).unwrap_err();
    assert!(matches!(err, Error::Allocation { .. }), "{err:?}");
    let manual = model.get_layer(1).unwrap();
    assert!(manual.is_built(), "built before the call: still built");
    assert_eq!(manual.get_weights(), built_with, "its values unchanged");
    assert_eq!(
        manual.initial_weights(),
        Some(&pending[..]),
        "still pending"
    );
    assert!(!model.get_layer(0).unwrap().is_built());
}
