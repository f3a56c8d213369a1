//! Review of `Embedding::from_mapped_quantized_with` (memory-mapped int8 / packed int4 codes)
//! and of the refactor of `check_stored_values` into `check_quantized_values`: one test per
//! finding of the review, each failing before its fix (kept as regression tests).

#![cfg(feature = "mmap")]

use std::path::{Path, PathBuf};

use ndarray::Array2;
use ndkeras::io::npy::{self, NpyView};
use ndkeras::prelude::*;
use ndkeras::quantization::QuantizationMode;
use ndkeras::weight::WeightValues;

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ndkeras-rev-int4-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A `(10, dim)` table of values in about `-10..10`.
fn table(dim: usize) -> Array2<f32> {
    Array2::from_shape_fn((10, dim), |(i, j)| {
        (i as f32 * 0.37 - j as f32).sin() * (1.0 + i as f32)
    })
}

fn built(table: Array2<f32>) -> Embedding {
    let mut layer = Embedding::from_table(table);
    layer.apply(&Tensor::from(vec![0i64])).unwrap();
    layer
}

/// Writes the codes of `layer` as an int8 `.npy` file, as the docs say.
fn write_codes(layer: &Embedding, path: &Path) {
    let WeightValues::Int8(codes) = layer.variables()[0].values() else {
        panic!("int8 codes expected");
    };
    npy::write_npy_typed(path, &NpyView::Int8(codes)).unwrap();
}

fn map_twin(memory: &Embedding, path: &Path) -> ndkeras::Result<Embedding> {
    write_codes(memory, path);
    Embedding::from_mapped_quantized_with(
        npy::map_npy_codes(path)?,
        memory.output_dim(),
        memory.quantization_mode().unwrap(),
        memory.get_weights()[1..].to_vec(),
    )
}

