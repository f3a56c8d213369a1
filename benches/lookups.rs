//! `StringLookup` ids per second on ~10 MB of generated text, beside a naive `HashMap` loop
//! measured in the same run (absolute times drift on a shared machine; the ratio holds).
//!
//! Text: ~1.2 M tokens drawn with a Zipf-like law from 50,000 generated words (3 to 12 ASCII
//! letters), plus 2% unknown words. The lookup is adapted on the text, then:
//! - `naive_hashmap`: `HashMap<String, i64>` (std `RandomState`) holding the same vocabulary,
//!   `map.get(token).copied().unwrap_or(1)` for every token into a `Vec` — the loop one
//!   writes without the layer;
//! - `string_lookup_call`: `StringLookup::call` (Keras ids: mask, OOV, one allocation);
//! - `string_lookup_call_4_oov`: the same with `num_oov_indices = 4` (unknown tokens hashed
//!   with FarmHash, as Keras does).
//!
//!
//! Then `TextVectorization` (standardize, split, `StringLookup`, pad to 32) and `StringLookup`
//! alone on ~100 MB of generated text (lines of 4 to 40 words, capitals and punctuation, from
//! the same kind of vocabulary), each single-threaded (inside a one-thread rayon pool) and
//! across all threads (the `rayon` path of a large call), beside a naive loop in the same
//! run: ASCII lowercase, punctuation dropped, `split_whitespace`, `HashMap<String, i64>`
//! lookups, rows padded to 32 (what one writes without the layer).
//!
//! Short run: `cargo bench --bench lookups -- --warm-up-time 1 --measurement-time 3`.
//! The bench prints ids per second for each, and the ratio to the baseline.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use ndkeras::preprocessing::{StringLookup, TextVectorization};

/// A deterministic xorshift generator (no dependency, same text every run).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn generate_tokens(target_bytes: usize) -> Vec<String> {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let words: Vec<String> = (0..50_000)
        .map(|_| {
            let len = 3 + (rng.next() % 10) as usize;
            (0..len)
                .map(|_| (b'a' + (rng.next() % 26) as u8) as char)
                .collect()
        })
        .collect();
    let mut tokens = Vec::new();
    let mut bytes = 0;
    while bytes < target_bytes {
        // Zipf-like: the square of a uniform number favours low ranks.
        let u = (rng.next() % 1_000_000) as f64 / 1_000_000.0;
        let token = if rng.next().is_multiple_of(50) {
            format!("unknown{}", rng.next() % 100_000)
        } else {
            words[((u * u) * words.len() as f64) as usize].clone()
        };
        bytes += token.len() + 1;
        tokens.push(token);
    }
    tokens
}

fn bench(c: &mut Criterion) {
    let tokens = generate_tokens(10 << 20);
    let known: Vec<&String> = tokens
        .iter()
        .filter(|t| !t.starts_with("unknown"))
        .collect();
    let mut lookup = StringLookup::builder().mask_token("").build().unwrap();
    lookup.adapt(known.iter().map(|t| t.as_str())).unwrap();
    let mut lookup4 = StringLookup::builder()
        .mask_token("")
        .num_oov_indices(4)
        .build()
        .unwrap();
    lookup4
        .set_vocabulary(lookup.get_vocabulary(false).unwrap())
        .unwrap();
    let naive: HashMap<String, i64> = lookup
        .get_vocabulary(false)
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(i, t)| (t, i as i64 + 2))
        .collect();
    // Same ids from both (the baseline is a correct one).
    let check: Vec<i64> = tokens
        .iter()
        .map(|t| naive.get(t).copied().unwrap_or(1))
        .collect();
    assert_eq!(lookup.call(&tokens).unwrap().to_vec(), check);

    let mut group = c.benchmark_group("string_lookup_10mb");
    group.throughput(Throughput::Elements(tokens.len() as u64));
    group.bench_function("naive_hashmap", |b| {
        b.iter(|| {
            let ids: Vec<i64> = tokens
                .iter()
                .map(|t| naive.get(t.as_str()).copied().unwrap_or(1))
                .collect();
            black_box(ids)
        })
    });
    group.bench_function("string_lookup_call", |b| {
        b.iter(|| black_box(lookup.call(&tokens).unwrap()))
    });
    group.bench_function("string_lookup_call_4_oov", |b| {
        b.iter(|| black_box(lookup4.call(&tokens).unwrap()))
    });
    group.finish();

    // One summary line per case: ids per second over a few timed passes, same run.
    let time = |f: &dyn Fn()| {
        let mut best = Duration::MAX;
        for _ in 0..5 {
            let start = Instant::now();
            f();
            best = best.min(start.elapsed());
        }
        best
    };
    let base = time(&|| {
        let ids: Vec<i64> = tokens
            .iter()
            .map(|t| naive.get(t.as_str()).copied().unwrap_or(1))
            .collect();
        black_box(ids);
    });
    let ours = time(&|| {
        black_box(lookup.call(&tokens).unwrap());
    });
    let ours4 = time(&|| {
        black_box(lookup4.call(&tokens).unwrap());
    });
    let rate = |d: Duration| tokens.len() as f64 / d.as_secs_f64() / 1e6;
    eprintln!(
        "{} tokens, vocabulary {}: naive HashMap {:.1} M ids/s; StringLookup {:.1} M ids/s ({:.2}x); with 4 OOV ids {:.1} M ids/s ({:.2}x)",
        tokens.len(),
        lookup.vocabulary_size(),
        rate(base),
        rate(ours),
        base.as_secs_f64() / ours.as_secs_f64(),
        rate(ours4),
        base.as_secs_f64() / ours4.as_secs_f64(),
    );
}

