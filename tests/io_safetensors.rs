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

/// What ndkeras writes, the reference implementation (the Hugging Face `safetensors` crate)
/// reads: same names, shapes, dtype and bytes, whatever the arrays' shapes and layouts.
#[test]
fn written_files_are_accepted_by_the_reference() {
    let table = Array2::from_shape_fn((3, 2), |(i, j)| (i * 2 + j) as f32 - 2.5);
    let transposed = table.t().to_owned().into_dyn();
    let scalar = ndarray::arr0(7.25f32).into_dyn();
    let empty = ArrayD::<f32>::zeros(ndarray::IxDyn(&[0, 4]));
    let tensors = vec![
        ("table".to_string(), table.view().into_dyn()),
        ("table.T".to_string(), table.t().into_dyn()),
        ("scalar".to_string(), scalar.view()),
        ("empty".to_string(), empty.view()),
    ];
    let bytes = safetensors::to_bytes(&tensors).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap());
    assert_eq!(header_len % 8, 0, "the data starts 8-byte aligned");

    let reference = ::safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = reference.names();
    names.sort_unstable();
    assert_eq!(names, ["empty", "scalar", "table", "table.T"]);
    for (name, array) in &tensors {
        let view = reference.tensor(name).unwrap();
        assert_eq!(view.dtype(), ::safetensors::Dtype::F32);
        assert_eq!(view.shape(), array.shape());
        let values: Vec<u8> = array.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(view.data(), &values[..], "{name}");
        assert_eq!(safetensors::read_tensor_bytes(&bytes, name).unwrap(), array);
    }
    assert_eq!(
        safetensors::read_tensor_bytes(&bytes, "table.T").unwrap(),
        transposed
    );

    // The file writer writes the same bytes.
    let dir = std::env::temp_dir().join(format!("ndkeras-st-ref-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.safetensors");
    safetensors::write_tensors(&path, &tensors).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    let listed: Vec<(String, Vec<usize>)> = safetensors::list_tensors(&path)
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.shape))
        .collect();
    assert_eq!(
        listed,
        [
            ("empty".to_string(), vec![0, 4]),
            ("scalar".to_string(), vec![]),
            ("table".to_string(), vec![3, 2]),
            ("table.T".to_string(), vec![2, 3]),
        ]
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Writers refuse what readers would refuse, naming the tensor and the position; nothing is
/// written.
#[test]
fn writers_refuse_non_finite_values_and_bad_names() {
    let dir = std::env::temp_dir().join(format!("ndkeras-st-refuse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.safetensors");
    let good = Array2::<f32>::zeros((2, 3)).into_dyn();
    for bad_value in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut bad = good.clone();
        bad[[1, 2]] = bad_value;
        let tensors = [
            ("good".to_string(), good.view()),
            ("bad".to_string(), bad.view()),
        ];
        for err in [
            safetensors::to_bytes(&tensors).unwrap_err(),
            safetensors::write_tensors(&path, &tensors).unwrap_err(),
        ] {
            assert!(
                matches!(err, ndkeras::Error::InvalidArgument { .. }),
                "{err:?}"
            );
            let message = err.to_string();
            for part in [
                &bad_value.to_string(),
                "element [1, 2] (flat index 5) of tensor 'bad'",
                "finite float32",
            ] {
                assert!(message.contains(part), "{message} lacks {part}");
            }
        }
        assert!(!path.exists());
    }
    let twice = [
        ("a".to_string(), good.view()),
        ("a".to_string(), good.view()),
    ];
    let err = safetensors::to_bytes(&twice).unwrap_err();
    assert!(err.to_string().contains("'a' twice"), "{err}");
    let reserved = [("__metadata__".to_string(), good.view())];
    let err = safetensors::write_tensors(&path, &reserved).unwrap_err();
    assert!(err.to_string().contains("__metadata__"), "{err}");
    assert!(!path.exists());
    std::fs::remove_dir_all(dir).unwrap();
}
