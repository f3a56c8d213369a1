//! One training step of an embedding model beside hand-written loops measured in the same
//! run (absolute times drift on a shared machine; ratios hold). At the end the bench prints
//! each call's median over its baseline's median of the same run.
//!
//! Cases: `w2` = a 100,000 x 128 table, `w2m` = a 2,000,000 x 64 table; both with a batch of
//! 256 x 128 ids spread over the whole table and mse against constant targets.
//!
//! The call a user writes: `train_on_batch` of a `Sequential` holding one `Embedding`
//! (inputs handed over owned, as `fit` hands each batch to its step; building them is not
//! timed), for SGD, RMSprop and lazy Adam, on 1 and on 2 threads. `sgd_1t_after_free` is the
//! same SGD step in a process that has just freed large buffers (glibc then returns memory to
//! the kernel, and a step that allocates fresh large buffers faults them in again).
//!
//! Baselines, 1 thread: `hand_written_{sgd,rmsprop,adam_lazy}`, the loop a careful Rust
//! programmer writes for the same step with no checks: gather into a warm buffer, mse value
//! and gradient in one pass, duplicate ids coalesced in place through a slot map, the rows
//! updated (RMSprop and lazy Adam with the same lazy bookkeeping ndkeras keeps, so that the
//! cost does not grow with the vocabulary). `adam_dense_baseline`: Keras' dense Adam update
//! (every row moves), to show what the row-sparse update saves.
//!
//! `loss_256x128x128`: the loss value and gradient of one such batch (`Loss::compute`, mse
//! and mae) beside a hand-written single pass that writes the gradient into a fresh `Vec` and
//! sums the loss in `f32`.
//!
//! Short run: `cargo bench --bench training -- --warm-up-time 1 --measurement-time 3 w2/`.

#[path = "common/mod.rs"]
mod common;
use common::median_of;
use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{BatchSize, BenchmarkId, Criterion};
use ndarray::{Array2, Array3};
use ndkeras::prelude::*;

const BATCH: usize = 256;
const STEPS: usize = 128;
const CASES: [(&str, usize, usize); 2] = [("w2", 100_000, 128), ("w2m", 2_000_000, 64)];

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

/// Which update a hand-written loop applies.
#[derive(Clone, Copy)]
enum Update {
    Sgd,
    RmsProp,
    AdamLazy,
}

/// The state of a hand-written training loop: the table, warm scratch buffers and the
/// optimizer's slots.
struct HandWritten {
    dim: usize,
    table: Vec<f32>,
    output: Vec<f32>,
    gradient: Vec<f32>,
    /// For each vocabulary row, its place among the batch's distinct rows (`u32::MAX`: none).
    slot: Vec<u32>,
    rows: Vec<usize>,
    first: Vec<f32>,
    second: Vec<f32>,
    row_step: Vec<u64>,
    step: u64,
}

impl HandWritten {
    fn new(vocab: usize, dim: usize, positions: usize) -> Self {
        let table = (0..vocab * dim)
            .map(|i| ((i * 2654435761) % 1000) as f32 * 1e-4 - 0.05)
            .collect();
        HandWritten {
            dim,
            table,
            output: vec![0.0; positions * dim],
            gradient: vec![0.0; positions * dim],
            slot: vec![u32::MAX; vocab],
            rows: Vec::with_capacity(positions),
            first: vec![0.0; vocab * dim],
            second: vec![0.0; vocab * dim],
            row_step: vec![0; vocab],
            step: 0,
        }
    }

