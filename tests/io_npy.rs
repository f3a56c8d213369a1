//! NumPy files in and out, and model weights saved and loaded by name. The fixtures in
//! `tests/data/numpy/` were written by NumPy itself (`make_fixtures.py` beside them).

use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayD, Ix2, array};
use ndkeras::io::npy;
use ndkeras::prelude::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/numpy")
        .join(name)
}

fn expected_table() -> ArrayD<f32> {
    Array2::from_shape_fn((4, 3), |(i, j)| ((i * 3 + j) as f32 - 5.5) / 4.0).into_dyn()
}

/// A fresh folder for one test's files.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ndkeras-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn numpy_files_read_exactly() {
    for name in ["table_f32.npy", "table_fortran.npy", "table_big_endian.npy"] {
        assert_eq!(
            npy::read_npy(fixture(name)).unwrap(),
            expected_table(),
            "{name}"
        );
    }
    // float64 is rounded to the nearest float32 (the 1e-9 disappears), as Keras does.
    assert_eq!(
        npy::read_npy(fixture("table_f64.npy")).unwrap(),
        expected_table()
    );
    assert_eq!(
        npy::read_npy(fixture("vector_f32.npy")).unwrap(),
        array![1.5f32, -2.5].into_dyn()
    );
}

#[test]
fn a_table_loaded_from_numpy_drives_an_embedding() {
    let table = npy::read_npy(fixture("table_f32.npy"))
        .unwrap()
        .into_dimensionality::<Ix2>()
        .unwrap();
    let mut layer = Embedding::from_table(table.clone());
    let out = layer.apply(&Tensor::from(vec![3i64, 0])).unwrap();
    assert_eq!(out.as_float().unwrap().row_view(0), table.row(3).to_vec());
}

trait RowView {
    fn row_view(&self, r: usize) -> Vec<f32>;
}

impl RowView for ArrayD<f32> {
    fn row_view(&self, r: usize) -> Vec<f32> {
        self.index_axis(ndarray::Axis(0), r)
            .iter()
            .copied()
            .collect()
    }
}

