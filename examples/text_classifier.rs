//! A small sentiment classifier: `Embedding(mask_zero)` -> `GlobalAveragePooling1D` ->
//! `Dense(1, sigmoid)` on synthetic padded sentences. Padding (id 0) is masked out of the
//! average, as in Keras. Trains with `metrics=["accuracy"]`, a validation split,
//! `EarlyStopping(restore_best_weights=True)` and `ModelCheckpoint(save_best_only=True)`,
//! printing Keras' per-epoch lines, to >= 95% accuracy on held-out sentences.
//!
//! Keras:
//! ```python
//! model.compile(Adam(0.02), "binary_crossentropy", metrics=["accuracy"])
//! model.fit(x, y, epochs=40, batch_size=32, validation_split=0.2, verbose=2, callbacks=[
//!     EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True),
//!     ModelCheckpoint("best.weights.h5", monitor="val_loss", save_best_only=True,
//!                     save_weights_only=True)])
//! ```

use ndarray::{Array2, Axis};
use ndkeras::model::callbacks::{EarlyStopping, ModelCheckpoint};
use ndkeras::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const VOCAB: usize = 60;
const MAX_LEN: usize = 10;

/// Ids 2..=11 are positive words, 12..=21 negative, the rest neutral; 0 is padding. A
/// sentence is positive when it has more positive than negative words (ties are redrawn).
fn sentences(count: usize, rng: &mut ChaCha8Rng) -> (Array2<i64>, Array2<f32>) {
    let mut x = Array2::<i64>::zeros((count, MAX_LEN));
    let mut y = Array2::<f32>::zeros((count, 1));
    let mut i = 0;
    while i < count {
        let len = rng.random_range(3..=MAX_LEN);
        let words: Vec<i64> = (0..len)
            .map(|_| match rng.random_range(0..10) {
                0..=1 => rng.random_range(2..=11),
                2..=3 => rng.random_range(12..=21),
                _ => rng.random_range(22..VOCAB as i64),
            })
            .collect();
        let score: i32 = words
            .iter()
            .map(|w| match w {
                2..=11 => 1,
                12..=21 => -1,
                _ => 0,
            })
            .sum();
        if score == 0 {
            continue;
        }
        for (j, &w) in words.iter().enumerate() {
            x[[i, j]] = w;
        }
        y[[i, 0]] = if score > 0 { 1.0 } else { 0.0 };
        i += 1;
    }
    (x, y)
}

fn accuracy(predictions: &ndarray::ArrayD<f32>, y: &Array2<f32>) -> f32 {
    let correct = predictions
        .iter()
        .zip(y.iter())
        .filter(|(p, t)| (**p > 0.5) == (**t > 0.5))
        .count();
    correct as f32 / y.len_of(Axis(0)) as f32
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let (x_train, y_train) = sentences(800, &mut rng);
    let (x_test, y_test) = sentences(200, &mut rng);

    let mut model = Sequential::new();
    model.add(
        Embedding::new(VOCAB, 8)
            .input_length(MAX_LEN)
            .mask_zero(true)
            .embeddings_initializer(Initializer::RandomUniform {
                minval: -0.05,
                maxval: 0.05,
                seed: Some(1),
            }),
    )?;
    model.add(GlobalAveragePooling1D::new())?;
    model.add(
        Dense::new(1)
            .activation(Activation::Sigmoid)
            .kernel_initializer(Initializer::GlorotUniform { seed: Some(2) }),
    )?;
    model.compile_with_metrics(
        Adam::default().learning_rate(0.02).into(),
        Loss::BinaryCrossentropy,
        vec!["accuracy".parse()?],
    )?;
    println!("{}", model.summary()?);

    let checkpoint_path =
        std::env::temp_dir().join(format!("ndkeras-sentiment-{}.npz", std::process::id()));
    let mut early_stopping = EarlyStopping::new("val_loss")
        .patience(3)
        .restore_best_weights(true);
    let mut checkpoint = ModelCheckpoint::new(&checkpoint_path)
        .monitor("val_loss")
        .save_best_only(true);
    let history = model.fit_with_callbacks(
        x_train.clone(),
        y_train.clone(),
        FitOptions::default()
            .epochs(40)
            .batch_size(32)
            .seed(3)
            .validation_split(0.2)
            .verbose(2), // Keras' one line per epoch, on standard error
        &mut [&mut early_stopping, &mut checkpoint],
    )?;
    println!(
        "{} epochs; best val_loss {:.4} after epoch {}; checkpoints after epochs {:?}",
        history.epochs(),
        early_stopping.best(),
        early_stopping.best_epoch() + 1,
        checkpoint
            .saved_epochs()
            .iter()
            .map(|e| e + 1)
            .collect::<Vec<_>>()
    );
    if let Some(val_accuracy) = history.get("val_accuracy") {
        println!("val_accuracy per epoch: {val_accuracy:.3?}");
    }
    // The checkpoint holds the best epoch's weights, which EarlyStopping restored.
    let mut reloaded = Sequential::new();
    reloaded.add(
        Embedding::new(VOCAB, 8)
            .input_length(MAX_LEN)
            .mask_zero(true),
    )?;
    reloaded.add(GlobalAveragePooling1D::new())?;
    reloaded.add(Dense::new(1).activation(Activation::Sigmoid))?;
    reloaded.load_weights(&checkpoint_path)?;
    std::fs::remove_file(&checkpoint_path)?;

    let train_accuracy = accuracy(&model.predict(x_train)?, &y_train);
    let test_accuracy = accuracy(&model.predict(x_test.clone())?, &y_test);
    assert_eq!(
        reloaded.predict(x_test.clone())?,
        model.predict(x_test)?,
        "the checkpoint is the restored best model"
    );
    println!(
        "accuracy: train {:.1}%, test {:.1}%",
        train_accuracy * 100.0,
        test_accuracy * 100.0
    );
    assert!(
        test_accuracy >= 0.95,
        "test accuracy {test_accuracy} is below 95%"
    );
    Ok(())
}
