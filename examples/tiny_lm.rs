//! A character-level language model with tied input and output embeddings, trained on the
//! opening of Shakespeare's *Coriolanus* (`examples/data/coriolanus.txt`), which then writes.
//!
//! The text: the first lines of *The Tragedy of Coriolanus*, Act I, Scene 1, by William
//! Shakespeare (c. 1608), as in the "tiny Shakespeare" corpus of Andrej Karpathy's char-rnn
//! (`data/tinyshakespeare/input.txt`). The play is in the public domain; the excerpt is
//! 2.7 KB of it, unchanged.
//!
//! The model reads a window of `WINDOW` characters and gives logits for the next one:
//!
//! ```text
//! ids (batch, WINDOW) -> TokenAndPositionEmbedding -> Flatten -> Dense(tanh) -> Dense
//!     -> the same TokenAndPositionEmbedding, reversed: h · Eᵀ -> logits (batch, vocabulary)
//! ```
//!
//! The output projection is the token table itself (KerasHub's `tie_weights=True`), so
//! training updates it from both ends: the lookup's row-sparse gradient and the reverse
//! call's dense gradient are added. In Keras (KerasHub 0.32):
//!
//! ```python
//! tape = keras_hub.layers.TokenAndPositionEmbedding(vocab, WINDOW, DIM)
//! h = keras.layers.Dense(DIM)(keras.layers.Dense(HIDDEN, "tanh")(keras.layers.Flatten()(tape(ids))))
//! logits = tape.token_embedding(h, reverse=True)
//! model = keras.Model(ids, logits)
//! model.compile(keras.optimizers.Adam(0.01),
//!               keras.losses.SparseCategoricalCrossentropy(from_logits=True))
//! ```
//!
//! The loss is the cross-entropy of the logits against the next character's id
//! (`Loss::SparseCategoricalCrossentropyFromLogits`). The model then writes twice from the
//! text's first window: taking the largest logit at each step (greedy), and drawing each
//! character from the softmax of the logits with a seeded generator (reproducible).

