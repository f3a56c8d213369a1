//! One training step of an embedding model on a 100,000 x 128 and a 2,000,000 x 64 table,
//! batch 256 x 128 ids, for SGD, RMSprop and lazy Adam, beside Keras' dense Adam update on
//! the same tables as the baseline measured in the same run.
//!
//! What to read: a sparse step's time must not grow with the vocabulary (2M within 1.5x of
//! 100k, although the 100k table has twice the vector length); the dense baseline grows with
//! the table, and the ratio dense / sparse shows what the row-sparse update saves.
//!
//! `loss_256x128x128`: the loss value and gradient of one such batch (`Loss::compute`, mse
//! and mae) beside a hand-written single pass that writes the gradient into a fresh `Vec` and
//! sums the loss in `f32`, the baseline measured in the same run.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ndarray::{Array2, Array3};
use ndkeras::prelude::*;

const BATCH: usize = 256;
const STEPS: usize = 128;

fn model(vocab: usize, dim: usize, optimizer: Optimizer) -> Sequential {
    let mut model = Sequential::new();
    model
        .add(
            Embedding::new(vocab, dim)
                .input_length(STEPS)
                .embeddings_initializer(Initializer::RandomUniform {
                    minval: -0.05,
                    maxval: 0.05,
                    seed: Some(1),
                }),
        )
        .expect("a valid embedding");
    model
        .compile(optimizer, Loss::MeanSquaredError)
        .expect("valid settings");
    model
}

fn training_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("training_step");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for (vocab, dim) in [(100_000usize, 128usize), (2_000_000, 64)] {
        // Ids spread over the whole table with a fixed stride.
        let x = Array2::<i64>::from_shape_fn((BATCH, STEPS), |(i, j)| {
            ((i * STEPS + j) * 7919 % vocab) as i64
        });
        let y = Array3::<f32>::from_elem((BATCH, STEPS, dim), 0.01);
        let optimizers: [(&str, Optimizer); 4] = [
            ("sgd", SGD::new(0.1).into()),
            ("rmsprop", RMSprop::default().into()),
            ("adam_lazy", Adam::default().lazy(true).into()),
            ("adam_dense_baseline", Adam::default().into()),
        ];
        for (name, optimizer) in optimizers {
            let mut model = model(vocab, dim, optimizer);
            let label = format!("{vocab}x{dim}");
            group.bench_function(BenchmarkId::new(name, &label), |b| {
                b.iter(|| {
                    black_box(
                        model
                            .train_on_batch(x.clone(), y.clone())
                            .expect("a valid step"),
                    )
                })
            });
        }
    }
    group.finish();
}

/// The hand-written mse: one pass, the gradient collected into a fresh `Vec`, a running
/// `f32` sum.
fn hand_written_mse(prediction: &[f32], targets: &[f32]) -> (f32, Vec<f32>) {
    let scale = 2.0 / prediction.len() as f32;
    let mut sum = 0.0f32;
    let gradient = prediction
        .iter()
        .zip(targets)
        .map(|(&p, &t)| {
            sum += (p - t) * (p - t);
            scale * (p - t)
        })
        .collect();
    (sum / prediction.len() as f32, gradient)
}

fn loss(c: &mut Criterion) {
    let dim = 128;
    let prediction = Array3::<f32>::from_shape_fn((BATCH, STEPS, dim), |(i, j, k)| {
        ((i * 31 + j * 7 + k) % 100) as f32 * 1e-3
    })
    .into_dyn();
    let targets = Array3::<f32>::from_elem((BATCH, STEPS, dim), 0.01).into_dyn();
    let mut group = c.benchmark_group("loss_256x128x128");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("hand_written_mse_baseline", |b| {
        b.iter(|| {
            black_box(hand_written_mse(
                black_box(prediction.as_slice().expect("standard layout")),
                targets.as_slice().expect("standard layout"),
            ))
        })
    });
    for loss in [Loss::MeanSquaredError, Loss::MeanAbsoluteError] {
        group.bench_function(loss.keras_name(), |b| {
            b.iter(|| {
                black_box(
                    loss.compute(black_box(&prediction), &targets, None, None)
                        .expect("matching shapes"),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, training_step, loss);
criterion_main!(benches);
