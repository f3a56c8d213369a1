//! `save_weights` / `load_weights` of quantized and half-precision tables in their own
//! dtype: int8 codes and zero points as `|i1`, scales and `g_idx` as `<f4`, float16 tables as
//! `<f2`, bfloat16 tables as float32 (NumPy has no bfloat16); read back bit-exactly; float32
//! files of older ndkeras still load; wrong dtypes, shapes and int4 zero points are refused
//! with the file, entry and dtype named.

use ndarray::{Array2, ArrayD};
use ndkeras::io::npy::{self, NpyArray, NpyView};
use ndkeras::prelude::*;
use ndkeras::quantization::{QuantizationMode, TableDType};

struct Dir(std::path::PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("ndkeras-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// A deterministic table with values of many magnitudes.
fn table(rows: usize, cols: usize) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |(r, c)| {
        let x = ((r * 31 + c * 17) % 97) as f32 / 97.0 - 0.5;
        x * (1.0 + (r % 5) as f32)
    })
}

#[derive(Clone, Copy, Debug)]
enum Storage {
    Quantized(QuantizationMode),
    Half(TableDType),
}

const STORAGES: [Storage; 5] = [
    Storage::Quantized(QuantizationMode::Int8),
    Storage::Quantized(QuantizationMode::Int4 { block_size: None }),
    Storage::Quantized(QuantizationMode::Int4 {
        block_size: Some(3),
    }),
    Storage::Half(TableDType::Float16),
    Storage::Half(TableDType::BFloat16),
];

/// A one-layer model over `table` stored as `storage` (named `emb`).
fn model(table: Array2<f32>, storage: Storage) -> Sequential {
    let (rows, cols) = table.dim();
    let mut layer = Embedding::new(rows, cols)
        .with_name("emb")
        .input_length(2)
        .weights(vec![table.into_dyn()]);
    if let Storage::Half(dtype) = storage {
        layer = layer.dtype(dtype);
    }
    layer.build(&[None, Some(2)]).unwrap();
    if let Storage::Quantized(mode) = storage {
        layer.quantize_with(mode).unwrap();
    }
    let mut model = Sequential::new();
    model.add(layer).unwrap();
    model
}

fn bits(arrays: &[ArrayD<f32>]) -> Vec<Vec<u32>> {
    arrays
        .iter()
        .map(|a| a.iter().map(|v| v.to_bits()).collect())
        .collect()
}

#[test]
fn every_storage_round_trips_bit_exactly_in_its_own_dtype() {
    let dir = Dir::new("typed-weights");
    for storage in STORAGES {
        let mut saved = model(table(10, 7), storage);
        let path = dir.0.join("w.npz");
        saved.save_weights(&path).unwrap();
        let stored = npy::read_npz_typed(&path).unwrap();
        let dtypes: Vec<(&str, &str)> = stored
            .iter()
            .map(|(n, a)| (n.as_str(), a.dtype_name()))
            .collect();
        let expected: Vec<(&str, &str)> = match storage {
            Storage::Quantized(QuantizationMode::Int4 {
                block_size: Some(_),
            }) => vec![
                ("emb/embeddings", "int8"),
                ("emb/embeddings_scale", "float32"),
                ("emb/embeddings_zero", "int8"),
                ("emb/g_idx", "float32"),
            ],
            Storage::Quantized(_) => vec![
                ("emb/embeddings", "int8"),
                ("emb/embeddings_scale", "float32"),
            ],
            Storage::Half(TableDType::Float16) => vec![("emb/embeddings", "float16")],
            Storage::Half(_) => vec![("emb/embeddings", "float32")],
        };
        assert_eq!(dtypes, expected, "{storage:?}");

        // A twin over another table loads the file and ends with the same bits.
        let mut twin = model(table(10, 7) * 3.0, storage);
        twin.load_weights(&path).unwrap();
        let (ours, theirs) = (
            saved.get_layer(0).unwrap().get_weights(),
            twin.get_layer(0).unwrap().get_weights(),
        );
        assert_eq!(bits(&ours), bits(&theirs), "{storage:?}");
        let dtypes_after: Vec<&str> = twin
            .get_layer(0)
            .unwrap()
            .variables()
            .iter()
            .map(|w| w.dtype().name())
            .collect();
        let dtypes_before: Vec<&str> = saved
            .get_layer(0)
            .unwrap()
            .variables()
            .iter()
            .map(|w| w.dtype().name())
            .collect();
        assert_eq!(dtypes_after, dtypes_before, "{storage:?}");
        let ids = ndarray::array![[0i64, 9], [3, 3]];
        assert_eq!(
            saved.predict(ids.clone()).unwrap(),
            twin.predict(ids).unwrap(),
            "{storage:?}"
        );
    }
}

