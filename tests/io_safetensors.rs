//! `.safetensors`: a file written by the Hugging Face `safetensors` package
//! (`tests/data/numpy/make_fixtures.py`), and files this crate writes.

#![cfg(feature = "safetensors")]

use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayD, Ix2};
use ndkeras::io::safetensors;
use ndkeras::prelude::*;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/numpy/model.safetensors")
}

fn expected_table() -> ArrayD<f32> {
    Array2::from_shape_fn((4, 3), |(i, j)| ((i * 3 + j) as f32 - 5.5) / 4.0).into_dyn()
}

#[test]
fn a_hugging_face_file_loads_into_an_embedding() {
    let names: Vec<(String, String, Vec<usize>)> = safetensors::list_tensors(fixture())
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.dtype, t.shape))
        .collect();
    assert!(
        names.contains(&("embed_tokens.weight".into(), "F32".into(), vec![4, 3])),
        "{names:?}"
    );
    let table = safetensors::read_tensor(fixture(), "embed_tokens.weight").unwrap();
    assert_eq!(table, expected_table());
    // float16 holds these values exactly (quarters).
    assert_eq!(
        safetensors::read_tensor(fixture(), "f16").unwrap(),
        expected_table()
    );
    let mut layer = Embedding::from_table(table.into_dimensionality::<Ix2>().unwrap());
    let out = layer.apply(&Tensor::from(vec![3i64])).unwrap();
    assert_eq!(
        out.as_float().unwrap().iter().copied().collect::<Vec<_>>(),
        vec![0.875, 1.125, 1.375]
    );
}

#[test]
fn bad_names_dtypes_and_files_are_clear_errors() {
    let err = safetensors::read_tensor(fixture(), "lm_head.weight").unwrap_err();
    assert!(
        err.to_string().contains("embed_tokens.weight")
            && err.to_string().contains("lm_head.weight"),
        "{err}"
    );
    let err = safetensors::read_tensor(fixture(), "ids").unwrap_err();
    assert!(err.to_string().contains("I64"), "{err}");
    let err = safetensors::read_tensor("/nonexistent.safetensors", "x").unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent.safetensors"),
        "{err}"
    );

    let bytes = std::fs::read(fixture()).unwrap();
    assert!(
        safetensors::read_tensor_bytes(&bytes[..bytes.len() - 10], "embed_tokens.weight").is_err()
    );
    assert!(safetensors::read_tensor_bytes(&bytes[..5], "embed_tokens.weight").is_err());
    let mut huge = bytes.clone();
    huge[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(
        safetensors::read_tensor_bytes(&huge, "embed_tokens.weight")
            .unwrap_err()
            .to_string()
            .contains("claims")
    );
}

#[test]
fn round_trips_are_bit_exact() {
    let dir = std::env::temp_dir().join(format!("ndkeras-st-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.safetensors");
    let table = ndarray::array![[f32::MIN_POSITIVE, -0.0], [1e-45, f32::MAX]].into_dyn();
    safetensors::write_tensors(&path, &[("a".to_string(), table.view())]).unwrap();
    let back = safetensors::read_tensor(&path, "a").unwrap();
    assert!(
        back.iter()
            .zip(table.iter())
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
    std::fs::remove_dir_all(dir).unwrap();
}
