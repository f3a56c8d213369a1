//! Quantizes a GloVe-shaped table (300 values a row, values ~ N(0, 0.4) like GloVe's) in
//! every storage Keras 3 has for an `Embedding` and prints, per storage: the memory of the
//! table, the time of a lookup of 4,096 ids (the fastest of several) and the quantization
//! error per row
//! (largest absolute error, and that error over the row's largest |value|).
//!
//! `cargo run --example quantize` uses 10,000 rows so that it runs in a few seconds in a
//! debug build (whose lookup times say little: ndkeras itself is not optimised there); `cargo run --release --example quantize -- 400000` is GloVe's 400k x 300 (the
//! benchmark `cargo bench --bench lookup -- quantized` has the measured full-size numbers).

use std::time::Instant;

use ndkeras::prelude::*;
use ndkeras::quantization::{QuantizationMode, TableDType};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 10_000,
    };
    let dim = 300;
    let table = Initializer::RandomNormal {
        mean: 0.0,
        stddev: 0.4,
        seed: Some(11),
    }
    .initialize(&[rows, dim])?;
    let ids: Vec<i64> = (0..4096).map(|k| (k * 7919 % rows) as i64).collect();
    let ids = Tensor::from(ids);
    // Every row is compared with the original (the error of a lookup of all ids).
    let all = Tensor::from((0..rows as i64).collect::<Vec<_>>());

    println!(
        "table: {rows} x {dim}, float32 = {:.1} MB",
        (rows * dim * 4) as f64 / 1e6
    );
    if cfg!(debug_assertions) {
        println!("(a debug build: run with --release for meaningful lookup times)");
    }
    println!(
        "{:<22} {:>10} {:>10} {:>14} {:>14} {:>14}",
        "storage", "MB", "bytes/row", "lookup (us)", "max abs err", "max rel err"
    );
    let storages: [(&str, Option<QuantizationMode>, TableDType); 6] = [
        ("float32", None, TableDType::Float32),
        ("int8", Some(QuantizationMode::Int8), TableDType::Float32),
        (
            "int4 per-channel",
            Some(QuantizationMode::Int4 { block_size: None }),
            TableDType::Float32,
        ),
        (
            "int4 grouped (128)",
            Some("int4".parse()?),
            TableDType::Float32,
        ),
        ("float16", None, TableDType::Float16),
        ("bfloat16", None, TableDType::BFloat16),
    ];
    for (name, mode, dtype) in storages {
        let mut layer = Embedding::new(rows, dim)
            .dtype(dtype)
            .trainable(false)
            .weights(vec![table.clone()]);
        layer.build(&[None])?;
        if let Some(mode) = mode {
            layer.quantize_with(mode)?;
        }
        let bytes = layer.table_bytes();

        let mut out = ndarray::ArrayD::<f32>::zeros(ndarray::IxDyn(&[4096, dim]));
        layer.lookup_into(&ids, out.view_mut())?; // warm up
        // The fastest of several runs: the machine may be busy with other work.
        let repeats = if cfg!(debug_assertions) { 3 } else { 50 };
        let mut micros = f64::INFINITY;
        for _ in 0..repeats {
            let start = Instant::now();
            layer.lookup_into(&ids, out.view_mut())?;
            micros = micros.min(start.elapsed().as_secs_f64() * 1e6);
        }

        let decoded = layer.call(&all)?.into_float()?;
        let (mut max_abs, mut max_rel) = (0.0f32, 0.0f32);
        for (original, got) in table.outer_iter().zip(decoded.outer_iter()) {
            let error = original
                .iter()
                .zip(got.iter())
                .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            let largest = original.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            max_abs = max_abs.max(error);
            if largest > 0.0 {
                max_rel = max_rel.max(error / largest);
            }
        }
        println!(
            "{name:<22} {:>10.2} {:>10.1} {:>14.0} {:>14.3e} {:>14.3e}",
            bytes as f64 / 1e6,
            bytes as f64 / rows as f64,
            micros,
            max_abs,
            max_rel
        );
    }
    Ok(())
}
