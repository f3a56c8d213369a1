//! The `Embedding` layer: every id type and rank, and every bad input of the core issue,
//! each a clear error that leaves the layer unchanged.

use ndarray::{Array, ArrayD, Dimension, IxDyn, array};
use ndkeras::prelude::*;

fn built(mask_zero: bool) -> Embedding {
    let table = Array::range(0.0f32, 6.0, 1.0)
        .into_shape_with_order((3, 2))
        .unwrap()
        .into_dyn();
    let mut layer = Embedding::new(3, 2)
        .with_name("emb")
        .mask_zero(mask_zero)
        .weights(vec![table]);
    layer.apply(&Tensor::from(vec![0i64])).unwrap();
    layer
}

/// Calls `layer` on `input`, expects an error, and checks that nothing changed.
fn expect_error(layer: &mut Embedding, input: Tensor) -> Error {
    let before = layer.get_weights();
    let err = layer.apply(&input).unwrap_err();
    assert_eq!(layer.get_weights(), before, "a failed call changes nothing");
    err
}

#[test]
fn every_id_type_gives_the_same_rows() {
    let mut layer = built(false);
    let expected = array![[4.0f32, 5.0], [0.0, 1.0], [2.0, 3.0]].into_dyn();
    let inputs = [
        Tensor::from(vec![2i32, 0, 1]),
        Tensor::from(vec![2i64, 0, 1]),
        Tensor::from(vec![2u8, 0, 1]),
        Tensor::from(vec![2u32, 0, 1]),
        Tensor::from(vec![2usize, 0, 1]),
        Tensor::from(vec![2.0f32, 0.0, 1.0]),
        Tensor::from(&[2i64, 0, 1][..]),
    ];
    for input in inputs {
        let dtype = input.dtype();
        let out = layer.apply(&input).unwrap();
        assert_eq!(out.as_float().unwrap(), &expected, "{dtype}");
    }
}

#[test]
fn output_shape_is_input_shape_plus_output_dim_for_any_rank() {
    let mut layer = built(false);
    for shape in [vec![], vec![4], vec![2, 3], vec![2, 1, 3], vec![1, 2, 1, 2]] {
        let ids = ArrayD::<i64>::from_shape_fn(IxDyn(&shape), |i| {
            (i.slice().iter().sum::<usize>() % 3) as i64
        });
        let out = layer.apply(&Tensor::from(ids)).unwrap();
        let mut expected = shape.clone();
        expected.push(2);
        assert_eq!(out.shape(), expected.as_slice());
        let keras_shape: Vec<Option<usize>> = shape.iter().map(|&d| Some(d)).collect();
        let mut keras_expected = keras_shape.clone();
        keras_expected.push(Some(2));
        assert_eq!(
            layer.compute_output_shape(&keras_shape).unwrap(),
            keras_expected
        );
    }
}

#[test]
fn an_empty_batch_gives_an_empty_output_of_the_right_shape() {
    let mut layer = built(true);
    let out = layer
        .apply(&Tensor::from(ArrayD::<i64>::zeros(IxDyn(&[0, 4]))))
        .unwrap();
    assert_eq!(out.shape(), &[0, 4, 2]);
    assert_eq!(out.mask().unwrap().shape(), &[0, 4]);

    let mut model = Sequential::new();
    model.add(Embedding::new(10, 3).input_length(4)).unwrap();
    let out = model.predict(ArrayD::<i32>::zeros(IxDyn(&[0, 4]))).unwrap();
    assert_eq!(out.shape(), &[0, 4, 3]);
}

#[test]
fn an_index_at_or_above_input_dim_is_out_of_range() {
    let mut layer = built(false);
    for (ids, index, position) in [
        (array![[0i64, 1], [2, 3]], 3, vec![1, 1]),
        (array![[1000i64, 0], [0, 0]], 1000, vec![0, 0]),
        (
            array![[0i64, 0], [i64::MAX, 0]],
            i64::MAX as i128,
            vec![1, 0],
        ),
    ] {
        let err = expect_error(&mut layer, Tensor::from(ids));
        assert_eq!(
            err,
            Error::IndexOutOfRange {
                layer: "emb".into(),
                index,
                position: position.clone(),
                input_dim: 3
            }
        );
        let message = err.to_string();
        for part in [
            "\"emb\"",
            &format!("index {index}"),
            &format!("{position:?}"),
            "[0, 3)",
        ] {
            assert!(message.contains(part), "{message} lacks {part}");
        }
    }
    let err = expect_error(&mut layer, Tensor::from(vec![u32::MAX]));
    assert!(matches!(err, Error::IndexOutOfRange { index, .. } if index == i128::from(u32::MAX)));
    let err = expect_error(&mut layer, Tensor::from(vec![usize::MAX]));
    assert!(matches!(err, Error::IndexOutOfRange { .. }));
}

