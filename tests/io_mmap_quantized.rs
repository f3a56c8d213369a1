//! Memory-mapped int8 (and float16) tables: lookups decode only the rows they gather,
//! straight from an `.npy` file, bit for bit as the same table quantized in memory; opening
//! reads nothing; hostile files and scales are clear errors; training is refused.

#![cfg(feature = "mmap")]

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, ArrayD, array};
use ndkeras::io::npy::{self, NpyView};
use ndkeras::prelude::*;
use ndkeras::quantization::{QuantizationMode, TableDType};
use ndkeras::weight::{WeightDType, WeightValues};

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ndkeras-mmapq-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn table() -> Array2<f32> {
    Array2::from_shape_fn((50, 6), |(i, j)| {
        if i == 3 {
            0.0 // an all-zero row: the largest scale, 127 / 1e-7
        } else {
            (i as f32 * 0.37 - j as f32).sin() * (1.0 + i as f32)
        }
    })
}

/// A built layer over `table()`, quantized in memory.
fn quantized() -> Embedding {
    let mut layer = Embedding::from_table(table());
    layer.apply(&Tensor::from(vec![0i64])).unwrap();
    layer.quantize("int8").unwrap();
    layer
}

/// `quantized()` written as codes and scales files, mapped back.
fn mapped(dir: &Path) -> Embedding {
    let (codes, scales) = (dir.join("codes.npy"), dir.join("scales.npy"));
    npy::write_quantized_npy(&quantized(), &codes, &scales).unwrap();
    let codes = npy::map_npy_codes(&codes).unwrap();
    let scales = npy::read_npy_scales(&scales, codes.rows()).unwrap();
    Embedding::from_mapped_quantized(codes, scales, QuantizationMode::Int8).unwrap()
}

fn bits(values: &ArrayD<f32>) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

fn float(tensor: &Tensor) -> &ArrayD<f32> {
    tensor.as_float().unwrap()
}

/// An `.npy` header (version 1.0, padded to 64 bytes as NumPy pads) for any text.
fn npy_header(dict: &str) -> Vec<u8> {
    let mut text = dict.to_string();
    let unpadded = 10 + text.len() + 1;
    text.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    text.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((text.len() as u16).to_le_bytes());
    bytes.extend(text.as_bytes());
    bytes
}

