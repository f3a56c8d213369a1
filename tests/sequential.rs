//! `Sequential`: add, predict (Keras 2 input rules, batches), layer access, summary, compile.

use ndarray::{Array, Array2, ArrayD, IxDyn, array};
use ndkeras::optimizers::{RMSprop, SGD};
use ndkeras::prelude::*;

fn arange_table(rows: usize, cols: usize) -> ArrayD<f32> {
    Array::range(0.0f32, (rows * cols) as f32, 1.0)
        .into_shape_with_order(IxDyn(&[rows, cols]))
        .unwrap()
}

fn seeded_model(input_dim: usize, dim: usize, input_length: usize) -> Sequential {
    let mut model = Sequential::new();
    model
        .add(
            Embedding::new(input_dim, dim)
                .input_length(input_length)
                .with_name("embedding")
                .weights(vec![arange_table(input_dim, dim)]),
        )
        .unwrap();
    model
}

#[test]
fn add_builds_the_layer_and_applies_its_weights_when_the_input_shape_is_known() {
    let model = seeded_model(3, 2, 1);
    let layer = model.layer::<Embedding>(0).unwrap();
    assert!(layer.is_built());
    assert!(layer.initial_weights().is_none());
    assert_eq!(layer.get_weights(), vec![arange_table(3, 2)]);
    assert_eq!(model.input_shape(), Some(&[None, Some(1)][..]));
    // Without input_length, Keras 2 still declares (None, None).
    let mut model = Sequential::new();
    model.add(Embedding::new(5, 3)).unwrap();
    assert_eq!(model.output_shape().unwrap(), vec![None, None, Some(3)]);
    assert!(model.get_layer(0).unwrap().is_built());
}

#[test]
fn add_refuses_wrong_weights_and_duplicate_names_and_leaves_the_model_unchanged() {
    let mut model = Sequential::new();
    let err = model
        .add(Embedding::new(3, 2).weights(vec![arange_table(2, 3)]))
        .unwrap_err();
    assert!(matches!(err, Error::WeightShape { .. }), "{err:?}");
    assert!(model.layers().is_empty());
    assert!(model.output_shape().is_err());

    model.add(Embedding::new(3, 2).with_name("emb")).unwrap();
    let err = model
        .add(Embedding::new(3, 2).with_name("emb"))
        .unwrap_err();
    assert!(
        matches!(err, Error::Model { .. }) && err.to_string().contains("\"emb\""),
        "{err}"
    );
    assert_eq!(model.layers().len(), 1);
}

#[test]
fn a_rank_1_input_to_an_input_length_1_model_gets_its_axis() {
    let mut model = seeded_model(3, 2, 1);
    let out = model.predict(vec![1i64, 2, 2, 1, 2, 0]).unwrap();
    assert_eq!(out.shape(), &[6, 1, 2]);
    assert_eq!(
        out.iter().copied().collect::<Vec<_>>(),
        vec![2.0, 3.0, 4.0, 5.0, 4.0, 5.0, 2.0, 3.0, 4.0, 5.0, 0.0, 1.0]
    );
    // A trailing axis of length 1 too many is dropped, as Keras 2 does.
    let out = model
        .predict(ArrayD::<i64>::zeros(IxDyn(&[4, 1, 1])))
        .unwrap();
    assert_eq!(out.shape(), &[4, 1, 2]);
}

#[test]
fn inputs_of_the_wrong_rank_or_length_are_refused() {
    let mut model = seeded_model(10, 2, 3);
    for bad in [
        Tensor::from(vec![1i64, 2, 3]),
        Tensor::from(Array2::<i64>::zeros((2, 4))),
        Tensor::from(ArrayD::<i64>::zeros(IxDyn(&[2, 3, 2]))),
        Tensor::from(ndarray::arr0(1i64)),
    ] {
        let shape = bad.shape().to_vec();
        let err = model.predict(bad).unwrap_err();
        assert!(
            matches!(err, Error::IncompatibleShape { .. }),
            "{shape:?}: {err:?}"
        );
    }
}

#[test]
fn predict_gives_the_same_result_for_every_batch_size() {
    let mut model = seeded_model(50, 4, 3);
    let x = Array2::<i64>::from_shape_fn((70, 3), |(i, j)| ((i * 3 + j) * 11 % 50) as i64);
    let reference = model.predict(x.clone()).unwrap();
    assert_eq!(reference.shape(), &[70, 3, 4]);
    for batch_size in [1, 7, 32, 69, 70, 1000] {
        assert_eq!(
            model
                .predict_with_batch_size(x.clone(), batch_size)
                .unwrap(),
            reference,
            "{batch_size}"
        );
    }
    assert!(matches!(
        model.predict_with_batch_size(x, 0),
        Err(Error::InvalidArgument { .. })
    ));
}

#[test]
fn a_bad_id_in_a_later_batch_is_reported_at_its_position_in_the_whole_input() {
    let mut model = seeded_model(10, 2, 2);
    let mut x = Array2::<i64>::zeros((100, 2));
    x[[75, 1]] = 10;
    let before = model.get_layer(0).unwrap().get_weights();
    let err = model.predict_with_batch_size(x, 32).unwrap_err();
    assert!(
        matches!(err, Error::IndexOutOfRange { index: 10, ref position, .. } if position == &vec![75, 1]),
        "{err:?}"
    );
    assert_eq!(model.get_layer(0).unwrap().get_weights(), before);
}

