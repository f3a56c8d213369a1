//! Memory-mapped int4 tables (and the general `from_mapped_quantized_with`): packed codes
//! mapped from an `.npy` file, the other variables given as arrays; lookups decode only the
//! rows they gather, bit for bit as the same table quantized in memory; every bad variable is
//! an error naming the layer, the codes' file and the variable.

#![cfg(feature = "mmap")]

use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayD, array};
use ndkeras::io::npy::{self, NpyView};
use ndkeras::prelude::*;
use ndkeras::quantization::QuantizationMode;
use ndkeras::weight::{WeightDType, WeightValues};

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ndkeras-mmap4-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A table of `dim` columns with one all-zero row.
fn table(dim: usize) -> Array2<f32> {
    Array2::from_shape_fn((40, dim), |(i, j)| {
        if i == 3 {
            0.0
        } else {
            (i as f32 * 0.37 - j as f32).sin() * (1.0 + i as f32)
        }
    })
}

fn quantized(dim: usize, mode: QuantizationMode) -> Embedding {
    let mut layer = Embedding::from_table(table(dim));
    layer.apply(&Tensor::from(vec![0i64])).unwrap();
    layer.quantize_with(mode).unwrap();
    layer
}

/// Writes the codes of `layer` as an int8 `.npy` file, as a user does.
fn write_codes(layer: &Embedding, path: &Path) {
    let WeightValues::Int8(codes) = layer.variables()[0].values() else {
        panic!("int8 codes expected");
    };
    npy::write_npy_typed(path, &NpyView::Int8(codes)).unwrap();
}