#[test]
fn mapped_codes_look_up_bit_for_bit_like_the_table_quantized_in_memory() {
    let dir = scratch("lookup");
    let mut memory = quantized();
    let mut mapped = mapped(&dir);
    assert!(mapped.is_built() && mapped.is_mapped());
    assert_eq!(mapped.quantization_mode(), Some(QuantizationMode::Int8));
    assert_eq!((mapped.input_dim(), mapped.output_dim()), (50, 6));
    assert_eq!(mapped.weight_names(), ["embeddings", "embeddings_scale"]);
    // Keras' variables, the codes widened to f32 exactly as for the in-memory table.
    assert_eq!(mapped.get_weights(), memory.get_weights());
    assert_eq!(mapped.variables()[0].dtype(), WeightDType::Int8);
    assert_eq!(mapped.table_bytes(), memory.table_bytes());

    let ids = Tensor::from(array![[0i64, 49, 3, 7], [7, 7, 1, 3]]);
    let expected = memory.apply(&ids).unwrap();
    assert_eq!(
        bits(float(&mapped.apply(&ids).unwrap())),
        bits(float(&expected))
    );
    assert_eq!(
        bits(float(&mapped.call(&ids).unwrap())),
        bits(float(&expected))
    );
    let mut out = ArrayD::<f32>::from_elem(vec![2, 4, 6], f32::NAN);
    mapped.lookup_into(&ids, out.view_mut()).unwrap();
    assert_eq!(bits(&out), bits(float(&expected)));
    // Every row, in one lookup.
    let all = Tensor::from((0..50i64).collect::<Vec<_>>());
    assert_eq!(
        bits(float(&mapped.apply(&all).unwrap())),
        bits(float(&memory.apply(&all).unwrap()))
    );
    // A bad id is still an error naming the range, and leaves the buffer untouched.
    let before = out.clone();
    let err = mapped
        .lookup_into(
            &Tensor::from(array![[0i64, 1, 2, 50], [0, 0, 0, 0]]),
            out.view_mut(),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::IndexOutOfRange {
                index: 50,
                input_dim: 50,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(bits(&out), bits(&before));

    // Through predict and predict_into of a model.
    let model_of = |layer: Embedding| {
        let mut model = Sequential::new();
        model.add(layer.input_length(4)).unwrap();
        model
    };
    let x = array![[5i64, 0, 49, 3], [2, 2, 2, 2]];
    let mut from_map = model_of(mapped);
    let mut from_memory = model_of(quantized());
    let predicted = from_map.predict(x.clone()).unwrap();
    assert_eq!(
        bits(&predicted),
        bits(&from_memory.predict(x.clone()).unwrap())
    );
    let mut buffer = ArrayD::<f32>::zeros(vec![2, 4, 6]);
    from_map.predict_into(x, buffer.view_mut()).unwrap();
    assert_eq!(bits(&buffer), bits(&predicted));

    // Scales given as an array (not a file) make the same layer.
    let codes = npy::map_npy_codes(dir.join("codes.npy")).unwrap();
    let scales = Array1::from(memory.get_weights()[1].iter().copied().collect::<Vec<_>>());
    let mut given =
        Embedding::from_mapped_quantized(codes, scales, QuantizationMode::Int8).unwrap();
    assert_eq!(
        bits(float(&given.apply(&ids).unwrap())),
        bits(float(&expected))
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn make_owned_and_set_weights_copy_the_codes_into_memory() {
    let dir = scratch("owned");
    let memory = quantized();
    let ids = Tensor::from(array![1i64, 3, 49]);
    let expected = memory.call(&ids).unwrap();

    let mut copied = mapped(&dir);
    copied.make_owned().unwrap();
    assert!(!copied.is_mapped());
    assert_eq!(copied.quantization_mode(), Some(QuantizationMode::Int8));
    assert_eq!(
        bits(float(&copied.call(&ids).unwrap())),
        bits(float(&expected))
    );

    let mut replaced = mapped(&dir);
    let mut weights = memory.get_weights();
    weights[0][[1, 0]] = -weights[0][[1, 0]];
    replaced.set_weights(weights.clone()).unwrap();
    assert!(!replaced.is_mapped());
    assert_eq!(replaced.get_weights(), weights);
    // The file itself never changes.
    let remapped = npy::map_npy_codes(dir.join("codes.npy")).unwrap();
    assert_eq!(
        remapped.view().mapv(f32::from).into_dyn(),
        memory.get_weights()[0]
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn opening_reads_nothing_a_sparse_two_billion_row_file_opens_and_looks_up() {
    let dir = scratch("sparse");
    // 2^31 rows of 4 codes: an 8 GiB file of which only the header is on disk.
    let path = dir.join("huge.npy");
    let rows = 1usize << 31;
    let header = npy_header(&format!(
        "{{'descr': '|i1', 'fortran_order': False, 'shape': ({rows}, 4), }}"
    ));
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(&header).unwrap();
    file.set_len((header.len() + rows * 4) as u64).unwrap();
    file.seek(SeekFrom::Start((header.len() + (rows - 1) * 4) as u64))
        .unwrap();
    file.write_all(&[1, 2, 0x7F, 0x80]).unwrap();
    drop(file);
    let codes = npy::map_npy_codes(&path).unwrap();
    assert_eq!(codes.shape(), &[rows, 4]);
    assert_eq!(codes.as_slice()[(rows - 1) * 4..], [1, 2, 127, -128]);

    // A layer over 2^20 rows of 4096 codes (4 GiB, sparse): a few rows written, a lookup
    // reads only those.
    let path = dir.join("wide.npy");
    let (rows, dim) = (1usize << 20, 4096usize);
    let header = npy_header(&format!(
        "{{'descr': '|i1', 'fortran_order': False, 'shape': ({rows}, {dim}), }}"
    ));
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(&header).unwrap();
    file.set_len((header.len() + rows * dim) as u64).unwrap();
    let row_of = |r: usize| -> Vec<i8> {
        (0..dim)
            .map(|c| (((c + r) % 255) as i16 - 127) as i8)
            .collect()
    };
    for r in [0, 123_456, rows - 1] {
        file.seek(SeekFrom::Start((header.len() + r * dim) as u64))
            .unwrap();
        file.write_all(&row_of(r).iter().map(|&q| q as u8).collect::<Vec<_>>())
            .unwrap();
    }
    drop(file);
    let scales = Array1::from_shape_fn(rows, |r| 127.0 / (1.0 + r as f32));
    let layer = Embedding::from_mapped_quantized(
        npy::map_npy_codes(&path).unwrap(),
        scales.clone(),
        QuantizationMode::Int8,
    )
    .unwrap();
    let ids = [rows - 1, 123_456, 0, 5];
    let out = layer
        .call(&Tensor::from(
            ids.iter().map(|&r| r as i64).collect::<Vec<_>>(),
        ))
        .unwrap();
    let out = float(&out);
    for (k, &r) in ids.iter().enumerate() {
        let codes = if r == 5 { vec![0; dim] } else { row_of(r) };
        let inverse = 1.0 / scales[r];
        for (c, &q) in codes.iter().enumerate() {
            assert_eq!(out[[k, c]].to_bits(), (f32::from(q) * inverse).to_bits());
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn hostile_code_files_are_invalid_files_naming_the_file() {
    let dir = scratch("hostile");
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let codes = |dict: &str, data: usize| {
        let mut bytes = npy_header(dict);
        bytes.extend(std::iter::repeat_n(1u8, data));
        bytes
    };
    let float = dir.join("float.npy");
    npy::write_npy(&float, &table().view().into_dyn()).unwrap();
    let cases = [
        (
            float,
            vec!["float.npy", "int8 ('|i1')", "float32", "map_npy"],
        ),
        (
            write(
                "fortran.npy",
                &codes(
                    "{'descr': '|i1', 'fortran_order': True, 'shape': (3, 2), }",
                    6,
                ),
            ),
            vec!["fortran.npy", "C order", "Fortran"],
        ),
        (
            write(
                "vector.npy",
                &codes(
                    "{'descr': '|i1', 'fortran_order': False, 'shape': (6,), }",
                    6,
                ),
            ),
            vec!["vector.npy", "2 dimensions", "(6,)"],
        ),
        (
            write(
                "short.npy",
                &codes(
                    "{'descr': '|i1', 'fortran_order': False, 'shape': (3, 2), }",
                    5,
                ),
            ),
            vec!["short.npy", "shorter than its header says", "6 bytes"],
        ),
        (
            // The header claims more than any address space holds.
            write(
                "overflow.npy",
                &codes(
                    "{'descr': '|i1', 'fortran_order': False, 'shape': (9223372036854775807, 4), }",
                    8,
                ),
            ),
            vec!["overflow.npy", "overflows"],
        ),
        (
            write(
                "lying.npy",
                &codes(
                    "{'descr': '|i1', 'fortran_order': False, 'shape': (3, -2), }",
                    6,
                ),
            ),
            vec!["lying.npy", "bad header"],
        ),
        (
            write(
                "extra.npy",
                &codes(
                    "{'descr': '|i1', 'fortran_order': False, 'shape': (3, 2), 'x': 1, }",
                    6,
                ),
            ),
            vec!["extra.npy", "bad header"],
        ),
        (
            write(
                "uint8.npy",
                &codes(
                    "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 2), }",
                    6,
                ),
            ),
            vec!["uint8.npy", "uint8"],
        ),
        (
            write("empty.npy", b""),
            vec!["empty.npy", "not an .npy file"],
        ),
    ];
    for (path, words) in cases {
        let err = npy::map_npy_codes(&path).unwrap_err();
        assert!(
            matches!(err, Error::InvalidFile { .. }),
            "{}: {err:?}",
            path.display()
        );
        let message = err.to_string();
        for word in words {
            assert!(message.contains(word), "{message} lacks {word}");
        }
    }
    let err = npy::map_npy_codes(dir.join("missing.npy")).unwrap_err();
    assert!(
        matches!(err, Error::Io { .. }) && err.to_string().contains("missing.npy"),
        "{err}"
    );
    // Codes with no columns are refused by the layer, as `Embedding::try_new(3, 0)`.
    let empty = write(
        "no_columns.npy",
        &codes(
            "{'descr': '|i1', 'fortran_order': False, 'shape': (3, 0), }",
            0,
        ),
    );
    let err = Embedding::from_mapped_quantized(
        npy::map_npy_codes(&empty).unwrap(),
        Array1::ones(3),
        QuantizationMode::Int8,
    )
    .unwrap_err();
    assert!(err.to_string().contains("output_dim"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_scales_are_refused_naming_the_file_and_the_scale() {
    let dir = scratch("scales");
    let codes_path = dir.join("codes.npy");
    let scales_path = dir.join("scales.npy");
    npy::write_quantized_npy(&quantized(), &codes_path, &scales_path).unwrap();
    let good = npy::read_npy_scales(&scales_path, 50).unwrap();

    // From a file: every bad scale is an InvalidFile naming the file, position and value.
    let write_scales = |name: &str, values: &[f32]| {
        let path = dir.join(name);
        // NaN and infinities cannot be written by ndkeras: write the bytes as NumPy would.
        let mut bytes = npy_header(&format!(
            "{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}",
            values.len()
        ));
        bytes.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let with = |k: usize, value: f32| {
        let mut values = good.to_vec();
        values[k] = value;
        values
    };
    for (name, values, words) in [
        ("nan.npy", with(7, f32::NAN), vec!["[7]", "NaN", "finite"]),
        (
            "inf.npy",
            with(8, f32::INFINITY),
            vec!["[8]", "inf", "finite"],
        ),
        ("zero.npy", with(9, 0.0), vec!["[9]", "0.0", "positive"]),
        (
            "negative.npy",
            with(0, -2.5),
            vec!["[0]", "-2.5", "positive"],
        ),
        ("tiny.npy", with(1, 1e-45), vec!["[1]", "code / scale"]),
        ("long.npy", vec![1.0; 51], vec!["51 scales", "50 rows"]),
    ] {
        let path = write_scales(name, &values);
        let err = npy::read_npy_scales(&path, 50).unwrap_err();
        assert!(matches!(err, Error::InvalidFile { .. }), "{name}: {err:?}");
        let message = err.to_string();
        for word in std::iter::once(name).chain(words) {
            assert!(message.contains(word), "{message} lacks {word}");
        }
    }
    let matrix = dir.join("matrix.npy");
    npy::write_npy(&matrix, &ArrayD::ones(vec![50, 1]).view()).unwrap();
    let err = npy::read_npy_scales(&matrix, 50).unwrap_err();
    assert!(
        matches!(err, Error::InvalidFile { .. }) && err.to_string().contains("(50, 1)"),
        "{err}"
    );

    // Given as an array: InvalidArgument naming the layer's codes file and the scale.
    let open = || npy::map_npy_codes(&codes_path).unwrap();
    for (k, value) in [
        (4usize, f32::NAN),
        (5, f32::NEG_INFINITY),
        (6, 0.0),
        (7, -1.0),
    ] {
        let mut scales = good.clone();
        scales[k] = value;
        let err =
            Embedding::from_mapped_quantized(open(), scales, QuantizationMode::Int8).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
        let message = err.to_string();
        for word in [
            "embeddings_scale",
            &format!("[{k}]"),
            "codes.npy",
            "positive",
        ] {
            assert!(message.contains(word), "{message} lacks {word}");
        }
    }
    let err = Embedding::from_mapped_quantized(open(), Array1::ones(49), QuantizationMode::Int8)
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("49 scales") && message.contains("50 scales"),
        "{message}"
    );
    assert!(message.contains("codes.npy"), "{message}");
    let err =
        Embedding::from_mapped_quantized(open(), good, QuantizationMode::Int4 { block_size: None })
            .unwrap_err();
    assert!(err.to_string().contains("int8"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn writing_codes_needs_an_int8_layer() {
    let dir = scratch("write");
    let (codes, scales) = (dir.join("c.npy"), dir.join("s.npy"));
    let mut float = Embedding::from_table(table());
    float.apply(&Tensor::from(vec![0i64])).unwrap();
    let err = npy::write_quantized_npy(&float, &codes, &scales).unwrap_err();
    assert!(err.to_string().contains("not quantized"), "{err}");
    let mut int4 = float.clone();
    int4.quantize("int4").unwrap();
    let err = npy::write_quantized_npy(&int4, &codes, &scales).unwrap_err();
    assert!(err.to_string().contains("int4"), "{err}");
    let mut lora = quantized();
    lora.enable_lora(2).unwrap();
    let err = npy::write_quantized_npy(&lora, &codes, &scales).unwrap_err();
    assert!(err.to_string().contains("LoRA"), "{err}");
    assert!(!codes.exists() && !scales.exists());
    // What it writes are Keras' variables.
    npy::write_quantized_npy(&quantized(), &codes, &scales).unwrap();
    let ids = npy::read_npy_ids(&codes).unwrap();
    assert_eq!(ids.shape(), &[50, 6]);
    let typed = npy::map_npy_codes(&codes).unwrap();
    assert_eq!(
        typed.view().mapv(f32::from).into_dyn(),
        quantized().get_weights()[0]
    );
    assert_eq!(
        npy::read_npy(&scales).unwrap(),
        quantized().get_weights()[1]
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn training_a_mapped_int8_table_is_refused_naming_the_layer() {
    let dir = scratch("train");
    let x = array![[1i64, 2], [3, 4]];
    let y = array![[1.0f32], [0.0]];
    let quiet = FitOptions::default().verbose(false);
    let make = |trainable: bool| {
        let mut model = Sequential::new();
        model
            .add(
                mapped(&dir)
                    .with_name("mapped_codes")
                    .input_length(2)
                    .trainable(trainable),
            )
            .unwrap();
        model.add(GlobalAveragePooling1D::new()).unwrap();
        model.add(Dense::new(1)).unwrap();
        model
            .compile(SGD::new(0.1).into(), Loss::MeanSquaredError)
            .unwrap();
        model
    };
    let err = make(true)
        .fit(x.clone(), y.clone(), quiet.clone())
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("mapped_codes"), "{message}");
    assert!(message.contains("int8"), "{message}");

    // Frozen, the rest of the model trains and the codes stay as they are.
    let mut frozen = make(false);
    frozen.fit(x, y, quiet).unwrap();
    assert_eq!(
        frozen.get_layer(0).unwrap().get_weights(),
        quantized().get_weights()
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_mapped_float16_table_looks_up_like_one_cast_in_memory() {
    let dir = scratch("half");
    let mut memory = Embedding::from_table(table());
    memory.apply(&Tensor::from(vec![0i64])).unwrap();
    memory.cast_table(TableDType::Float16).unwrap();
    let path = dir.join("half.npy");
    let WeightValues::Half(values, TableDType::Float16) = memory.variables()[0].values() else {
        panic!("a float16 table");
    };
    npy::write_npy_typed(&path, &NpyView::Float16(values)).unwrap();
    let mut mapped = Embedding::from_mapped_half(npy::map_npy_half(&path).unwrap()).unwrap();
    assert!(mapped.is_mapped());
    assert_eq!(mapped.table_dtype(), TableDType::Float16);
    assert_eq!(mapped.get_weights(), memory.get_weights());
    let ids = Tensor::from(array![[49i64, 0], [3, 3]]);
    assert_eq!(
        bits(float(&mapped.apply(&ids).unwrap())),
        bits(float(&memory.apply(&ids).unwrap()))
    );
    let mut out = ArrayD::<f32>::zeros(vec![2, 2, 6]);
    mapped.lookup_into(&ids, out.view_mut()).unwrap();
    assert_eq!(bits(&out), bits(float(&memory.apply(&ids).unwrap())));
    // An int8 file is not a float16 one.
    npy::write_quantized_npy(&quantized(), dir.join("c.npy"), dir.join("s.npy")).unwrap();
    let err = npy::map_npy_half(dir.join("c.npy")).unwrap_err();
    assert!(
        err.to_string().contains("float16") && err.to_string().contains("int8"),
        "{err}"
    );
    let err = npy::map_npy_codes(&path).unwrap_err();
    assert!(err.to_string().contains("float16"), "{err}");

    // Made trainable again, it is refused with the reason: a copy in memory (`make_owned`)
    // would still be float16.
    let mut model = Sequential::new();
    model
        .add(mapped.with_name("mapped_half").trainable(true))
        .unwrap();
    model
        .compile(SGD::new(0.1).into(), Loss::MeanSquaredError)
        .unwrap();
    let err = model
        .train_on_batch(array![[1i64, 2]], ndarray::Array3::<f32>::zeros((1, 2, 6)))
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("mapped_half") && message.contains("float16"),
        "{message}"
    );
    assert!(!message.contains("make_owned"), "{message}");
    std::fs::remove_dir_all(dir).unwrap();
}
