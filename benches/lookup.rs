//! Embedding lookup beside baselines measured in the same run (absolute times drift on a
//! shared machine; ratios hold). At the end the bench prints, for every case it ran, each
//! call's median over the baselines' medians of the same run.
//!
//! Baselines:
//! - `memcpy`: a copy of the same number of output bytes into a warm buffer, the speed of
//!   memory;
//! - `hand_written_into`: a `copy_from_slice` loop over a plain `Vec` table into a warm
//!   buffer, the best a straightforward Rust gather does (no checks beyond slice bounds);
//! - `hand_written_allocating`: the same loop into a fresh `vec![0.0; n]`.
//!
//! The calls a user writes: `apply` (the layer called as Keras' `layer(ids)`), `predict` (a
//! `Sequential` holding one `Embedding`) and `lookup_into` (into a warm buffer the caller
//! keeps), each on 1 and on 2 threads.
//!
//! Cases: w1 = vocab 1,000 x dim 64, ids (32, 10); w2 = vocab 100,000 x dim 128, ids
//! (256, 128); w3 = vocab 2,000,000 x dim 64, ids (4096, 64). For w3, the table is also
//! written as a 512 MB `.npy` and looked up memory-mapped (`lookup_into_mapped`), and opening
//! it mapped is timed beside reading it into memory (`open_table`): the mapped open must not
//! grow with the table. Those run only when a filter names them (`mapped`, `open_table`).
//!
//! `build_2m_x64`: building a 2M x 64 layer from explicit `weights` (the initializer must not
//! run: one copy of the table) beside a plain copy of the same array and a build that runs
//! the default initializer.
//!
//! `quantized_w2_100k_x128`, `quantized_w3_2m_x64`: the same lookups (`lookup_into` and
//! `apply`, 1 thread) from the float32 table (the baseline of the same run) and from the table
//! quantized int8, int4 per-channel and int4 grouped (block 128), and stored float16 and
//! bfloat16. Printed beside them: the table's bytes per row, and the quantisation error per
//! row over a sample of rows (every 7th row of w2, every 101st of w3): the largest absolute
//! error, and the largest error relative to the row's largest |value|. Run only when a
//! filter names them (`quantized`).
//!
//! Short run of one case: `cargo bench --bench lookup -- --warm-up-time 1 --measurement-time 3 w2`.

#[path = "common/mod.rs"]
mod common;
use common::median_of;
use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{BatchSize, Criterion, Throughput};
use ndarray::{ArrayD, IxDyn};
use ndkeras::prelude::*;
use ndkeras::quantization::{QuantizationMode, TableDType};

/// The hand-written gather: one `copy_from_slice` per id, into `out`.
fn hand_written_into(table: &[f32], dim: usize, ids: &[i64], out: &mut [f32]) {
    for (target, &id) in out.chunks_exact_mut(dim).zip(ids) {
        let row = id as usize;
        target.copy_from_slice(&table[row * dim..(row + 1) * dim]);
    }
}

/// The hand-written gather into a fresh zeroed buffer.
fn hand_written_allocating(table: &[f32], dim: usize, ids: &[i64]) -> Vec<f32> {
    let mut out = vec![0.0f32; ids.len() * dim];
    hand_written_into(table, dim, ids, &mut out);
    out
}