fn bits(tensor: &Tensor) -> Vec<u32> {
    tensor
        .as_float()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

const MODES: [QuantizationMode; 4] = [
    QuantizationMode::Int8,
    QuantizationMode::Int4 { block_size: None },
    QuantizationMode::Int4 {
        block_size: Some(128),
    },
    QuantizationMode::Int4 {
        block_size: Some(4),
    },
];

#[test]
fn mapped_int4_codes_look_up_bit_for_bit_like_the_table_in_memory() {
    let dir = scratch("lookup");
    // Odd and even widths: a packed row of 4 bytes holds 7 or 8 codes.
    for dim in [7usize, 8, 10] {
        for mode in MODES {
            let case = format!("dim {dim}, {mode}");
            let mut memory = quantized(dim, mode);
            let path = dir.join(format!(
                "codes-{dim}-{}.npy",
                mode.policy_mode().replace('/', "_")
            ));
            write_codes(&memory, &path);
            let codes = npy::map_npy_codes(&path).unwrap();
            let others = memory.get_weights()[1..].to_vec();
            let mut mapped =
                Embedding::from_mapped_quantized_with(codes, dim, mode, others).unwrap();
            assert!(mapped.is_built() && mapped.is_mapped(), "{case}");
            assert_eq!(mapped.quantization_mode(), Some(mode), "{case}");
            assert_eq!(
                (mapped.input_dim(), mapped.output_dim()),
                (40, dim),
                "{case}"
            );
            assert_eq!(mapped.weight_names(), mode.variable_names(), "{case}");
            assert_eq!(mapped.get_weights(), memory.get_weights(), "{case}");
            assert_eq!(mapped.variables()[0].dtype(), WeightDType::Int8, "{case}");
            assert_eq!(mapped.table_bytes(), memory.table_bytes(), "{case}");
            assert!(
                mapped.variables().iter().all(|w| !w.is_trainable()),
                "{case}"
            );

            let ids = Tensor::from(array![[0i64, 39, 3, 7], [7, 7, 1, 3]]);
            let expected = memory.apply(&ids).unwrap();
            assert_eq!(
                bits(&mapped.apply(&ids).unwrap()),
                bits(&expected),
                "{case}"
            );
            let mut out = ArrayD::<f32>::from_elem(vec![2, 4, dim], f32::NAN);
            mapped.lookup_into(&ids, out.view_mut()).unwrap();
            assert_eq!(
                out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                bits(&expected),
                "{case}"
            );
            let all = Tensor::from((0..40i64).collect::<Vec<_>>());
            assert_eq!(
                bits(&mapped.apply(&all).unwrap()),
                bits(&memory.apply(&all).unwrap()),
                "{case}"
            );
            let err = mapped.apply(&Tensor::from(vec![0i64, 40])).unwrap_err();
            assert!(
                matches!(err, Error::IndexOutOfRange { index: 40, .. }),
                "{case}: {err}"
            );

            // Through a model's predict.
            let mut model = Sequential::new();
            model.add(mapped.input_length(4)).unwrap();
            let x = array![[5i64, 0, 39, 3], [2, 2, 2, 2]];
            let predicted = model.predict(x.clone()).unwrap();
            let from_memory = memory.apply(&Tensor::from(x)).unwrap();
            assert_eq!(
                predicted.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                bits(&from_memory),
                "{case}"
            );
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_mapped_int4_table_is_frozen_and_copied_into_memory_on_request() {
    let dir = scratch("owned");
    let mode = QuantizationMode::Int4 {
        block_size: Some(4),
    };
    let memory = quantized(6, mode);
    let path = dir.join("codes.npy");
    write_codes(&memory, &path);
    let make = || {
        Embedding::from_mapped_quantized_with(
            npy::map_npy_codes(&path).unwrap(),
            6,
            mode,
            memory.get_weights()[1..].to_vec(),
        )
        .unwrap()
    };
    // Training it (not frozen by the user) is an error naming the layer and int4.
    let mut model = Sequential::new();
    model
        .add(make().with_name("mapped_int4").input_length(2))
        .unwrap();
    model.add(GlobalAveragePooling1D::new()).unwrap();
    model.add(Dense::new(1)).unwrap();
    model
        .compile(SGD::new(0.1).into(), Loss::MeanSquaredError)
        .unwrap();
    let err = model
        .fit(
            array![[1i64, 2], [3, 4]],
            array![[1.0f32], [0.0]],
            FitOptions::default().verbose(false),
        )
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("mapped_int4") && message.contains("int4"),
        "{message}"
    );

    let mut owned = make();
    owned.make_owned().unwrap();
    assert!(!owned.is_mapped());
    assert_eq!(owned.get_weights(), memory.get_weights());
    // The file can go once the codes are in memory.
    std::fs::remove_dir_all(dir).unwrap();
    let mut memory = memory;
    let ids = Tensor::from(vec![1i64, 39, 3]);
    assert_eq!(
        bits(&owned.apply(&ids).unwrap()),
        bits(&memory.apply(&ids).unwrap())
    );
}

#[test]
fn bad_int4_variables_are_refused_naming_the_layer_the_file_and_the_variable() {
    let dir = scratch("bad");
    let grouped = QuantizationMode::Int4 {
        block_size: Some(4),
    };
    let memory = quantized(7, grouped);
    let path = dir.join("codes.npy");
    write_codes(&memory, &path);
    let good = memory.get_weights()[1..].to_vec();
    let try_with = |dim: usize, mode: QuantizationMode, others: Vec<ArrayD<f32>>| {
        let codes = npy::map_npy_codes(&path).unwrap();
        let err = Embedding::from_mapped_quantized_with(codes, dim, mode, others).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
        err.to_string()
    };
    let changed = |k: usize, at: &[usize], value: f32| {
        let mut others = good.clone();
        others[k][at] = value;
        others
    };
    let cases: Vec<(Vec<&str>, String)> = vec![
        // The packed codes hold 4 bytes a row: 7 or 8 values, not 9 nor 6.
        (
            vec!["embeddings", "[40, 4]", "[40, 5]", "output_dim 9"],
            try_with(9, grouped, good.clone()),
        ),
        (
            vec!["embeddings", "[40, 3]", "output_dim 6"],
            try_with(6, grouped, good.clone()),
        ),
        // int8 codes of 7 values a row are not these.
        (
            vec!["embeddings", "[40, 7]"],
            try_with(7, QuantizationMode::Int8, vec![ArrayD::ones(vec![40])]),
        ),
        (
            vec!["others", "2 arrays", "3 arrays", "embeddings_zero", "g_idx"],
            try_with(7, grouped, good[..2].to_vec()),
        ),
        (
            vec!["embeddings_scale", "[40, 1]", "[40, 2]"],
            try_with(
                7,
                grouped,
                vec![ArrayD::ones(vec![40, 1]), good[1].clone(), good[2].clone()],
            ),
        ),
        (
            vec!["embeddings_scale", "NaN", "[5, 1]", "finite"],
            try_with(7, grouped, changed(0, &[5, 1], f32::NAN)),
        ),
        (
            vec!["embeddings_scale", "inf", "[2, 0]"],
            try_with(7, grouped, changed(0, &[2, 0], f32::INFINITY)),
        ),
        (
            vec!["embeddings_zero", "9", "[1, 1]", "-8..=7"],
            try_with(7, grouped, changed(1, &[1, 1], 9.0)),
        ),
        (
            vec!["embeddings_zero", "0.5", "[0, 0]", "-8..=7"],
            try_with(7, grouped, changed(1, &[0, 0], 0.5)),
        ),
        (
            vec!["g_idx", "5"],
            try_with(7, grouped, changed(2, &[6], 5.0)),
        ),
        (
            vec!["block_size", "0"],
            try_with(
                7,
                QuantizationMode::Int4 {
                    block_size: Some(0),
                },
                good.clone(),
            ),
        ),
        (
            vec!["output_dim", "0"],
            try_with(0, QuantizationMode::Int4 { block_size: None }, vec![]),
        ),
    ];
    for (words, message) in cases {
        for word in words {
            assert!(message.contains(word), "{message} lacks {word}");
        }
        let names_the_file = message.contains("codes.npy") || message.contains("block_size");
        let names_the_layer = message.contains("Embedding") || message.contains("block_size");
        assert!(names_the_file && names_the_layer, "{message}");
    }

    // Per-channel int4 scales: one per row; a 0 scale would divide by zero.
    let per_channel = QuantizationMode::Int4 { block_size: None };
    let channel = quantized(7, per_channel);
    write_codes(&channel, &path);
    let mut scales = channel.get_weights()[1].clone();
    scales[[9]] = 0.0;
    let message = try_with(7, per_channel, vec![scales]);
    for word in ["embeddings_scale", "[9]", "not 0"] {
        assert!(message.contains(word), "{message} lacks {word}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

// The review of the mapped int4 tables: one test per finding, each failing before its fix.

/// A `(10, dim)` table of values in about `-10..10` (no zero row).
fn small_table(dim: usize) -> Array2<f32> {
    Array2::from_shape_fn((10, dim), |(i, j)| {
        (i as f32 * 0.37 - j as f32).sin() * (1.0 + i as f32)
    })
}

fn built(table: Array2<f32>) -> Embedding {
    let mut layer = Embedding::from_table(table);
    layer.apply(&Tensor::from(vec![0i64])).unwrap();
    layer
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
    let mut memory = built(small_table(8).mapv(|v| v * 2e36));
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
    let mut values = small_table(8);
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
    let mut memory = built(small_table(7));
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
    let mut memory = built(small_table(8));
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