use ndarray::{Array2, Axis};
use ndkeras::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Characters the model sees before predicting the next one.
const WINDOW: usize = 8;
/// Length of the token vectors (and of the last hidden layer, which the tied table reads).
const DIM: usize = 64;
/// Width of the hidden layer.
const HIDDEN: usize = 64;
const EPOCHS: usize = 25;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let text = include_str!("data/coriolanus.txt");
    // The vocabulary: every character of the text, sorted (ids 0..vocab).
    let mut chars: Vec<char> = text.chars().collect();
    chars.sort_unstable();
    chars.dedup();
    let vocab = chars.len();
    let id_of = |c: char| {
        chars
            .binary_search(&c)
            .map_err(|_| format!("unknown {c:?}"))
    };
    let ids: Vec<i64> = text
        .chars()
        .map(|c| id_of(c).map(|i| i as i64))
        .collect::<Result<_, _>>()?;

    // Every window of the text, and the id of the character after it.
    let samples = ids.len() - WINDOW;
    let x = Array2::from_shape_fn((samples, WINDOW), |(i, j)| ids[i + j]);
    let y = ndarray::Array1::from_shape_fn(samples, |i| ids[i + WINDOW]);
    println!(
        "{} characters, {vocab} distinct, {samples} windows of {WINDOW}",
        ids.len()
    );

    let glorot = |seed| Initializer::GlorotUniform { seed: Some(seed) };
    let mut graph = Graph::new();
    let input = graph.input(Input::new(&[WINDOW]).dtype(DType::Int64).with_name("chars"));
    let tape = graph.add(
        TokenAndPositionEmbedding::new(vocab, WINDOW, DIM)
            .embeddings_initializer(Initializer::RandomUniform {
                minval: -0.05,
                maxval: 0.05,
                seed: Some(1),
            })
            .with_name("tape"),
    )?;
    let embedded = graph.call(tape, &[input])?;
    let flat = graph.apply(Flatten::new(), &[embedded])?;
    let hidden = graph.apply(
        Dense::new(HIDDEN)
            .activation(Activation::Tanh)
            .kernel_initializer(glorot(2)),
        &[flat],
    )?;
    let h = graph.apply(Dense::new(DIM).kernel_initializer(glorot(3)), &[hidden])?;
    let logits = graph.call_with(tape, &[h], CallArgs::default().reverse(true))?;
    let mut model = graph.model(&[input], &[logits])?.with_name("tiny_lm");
    println!("{}", model.summary());

    model.compile(
        Adam::default().learning_rate(0.0015).into(),
        vec![Loss::SparseCategoricalCrossentropyFromLogits],
        None,
    )?;
    let history = model.fit(
        vec![Tensor::from(x.clone())],
        vec![Tensor::from(y)],
        FitOptions::default()
            .epochs(EPOCHS)
            .batch_size(32)
            .seed(4)
            .verbose(false),
    )?;
    for (epoch, loss) in history.loss.iter().enumerate() {
        println!("epoch {:>2}: loss {loss:.5}", epoch + 1);
    }
    let (first, last) = (history.loss[0], history.loss[EPOCHS - 1]);
    assert!(last < first * 0.8, "the loss went from {first} to {last}");

    // How often the largest logit is the next character of the text.
    let predictions = model.predict(vec![Tensor::from(x)])?;
    let correct = predictions[0]
        .axis_iter(Axis(0))
        .enumerate()
        .filter(|(i, row)| argmax(row.iter().copied()) == ids[i + WINDOW] as usize)
        .count();
    let accuracy = correct as f32 / samples as f32;
    println!(
        "next-character accuracy on the text: {:.1}%",
        100.0 * accuracy
    );
    // The most frequent character (a space) alone would be right about 15% of the time.
    assert!(accuracy > 0.4, "next-character accuracy {accuracy}");

    // Writing, from the text's first window: greedy (the largest logit), then sampled.
    let greedy = generate(&mut model, &ids[..WINDOW], 120, |logits| {
        argmax(logits.iter().copied())
    })?;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let sampled = generate(&mut model, &ids[..WINDOW], 400, |logits| {
        sample(logits, &mut rng)
    })?;
    let as_text = |ids: &[i64]| ids.iter().map(|&i| chars[i as usize]).collect::<String>();
    println!("--- greedy, from the first {WINDOW} characters ---");
    println!("{}", as_text(&greedy));
    println!("--- sampled (seed 5) ---");
    println!("{}", as_text(&sampled));
    Ok(())
}

/// `start` followed by `count` characters, each chosen by `choose` from the logits the
/// model gives for the last `WINDOW` characters.
fn generate(
    model: &mut Model,
    start: &[i64],
    count: usize,
    mut choose: impl FnMut(&[f32]) -> usize,
) -> Result<Vec<i64>, Box<dyn std::error::Error>> {
    let mut text = start.to_vec();
    for _ in 0..count {
        let context = text[text.len() - WINDOW..].to_vec();
        let logits = model.predict(vec![Tensor::from(Array2::from_shape_vec(
            (1, WINDOW),
            context,
        )?)])?;
        let logits = logits[0].as_slice().ok_or("logits not contiguous")?;
        text.push(choose(logits) as i64);
    }
    Ok(text)
}

/// A character drawn from the softmax of the logits.
fn sample(logits: &[f32], rng: &mut ChaCha8Rng) -> usize {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f32> = logits.iter().map(|&z| (z - max).exp()).collect();
    let total: f32 = weights.iter().sum();
    let mut draw = rng.random_range(0.0..total);
    for (i, w) in weights.iter().enumerate() {
        if draw < *w {
            return i;
        }
        draw -= w;
    }
    argmax(logits.iter().copied())
}

/// The index of the largest value (the first one on ties).
fn argmax(values: impl IntoIterator<Item = f32>) -> usize {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, v) in values.into_iter().enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}
