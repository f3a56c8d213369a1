//! Embedding lookup beside baselines measured in the same run (absolute times drift on a
//! shared machine; ratios hold):
//! - `memcpy`: a copy of the same number of output bytes, the speed of memory;
//! - `naive_gather`: a `copy_from_slice` loop over a plain `Vec` table into a freshly
//!   allocated output, what a straightforward Rust gather does.
//!
//! Cases: (a) vocab 1,000 x dim 64, ids (32, 10); (b) vocab 100,000 x dim 128, ids
//! (256, 128); (c) vocab 2,000,000 x dim 64, ids (4096, 64). `lookup_into` runs on 1 and on 2
//! threads; `call` is the allocating layer call. For (c), the table is also written as a
//! 512 MB `.npy` and looked up memory-mapped, and opening it mapped is timed beside reading it
//! into memory (`open_table`): the mapped open must not grow with the table.
//!
//! `build_2m_x64`: building a 2M x 64 layer from explicit `weights` (the initializer must not
//! run: one copy of the table) beside a plain copy of the same array and a build that runs
//! the default initializer.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ndarray::{ArrayD, IxDyn};
use ndkeras::prelude::*;

fn naive_gather(table: &[f32], dim: usize, ids: &[i64]) -> Vec<f32> {
    let mut out = vec![0.0f32; ids.len() * dim];
    for (target, &id) in out.chunks_exact_mut(dim).zip(ids) {
        let row = id as usize;
        target.copy_from_slice(&table[row * dim..(row + 1) * dim]);
    }
    out
}

fn lookup(c: &mut Criterion) {
    let cases = [
        ("a_1k_x64", 1_000usize, 64usize, (32usize, 10usize)),
        ("b_100k_x128", 100_000, 128, (256, 128)),
        ("c_2m_x64", 2_000_000, 64, (4096, 64)),
    ];
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a pool");
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("a pool");
    for (label, vocab, dim, (rows, cols)) in cases {
        let init = Initializer::RandomUniform {
            minval: -0.05,
            maxval: 0.05,
            seed: Some(1),
        };
        let table = init.initialize(&[vocab, dim]).expect("a table");
        let plain_table: Vec<f32> = table.iter().copied().collect();
        let mut layer = Embedding::new(vocab, dim).weights(vec![table]);
        // Ids spread over the whole table with a fixed stride (no RNG in the timed loop).
        let id_values: Vec<i64> = (0..rows * cols)
            .map(|k| (k * 7919 % vocab) as i64)
            .collect();
        let ids = Tensor::from(
            ArrayD::from_shape_vec(IxDyn(&[rows, cols]), id_values.clone()).expect("ids"),
        );
        layer.apply(&ids).expect("valid ids build the layer");

        let out_len = rows * cols * dim;
        let source = vec![1.0f32; out_len];
        let mut target = vec![0.0f32; out_len];
        let mut out = ArrayD::<f32>::zeros(IxDyn(&[rows, cols, dim]));

        let mut group = c.benchmark_group(label);
        group.throughput(Throughput::Bytes((out_len * 4) as u64));
        if out_len > 1 << 22 {
            group
                .sample_size(20)
                .measurement_time(Duration::from_secs(5));
        }
        group.bench_function(BenchmarkId::new("memcpy_baseline", out_len), |b| {
            b.iter(|| {
                target.copy_from_slice(black_box(&source));
                black_box(&target);
            })
        });
        group.bench_function(BenchmarkId::new("naive_gather_baseline", out_len), |b| {
            b.iter(|| {
                black_box(naive_gather(
                    black_box(&plain_table),
                    dim,
                    black_box(&id_values),
                ))
            })
        });
        group.bench_function(BenchmarkId::new("lookup_into_1_thread", out_len), |b| {
            one.install(|| {
                b.iter(|| {
                    layer
                        .lookup_into(black_box(&ids), out.view_mut())
                        .expect("valid ids")
                })
            })
        });
        group.bench_function(BenchmarkId::new("lookup_into_2_threads", out_len), |b| {
            two.install(|| {
                b.iter(|| {
                    layer
                        .lookup_into(black_box(&ids), out.view_mut())
                        .expect("valid ids")
                })
            })
        });
        group.bench_function(BenchmarkId::new("call_allocating", out_len), |b| {
            b.iter(|| black_box(layer.call(black_box(&ids)).expect("valid ids")))
        });
        if vocab >= 1_000_000 {
            let path =
                std::env::temp_dir().join(format!("ndkeras-bench-{}.npy", std::process::id()));
            let table = layer.embeddings().expect("built").view().into_dyn();
            ndkeras::io::npy::write_npy(&path, &table).expect("a writable temp dir");
            let mapped =
                Embedding::from_mapped(ndkeras::io::npy::map_npy(&path).expect("a valid file"))
                    .expect("a valid table");
            group.bench_function(
                BenchmarkId::new("lookup_into_mapped_1_thread", out_len),
                |b| {
                    one.install(|| {
                        b.iter(|| {
                            mapped
                                .lookup_into(black_box(&ids), out.view_mut())
                                .expect("valid ids")
                        })
                    })
                },
            );
            group.finish();
            let mut open = c.benchmark_group("open_table_2m_x64");
            open.sample_size(10);
            open.bench_function("mapped", |b| {
                b.iter(|| black_box(ndkeras::io::npy::map_npy(&path).expect("a valid file")))
            });
            open.bench_function("read_into_memory", |b| {
                b.iter(|| black_box(ndkeras::io::npy::read_npy(&path).expect("a valid file")))
            });
            open.finish();
            let _ = std::fs::remove_file(&path);
            continue;
        }
        group.finish();
    }
}

fn build(c: &mut Criterion) {
    let (vocab, dim) = (2_000_000usize, 64usize);
    let table = ArrayD::from_shape_fn(IxDyn(&[vocab, dim]), |index| {
        ((index[0] * 31 + index[1]) % 1000) as f32 * 1e-3
    });
    let mut group = c.benchmark_group("build_2m_x64");
    group
        .sample_size(10)
        .throughput(Throughput::Bytes((vocab * dim * 4) as u64));
    group.bench_function("copy_of_the_table_baseline", |b| {
        b.iter(|| black_box(table.to_owned()))
    });
    group.bench_function("build_from_weights", |b| {
        b.iter_batched(
            || Embedding::new(vocab, dim).weights(vec![table.clone()]),
            |mut layer| {
                layer.build(&[None, None]).expect("valid weights");
                layer
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("build_with_initializer", |b| {
        b.iter_batched(
            || Embedding::new(vocab, dim),
            |mut layer| {
                layer.build(&[None, None]).expect("a table that fits");
                layer
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, lookup, build);
criterion_main!(benches);