#[test]
fn a_negative_index_is_out_of_range_not_wrapped() {
    let mut layer = built(false);
    for id in [-1i32, -3, -4, i32::MIN] {
        let err = expect_error(&mut layer, Tensor::from(vec![0, id]));
        assert_eq!(
            err,
            Error::IndexOutOfRange {
                layer: "emb".into(),
                index: i128::from(id),
                position: vec![1],
                input_dim: 3
            }
        );
    }
}

#[test]
fn a_fractional_or_nan_float_index_is_refused() {
    let mut layer = built(false);
    for value in [
        0.5f32,
        2.999,
        -0.7,
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
    ] {
        let err = expect_error(&mut layer, Tensor::from(array![[1.0f32, value]]));
        match &err {
            Error::NonIntegerIndex {
                value: got,
                position,
                layer,
            } => {
                assert!(got.to_bits() == value.to_bits(), "{got} != {value}");
                assert_eq!((position.as_slice(), layer.as_str()), (&[0, 1][..], "emb"));
            }
            other => panic!("{value}: expected NonIntegerIndex, got {other:?}"),
        }
        assert!(err.to_string().contains("whole number"), "{err}");
    }
    // A whole float out of range is out of range, with its value.
    let err = expect_error(&mut layer, Tensor::from(vec![3.0f32]));
    assert!(matches!(err, Error::IndexOutOfRange { index: 3, .. }));
}

#[test]
fn the_first_bad_id_in_row_major_order_is_reported() {
    let mut layer = built(false);
    let err = expect_error(&mut layer, Tensor::from(array![[0i64, 1, 2], [7, 0, -1]]));
    assert!(
        matches!(err, Error::IndexOutOfRange { index: 7, ref position, .. } if position == &vec![1, 0])
    );
}