#[test]
fn an_int8_file_is_about_a_quarter_of_the_float32_one() {
    let dir = Dir::new("typed-weights-size");
    let float = model(table(1000, 64), Storage::Half(TableDType::Float32));
    let int8 = model(table(1000, 64), Storage::Quantized(QuantizationMode::Int8));
    let f16 = model(table(1000, 64), Storage::Half(TableDType::Float16));
    let size = |m: &Sequential, name: &str| {
        let path = dir.0.join(name);
        m.save_weights(&path).unwrap();
        std::fs::metadata(&path).unwrap().len() as f64
    };
    let (float, int8, f16) = (
        size(&float, "f32.npz"),
        size(&int8, "int8.npz"),
        size(&f16, "f16.npz"),
    );
    // 256 000 bytes of float32 values; 64 000 of codes plus 4 000 of scales.
    assert!(int8 / float < 0.28, "int8 {int8} bytes, float32 {float}");
    assert!(
        (0.49..0.52).contains(&(f16 / float)),
        "f16 {f16}, f32 {float}"
    );
}

#[test]
fn float32_files_of_older_ndkeras_still_load() {
    let dir = Dir::new("typed-weights-legacy");
    for storage in STORAGES {
        let saved = model(table(6, 5), storage);
        let layer = saved.get_layer(0).unwrap();
        // Older ndkeras widened every variable to float32.
        let widened = layer.get_weights();
        let named: Vec<(String, ndarray::ArrayViewD<'_, f32>)> = layer
            .weight_names()
            .iter()
            .zip(&widened)
            .map(|(n, a)| (format!("emb/{n}"), a.view()))
            .collect();
        let path = dir.0.join("old.npz");
        npy::write_npz(&path, &named).unwrap();
        let mut twin = model(table(6, 5) * 2.0, storage);
        twin.load_weights(&path).unwrap();
        assert_eq!(
            bits(&twin.get_layer(0).unwrap().get_weights()),
            bits(&widened),
            "{storage:?}"
        );
    }
}

fn invalid_file(error: Error) -> String {
    assert!(matches!(error, Error::InvalidFile { .. }), "{error:?}");
    error.to_string()
}

#[test]
fn a_dtype_the_variable_does_not_take_is_refused_naming_file_entry_and_dtype() {
    let dir = Dir::new("typed-weights-dtype");
    // A quantized file into a float32 model.
    let path = dir.0.join("quantized.npz");
    model(table(6, 5), Storage::Quantized(QuantizationMode::Int8))
        .save_weights(&path)
        .unwrap();
    let mut float = model(table(6, 5), Storage::Half(TableDType::Float32));
    let before = float.get_layer(0).unwrap().get_weights();
    let text = invalid_file(float.load_weights(&path).unwrap_err());
    for part in [
        "quantized.npz",
        "emb/embeddings",
        "int8",
        "float32",
        "quantize",
    ] {
        assert!(text.contains(part), "{text} lacks {part}");
    }
    assert_eq!(float.get_layer(0).unwrap().get_weights(), before);

    // A float16 table into int8 codes, and into a bfloat16 table.
    let path = dir.0.join("half.npz");
    model(table(6, 5), Storage::Half(TableDType::Float16))
        .save_weights(&path)
        .unwrap();
    let text = invalid_file(
        model(table(6, 5), Storage::Quantized(QuantizationMode::Int8))
            .load_weights(&path)
            .unwrap_err(),
    );
    assert!(text.contains("float16") && text.contains("int8"), "{text}");
    let text = invalid_file(
        model(table(6, 5), Storage::Half(TableDType::BFloat16))
            .load_weights(&path)
            .unwrap_err(),
    );
    assert!(
        text.contains("float16") && text.contains("bfloat16"),
        "{text}"
    );

    // Another integer type.
    let path = dir.0.join("int16.npz");
    let int16 = npy_bytes("<i2", &[6, 5], &[0u8; 60]);
    std::fs::write(&path, zip_of("emb/embeddings.npy", &int16)).unwrap();
    let text = invalid_file(
        model(table(6, 5), Storage::Quantized(QuantizationMode::Int8))
            .load_weights(&path)
            .unwrap_err(),
    );
    assert!(
        text.contains("int16") && text.contains("not supported"),
        "{text}"
    );
}

#[test]
fn wrong_shapes_and_int4_zero_points_out_of_range_are_refused() {
    let dir = Dir::new("typed-weights-hostile");
    let grouped = Storage::Quantized(QuantizationMode::Int4 {
        block_size: Some(3),
    });
    let saved = model(table(6, 5), grouped);
    let layer = saved.get_layer(0).unwrap();
    let weights = layer.get_weights();
    let codes = weights[0].mapv(|v| v as i8);
    let zeros = weights[2].mapv(|v| v as i8);
    let write = |name: &str, codes: &ArrayD<i8>, zeros: &ArrayD<i8>| {
        let path = dir.0.join(name);
        npy::write_npz_typed(
            &path,
            &[
                ("emb/embeddings".to_string(), NpyView::Int8(codes.view())),
                (
                    "emb/embeddings_scale".to_string(),
                    NpyView::Float32(weights[1].view()),
                ),
                (
                    "emb/embeddings_zero".to_string(),
                    NpyView::Int8(zeros.view()),
                ),
                ("emb/g_idx".to_string(), NpyView::Float32(weights[3].view())),
            ],
        )
        .unwrap();
        path
    };
    // Codes of another shape.
    let narrow = codes.slice(ndarray::s![.., ..2]).to_owned().into_dyn();
    let path = write("shape.npz", &narrow, &zeros);
    let mut twin = model(table(6, 5), grouped);
    let err = twin.load_weights(&path).unwrap_err();
    assert!(matches!(err, Error::WeightShape { .. }), "{err:?}");

    // A zero point of 9 is not an int4 value.
    let mut bad_zeros = zeros.clone();
    bad_zeros[[4, 1]] = 9;
    let path = write("zero.npz", &codes, &bad_zeros);
    let before = twin.get_layer(0).unwrap().get_weights();
    let err = twin.load_weights(&path).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    for part in ["embeddings_zero", "9", "[4, 1]", "-8..=7"] {
        assert!(text.contains(part), "{text} lacks {part}");
    }
    assert_eq!(twin.get_layer(0).unwrap().get_weights(), before);

    // The same file with valid zero points loads.
    let path = write("ok.npz", &codes, &zeros);
    twin.load_weights(&path).unwrap();
    assert_eq!(
        bits(&twin.get_layer(0).unwrap().get_weights()),
        bits(&weights)
    );
}

#[test]
fn typed_npz_round_trips_and_refuses_non_finite_float16() {
    let dir = Dir::new("typed-npz");
    let path = dir.0.join("t.npz");
    let codes = ndarray::array![[-128i8, 0, 127], [1, -1, 5]].into_dyn();
    let half_bits =
        ndarray::array![half::f16::from_f32(0.5).to_bits(), half::f16::MAX.to_bits()].into_dyn();
    let floats = ndarray::array![1.5f32, -2.0].into_dyn();
    npy::write_npz_typed(
        &path,
        &[
            ("codes".into(), NpyView::Int8(codes.view())),
            ("half".into(), NpyView::Float16(half_bits.view())),
            ("floats".into(), NpyView::Float32(floats.view())),
        ],
    )
    .unwrap();
    let back = npy::read_npz_typed(&path).unwrap();
    assert_eq!(back[0], ("codes".to_string(), NpyArray::Int8(codes)));
    assert_eq!(back[1], ("half".to_string(), NpyArray::Float16(half_bits)));
    assert_eq!(back[2], ("floats".to_string(), NpyArray::Float32(floats)));
    // The float readers widen float16 exactly and refuse int8.
    let err = npy::read_npz(&path).unwrap_err();
    assert!(err.to_string().contains("int8"), "{err}");

    let inf = ndarray::array![half::f16::INFINITY.to_bits()].into_dyn();
    let err =
        npy::write_npz_typed(&path, &[("x".into(), NpyView::Float16(inf.view()))]).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert!(err.to_string().contains("inf"), "{err}");
    // A float16 infinity written by another program is refused with its position.
    let nan = npy_bytes("<f2", &[2], &[0x00, 0x38, 0x00, 0x7E]);
    std::fs::write(&path, zip_of("x.npy", &nan)).unwrap();
    let text = invalid_file(npy::read_npz_typed(&path).unwrap_err());
    assert!(
        text.contains("'x.npy'") && text.contains("[1]") && text.contains("NaN"),
        "{text}"
    );
}

/// The bytes of an `.npy` file with `descr`, `shape` and raw data.
fn npy_bytes(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
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

/// A stored (uncompressed) zip archive holding one entry.
fn zip_of(name: &str, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file(name, options).unwrap();
    zip.write_all(data).unwrap();
    zip.finish().unwrap().into_inner()
}

#[test]
fn a_float32_file_with_a_code_out_of_int8_range_changes_nothing() {
    let dir = Dir::new("typed-weights-range");
    let int8 = Storage::Quantized(QuantizationMode::Int8);
    let saved = model(table(6, 5), int8);
    let mut weights = saved.get_layer(0).unwrap().get_weights();
    weights[0][[2, 3]] = 200.0;
    let path = dir.0.join("old.npz");
    npy::write_npz(
        &path,
        &[
            ("emb/embeddings".to_string(), weights[0].view()),
            ("emb/embeddings_scale".to_string(), weights[1].view()),
        ],
    )
    .unwrap();
    let mut twin = model(table(6, 5) * 2.0, int8);
    let before = twin.get_layer(0).unwrap().get_weights();
    let err = twin.load_weights(&path).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("200") && text.contains("-128..=127"),
        "{text}"
    );
    assert_eq!(twin.get_layer(0).unwrap().get_weights(), before);
}

#[test]
fn entries_matched_by_position_are_checked_against_the_variable_they_fill() {
    let dir = Dir::new("typed-positions");
    let saved = model(table(10, 7), Storage::Quantized(QuantizationMode::Int8));
    let path = dir.0.join("w.npz");
    saved.save_weights(&path).unwrap();
    let stored = npy::read_npz_typed(&path).unwrap();
    let NpyArray::Int8(codes) = &stored[0].1 else {
        panic!("{stored:?}");
    };
    // The names do not match the layer's, so the entries fill its variables in file order:
    // the int8 entry named "embeddings" second fills `embeddings_scale` (float32 only).
    let renamed = dir.0.join("renamed.npz");
    let codes_as_floats = codes.mapv(f32::from);
    let small_ints = ArrayD::from_shape_fn(vec![10], |i| i[0] as i8 + 1);
    npy::write_npz_typed(
        &renamed,
        &[
            ("emb/other".into(), NpyView::Float32(codes_as_floats.view())),
            ("emb/embeddings".into(), NpyView::Int8(small_ints.view())),
        ],
    )
    .unwrap();
    let mut twin = model(table(10, 7), Storage::Quantized(QuantizationMode::Int8));
    let before = twin.get_layer(0).unwrap().get_weights();
    let err = twin.load_weights(&renamed).unwrap_err();
    assert!(matches!(err, Error::InvalidFile { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("emb/embeddings") && message.contains("int8"),
        "{message}"
    );
    assert_eq!(twin.get_layer(0).unwrap().get_weights(), before);
}