/// ~`target_bytes` of text: lines of 4 to 40 words, some capitalized, some followed by
/// punctuation, 2% unknown words.
fn generate_texts(target_bytes: usize) -> Vec<String> {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let words: Vec<String> = (0..50_000)
        .map(|_| {
            let len = 3 + (rng.next() % 10) as usize;
            (0..len)
                .map(|_| (b'a' + (rng.next() % 26) as u8) as char)
                .collect()
        })
        .collect();
    let mut texts = Vec::new();
    let mut bytes = 0;
    while bytes < target_bytes {
        let count = 4 + (rng.next() % 37) as usize;
        let mut line = String::new();
        for k in 0..count {
            if k > 0 {
                line.push(' ');
            }
            let u = (rng.next() % 1_000_000) as f64 / 1_000_000.0;
            if rng.next().is_multiple_of(50) {
                line.push_str(&format!("unknown{}", rng.next() % 100_000));
            } else {
                let word = &words[((u * u) * words.len() as f64) as usize];
                if rng.next().is_multiple_of(10) {
                    line.push_str(&word.to_ascii_uppercase());
                } else {
                    line.push_str(word);
                }
            }
            match rng.next() % 20 {
                0 => line.push(','),
                1 => line.push('.'),
                _ => {}
            }
        }
        bytes += line.len();
        texts.push(line);
    }
    texts
}

/// Sequence length of the text benchmark.
const LENGTH: usize = 32;

/// The naive loop: ids of every text, padded to `LENGTH`.
fn naive_texts(texts: &[String], vocabulary: &HashMap<String, i64>) -> Vec<i64> {
    let mut ids = Vec::with_capacity(texts.len() * LENGTH);
    for text in texts {
        let clean: String = text
            .chars()
            .filter(|c| !c.is_ascii_punctuation())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let start = ids.len();
        for token in clean.split_whitespace().take(LENGTH) {
            ids.push(vocabulary.get(token).copied().unwrap_or(1));
        }
        ids.resize(start + LENGTH, 0);
    }
    ids
}

