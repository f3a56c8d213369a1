//! `EmbeddingBag` (mean) against its Keras baseline, `Embedding` followed by
//! `GlobalAveragePooling1D`, on the same bags and table, measured in the same run. At the end
//! the bench prints each bag call's median over the baseline's median.
//!
//! - `forward`: the bag's one-pass gather-and-reduce beside the lookup of the
//!   `(bags, length, dim)` array and its average;
//! - `forward_backward`: the same plus the backward pass down to the table's row-sparse
//!   gradient (through the pooling's input gradient for the baseline).
//!
//! Case: table 100,000 x 64, 1,024 bags of 50 ids.
//!
//! Short run: `cargo bench --bench bag -- --warm-up-time 1 --measurement-time 3`.

#[path = "common/mod.rs"]
mod common;
use common::median_of;
use std::hint::black_box;
use std::time::SystemTime;

use criterion::Criterion;
use ndarray::{Array2, ArrayD, IxDyn};
use ndkeras::prelude::*;

const VOCAB: usize = 100_000;
const DIM: usize = 64;
const BAGS: usize = 1024;
const LENGTH: usize = 50;

/// Ids from a fixed xorshift sequence (no padding, so both models average the same rows).
fn bags() -> Array2<i64> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    Array2::from_shape_fn((BAGS, LENGTH), |_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % VOCAB as u64) as i64
    })
}

fn table() -> Array2<f32> {
    Array2::from_shape_fn((VOCAB, DIM), |(r, c)| ((r * 31 + c * 7) % 97) as f32 / 97.0)
}

fn bench(criterion: &mut Criterion) {
    let ids = Tensor::from(bags());
    let mut bag = EmbeddingBag::new(VOCAB, DIM).weights(vec![table()]);
    bag.apply(&ids).unwrap();
    let mut embedding = Embedding::new(VOCAB, DIM).weights(vec![table()]);
    embedding.apply(&ids).unwrap();
    let mut pooling = GlobalAveragePooling1D::new();
    // Both give the same bags.
    let looked_up = embedding.call(&ids).unwrap();
    let baseline = pooling.call(&looked_up).unwrap();
    let bagged = bag.call(&ids).unwrap();
    let gap = baseline
        .as_float()
        .unwrap()
        .iter()
        .zip(bagged.as_float().unwrap())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(gap < 1e-4, "the two computations differ by {gap}");
    let output_gradient = ArrayD::<f32>::ones(IxDyn(&[BAGS, DIM]));

    let mut group = criterion.benchmark_group("bag_mean_100k_x64_1024x50");
    group.bench_function("embedding_then_pooling", |b| {
        b.iter(|| {
            let looked_up = embedding.call(black_box(&ids)).unwrap();
            black_box(pooling.call(&looked_up).unwrap())
        })
    });
    group.bench_function("embedding_bag", |b| {
        b.iter(|| black_box(bag.call(black_box(&ids)).unwrap()))
    });
    group.bench_function("embedding_then_pooling_backward", |b| {
        b.iter(|| {
            let looked_up = embedding.forward(black_box(&ids), true).unwrap();
            black_box(pooling.forward(&looked_up, true).unwrap());
            let pooled = pooling
                .backward(&looked_up, output_gradient.clone())
                .unwrap();
            let gradient = pooled.input_gradient.unwrap();
            black_box(embedding.backward(&ids, gradient).unwrap())
        })
    });
    group.bench_function("embedding_bag_backward", |b| {
        b.iter(|| {
            black_box(bag.forward(black_box(&ids), true).unwrap());
            black_box(bag.backward(&ids, output_gradient.clone()).unwrap())
        })
    });
    group.finish();
}

fn main() {
    let since = SystemTime::now();
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
    for (bag, baseline) in [
        ("embedding_bag", "embedding_then_pooling"),
        ("embedding_bag_backward", "embedding_then_pooling_backward"),
    ] {
        if let (Some(bag_time), Some(base_time)) = (
            median_of("bag_mean_100k_x64_1024x50", bag, since),
            median_of("bag_mean_100k_x64_1024x50", baseline, since),
        ) {
            println!(
                "{bag}: {:.3} ms, {baseline}: {:.3} ms, ratio {:.2} (bag / baseline)",
                bag_time / 1e6,
                base_time / 1e6,
                bag_time / base_time
            );
        }
    }
}