#[test]
fn an_empty_model_cannot_predict_or_report_a_shape() {
    let mut model = Sequential::new();
    assert!(matches!(
        model.predict(vec![1i64]),
        Err(Error::Model { .. })
    ));
    assert!(matches!(model.output_shape(), Err(Error::Model { .. })));
}

#[test]
fn layers_are_reachable_by_index_name_and_type() {
    let mut model = seeded_model(3, 2, 1);
    assert_eq!(model.layers().len(), 1);
    assert_eq!(model.get_layer(0).unwrap().name(), "embedding");
    assert!(model.get_layer(1).is_none());
    assert!(model.get_layer_by_name("embedding").is_some());
    assert!(model.get_layer_by_name("dense").is_none());
    assert_eq!(model.layer::<Embedding>(0).unwrap().input_dim(), 3);
    assert!(model.layer::<Embedding>(1).is_none());

    // Weights can be replaced through a mutable handle, checked as always.
    let layer = model.layer_mut::<Embedding>(0).unwrap();
    layer
        .set_weights(vec![ArrayD::<f32>::ones(vec![3, 2])])
        .unwrap();
    assert!(
        model
            .get_layer_mut(0)
            .unwrap()
            .set_weights(vec![ArrayD::<f32>::ones(vec![2, 2])])
            .is_err()
    );
    assert_eq!(
        model.predict(vec![2i64]).unwrap(),
        ArrayD::<f32>::ones(vec![1, 1, 2])
    );
}

#[test]
fn summary_lists_layers_shapes_and_parameter_totals() {
    let mut model = Sequential::new().with_name("seed_a");
    model
        .add(
            Embedding::new(1000, 64)
                .input_length(10)
                .with_name("embedding"),
        )
        .unwrap();
    let text = model.summary().unwrap();
    for part in [
        "Model: \"seed_a\"",
        "Layer (type)",
        "Output Shape",
        "Param #",
        "embedding (Embedding)",
        "(None, 10, 64)",
        "64000",
        "Total params: 64000 (250.00 KB)",
        "Trainable params: 64000 (250.00 KB)",
        "Non-trainable params: 0 (0.00 Byte)",
    ] {
        assert!(text.contains(part), "summary lacks {part}:\n{text}");
    }

    let mut frozen = Sequential::new();
    frozen.add(Embedding::new(10, 3).trainable(false)).unwrap();
    let text = frozen.summary().unwrap();
    assert!(
        text.contains("Trainable params: 0 (0.00 Byte)")
            && text.contains("Non-trainable params: 30 (120.00 Byte)"),
        "{text}"
    );
}

#[test]
fn compile_stores_a_validated_optimizer_and_loss() {
    let mut model = seeded_model(3, 2, 1);
    assert!(model.optimizer().is_none());
    model
        .compile("rmsprop".parse().unwrap(), "mse".parse().unwrap())
        .unwrap();
    assert_eq!(
        model.optimizer(),
        Some(&Optimizer::RMSprop(RMSprop::default()))
    );
    assert_eq!(model.loss(), Some(Loss::MeanSquaredError));

    let err = model
        .compile(SGD::new(0.1).momentum(1.5).into(), Loss::MeanAbsoluteError)
        .unwrap_err();
    assert!(err.to_string().contains("`momentum`"), "{err}");
    assert_eq!(
        model.loss(),
        Some(Loss::MeanSquaredError),
        "a refused compile keeps the previous one"
    );
}

#[test]
fn predict_leaves_ids_exact_and_weights_untouched() {
    let mut model = seeded_model(3, 2, 2);
    let before = model.get_layer(0).unwrap().get_weights();
    let out = model.predict(array![[2u8, 0], [1, 1]]).unwrap();
    assert_eq!(
        out,
        array![[[4.0f32, 5.0], [0.0, 1.0]], [[2.0, 3.0], [2.0, 3.0]]].into_dyn()
    );
    assert_eq!(model.get_layer(0).unwrap().get_weights(), before);
}

#[test]
fn predict_takes_views_references_and_f64() {
    let mut model = Sequential::new();
    model
        .add(
            Embedding::new(4, 2)
                .input_length(2)
                .embeddings_initializer(Initializer::Ones),
        )
        .unwrap();
    let ids = ndarray::array![[1i64, 3], [0, 2]];
    let owned = model.predict(ids.clone()).unwrap();
    assert_eq!(model.predict(&ids).unwrap(), owned);
    assert_eq!(model.predict(ids.view()).unwrap(), owned);
    assert_eq!(model.predict(ids.mapv(|v| v as f64)).unwrap(), owned);
}

#[test]
fn a_declared_input_keeps_its_dtype_in_the_graph() {
    use ndkeras::model::InputSpec;
    let input = InputSpec {
        batch_shape: vec![None, Some(4)],
        dtype: "int32".into(),
        name: "ids".into(),
        sparse: false,
        ragged: false,
    };
    let mut model = Sequential::new().with_input(input).unwrap();
    model.add(Embedding::new(10, 2)).unwrap();
    assert_eq!(model.as_model().input_dtypes(), vec![DType::Int32]);
    assert_eq!(model.as_model().input_names(), vec!["ids"]);
}