    fn step(&mut self, ids: &[i64], targets: &[f32], update: Update) -> f32 {
        let d = self.dim;
        self.step += 1;
        for (out, &id) in self.output.chunks_exact_mut(d).zip(ids) {
            let id = id as usize;
            out.copy_from_slice(&self.table[id * d..(id + 1) * d]);
        }
        // mse: value and gradient in one pass, eight running sums.
        let n = self.output.len();
        let scale = 2.0 / n as f32;
        let mut sums = [0.0f32; 8];
        for ((g, p), t) in self
            .gradient
            .chunks_exact_mut(8)
            .zip(self.output.chunks_exact(8))
            .zip(targets.chunks_exact(8))
        {
            for i in 0..8 {
                let e = p[i] - t[i];
                sums[i] += e * e;
                g[i] = scale * e;
            }
        }
        let loss = sums.iter().sum::<f32>() / n as f32;
        // Coalesce duplicate ids in place: each distinct id's sum lands in its slot.
        self.rows.clear();
        for (k, &id) in ids.iter().enumerate() {
            let id = id as usize;
            let slot = self.slot[id];
            if slot == u32::MAX {
                let j = self.rows.len();
                self.slot[id] = j as u32;
                self.rows.push(id);
                if j != k {
                    self.gradient.copy_within(k * d..(k + 1) * d, j * d);
                }
            } else {
                let (head, tail) = self.gradient.split_at_mut(k * d);
                let target = &mut head[slot as usize * d..(slot as usize + 1) * d];
                target.iter_mut().zip(&tail[..d]).for_each(|(a, g)| *a += g);
            }
        }
        let (lr_sgd, lr, rho, epsilon) = (0.1f32, 0.001f32, 0.9f32, 1e-7f32);
        let (beta_1, beta_2) = (0.9f32, 0.999f32);
        let t = self.step as i32;
        let alpha = lr * (1.0 - beta_2.powi(t)).sqrt() / (1.0 - beta_1.powi(t));
        for (j, &row) in self.rows.iter().enumerate() {
            let w = &mut self.table[row * d..(row + 1) * d];
            let g = &self.gradient[j * d..(j + 1) * d];
            match update {
                Update::Sgd => w.iter_mut().zip(g).for_each(|(w, g)| *w -= lr_sgd * g),
                Update::RmsProp => {
                    let v = &mut self.first[row * d..(row + 1) * d];
                    let missed = self.step - 1 - self.row_step[row];
                    if missed > 0 {
                        let decay = rho.powi(missed as i32);
                        v.iter_mut().for_each(|v| *v *= decay);
                    }
                    for ((w, &g), v) in w.iter_mut().zip(g).zip(v.iter_mut()) {
                        *v = rho * *v + (1.0 - rho) * g * g;
                        *w -= lr * g / (*v + epsilon).sqrt();
                    }
                }
                Update::AdamLazy => {
                    let m = &mut self.first[row * d..(row + 1) * d];
                    let v = &mut self.second[row * d..(row + 1) * d];
                    for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m).zip(v) {
                        *m += (g - *m) * (1.0 - beta_1);
                        *v += (g * g - *v) * (1.0 - beta_2);
                        *w -= (*m * alpha) / (v.sqrt() + epsilon);
                    }
                }
            }
            self.row_step[row] = self.step;
        }
        for &row in &self.rows {
            self.slot[row] = u32::MAX;
        }
        loss
    }
}

/// Allocates and frees large buffers, as a process does while it loads data: glibc may then
/// hand memory back to the kernel (the buffers are not written, so that the caches stay as
/// they were).
fn free_large_buffers() {
    for mb in [64usize, 16, 48] {
        let buffer: Vec<u8> = Vec::with_capacity(mb << 20);
        black_box(&buffer);
    }
}