fn bits(tensor: &Tensor) -> Vec<u32> {
    tensor
        .as_float()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

/// `check_quantized_values` (src/layers/embedding.rs) bounds a grouped int4 scale by
/// `255 * |s|`, but a grouped code and zero point are both in -8..=7, so `|q - z| <= 15`:
/// a table of values about ±2e37 (its decoded values are finite, lookups in memory work)
/// quantized by `quantize_with(Int4 { block_size: Some(4) })` gets scales about 1.5e36
/// that are refused, so its variables cannot be mapped with `from_mapped_quantized_with`
/// (nor given back to `set_weights`, nor loaded by `load_weights`). Expected: whatever
/// `quantize_with` makes maps, and looks up bit for bit as in memory.
#[test]
fn grouped_int4_tables_of_large_values_map_as_quantized_in_memory() {
    let dir = scratch("grouped-large");
    let mode = QuantizationMode::Int4 {
        block_size: Some(4),
    };
    let mut memory = built(table(8).mapv(|v| v * 2e36));
    memory.quantize_with(mode).unwrap();
    let ids = Tensor::from((0..10i64).collect::<Vec<_>>());
    let expected = memory.apply(&ids).unwrap();
    assert!(expected.as_float().unwrap().iter().all(|v| v.is_finite()));

    let mapped = map_twin(&memory, &dir.join("codes.npy"));
    let same = memory.set_weights(memory.get_weights());
    let looked_up = mapped.map(|mut m| m.apply(&ids).map(|t| bits(&t)));
    std::fs::remove_dir_all(&dir).ok();
    let looked_up = looked_up.expect("the variables of quantize_with were refused by mapping");
    assert_eq!(looked_up.unwrap(), bits(&expected));
    same.expect("set_weights refused the layer's own get_weights");
}

/// `quantize_table` (src/quantization.rs) refuses int8 rows near `f32::MAX` since the last
/// review, but per-channel int4 still quantizes a row whose largest |value| is above 7/8 of
/// `f32::MAX` (here 3e38) into a scale `7 / 3e38` that `check_quantized_values`
/// (src/layers/embedding.rs, `8 / |s|` must be finite) refuses: the quantized layer works
/// in memory, but `from_mapped_quantized_with` (and `set_weights`) refuse its own
/// variables. Expected: either `quantize_with` refuses such a row (as for int8), or its
/// variables map and look up as in memory.
#[test]
fn per_channel_int4_variables_quantize_with_makes_can_be_mapped() {
    let dir = scratch("per-channel-large");
    let mode = QuantizationMode::Int4 { block_size: None };
    let mut values = table(8);
    values[[2, 1]] = 3.0e38;
    let mut memory = built(values);
    if memory.quantize_with(mode).is_err() {
        std::fs::remove_dir_all(&dir).ok();
        return;
    }
    let ids = Tensor::from(vec![2i64, 0]);
    let expected = memory.apply(&ids).unwrap();
    let mapped = map_twin(&memory, &dir.join("codes.npy"));
    std::fs::remove_dir_all(&dir).ok();
    let mut mapped = mapped.expect("quantize_with accepted the row, mapping its variables failed");
    assert_eq!(bits(&mapped.apply(&ids).unwrap()), bits(&expected));
}

/// The docs of `Embedding::from_mapped_quantized_with` (src/layers/embedding.rs) say "Write
/// the codes with `crate::io::npy::write_quantized_npy` (int8, per-channel int4)", but
/// `write_quantized_npy` (src/io/npy.rs) refuses every mode but int8 ("a built layer
/// quantized with quantize(\"int8\")"). Expected: `write_quantized_npy` writes per-channel
/// int4 codes and scales that map back, or the docs no longer promise it.
#[test]
fn write_quantized_npy_writes_per_channel_int4_as_documented() {
    let dir = scratch("write-per-channel");
    let mode = QuantizationMode::Int4 { block_size: None };
    let mut memory = built(table(7));
    memory.quantize_with(mode).unwrap();
    let (codes, scales) = (dir.join("codes.npy"), dir.join("scales.npy"));
    let written = npy::write_quantized_npy(&memory, &codes, &scales);
    let mapped = written.as_ref().ok().map(|()| {
        let scales = npy::read_npy_scales(&scales, 10).unwrap().into_dyn();
        Embedding::from_mapped_quantized_with(
            npy::map_npy_codes(&codes).unwrap(),
            7,
            mode,
            vec![scales],
        )
    });
    std::fs::remove_dir_all(&dir).ok();
    match mapped {
        Some(mapped) => {
            let ids = Tensor::from(vec![9i64, 0, 3]);
            assert_eq!(
                bits(&mapped.unwrap().apply(&ids).unwrap()),
                bits(&memory.apply(&ids).unwrap())
            );
        }
        None => {
            // Refused: then the docs must not say it writes per-channel int4 codes.
            let source = include_str!("../src/layers/embedding.rs");
            let flat = source
                .replace("///", " ")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            assert!(
                !flat.contains("write_quantized_npy`] (int8, per-channel int4)"),
                "the docs promise write_quantized_npy for per-channel int4, which it refuses: {:?}",
                written.err()
            );
        }
    }
}

/// `from_mapped_quantized_with` (src/layers/embedding.rs) documents an
/// `Error::InvalidArgument` naming the layer and the codes' file "for codes whose shape is
/// not the mode's for `output_dim`", but a wrong, huge `output_dim` (codes `[10, 4]`,
/// `output_dim` `usize::MAX / 2`) gives `Error::ShapeOverflow` about a float32 "embeddings
/// table" that does not exist, without the codes' file or the shape expected (the error of
/// `Embedding::try_new` is only re-owned when it is an `InvalidArgument`). Expected: an
/// `InvalidArgument` naming the codes' file and `embeddings` / `output_dim`.
#[test]
fn a_huge_output_dim_is_refused_naming_the_codes_file() {
    let dir = scratch("huge-output-dim");
    let mode = QuantizationMode::Int4 { block_size: None };
    let mut memory = built(table(8));
    memory.quantize_with(mode).unwrap();
    let path = dir.join("codes.npy");
    write_codes(&memory, &path);
    let err = Embedding::from_mapped_quantized_with(
        npy::map_npy_codes(&path).unwrap(),
        usize::MAX / 2,
        mode,
        memory.get_weights()[1..].to_vec(),
    )
    .unwrap_err();
    std::fs::remove_dir_all(&dir).ok();
    let message = err.to_string();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert!(message.contains("codes.npy"), "{message}");
}
