//! One rule for int8 scales wherever they come from, and a two-file save that fails as one:
//! `set_weights` refuses the scales that `read_npy_scales` and `from_mapped_quantized`
//! refuse (what is accepted can be saved and mapped again), and `write_quantized_npy` leaves
//! both files as they were when it cannot write one of them.

#![cfg(feature = "mmap")]

use std::path::PathBuf;

use ndarray::{Array2, array};
use ndkeras::io::npy;
use ndkeras::prelude::*;
use ndkeras::quantization::QuantizationMode;

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ndkeras-qsave-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn quantized(scale: f32) -> Embedding {
    let table = Array2::from_shape_fn((8, 3), |(i, j)| scale * (i as f32 - j as f32 * 0.5));
    let mut layer = Embedding::from_table(table);
    layer.apply(&Tensor::from(vec![0i64])).unwrap();
    layer.quantize("int8").unwrap();
    layer
}

#[test]
fn set_weights_refuses_the_int8_scales_a_scales_file_may_not_hold() {
    let mut layer = quantized(1.0);
    let before = layer.get_weights();
    for (k, bad, word) in [
        (2usize, -0.5f32, "positive"),
        (3, 0.0, "positive"),
        (5, 1e-45, "code / scale"),
        // Refused as any weight's NaN is (its message names the weight's position).
        (4, f32::NAN, "finite"),
    ] {
        let mut weights = before.clone();
        weights[1][[k]] = bad;
        let err = layer.set_weights(weights).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
        let message = err.to_string();
        let named = if bad.is_nan() {
            "weight 1"
        } else {
            "embeddings_scale"
        };
        for word in [named, &format!("[{k}]"), word] {
            assert!(message.contains(word), "{bad}: {message} lacks {word}");
        }
        assert_eq!(
            layer.get_weights(),
            before,
            "a refused set_weights changed the layer"
        );
    }
    // Good scales still go in, and what went in can be saved, read back and mapped.
    let mut weights = before.clone();
    weights[1][[2]] *= 2.0;
    layer.set_weights(weights.clone()).unwrap();
    let dir = scratch("rule");
    let (codes, scales) = (dir.join("codes.npy"), dir.join("scales.npy"));
    npy::write_quantized_npy(&layer, &codes, &scales).unwrap();
    let codes = npy::map_npy_codes(&codes).unwrap();
    let scales = npy::read_npy_scales(&scales, codes.rows()).unwrap();
    let mapped = Embedding::from_mapped_quantized(codes, scales, QuantizationMode::Int8).unwrap();
    let ids = Tensor::from(array![0i64, 2, 7]);
    assert_eq!(mapped.call(&ids).unwrap(), layer.call(&ids).unwrap());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_failed_two_file_save_leaves_both_files_as_they_were() {
    let dir = scratch("pair");
    let (codes, scales) = (dir.join("codes.npy"), dir.join("scales.npy"));
    npy::write_quantized_npy(&quantized(1.0), &codes, &scales).unwrap();
    let old_codes = std::fs::read(&codes).unwrap();
    let old_scales = std::fs::read(&scales).unwrap();

    // The scales' folder does not exist: nothing may change, the codes file included.
    let missing = dir.join("missing").join("scales.npy");
    let err = npy::write_quantized_npy(&quantized(3.0), &codes, &missing).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("missing"), "{err}");
    assert_eq!(std::fs::read(&codes).unwrap(), old_codes);
    // The scales path is a directory.
    let folder = dir.join("folder.npy");
    std::fs::create_dir(&folder).unwrap();
    let err = npy::write_quantized_npy(&quantized(3.0), &codes, &folder).unwrap_err();
    assert!(err.to_string().contains("directory"), "{err}");
    assert_eq!(std::fs::read(&codes).unwrap(), old_codes);
    // The codes path cannot be written: the scales file stays too.
    let err = npy::write_quantized_npy(&quantized(3.0), &folder, &scales).unwrap_err();
    assert!(err.to_string().contains("directory"), "{err}");
    assert_eq!(std::fs::read(&scales).unwrap(), old_scales);
    // One path for both is refused before anything is written.
    let err = npy::write_quantized_npy(&quantized(3.0), &codes, &codes).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert_eq!(std::fs::read(&codes).unwrap(), old_codes);
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");

    // A save that succeeds replaces both.
    npy::write_quantized_npy(&quantized(3.0), &codes, &scales).unwrap();
    assert_ne!(std::fs::read(&scales).unwrap(), old_scales);
    std::fs::remove_dir_all(dir).unwrap();
}

/// `quantize_with` makes only tables a lookup can decode and `set_weights` accepts back:
/// a row whose int4 codes would dequantise past `f32::MAX` (per channel: above 7/8 of it),
/// or a grouped int4 group whose range overflows, is refused naming the row, and the layer
/// keeps its float32 table. Tables of large values short of that round-trip.
#[test]
fn int4_quantize_refuses_rows_it_could_not_decode_and_accepts_its_own_scales_back() {
    let per_channel = QuantizationMode::Int4 { block_size: None };
    let grouped = QuantizationMode::Int4 {
        block_size: Some(2),
    };
    let table = |row: [f32; 4]| {
        let mut table = Array2::from_shape_fn((5, 4), |(i, j)| i as f32 - j as f32);
        table.row_mut(3).assign(&ndarray::arr1(&row));
        table
    };
    for (mode, row, words) in [
        (
            per_channel,
            [1.0, 3.0e38, 0.0, -1.0],
            vec!["row 3", "7/8 of f32::MAX"],
        ),
        (grouped, [2.0e38, -2.0e38, 0.0, 1.0], vec!["row 3", "range"]),
    ] {
        let mut layer = Embedding::from_table(table(row));
        layer.apply(&Tensor::from(vec![0i64])).unwrap();
        let before = layer.get_weights();
        let err = layer.quantize_with(mode).unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument { .. }),
            "{mode}: {err:?}"
        );
        let message = err.to_string();
        for word in words {
            assert!(message.contains(word), "{message} lacks {word}");
        }
        assert_eq!(layer.quantization_mode(), None);
        assert_eq!(layer.get_weights(), before);
    }
    // Just short of the bounds: quantized, decoded finite, and its own variables accepted.
    for (mode, row) in [
        (per_channel, [1.0, 2.9e38, 0.0, -1.0]),
        (grouped, [1.6e38, -1.6e38, 0.0, 1.0]),
        (grouped, [3.0e38, 2.9e38, -3.0e38, -2.9e38]),
    ] {
        let mut layer = Embedding::from_table(table(row));
        layer.apply(&Tensor::from(vec![0i64])).unwrap();
        layer.quantize_with(mode).unwrap();
        let decoded = layer.apply(&Tensor::from(vec![3i64])).unwrap();
        assert!(
            decoded.as_float().unwrap().iter().all(|v| v.is_finite()),
            "{mode}: {decoded:?}"
        );
        let weights = layer.get_weights();
        layer.set_weights(weights.clone()).unwrap();
        assert_eq!(layer.get_weights(), weights, "{mode}");
    }
}