#[test]
fn round_trips_are_bit_exact() {
    let dir = scratch("roundtrip");
    let extreme = array![
        [0.0f32, -0.0, 1e-45],
        [f32::MAX, f32::MIN, f32::MIN_POSITIVE],
        [0.1, -1.0 / 3.0, 16777216.0]
    ]
    .into_dyn();
    let path = dir.join("extreme.npy");
    npy::write_npy(&path, &extreme.view()).unwrap();
    let back = npy::read_npy(&path).unwrap();
    assert_eq!(back.shape(), extreme.shape());
    assert!(
        back.iter()
            .zip(extreme.iter())
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );

    let path = dir.join("several.npz");
    let scalar = ndarray::arr0(2.5f32).into_dyn();
    npy::write_npz(
        &path,
        &[
            ("a/b".to_string(), extreme.view()),
            ("scalar".to_string(), scalar.view()),
        ],
    )
    .unwrap();
    let back = npy::read_npz(&path).unwrap();
    assert_eq!(
        back,
        vec![
            ("a/b".to_string(), extreme.clone()),
            ("scalar".to_string(), scalar)
        ]
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn numpy_archives_read_by_name() {
    let arrays = npy::read_npz(fixture("weights.npz")).unwrap();
    let names: Vec<&str> = arrays.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["embedding/embeddings", "dense/kernel", "dense/bias"]
    );
    assert_eq!(arrays[0].1, expected_table());
    let compressed = npy::read_npz(fixture("compressed.npz")).unwrap();
    assert_eq!(compressed[0], ("table".to_string(), expected_table()));
    assert_eq!(compressed[1].1, ArrayD::from_elem(vec![2, 2], 7.0f32));
}

#[test]
fn bad_files_are_clear_errors() {
    let err = npy::read_npy(fixture("ids_int64.npy")).unwrap_err();
    assert!(err.to_string().contains("int64"), "{err}");
    let err = npy::read_npy(fixture("does_not_exist.npy")).unwrap_err();
    assert!(
        matches!(err, Error::Io { .. }) && err.to_string().contains("does_not_exist.npy"),
        "{err}"
    );

    let bytes = std::fs::read(fixture("table_f32.npy")).unwrap();
    let err = npy::read_npy_bytes(&bytes[..bytes.len() - 4]).unwrap_err();
    assert!(
        err.to_string().contains("shorter than its header says"),
        "{err}"
    );
    let err = npy::read_npy_bytes(&bytes[..20]).unwrap_err();
    assert!(matches!(err, Error::InvalidFile { .. }), "{err}");
    let err = npy::read_npy_bytes(b"PK\x03\x04 not numpy").unwrap_err();
    assert!(err.to_string().contains("magic"), "{err}");

    // A header claiming 10^12 rows is refused, not allocated.
    let err = npy::read_npy_bytes(&npy_bytes("(1000000000000, 3)", &bytes[bytes.len() - 48..]))
        .unwrap_err();
    assert!(
        err.to_string().contains("shorter than its header says"),
        "{err}"
    );
    let err = npy::read_npy_bytes(&npy_bytes("(18446744073709551615, 3)", &[])).unwrap_err();
    assert!(
        err.to_string().contains("more elements than fit in memory"),
        "{err}"
    );
    let err = npy::read_npy_bytes(&npy_bytes("(-1, 3)", &[])).unwrap_err();
    assert!(err.to_string().contains("not a length"), "{err}");

    // An archive cut short, as by an interrupted save, is detected.
    let archive = std::fs::read(fixture("weights.npz")).unwrap();
    for cut in [archive.len() - 1, archive.len() / 2, 30] {
        let err = npy::read_npz_bytes(&archive[..cut]).unwrap_err();
        assert!(matches!(err, Error::InvalidFile { .. }), "{err}");
    }
}

/// A version 1.0 `.npy` file of float32 with the given shape text and data bytes.
fn npy_bytes(shape: &str, data: &[u8]) -> Vec<u8> {
    let header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}\n");
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

fn model(name: &str) -> Sequential {
    let mut model = Sequential::new().with_name(name);
    model
        .add(Embedding::new(4, 3).input_length(2).with_name("embedding"))
        .unwrap();
    model.add(Flatten::new().with_name("flatten")).unwrap();
    model.add(Dense::new(1).with_name("dense")).unwrap();
    model
}

#[test]
fn weights_save_and_load_by_name() {
    let dir = scratch("weights");
    let path = dir.join("model.npz");
    let mut trained = model("trained");
    trained
        .compile(SGD::new(0.1).into(), Loss::MeanSquaredError)
        .unwrap();
    trained
        .fit(
            array![[1i64, 2], [3, 0]],
            array![[1.0f32], [0.0]],
            FitOptions::default().epochs(3).verbose(false),
        )
        .unwrap();
    trained.save_weights(&path).unwrap();

    let names: Vec<String> = npy::read_npz(&path)
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        ["embedding/embeddings", "dense/kernel", "dense/bias"]
    );

    let mut fresh = model("fresh");
    fresh.load_weights(&path).unwrap();
    for (a, b) in trained.layers().iter().zip(fresh.layers()) {
        assert_eq!(a.get_weights(), b.get_weights());
    }
    let x = array![[1i64, 2], [0, 3]];
    assert_eq!(
        trained.predict(x.clone()).unwrap(),
        fresh.predict(x).unwrap()
    );

    // A file written by NumPy with the same names loads too.
    let mut from_numpy = Sequential::new();
    from_numpy
        .add(Embedding::new(4, 3).with_name("embedding"))
        .unwrap();
    from_numpy.add(GlobalAveragePooling1D::new()).unwrap();
    from_numpy.add(Dense::new(1).with_name("dense")).unwrap();
    from_numpy.load_weights(fixture("weights.npz")).unwrap();
    assert_eq!(
        from_numpy.get_layer(2).unwrap().get_weights()[0],
        ArrayD::<f32>::ones(vec![3, 1])
    );
    assert_eq!(
        from_numpy.get_layer(0).unwrap().get_weights(),
        vec![expected_table()]
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_mismatched_weights_file_changes_nothing() {
    let dir = scratch("mismatch");
    let mut target = model("target");
    let before: Vec<Vec<ArrayD<f32>>> = target.layers().iter().map(|l| l.get_weights()).collect();
    let unchanged = |m: &Sequential| {
        m.layers()
            .iter()
            .map(|l| l.get_weights())
            .collect::<Vec<_>>()
            == before
    };

    // Another architecture: a dense layer of 2 units.
    let mut other = Sequential::new();
    other
        .add(Embedding::new(4, 3).input_length(2).with_name("embedding"))
        .unwrap();
    other.add(Flatten::new().with_name("flatten")).unwrap();
    other.add(Dense::new(2).with_name("dense")).unwrap();
    let path = dir.join("other.npz");
    other.save_weights(&path).unwrap();
    let err = target.load_weights(&path).unwrap_err();
    assert!(
        matches!(err, Error::WeightShape { .. })
            && err.to_string().contains("(6, 1)")
            && err.to_string().contains("(6, 2)"),
        "{err}"
    );
    assert!(unchanged(&target));

    // Other names.
    let mut renamed = Sequential::new();
    renamed
        .add(Embedding::new(4, 3).input_length(2).with_name("words"))
        .unwrap();
    let path = dir.join("renamed.npz");
    renamed.save_weights(&path).unwrap();
    let err = target.load_weights(&path).unwrap_err();
    assert!(
        err.to_string().contains("embedding/embeddings")
            && err.to_string().contains("words/embeddings"),
        "{err}"
    );
    assert!(unchanged(&target));

    // A missing file names its path.
    let err = target.load_weights(dir.join("nowhere.npz")).unwrap_err();
    assert!(err.to_string().contains("nowhere.npz"), "{err}");

    // A failed save leaves no temporary file behind and the previous file intact.
    let good = dir.join("good.npz");
    target.save_weights(&good).unwrap();
    let saved = std::fs::read(&good).unwrap();
    let mut unbuilt = Sequential::new();
    unbuilt.add(Dense::new(1)).unwrap();
    assert!(unbuilt.save_weights(&good).is_err());
    assert!(
        target
            .save_weights(dir.join("missing-folder").join("x.npz"))
            .is_err()
    );
    assert_eq!(std::fs::read(&good).unwrap(), saved);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// An `.npy` file (version 1.0) holding `data` under the header `descr`/`shape`/`fortran`.
fn typed_npy(descr: &str, shape: &str, fortran: bool, data: &[u8]) -> Vec<u8> {
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    bytes
}

#[test]
fn integer_files_are_read_as_exact_ids() {
    // np.save("ids_int64.npy", np.arange(6, dtype=np.int64))
    let ids = npy::read_npy_ids(fixture("ids_int64.npy")).unwrap();
    assert_eq!(ids.dtype(), DType::Int64);
    assert_eq!(ids, Tensor::from(ndarray::arr1(&[0i64, 1, 2, 3, 4, 5])));
    let dir = scratch("npy-ids");
    // Big-endian int32 beyond 2^24 stays exact; a Fortran-ordered uint8 matrix is read in
    // NumPy's logical order.
    let big: Vec<u8> = [16_777_217i32, -3]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect();
    std::fs::write(dir.join("big.npy"), typed_npy(">i4", "(2,)", false, &big)).unwrap();
    assert_eq!(
        npy::read_npy_ids(dir.join("big.npy")).unwrap(),
        Tensor::from(ndarray::arr1(&[16_777_217i32, -3]))
    );
    std::fs::write(
        dir.join("fortran.npy"),
        typed_npy("|u1", "(2, 3)", true, &[1, 4, 2, 5, 3, 6]),
    )
    .unwrap();
    assert_eq!(
        npy::read_npy_ids(dir.join("fortran.npy")).unwrap(),
        Tensor::from(array![[1u8, 2, 3], [4, 5, 6]])
    );
    // Float files are read as floats (whole-number float ids are accepted by the layers).
    assert_eq!(
        npy::read_npy_ids(fixture("vector_f32.npy")).unwrap(),
        Tensor::from(ndarray::arr1(&[1.5f32, -2.5]))
    );
    // A file shorter than its header says, and a complex file, are errors naming the file.
    std::fs::write(
        dir.join("short.npy"),
        typed_npy("<i8", "(3,)", false, &[0; 16]),
    )
    .unwrap();
    let err = npy::read_npy_ids(dir.join("short.npy")).unwrap_err();
    assert!(
        err.to_string().contains("short.npy") && err.to_string().contains("shorter"),
        "{err}"
    );
    std::fs::write(
        dir.join("complex.npy"),
        typed_npy("<c8", "(1,)", false, &[0; 8]),
    )
    .unwrap();
    let err = npy::read_npy_ids(dir.join("complex.npy")).unwrap_err();
    assert!(err.to_string().contains("complex64"), "{err}");
    // The float readers still refuse integer files, pointing to read_npy_ids.
    let err = npy::read_npy(fixture("ids_int64.npy")).unwrap_err();
    assert!(err.to_string().contains("read_npy_ids"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_table_reads_as_an_array2() {
    let table = npy::read_npy_table(fixture("table_f32.npy")).unwrap();
    assert_eq!(table.into_dyn(), expected_table());
    let err = npy::read_npy_table(fixture("vector_f32.npy")).unwrap_err();
    assert!(
        err.to_string().contains("vector_f32.npy") && err.to_string().contains("2-D"),
        "{err}"
    );
}