#[test]
fn an_input_contradicting_input_length_is_refused() {
    let mut layer = Embedding::new(10, 3).input_length(4).with_name("fixed");
    let err = layer
        .apply(&Tensor::from(ArrayD::<i64>::zeros(IxDyn(&[2, 7]))))
        .unwrap_err();
    assert!(matches!(err, Error::IncompatibleShape { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("\"input_length\" is 4, but received input has shape (2, 7)"),
        "{err}"
    );
    assert!(!layer.is_built());
    // Matching inputs work; so does a direct call of another rank, as in Keras 2.
    assert_eq!(
        layer
            .apply(&Tensor::from(ArrayD::<i64>::zeros(IxDyn(&[2, 4]))))
            .unwrap()
            .shape(),
        &[2, 4, 3]
    );
    assert_eq!(
        layer.apply(&Tensor::from(vec![1i64, 2])).unwrap().shape(),
        &[2, 3]
    );

    let mut per_axis = Embedding::new(10, 3).input_length_per_axis(vec![Some(2), None]);
    assert!(
        per_axis
            .apply(&Tensor::from(ArrayD::<i64>::zeros(IxDyn(&[1, 3, 5]))))
            .is_err()
    );
    assert_eq!(
        per_axis
            .apply(&Tensor::from(ArrayD::<i64>::zeros(IxDyn(&[1, 2, 5]))))
            .unwrap()
            .shape(),
        &[1, 2, 5, 3]
    );

    let mut model = Sequential::new();
    model.add(Embedding::new(10, 3).input_length(4)).unwrap();
    let err = model
        .predict(ArrayD::<i64>::zeros(IxDyn(&[2, 7])))
        .unwrap_err();
    assert!(matches!(err, Error::IncompatibleShape { .. }), "{err:?}");
    assert!(err.to_string().contains("(None, 4)"), "{err}");
}

#[test]
fn an_empty_input_length_list_is_refused() {
    let err = Embedding::new(3, 2)
        .input_length_per_axis(vec![])
        .validate()
        .unwrap_err();
    assert!(err.to_string().contains("input_length"), "{err}");
}

#[test]
fn a_constant_array_of_the_wrong_shape_is_refused_at_build() {
    let mut layer = Embedding::new(3, 2)
        .embeddings_initializer(Initializer::Constant(ArrayD::<f32>::zeros(vec![3, 3])));
    let err = layer.apply(&Tensor::from(vec![0i64])).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("(3, 3)") && message.contains("(3, 2)"),
        "{message}"
    );
    assert!(!layer.is_built());
    // A one-element array fills the table like a scalar, as tf.constant does.
    let mut layer = Embedding::new(3, 2)
        .embeddings_initializer(Initializer::Constant(array![7.0f32].into_dyn()));
    layer.apply(&Tensor::from(vec![0i64])).unwrap();
    assert!(layer.embeddings().unwrap().iter().all(|&v| v == 7.0));
}

#[test]
fn an_invalid_initializer_is_reported_when_the_layer_is_added() {
    let init = Initializer::RandomUniform {
        minval: 1.0,
        maxval: -1.0,
        seed: None,
    };
    let mut model = Sequential::new();
    let err = model
        .add(Embedding::new(3, 2).embeddings_initializer(init))
        .unwrap_err();
    assert!(err.to_string().contains("minval"), "{err}");
    assert!(model.layers().is_empty());
}

#[test]
fn a_table_whose_size_overflows_is_an_error_not_a_panic() {
    let err = Embedding::try_new(usize::MAX, 2).unwrap_err();
    assert!(matches!(err, Error::ShapeOverflow { .. }), "{err:?}");
    let mut layer = Embedding::new(usize::MAX / 2, 3);
    assert!(matches!(
        layer.apply(&Tensor::from(vec![0i64])),
        Err(Error::ShapeOverflow { .. })
    ));
    // Addressable but far beyond any memory: the allocation fails cleanly.
    let mut huge = Embedding::new(1 << 40, 1 << 20).embeddings_initializer(Initializer::Zeros);
    let err = huge.apply(&Tensor::from(vec![0i64])).unwrap_err();
    assert!(matches!(err, Error::Allocation { .. }), "{err:?}");
    assert!(!huge.is_built());
}

#[test]
fn unknown_names_list_the_valid_ones() {
    let err = "glorot_uniformm".parse::<Initializer>().unwrap_err();
    assert!(matches!(
        err,
        Error::UnknownName {
            kind: "initializer",
            ..
        }
    ));
    assert!(err.to_string().contains("glorot_uniform"), "{err}");
    let err = "rmsprob".parse::<Optimizer>().unwrap_err();
    assert!(err.to_string().contains("rmsprop"), "{err}");
    let err = "mean_squared".parse::<Loss>().unwrap_err();
    assert!(err.to_string().contains("mse"), "{err}");
}

#[test]
fn mask_zero_masks_id_zero_at_any_rank_and_ignores_an_incoming_mask() {
    let layer = built(true);
    let ids = Tensor::from(array![[[0i64, 1], [2, 0]]]);
    let mask = layer.compute_mask(&ids, None).unwrap().unwrap();
    assert_eq!(mask, array![[[false, true], [true, false]]].into_dyn());
    let incoming = array![[[true, true], [true, true]]].into_dyn();
    assert_eq!(
        layer.compute_mask(&ids, Some(&incoming)).unwrap(),
        Some(mask)
    );
    // The output at a masked position still holds row 0, as in Keras.
    let out = layer.call(&Tensor::from(vec![0i64])).unwrap();
    assert_eq!(out.as_float().unwrap(), &array![[0.0f32, 1.0]].into_dyn());
}

#[test]
fn set_weights_accepts_any_memory_layout() {
    let mut layer = built(false);
    let transposed = array![[0.0f32, 2.0, 4.0], [1.0, 3.0, 5.0]]
        .reversed_axes()
        .into_dyn();
    layer.set_weights(vec![transposed]).unwrap();
    let out = layer.call(&Tensor::from(vec![2i64])).unwrap();
    assert_eq!(out.as_float().unwrap(), &array![[4.0f32, 5.0]].into_dyn());
}
