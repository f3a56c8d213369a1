//! Sentiment from raw strings: `TextVectorization` learns its vocabulary from the training
//! texts (`adapt`) and sits *inside* the model, so the model trains on strings and predicts
//! from strings, with the ids tf_keras 2.21 would give: `TextVectorization` ->
//! `Embedding(mask_zero)` -> `GlobalAveragePooling1D` -> `Dense(1, sigmoid)`, with a
//! validation split and early stopping. The model's Keras JSON and the vocabulary file are
//! written as tf_keras writes them, and read back into a model that predicts the same.
//!
//! Keras:
//! ```python
//! vectorize = TextVectorization(max_tokens=200, output_sequence_length=12)
//! vectorize.adapt(train_texts)
//! model = Sequential([keras.Input(shape=(), dtype=tf.string), vectorize, Embedding(vectorize.vocabulary_size(), 16, mask_zero=True),
//!                     GlobalAveragePooling1D(), Dense(1, activation="sigmoid")])
//! model.compile(Adam(0.02), "binary_crossentropy", metrics=["accuracy"])
//! model.fit(train_texts, y, epochs=30, validation_split=0.2,
//!           callbacks=[EarlyStopping(patience=3, restore_best_weights=True)])
//! model.predict(test_texts)
//! ```
//!
//! The texts are written to a file and read back, as a user would adapt on a corpus on disk.

use std::io::Write as _;

use ndarray::Array2;
use ndkeras::model::InputSpec;
use ndkeras::model::callbacks::EarlyStopping;
use ndkeras::prelude::*;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const GOOD: &[&str] = &["great", "lovely", "superb", "Wonderful", "fun", "brilliant"];
const BAD: &[&str] = &["awful", "boring", "dull", "Terrible", "bad", "clumsy"];
const NEUTRAL: &[&str] = &[
    "the", "film", "plot", "was", "a", "and", "acting", "music", "it", "ending", "quite", "really",
    "story", "cast", "movie", "scenes",
];

/// A review with more good than bad words (positive) or the other way round, with
/// punctuation and capitals that `lower_and_strip_punctuation` removes.
fn review(rng: &mut ChaCha8Rng) -> (String, f32) {
    loop {
        let length = rng.random_range(4..=12);
        let (mut good, mut bad) = (0, 0);
        let words: Vec<&str> = (0..length)
            .map(|_| match rng.random_range(0..10) {
                0..=1 => {
                    good += 1;
                    *GOOD.choose(rng).unwrap_or(&"fun")
                }
                2..=3 => {
                    bad += 1;
                    *BAD.choose(rng).unwrap_or(&"bad")
                }
                _ => *NEUTRAL.choose(rng).unwrap_or(&"the"),
            })
            .collect();
        if good != bad {
            let text = format!("{}!", words.join(" "));
            return (text, if good > bad { 1.0 } else { 0.0 });
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (texts, labels): (Vec<String>, Vec<f32>) = (0..600).map(|_| review(&mut rng)).unzip();

    // The corpus on disk, one review per line, read back to adapt the vocabulary.
    let path = std::env::temp_dir().join(format!("ndkeras-reviews-{}.txt", std::process::id()));
    let mut file = std::fs::File::create(&path)?;
    for text in &texts {
        writeln!(file, "{text}")?;
    }
    drop(file);
    let corpus = std::fs::read_to_string(&path)?;
    std::fs::remove_file(&path)?;

    let (train, test) = (&texts[..500], &texts[500..]);
    let mut vectorize = TextVectorization::builder()
        .max_tokens(200)
        .output_sequence_length(12)
        .build()?;
    vectorize.adapt(corpus.lines().take(train.len()))?;
    println!(
        "vocabulary: {} tokens, the most frequent {:?}",
        vectorize.vocabulary_size(),
        &vectorize.get_vocabulary(true)?[..6]
    );
    println!(
        "\"{}\" -> {:?}",
        train[0],
        vectorize.call(&train[..1])?.row(0).to_vec()
    );
    let y = Array2::from_shape_vec((train.len(), 1), labels[..500].to_vec())?;

    let vocabulary_size = vectorize.vocabulary_size();
    // Keras' `keras.Input(shape=(), dtype=tf.string)`: one text per sample.
    let mut model = Sequential::new().with_input(InputSpec {
        batch_shape: vec![None],
        dtype: "string".into(),
        name: "text".into(),
        sparse: false,
        ragged: false,
    })?;
    model.add(vectorize)?;
    model.add(Embedding::new(vocabulary_size, 16).mask_zero(true))?;
    model.add(GlobalAveragePooling1D::new())?;
    model.add(Dense::new(1).activation("sigmoid"))?;
    model.compile_with_metrics(
        Adam::default().learning_rate(0.02).into(),
        Loss::BinaryCrossentropy,
        vec!["accuracy".parse()?],
    )?;
    let mut stop = EarlyStopping::new("val_loss")
        .patience(3)
        .restore_best_weights(true);
    let options = FitOptions::default()
        .epochs(30)
        .validation_split(0.2)
        .seed(1)
        .verbose(2);
    model.fit_with_callbacks(Tensor::from(train), y, options, &mut [&mut stop])?;

    // Held-out reviews, straight from their text.
    let expected = &labels[500..];
    let probabilities = model.predict(Tensor::from(test))?;
    let correct = probabilities
        .iter()
        .zip(expected)
        .filter(|&(p, &label)| (*p > 0.5) == (label > 0.5))
        .count();
    let accuracy = correct as f32 / expected.len() as f32;
    println!("held-out accuracy: {:.1}%", accuracy * 100.0);
    assert!(accuracy >= 0.9, "held-out accuracy {accuracy}");

    // The architecture as Keras JSON (an adapted vocabulary is an asset in tf_keras, not part
    // of the JSON: it goes to its own file), the weights, and back.
    let json = model.to_json();
    let dir = std::env::temp_dir().join(format!("ndkeras-reviews-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let vocabulary = dir.join("vocabulary.txt");
    let vectorize: &TextVectorization = model.layer(0).ok_or("no TextVectorization")?;
    vectorize.save_vocabulary(&vocabulary)?;
    let mut reloaded = Sequential::from_json(&json)?;
    reloaded
        .layer_mut::<TextVectorization>(0)
        .ok_or("no TextVectorization")?
        .load_vocabulary(&vocabulary)?;
    reloaded.set_weights(model.get_weights())?;
    std::fs::remove_dir_all(&dir)?;
    let again = reloaded.predict(Tensor::from(test))?;
    assert_eq!(again, probabilities);
    println!("reloaded from JSON + vocabulary file: the same predictions");
    Ok(())
}
