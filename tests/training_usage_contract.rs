//! The "Usage that must compile and pass as written" block of the training issue.

use ndarray::{Array2, ArrayD, array};
use ndkeras::prelude::*; // + Dense, Flatten, GlobalAveragePooling1D, Activation, SGD, RMSprop,
//   Adam, Adagrad, Constraint, Regularizer, FitOptions, History

#[test]
fn training_usage_compiles_and_passes() -> Result<(), Box<dyn std::error::Error>> {
    let table =
        Array2::<f32>::from_shape_fn((12, 5), |(i, j)| (i as f32 - j as f32) / 10.0).into_dyn();
    let kernel = Array2::<f32>::from_elem((5, 1), 0.1).into_dyn();
    let mut model = Sequential::new();
    model.add(Embedding::new(12, 5).mask_zero(true).weights(vec![table]))?;
    model.add(GlobalAveragePooling1D::new())?;
    model.add(
        Dense::new(1)
            .activation(Activation::Sigmoid)
            .weights(vec![kernel, ArrayD::zeros(vec![1])]),
    )?;
    model.compile(
        Adam::default().learning_rate(0.01).into(),
        Loss::BinaryCrossentropy,
    )?;
    let x = array![[3i64, 4, 5, 0], [6, 7, 0, 0]];
    let y = array![[1.0f32], [0.0]];
    let history: History = model.fit(
        x.clone(),
        y.clone(),
        FitOptions::default()
            .epochs(3)
            .batch_size(1)
            .shuffle(false)
            .verbose(false),
    )?;
    assert_eq!(history.loss.len(), 3);
    let loss: f32 = model.evaluate(x, y)?;
    assert!(loss.is_finite());

    // optimizers with Keras' parameter names; a frozen table; constraint and regularizer
    let _ = SGD::new(0.05).momentum(0.9).nesterov(true);
    let _ = RMSprop::default()
        .learning_rate(0.01)
        .rho(0.8)
        .momentum(0.5)
        .centered(false);
    let _ = Adam::default().amsgrad(true);
    let _ = Adam::default().lazy(true);
    let _ = Adagrad::default().learning_rate(0.1);
    let _ = Embedding::new(8, 3)
        .trainable(false)
        .embeddings_constraint(Constraint::MaxNorm {
            max_value: 1.0,
            axis: 0,
        })
        .embeddings_regularizer(Regularizer::L2(0.01));
    let _: Loss = "sparse_categorical_crossentropy".parse()?;
    let _ = Flatten::new();
    Ok(())
}
