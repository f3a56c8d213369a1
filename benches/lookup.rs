//! Embedding lookup throughput, reported beside a `memcpy` of the same number of output
//! bytes measured in the same run (absolute times drift on a shared machine; the ratio holds).
//!
//! Cases: (a) vocab 1,000 x dim 64, ids (32, 10); (b) vocab 100,000 x dim 128, ids (256, 128).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ndarray::Array2;
use ndkeras::prelude::*;
use std::hint::black_box;

fn lookup(c: &mut Criterion) {
    let cases = [
        ("a_1k_x64", 1_000usize, 64usize, (32usize, 10usize)),
        ("b_100k_x128", 100_000, 128, (256, 128)),
    ];
    for (label, vocab, dim, (rows, cols)) in cases {
        let mut layer =
            Embedding::new(vocab, dim).embeddings_initializer(Initializer::RandomUniform {
                minval: -0.05,
                maxval: 0.05,
                seed: Some(1),
            });
        // Ids spread over the table with a fixed stride (no RNG in the timed loop).
        let ids = Array2::<i64>::from_shape_fn((rows, cols), |(i, j)| {
            ((i * cols + j) * 7919 % vocab) as i64
        });
        let ids = Tensor::from(ids);
        layer.apply(&ids).expect("valid ids build the layer");

        let out_bytes = rows * cols * dim * std::mem::size_of::<f32>();
        let source = vec![1.0f32; rows * cols * dim];
        let mut target = vec![0.0f32; rows * cols * dim];

        let mut group = c.benchmark_group(label);
        group.throughput(Throughput::Bytes(out_bytes as u64));
        group.bench_function(BenchmarkId::new("memcpy_baseline", out_bytes), |b| {
            b.iter(|| {
                target.copy_from_slice(black_box(&source));
                black_box(&target);
            })
        });
        group.bench_function(BenchmarkId::new("embedding_call", out_bytes), |b| {
            b.iter(|| black_box(layer.call(black_box(&ids)).expect("valid ids")))
        });
        group.finish();
    }
}

criterion_group!(benches, lookup);
criterion_main!(benches);
