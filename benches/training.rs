//! One training step of an embedding model on a 100,000 x 128 and a 2,000,000 x 64 table,
//! batch 256 x 128 ids, for SGD, RMSprop and lazy Adam, beside Keras' dense Adam update on
//! the same tables as the baseline measured in the same run.
//!
//! What to read: a sparse step's time must not grow with the vocabulary (2M within 1.5x of
//! 100k, although the 100k table has twice the vector length); the dense baseline grows with
//! the table, and the ratio dense / sparse shows what the row-sparse update saves.

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

criterion_group!(benches, training_step);
criterion_main!(benches);