/// The free arguments of the command line: criterion's filter (option values left out).
fn filters() -> Vec<String> {
    const WITH_VALUE: [&str; 12] = [
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--save-baseline",
        "--baseline",
        "--load-baseline",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--nresamples",
        "--profile-time",
        "--color",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    args.iter()
        .enumerate()
        .filter(|(k, a)| {
            !a.starts_with('-') && (*k == 0 || !WITH_VALUE.contains(&args[k - 1].as_str()))
        })
        .map(|(_, a)| a.clone())
        .collect()
}

/// Whether the filter names `what` (a filter naming nothing in particular runs everything).
fn filter_names(what: &str) -> bool {
    filters()
        .iter()
        .any(|f| what.contains(f.as_str()) || f.contains(what))
}

/// Whether a case must be set up: no filter, a filter for all cases, or one naming it
/// (`w2`, `w2_100k_x128/apply`); building a 512 MB table takes seconds.
fn case_selected(label: &str) -> bool {
    let filters = filters();
    filters.is_empty()
        || filters
            .iter()
            .any(|f| !f.starts_with('w') || f.contains(&label[..2]) || label.contains(f.as_str()))
}

const CASES: [(&str, usize, usize, (usize, usize)); 3] = [
    ("w1_1k_x64", 1_000, 64, (32, 10)),
    ("w2_100k_x128", 100_000, 128, (256, 128)),
    ("w3_2m_x64", 2_000_000, 64, (4096, 64)),
];

fn lookup(c: &mut Criterion) {
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a pool");
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("a pool");
    for (label, vocab, dim, (rows, cols)) in CASES {
        if !case_selected(label) {
            continue;
        }
        let init = Initializer::RandomUniform {
            minval: -0.05,
            maxval: 0.05,
            seed: Some(1),
        };
        let table = init.initialize(&[vocab, dim]).expect("a table");
        let plain_table: Vec<f32> = table.iter().copied().collect();
        let mut layer = Embedding::new(vocab, dim).weights(vec![table.clone()]);
        let mut model = Sequential::new();
        model
            .add(Embedding::new(vocab, dim).weights(vec![table]))
            .expect("a valid layer");
        // Ids spread over the whole table with a fixed stride (no RNG in the timed loop).
        let id_values: Vec<i64> = (0..rows * cols)
            .map(|k| (k * 7919 % vocab) as i64)
            .collect();
        let id_array =
            ArrayD::from_shape_vec(IxDyn(&[rows, cols]), id_values.clone()).expect("ids");
        let ids = Tensor::from(id_array.clone());
        layer.apply(&ids).expect("valid ids build the layer");
        model
            .predict(id_array.clone())
            .expect("valid ids build the model");

        let out_len = rows * cols * dim;
        let source = vec![1.0f32; out_len];
        let mut target = vec![0.0f32; out_len];
        let mut out = ArrayD::<f32>::zeros(IxDyn(&[rows, cols, dim]));

        let mut group = c.benchmark_group(label);
        group.throughput(Throughput::Bytes((out_len * 4) as u64));
        if out_len > 1 << 22 {
            group.sample_size(20);
        }
        group.bench_function("memcpy", |b| {
            b.iter(|| {
                target.copy_from_slice(black_box(&source));
                black_box(&target);
            })
        });
        group.bench_function("hand_written_into", |b| {
            b.iter(|| {
                hand_written_into(
                    black_box(&plain_table),
                    dim,
                    black_box(&id_values),
                    &mut target,
                );
                black_box(&target);
            })
        });
        group.bench_function("hand_written_allocating", |b| {
            b.iter(|| {
                black_box(hand_written_allocating(
                    black_box(&plain_table),
                    dim,
                    black_box(&id_values),
                ))
            })
        });
        for (threads, pool) in [("1t", &one), ("2t", &two)] {
            group.bench_function(format!("lookup_into_{threads}"), |b| {
                pool.install(|| {
                    b.iter(|| {
                        layer
                            .lookup_into(black_box(&ids), out.view_mut())
                            .expect("valid ids")
                    })
                })
            });
            group.bench_function(format!("apply_{threads}"), |b| {
                pool.install(|| {
                    b.iter(|| black_box(layer.apply(black_box(&ids)).expect("valid ids")))
                })
            });
            group.bench_function(format!("predict_{threads}"), |b| {
                pool.install(|| {
                    b.iter_batched(
                        || id_array.clone(),
                        |x| black_box(model.predict(x).expect("valid ids")),
                        BatchSize::PerIteration,
                    )
                })
            });
        }
        if vocab >= 1_000_000
            && (filters().is_empty() || filter_names("mapped") || filter_names("open_table"))
        {
            let path =
                std::env::temp_dir().join(format!("ndkeras-bench-{}.npy", std::process::id()));
            let table = layer.embeddings().expect("built").view().into_dyn();
            ndkeras::io::npy::write_npy(&path, &table).expect("a writable temp dir");
            let mapped =
                Embedding::from_mapped(ndkeras::io::npy::map_npy(&path).expect("a valid file"))
                    .expect("a valid table");
            group.bench_function("lookup_into_mapped_1t", |b| {
                one.install(|| {
                    b.iter(|| {
                        mapped
                            .lookup_into(black_box(&ids), out.view_mut())
                            .expect("valid ids")
                    })
                })
            });
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

/// The storages the quantized cases compare, by the name of their bench function.
fn storages() -> Vec<(&'static str, Option<QuantizationMode>, TableDType)> {
    vec![
        ("float32", None, TableDType::Float32),
        ("int8", Some(QuantizationMode::Int8), TableDType::Float32),
        (
            "int4_per_channel",
            Some(QuantizationMode::Int4 { block_size: None }),
            TableDType::Float32,
        ),
        (
            "int4_block128",
            Some(QuantizationMode::Int4 {
                block_size: Some(128),
            }),
            TableDType::Float32,
        ),
        ("float16", None, TableDType::Float16),
        ("bfloat16", None, TableDType::BFloat16),
    ]
}

fn quantized(c: &mut Criterion) {
    if !filter_names("quantized") {
        return;
    }
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a pool");
    for (label, vocab, dim, (rows, cols), sample_step) in [
        ("quantized_w2_100k_x128", 100_000, 128, (256, 128), 7),
        ("quantized_w3_2m_x64", 2_000_000, 64, (4096, 64), 101),
    ] {
        if !filter_names(label) && !filters().iter().any(|f| f == "quantized") {
            continue;
        }
        let init = Initializer::RandomUniform {
            minval: -0.05,
            maxval: 0.05,
            seed: Some(1),
        };
        let table = init.initialize(&[vocab, dim]).expect("a table");
        let id_values: Vec<i64> = (0..rows * cols)
            .map(|k| (k * 7919 % vocab) as i64)
            .collect();
        let ids =
            Tensor::from(ArrayD::from_shape_vec(IxDyn(&[rows, cols]), id_values).expect("ids"));
        let sample: Vec<i64> = (0..vocab).step_by(sample_step).map(|r| r as i64).collect();
        let sample_ids = Tensor::from(sample.clone());
        let mut out = ArrayD::<f32>::zeros(IxDyn(&[rows, cols, dim]));
        let mut group = c.benchmark_group(label);
        group.sample_size(10);
        let mut notes = Vec::new();
        for (name, mode, dtype) in storages() {
            let mut layer = Embedding::new(vocab, dim)
                .dtype(dtype)
                .weights(vec![table.clone()]);
            layer.build(&[None]).expect("a table");
            if let Some(mode) = mode {
                layer.quantize_with(mode).expect("quantized");
            }
            // The quantisation error per row, over the sample.
            let decoded = layer
                .apply(&sample_ids)
                .expect("valid ids")
                .into_float()
                .expect("f32");
            let (mut max_abs, mut max_rel) = (0.0f32, 0.0f32);
            for (k, &row) in sample.iter().enumerate() {
                let original = table.index_axis(ndarray::Axis(0), row as usize);
                let got = decoded.index_axis(ndarray::Axis(0), k);
                let error = original
                    .iter()
                    .zip(got.iter())
                    .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
                let scale = original.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                max_abs = max_abs.max(error);
                if scale > 0.0 {
                    max_rel = max_rel.max(error / scale);
                }
            }
            notes.push(format!(
                "  {name:<18} {:>6.1} bytes/row   max abs error/row {max_abs:.3e}   max relative error/row {max_rel:.3e}",
                layer.table_bytes() as f64 / vocab as f64
            ));
            group.bench_function(format!("{name}/lookup_into_1t"), |b| {
                one.install(|| {
                    b.iter(|| {
                        layer
                            .lookup_into(black_box(&ids), out.view_mut())
                            .expect("valid ids")
                    })
                })
            });
            group.bench_function(format!("{name}/apply_1t"), |b| {
                one.install(|| b.iter(|| black_box(layer.apply(black_box(&ids)).expect("ids"))))
            });
        }
        group.finish();
        println!("\n{label}: storage and quantisation error (sampled rows)");
        for note in notes {
            println!("{note}");
        }
    }
}

/// The quantized cases' medians over the float32 table's, for this run (criterion stores
/// `storage/call` under `storage_call`).
fn print_quantized_ratios(since: SystemTime) {
    for label in ["quantized_w2_100k_x128", "quantized_w3_2m_x64"] {
        let Some(base) = median_of(label, "float32_lookup_into_1t", since) else {
            continue;
        };
        let base_apply = median_of(label, "float32_apply_1t", since);
        println!("\n{label}: medians of this run, x the float32 table's");
        for (name, ..) in storages() {
            let into = median_of(label, &format!("{name}_lookup_into_1t"), since);
            let apply = median_of(label, &format!("{name}_apply_1t"), since);
            let fmt = |t: Option<f64>, b: Option<f64>| match (t, b) {
                (Some(t), Some(b)) => format!("{:>9.1} us (x{:.2})", t / 1e3, t / b),
                _ => "-".into(),
            };
            println!(
                "  {name:<18} lookup_into {}   apply {}",
                fmt(into, Some(base)),
                fmt(apply, base_apply)
            );
        }
    }
}

fn build(c: &mut Criterion) {
    if !filters().is_empty() && !filter_names("build_2m_x64") {
        return;
    }
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

/// Each call's median over the baselines' medians, for the cases this run measured.
fn print_ratios(since: SystemTime) {
    let calls = [
        "lookup_into_1t",
        "lookup_into_2t",
        "apply_1t",
        "apply_2t",
        "predict_1t",
        "predict_2t",
        "hand_written_into",
        "hand_written_allocating",
    ];
    for (label, ..) in CASES {
        let memcpy = median_of(label, "memcpy", since);
        let hand = median_of(label, "hand_written_into", since);
        let into = median_of(label, "lookup_into_1t", since);
        let into_2t = median_of(label, "lookup_into_2t", since);
        let mut lines = Vec::new();
        for call in calls {
            let Some(time) = median_of(label, call, since) else {
                continue;
            };
            let ratio =
                |base: Option<f64>| base.map_or("-".to_string(), |b| format!("{:.2}", time / b));
            let over_into = if call.ends_with("2t") { into_2t } else { into };
            lines.push(format!(
                "  {call:<24} {:>10.1} us   x memcpy {:>5}   x hand_written_into {:>5}   x lookup_into (same threads) {:>5}",
                time / 1e3,
                ratio(memcpy),
                ratio(hand),
                ratio(over_into),
            ));
        }
        if lines.is_empty() {
            continue;
        }
        println!(
            "\n{label}: medians of this run (memcpy {})",
            memcpy.map_or("-".into(), |m| format!("{:.1} us", m / 1e3))
        );
        for line in lines {
            println!("{line}");
        }
        if let (Some(a), Some(b)) = (into, into_2t) {
            println!("  lookup_into 1 thread / 2 threads: {:.2}", a / b);
        }
    }
}

fn main() {
    let since = SystemTime::now() - Duration::from_secs(1);
    let mut criterion = Criterion::default().configure_from_args();
    lookup(&mut criterion);
    build(&mut criterion);
    quantized(&mut criterion);
    criterion.final_summary();
    print_ratios(since);
    print_quantized_ratios(since);
}