fn training_step(c: &mut Criterion) {
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a pool");
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("a pool");
    for (label, vocab, dim) in CASES {
        let mut group = c.benchmark_group(label);
        group
            .sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(4));
        // Ids spread over the whole table with a fixed stride.
        let x = Array2::<i64>::from_shape_fn((BATCH, STEPS), |(i, j)| {
            ((i * STEPS + j) * 7919 % vocab) as i64
        });
        let y = Array3::<f32>::from_elem((BATCH, STEPS, dim), 0.01);
        let ids = x.as_slice().expect("standard layout");
        let targets = y.as_slice().expect("standard layout");
        for (name, update) in [
            ("hand_written_sgd", Update::Sgd),
            ("hand_written_rmsprop", Update::RmsProp),
            ("hand_written_adam_lazy", Update::AdamLazy),
        ] {
            let mut hand = HandWritten::new(vocab, dim, BATCH * STEPS);
            group.bench_function(name, |b| {
                b.iter(|| black_box(hand.step(black_box(ids), targets, update)))
            });
        }
        let optimizers: [(&str, Optimizer); 3] = [
            ("sgd", SGD::new(0.1).into()),
            ("rmsprop", RMSprop::default().into()),
            ("adam_lazy", Adam::default().lazy(true).into()),
        ];
        for (name, optimizer) in optimizers {
            let mut model = model(vocab, dim, optimizer);
            for (threads, pool) in [("1t", &one), ("2t", &two)] {
                group.bench_function(format!("{name}_{threads}"), |b| {
                    pool.install(|| {
                        b.iter_batched(
                            || (x.clone(), y.clone()),
                            |(x, y)| black_box(model.train_on_batch(x, y).expect("a valid step")),
                            BatchSize::PerIteration,
                        )
                    })
                });
            }
            if name == "sgd" {
                group.bench_function("sgd_1t_after_free", |b| {
                    one.install(|| {
                        b.iter_batched(
                            || {
                                free_large_buffers();
                                (x.clone(), y.clone())
                            },
                            |(x, y)| black_box(model.train_on_batch(x, y).expect("a valid step")),
                            BatchSize::PerIteration,
                        )
                    })
                });
            }
        }
        if label == "w2" {
            let mut model = model(vocab, dim, Adam::default().into());
            group.bench_function("adam_dense_baseline", |b| {
                b.iter_batched(
                    || (x.clone(), y.clone()),
                    |(x, y)| black_box(model.train_on_batch(x, y).expect("a valid step")),
                    BatchSize::PerIteration,
                )
            });
        }
        group.finish();
    }
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
        group.bench_function(BenchmarkId::from_parameter(loss.keras_name()), |b| {
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

/// Each step's median over its hand-written loop's median, and 1 thread over 2 threads.
fn print_ratios(since: SystemTime) {
    for (label, ..) in CASES {
        let mut lines = Vec::new();
        for (name, baseline) in [
            ("sgd", "hand_written_sgd"),
            ("rmsprop", "hand_written_rmsprop"),
            ("adam_lazy", "hand_written_adam_lazy"),
        ] {
            let base = median_of(label, baseline, since);
            let one = median_of(label, &format!("{name}_1t"), since);
            let two = median_of(label, &format!("{name}_2t"), since);
            let after_free = (name == "sgd")
                .then(|| median_of(label, "sgd_1t_after_free", since))
                .flatten();
            let ms = |t: Option<f64>| t.map_or("-".to_string(), |t| format!("{:.2} ms", t / 1e6));
            let ratio = |t: Option<f64>, b: Option<f64>| match (t, b) {
                (Some(t), Some(b)) => format!("{:.2}", t / b),
                _ => "-".to_string(),
            };
            if one.is_none() && base.is_none() {
                continue;
            }
            lines.push(format!(
                "  {name:<10} hand-written {:>9}   train_on_batch 1T {:>9} (x{})   2T {:>9} (1T/2T {})",
                ms(base),
                ms(one),
                ratio(one, base),
                ms(two),
                ratio(one, two),
            ));
            if after_free.is_some() {
                lines.push(format!(
                    "  {:<10} after freeing large buffers: 1T {:>9} (x{} hand-written)",
                    "",
                    ms(after_free),
                    ratio(after_free, base)
                ));
            }
        }
        if lines.is_empty() {
            continue;
        }
        println!("\n{label}: medians of this run");
        for line in lines {
            println!("{line}");
        }
    }
}

fn main() {
    let since = SystemTime::now() - Duration::from_secs(1);
    let mut criterion = Criterion::default().configure_from_args();
    training_step(&mut criterion);
    loss(&mut criterion);
    criterion.final_summary();
    print_ratios(since);
}
