//! What Keras users have at hand goes in without conversions: lists of rows, fixed-size
//! arrays, views and references, `Array2` weights, activation names.

use ndarray::{Array2, array};
use ndkeras::prelude::*;

fn model() -> Sequential {
    let mut model = Sequential::new();
    model
        .add(
            Embedding::new(10, 2)
                .input_length(3)
                .weights(vec![Array2::from_shape_fn((10, 2), |(i, j)| {
                    (i * 2 + j) as f32 * 0.1
                })]),
        )
        .unwrap();
    model
}

#[test]
fn lists_of_rows_are_tensors_and_ragged_ones_an_error() {
    let mut m = model();
    let expected = m.predict(array![[1i64, 2, 3], [4, 5, 6]]).unwrap();
    let rows: Vec<Vec<i64>> = vec![vec![1, 2, 3], vec![4, 5, 6]];
    assert_eq!(
        m.predict(Tensor::try_from(rows).unwrap()).unwrap(),
        expected
    );
    assert_eq!(m.predict(vec![[1i32, 2, 3], [4, 5, 6]]).unwrap(), expected);
    assert_eq!(m.predict([[1u8, 2, 3], [4, 5, 6]]).unwrap(), expected);
    let view = array![[1i64, 2, 3], [4, 5, 6]];
    assert_eq!(m.predict(view.view()).unwrap(), expected);
    assert_eq!(m.predict(&view).unwrap(), expected);

    let err = Tensor::try_from(vec![vec![1i64, 2, 3], vec![4, 5]]).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("row 1") && message.contains("2 values") && message.contains("3 values"),
        "{message}"
    );
    // No rows at all is an empty batch of width 0.
    let empty = Tensor::try_from(Vec::<Vec<i64>>::new()).unwrap();
    assert_eq!(empty.shape(), &[0, 0]);
}

#[test]
fn weights_take_any_array_dimension() {
    let kernel = array![[0.5f32], [-0.5]];
    let bias = ndarray::arr1(&[0.1f32]);
    let mut dense = Dense::new(1).weights(vec![kernel.clone().into_dyn(), bias.into_dyn()]);
    let y = dense.apply(&Tensor::from(array![[1.0f32, 2.0]])).unwrap();
    assert_eq!(y.as_float().unwrap(), &array![[-0.4f32]].into_dyn());
    // A table given as an Array2.
    let m = model();
    assert_eq!(
        m.layer::<Embedding>(0).unwrap().embeddings().unwrap()[[3, 1]],
        0.7
    );
}

#[test]
fn activations_by_keras_name() {
    let dense = Dense::new(1).activation("sigmoid");
    assert_eq!(dense.config().activation, Activation::Sigmoid);
    let dense = Dense::new(1).activation(String::from("relu"));
    assert_eq!(dense.config().activation, Activation::Relu);
    // An unknown name is an error when the layer is added, listing the valid names.
    let mut m = model();
    m.add(GlobalAveragePooling1D::new()).unwrap();
    let err = m.add(Dense::new(1).activation("sigmoidd")).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("sigmoidd") && message.contains("softmax"),
        "{message}"
    );
    assert_eq!(m.layers().len(), 2, "the layer was not added");
    // A later valid name replaces an invalid one.
    assert!(
        Dense::new(1)
            .activation("nope")
            .activation(Activation::Tanh)
            .validate()
            .is_ok()
    );
}