fn bench_text(c: &mut Criterion) {
    let texts = generate_texts(100 << 20);
    let bytes: usize = texts.iter().map(String::len).sum();
    let mut vectorize = TextVectorization::builder()
        .output_sequence_length(LENGTH)
        .build()
        .unwrap();
    vectorize.adapt(&texts[..texts.len() / 10]).unwrap();
    let naive: HashMap<String, i64> = vectorize
        .get_vocabulary(false)
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(i, t)| (t, i as i64 + 2))
        .collect();
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    // Same ids from all three (the baseline is a correct one).
    let expected = naive_texts(&texts[..1000], &naive);
    let ours: Vec<i64> = vectorize
        .call(&texts[..1000])
        .unwrap()
        .iter()
        .copied()
        .collect();
    assert_eq!(ours, expected);
    let tokens: Vec<&str> = texts
        .iter()
        .flat_map(|t| t.split_ascii_whitespace())
        .collect();
    let mut lookup = StringLookup::builder().mask_token("").build().unwrap();
    lookup
        .set_vocabulary(vectorize.get_vocabulary(false).unwrap())
        .unwrap();
    let raw: HashMap<String, i64> = naive.clone();

    let mut group = c.benchmark_group("text_vectorization_100mb");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("naive_hashmap", |b| {
        b.iter(|| black_box(naive_texts(&texts, &naive)))
    });
    group.bench_function("text_vectorization_1_thread", |b| {
        b.iter(|| one_thread.install(|| black_box(vectorize.call(&texts).unwrap())))
    });
    group.bench_function("text_vectorization_rayon", |b| {
        b.iter(|| black_box(vectorize.call(&texts).unwrap()))
    });
    group.finish();

    let mut group = c.benchmark_group("string_lookup_100mb");
    group.sample_size(10);
    group.throughput(Throughput::Elements(tokens.len() as u64));
    group.bench_function("naive_hashmap", |b| {
        b.iter(|| {
            let ids: Vec<i64> = tokens
                .iter()
                .map(|t| raw.get(*t).copied().unwrap_or(1))
                .collect();
            black_box(ids)
        })
    });
    group.bench_function("string_lookup_1_thread", |b| {
        b.iter(|| one_thread.install(|| black_box(lookup.call(&tokens).unwrap())))
    });
    group.bench_function("string_lookup_rayon", |b| {
        b.iter(|| black_box(lookup.call(&tokens).unwrap()))
    });
    group.finish();

    let time = |f: &dyn Fn()| {
        let mut best = Duration::MAX;
        for _ in 0..3 {
            let start = Instant::now();
            f();
            best = best.min(start.elapsed());
        }
        best
    };
    // Ids written by a text call: one per position of the padded output.
    let text_ids = (texts.len() * LENGTH) as f64;
    let base = time(&|| {
        black_box(naive_texts(&texts, &naive));
    });
    let single = time(&|| {
        one_thread.install(|| black_box(vectorize.call(&texts).unwrap()));
    });
    let parallel = time(&|| {
        black_box(vectorize.call(&texts).unwrap());
    });
    let rate = |ids: f64, d: Duration| ids / d.as_secs_f64() / 1e6;
    eprintln!(
        "{:.0} MB, {} texts, vocabulary {}: naive loop {:.1} M ids/s; TextVectorization 1 thread {:.1} M ids/s ({:.2}x), {} threads {:.1} M ids/s ({:.2}x)",
        bytes as f64 / (1 << 20) as f64,
        texts.len(),
        vectorize.vocabulary_size(),
        rate(text_ids, base),
        rate(text_ids, single),
        base.as_secs_f64() / single.as_secs_f64(),
        rayon::current_num_threads(),
        rate(text_ids, parallel),
        base.as_secs_f64() / parallel.as_secs_f64(),
    );
    let token_ids = tokens.len() as f64;
    let base = time(&|| {
        let ids: Vec<i64> = tokens
            .iter()
            .map(|t| raw.get(*t).copied().unwrap_or(1))
            .collect();
        black_box(ids);
    });
    let single = time(&|| {
        one_thread.install(|| black_box(lookup.call(&tokens).unwrap()));
    });
    let parallel = time(&|| {
        black_box(lookup.call(&tokens).unwrap());
    });
    eprintln!(
        "{} tokens of the same text: naive HashMap {:.1} M ids/s; StringLookup 1 thread {:.1} M ids/s ({:.2}x), {} threads {:.1} M ids/s ({:.2}x)",
        tokens.len(),
        rate(token_ids, base),
        rate(token_ids, single),
        base.as_secs_f64() / single.as_secs_f64(),
        rayon::current_num_threads(),
        rate(token_ids, parallel),
        base.as_secs_f64() / parallel.as_secs_f64(),
    );
}

fn main() {
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench(&mut criterion);
    bench_text(&mut criterion);
    criterion.final_summary();
}
