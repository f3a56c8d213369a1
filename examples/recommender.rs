//! Matrix factorisation with the functional API: a user table and an item table, the dot
//! product of a user's and an item's vectors predicting the rating (Keras' classic
//! two-tower recommender).
//!
//! The ratings are generated: 600 users and 400 items with a hidden 4-dimensional taste
//! structure, 1 to 5 stars, 15% of the pairs rated. The model trains on 80% of them and
//! reports the held-out RMSE beside the baseline that predicts the mean rating, then the items
//! nearest to one item in the learned table.
//!
//! Keras:
//! ```python
//! user = keras.Input(shape=(1,), dtype="int32", name="user")
//! item = keras.Input(shape=(1,), dtype="int32", name="item")
//! u = layers.Flatten()(layers.Embedding(600, 8)(user))
//! i = layers.Flatten()(layers.Embedding(400, 8)(item))
//! rating = layers.Dense(1)(layers.Dot(axes=1)([u, i]))
//! model = keras.Model([user, item], rating)
//! model.compile(keras.optimizers.Adam(0.02), "mse")
//! model.fit([users, items], ratings, epochs=12, batch_size=256)
//! ```

use ndarray::{Array1, Array2, Axis};
use ndkeras::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const USERS: usize = 600;
const ITEMS: usize = 400;
const TASTES: usize = 4;

/// (user, item, rating) triples with a hidden low-rank structure.
fn ratings(rng: &mut ChaCha8Rng) -> Vec<(i64, i64, f32)> {
    let normal = |rng: &mut ChaCha8Rng| -> f32 {
        // A sum of uniforms: close enough to normal for made-up tastes.
        (0..4).map(|_| rng.random::<f32>()).sum::<f32>() - 2.0
    };
    let users = Array2::from_shape_fn((USERS, TASTES), |_| normal(rng));
    let items = Array2::from_shape_fn((ITEMS, TASTES), |_| normal(rng));
    let mut triples = Vec::new();
    for u in 0..USERS {
        for i in 0..ITEMS {
            if rng.random::<f32>() < 0.15 {
                let affinity = users.row(u).dot(&items.row(i));
                let noise = 0.3 * normal(rng);
                let stars = (3.0 + 1.5 * affinity + noise).round().clamp(1.0, 5.0);
                triples.push((u as i64, i as i64, stars));
            }
        }
    }
    triples
}

fn tensors(triples: &[(i64, i64, f32)]) -> (Vec<Tensor>, Tensor) {
    let column = |f: fn(&(i64, i64, f32)) -> i64| {
        Array2::from_shape_vec((triples.len(), 1), triples.iter().map(f).collect())
    };
    let users = column(|t| t.0).expect("one id per rating");
    let items = column(|t| t.1).expect("one id per rating");
    let stars = Array2::from_shape_vec((triples.len(), 1), triples.iter().map(|t| t.2).collect())
        .expect("one rating each");
    (
        vec![Tensor::from(users), Tensor::from(items)],
        Tensor::from(stars),
    )
}

fn rmse(predicted: &ndarray::ArrayD<f32>, truth: &[(i64, i64, f32)]) -> f32 {
    let sum: f32 = predicted
        .iter()
        .zip(truth)
        .map(|(p, t)| (p - t.2).powi(2))
        .sum();
    (sum / truth.len() as f32).sqrt()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut triples = ratings(&mut rng);
    // Shuffle, then hold out the last 20%.
    for k in (1..triples.len()).rev() {
        let j = rng.random_range(0..=k);
        triples.swap(k, j);
    }
    let split = triples.len() * 4 / 5;
    let (train, test) = triples.split_at(split);
    println!(
        "{} ratings: {} to train on, {} held out",
        triples.len(),
        train.len(),
        test.len()
    );

    let mut graph = Graph::new();
    let user = graph.input(Input::new(&[1]).dtype(DType::Int64).with_name("user"));
    let item = graph.input(Input::new(&[1]).dtype(DType::Int64).with_name("item"));
    let user_vectors = graph.apply(
        Embedding::new(USERS, 8).embeddings_initializer(Initializer::RandomNormal {
            mean: 0.0,
            stddev: 0.1,
            seed: Some(1),
        }),
        &[user],
    )?;
    let item_vectors = graph.apply(
        Embedding::new(ITEMS, 8)
            .with_name("items")
            .embeddings_initializer(Initializer::RandomNormal {
                mean: 0.0,
                stddev: 0.1,
                seed: Some(2),
            }),
        &[item],
    )?;
    let u = graph.apply(Flatten::new(), &[user_vectors])?;
    let i = graph.apply(Flatten::new(), &[item_vectors])?;
    let affinity = graph.apply(Dot::new(1), &[u, i])?;
    let rating = graph.apply(Dense::new(1), &[affinity])?;
    let mut model = graph.model(&[user, item], &[rating])?;
    println!("{}", model.summary());

    model.compile(
        Adam::default().learning_rate(0.02).into(),
        vec![Loss::MeanSquaredError],
        None,
    )?;
    let (x, y) = tensors(train);
    let history = model.fit(
        x,
        vec![y],
        FitOptions::default()
            .epochs(12)
            .batch_size(256)
            .seed(3)
            .verbose(false),
    )?;
    println!("training loss per epoch: {:?}", history.loss);

    let (x_test, _) = tensors(test);
    let predicted = model.predict(x_test)?.remove(0);
    let mean = train.iter().map(|t| t.2).sum::<f32>() / train.len() as f32;
    let baseline =
        (test.iter().map(|t| (mean - t.2).powi(2)).sum::<f32>() / test.len() as f32).sqrt();
    let model_rmse = rmse(&predicted, test);
    println!(
        "held-out RMSE: {model_rmse:.3} (predicting the mean rating {mean:.2}: {baseline:.3})"
    );
    assert!(
        model_rmse < 0.8 * baseline,
        "the factorisation should beat the mean clearly"
    );

    // The items nearest to item 0 in the learned table, by cosine similarity.
    let table = model
        .get_layer("items")
        .ok_or("the item table")?
        .get_weights()
        .remove(0)
        .into_dimensionality::<ndarray::Ix2>()?;
    let norms: Array1<f32> = table.map_axis(Axis(1), |row| row.dot(&row).sqrt().max(1e-12));
    let query = table.row(0);
    let mut similar: Vec<(usize, f32)> = (1..ITEMS)
        .map(|k| (k, table.row(k).dot(&query) / (norms[k] * norms[0])))
        .collect();
    similar.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!("items nearest to item 0: {:?}", &similar[..5]);
    Ok(())
}
