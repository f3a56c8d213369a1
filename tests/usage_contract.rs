//! The "Usage that must compile" block of the core issue, as written.

use ndarray::{Array, Array2, ArrayD, Ix2, array};
use ndkeras::prelude::*; // Layer, Embedding, Initializer, Sequential, Tensor, Optimizer, Loss, Error

#[test]
fn core_usage_compiles_and_passes() -> Result<(), Box<dyn std::error::Error>> {
    // seed (a): random init, shape (32, 10, 64)
    let mut model = Sequential::new();
    model.add(Embedding::new(1000, 64).input_length(10))?;
    model.compile("rmsprop".parse()?, "mse".parse()?)?;
    let x = Array2::<i64>::from_shape_fn((32, 10), |(i, j)| ((i * 10 + j) * 7 % 1000) as i64);
    let y: ArrayD<f32> = model.predict(x)?;
    assert_eq!(y.shape(), &[32, 10, 64]);
    assert_eq!(model.output_shape()?, vec![None, Some(10), Some(64)]);

    // seed (b): explicit weights override the initializer; rank-1 input expanded to (6, 1)
    let w = Array::range(0.0f32, 6.0, 1.0)
        .into_shape_with_order((3, 2))?
        .into_dyn();
    let mut m = Sequential::new();
    m.add(
        Embedding::new(3, 2)
            .input_length(1)
            .mask_zero(true)
            .weights(vec![w.clone()]),
    )?;
    let out = m.predict(vec![1i64, 2, 2, 1, 2, 0])?;
    assert_eq!(out.shape(), &[6, 1, 2]);
    assert_eq!(m.get_layer(0).unwrap().get_weights(), vec![w.clone()]);
    let emb: &Embedding = m.layer::<Embedding>(0).unwrap();
    assert_eq!(
        emb.embeddings().unwrap(),
        &w.clone().into_dimensionality::<Ix2>()?
    );

    // seed (c): Constant initializer; a layer used on its own is built by its first call
    let mut e = Embedding::new(3, 2).embeddings_initializer(Initializer::Constant(w.clone()));
    assert!(!e.is_built());
    let out: Tensor = e.apply(&Tensor::from(array![1i64, 2, 2, 1, 2]))?;
    assert_eq!(out.as_float().unwrap().shape(), &[5, 2]);
    let mask = e.compute_mask(&Tensor::from(array![1i64, 0]), None)?;
    assert_eq!(mask, None); // mask_zero is off

    // bad input: a clear error, the layer unchanged
    let err = e.apply(&Tensor::from(array![3i64])).unwrap_err();
    assert!(matches!(err, Error::IndexOutOfRange { .. }));
    assert!(err.to_string().contains('3'));
    Ok(())
}

#[test]
fn prelude_types_are_nameable() {
    // Optimizer and Loss come from the prelude, as the contract's comment lists.
    let optimizer: Optimizer = "rmsprop".parse().unwrap();
    let loss: Loss = "mse".parse().unwrap();
    assert_eq!(optimizer.class_name(), "RMSprop");
    assert_eq!(loss, Loss::MeanSquaredError);
}
