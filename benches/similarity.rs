//! Top-10 cosine neighbours of 1,000 queries over a generated 400,000 x 300 table (GloVe's
//! size), beside the baseline measured in the same run:
//! - `exact_batch`: `SimilarityIndex::most_similar_batch`, blocked matrix products over the
//!   table (one pass per 1,024 queries), split across threads;
//! - `naive_loop`: one query at a time, a plain dot-product loop over every row (divided by
//!   the same cached row norms), then the best 10 picked from the 400,000 scores. It reads the
//!   whole table once per query, so it is timed on its first 10 queries and compared per
//!   query (its cost is linear in the number of queries).
//!
//! With `--features ann`, an HNSW index (`similarity::ann`) is built once over the first
//! `ANN_ROWS` rows (its build time is printed: over all 400,000 rows it did not finish within
//! 20 minutes on the project's shared 2-core machine), timed on the same 1,000 queries, and its
//! recall@10 against the exact search over the same rows is printed.
//! `cargo bench --bench similarity --features ann -- hnsw` runs only that part.
//!
//! The table is 4,000 clusters of 100 rows (a centre plus uniform noise), so that neighbours
//! mean something (for the recall); the queries are noisy copies of table rows.
//! At the end the bench prints the median time per query of each and the ratio.
//! Run once: `cargo bench --bench similarity [--features ann]`.

use std::cell::RefCell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use ndarray::{Array2, ArrayView1, ArrayView2};
use ndkeras::similarity::{Similarity, SimilarityIndex};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ROWS: usize = 400_000;
const DIMS: usize = 300;
const QUERIES: usize = 1_000;
const BASELINE_QUERIES: usize = 10;
const K: usize = 10;
const CLUSTERS: usize = 4_000;
#[cfg(feature = "ann")]
const ANN_ROWS: usize = 50_000;

fn table() -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let centres = Array2::from_shape_fn((CLUSTERS, DIMS), |_| rng.random_range(-1.0f32..1.0));
    let mut table = Array2::from_shape_fn((ROWS, DIMS), |_| rng.random_range(-0.7f32..0.7));
    for (i, mut row) in table.outer_iter_mut().enumerate() {
        row += &centres.row(i % CLUSTERS);
    }
    table
}

fn queries(table: ArrayView2<'_, f32>) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    Array2::from_shape_fn((QUERIES, DIMS), |(q, j)| {
        table[[(q * 397) % ROWS, j]] + rng.random_range(-0.3f32..0.3)
    })
}

/// What a hand-written search does: every row's dot product in a plain loop, then the best
/// `k` of all scores.
fn naive_search(table: &[f32], norms: &[f64], query: ArrayView1<'_, f32>) -> Vec<(usize, f32)> {
    let query: Vec<f32> = query.to_vec();
    let query_norm = query.iter().map(|v| v * v).sum::<f32>().sqrt();
    let mut scores: Vec<(usize, f32)> = table
        .chunks_exact(DIMS)
        .zip(norms)
        .enumerate()
        .map(|(id, (row, &norm))| {
            let mut dot = 0.0f32;
            for (a, b) in row.iter().zip(&query) {
                dot += a * b;
            }
            (id, dot / (norm as f32 * query_norm))
        })
        .collect();
    scores.select_nth_unstable_by(K, |a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scores.truncate(K);
    scores.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scores
}

/// Median of the recorded times per query.
fn median_per_query(times: &RefCell<Vec<Duration>>, queries: usize) -> f64 {
    let mut per_query: Vec<f64> = times
        .borrow()
        .iter()
        .map(|t| t.as_secs_f64() / queries as f64)
        .collect();
    per_query.sort_by(f64::total_cmp);
    per_query
        .get(per_query.len() / 2)
        .copied()
        .unwrap_or(f64::NAN)
}

fn similarity(c: &mut Criterion) {
    let started = Instant::now();
    let table = table();
    let queries = queries(table.view());
    let index = SimilarityIndex::new(table.view(), Similarity::Cosine).expect("a finite table");
    let plain: Vec<f32> = table.iter().copied().collect();
    eprintln!(
        "generated the {ROWS} x {DIMS} table and the index in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The two searches find the same rows (both sum in float32, in different orders, so a
    // near-tie could swap: counted, not asserted).
    let exact = index
        .most_similar_batch(queries.view(), K, &[])
        .expect("valid queries");
    let same: usize = (0..BASELINE_QUERIES)
        .map(|q| {
            let naive = naive_search(&plain, index.norms(), queries.row(q));
            naive
                .iter()
                .filter(|(id, _)| exact[q].iter().any(|n| n.id == *id))
                .count()
        })
        .sum();
    eprintln!(
        "exact batch and naive loop agree on {same} of {} neighbours",
        BASELINE_QUERIES * K
    );

    let exact_times = RefCell::new(Vec::new());
    let naive_times = RefCell::new(Vec::new());
    let mut group = c.benchmark_group("top10_400k_x300");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(QUERIES as u64));
    group.bench_function("exact_batch_1000_queries", |b| {
        b.iter_custom(|iterations| {
            let start = Instant::now();
            for _ in 0..iterations {
                black_box(
                    index
                        .most_similar_batch(black_box(queries.view()), K, &[])
                        .expect("valid queries"),
                );
            }
            let elapsed = start.elapsed();
            exact_times.borrow_mut().push(elapsed / iterations as u32);
            elapsed
        })
    });
    group.throughput(Throughput::Elements(BASELINE_QUERIES as u64));
    group.bench_function("naive_loop_10_queries", |b| {
        b.iter_custom(|iterations| {
            let start = Instant::now();
            for _ in 0..iterations {
                for q in 0..BASELINE_QUERIES {
                    black_box(naive_search(
                        &plain,
                        index.norms(),
                        black_box(queries.row(q)),
                    ));
                }
            }
            let elapsed = start.elapsed();
            naive_times.borrow_mut().push(elapsed / iterations as u32);
            elapsed
        })
    });
    #[cfg(feature = "ann")]
    let ann_times = approximate(&mut group, table.view(), queries.view());
    group.finish();

    let exact_per_query = median_per_query(&exact_times, QUERIES);
    let naive_per_query = median_per_query(&naive_times, BASELINE_QUERIES);
    eprintln!(
        "per query: exact batch {:.3} ms, naive loop {:.3} ms: the batch is {:.1}x faster",
        exact_per_query * 1e3,
        naive_per_query * 1e3,
        naive_per_query / exact_per_query
    );
    #[cfg(feature = "ann")]
    {
        let ann_per_query = median_per_query(&ann_times, QUERIES);
        eprintln!(
            "per query: hnsw over {ANN_ROWS} rows {:.4} ms (the exact batch over all {ROWS} rows: {:.1}x that)",
            ann_per_query * 1e3,
            exact_per_query / ann_per_query
        );
    }
}

#[cfg(feature = "ann")]
fn approximate(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    table: ArrayView2<'_, f32>,
    queries: ArrayView2<'_, f32>,
) -> RefCell<Vec<Duration>> {
    use ndkeras::similarity::ann::{HnswIndex, HnswOptions};

    let index = SimilarityIndex::new(table.slice(ndarray::s![..ANN_ROWS, ..]), Similarity::Cosine)
        .expect("a finite table");
    let exact = index
        .most_similar_batch(queries, K, &[])
        .expect("valid queries");
    let options = HnswOptions::default()
        .max_connections(16)
        .ef_construction(100)
        .ef_search(64);
    let started = Instant::now();
    let hnsw = HnswIndex::build(&index, options).expect("a valid index");
    eprintln!(
        "built the HNSW index over {ANN_ROWS} rows ({options:?}) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let found = hnsw
        .most_similar_batch(queries, K, &[])
        .expect("valid queries");
    let hits: usize = found
        .iter()
        .zip(&exact)
        .map(|(found, truth)| {
            found
                .iter()
                .filter(|n| truth.iter().any(|t| t.id == n.id))
                .count()
        })
        .sum();
    eprintln!(
        "hnsw recall@10 against the exact search over the same {ANN_ROWS} rows: {:.4} ({hits} of {})",
        hits as f64 / (QUERIES * K) as f64,
        QUERIES * K
    );
    let times = RefCell::new(Vec::new());
    group.throughput(Throughput::Elements(QUERIES as u64));
    group.bench_function("hnsw_1000_queries", |b| {
        b.iter_custom(|iterations| {
            let start = Instant::now();
            for _ in 0..iterations {
                black_box(
                    hnsw.most_similar_batch(black_box(queries), K, &[])
                        .expect("valid queries"),
                );
            }
            let elapsed = start.elapsed();
            times.borrow_mut().push(elapsed / iterations as u32);
            elapsed
        })
    });
    times
}

criterion_group!(benches, similarity);
criterion_main!(benches);
