//! Hostile `.safetensors` files: each ends in an `Error::InvalidFile` that says what is wrong,
//! never a panic, an abort or a huge allocation. The reference implementation (the Hugging
//! Face `safetensors` crate) is asked about every file too: ndkeras refuses exactly what it
//! refuses, plus duplicate names.

#![cfg(feature = "safetensors")]

use std::path::PathBuf;

use ndkeras::Error;
use ndkeras::io::safetensors;
use proptest::prelude::*;

/// A file: the 8-byte size, the header, the data.
fn file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

fn f32s(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A fresh directory for this test.
fn scratch(test: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("ndkeras-hostile-st-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Reads `name` from `bytes` both from memory and from a file; both must fail with
/// `InvalidFile` whose message holds every one of `words` (and the file's path, for the file).
/// Returns the message of the file read.
fn refused(test: &str, bytes: &[u8], name: &str, words: &[&str]) -> String {
    let from_memory = safetensors::read_tensor_bytes(bytes, name).unwrap_err();
    let dir = scratch(test);
    let path = dir.join("hostile.safetensors");
    std::fs::write(&path, bytes).unwrap();
    let from_file = safetensors::read_tensor(&path, name).unwrap_err();
    let listed = safetensors::list_tensors(&path);
    std::fs::remove_dir_all(&dir).unwrap();
    for err in [&from_memory, &from_file] {
        assert!(matches!(err, Error::InvalidFile { .. }), "{err:?}");
        let message = err.to_string();
        for word in words {
            assert!(message.contains(word), "{message:?} lacks {word:?}");
        }
    }
    let message = from_file.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    // The header errors are the same whether one tensor or the list is asked for.
    if let Err(list_err) = listed
        && !message.contains("finite")
        && !message.contains("dtype")
    {
        assert_eq!(list_err.to_string(), message);
    }
    message
}

fn reference_accepts(bytes: &[u8]) -> bool {
    ::safetensors::SafeTensors::deserialize(bytes).is_ok()
}

const ONE: &str = r#""dtype":"F32","shape":[1]"#;

#[test]
fn overlapping_offsets() {
    let header = format!(
        r#"{{"a":{{"dtype":"F32","shape":[2],"data_offsets":[0,8]}},"b":{{{ONE},"data_offsets":[4,8]}}}}"#
    );
    let bytes = file(&header, &f32s(&[1.0, 2.0]));
    assert!(!reference_accepts(&bytes));
    refused("overlap", &bytes, "a", &["'b'", "overlap", "'a'"]);
}

#[test]
fn gap_between_tensors() {
    let header =
        format!(r#"{{"a":{{{ONE},"data_offsets":[0,4]}},"b":{{{ONE},"data_offsets":[8,12]}}}}"#);
    let bytes = file(&header, &f32s(&[1.0, 2.0, 3.0]));
    assert!(!reference_accepts(&bytes));
    refused("gap", &bytes, "a", &["'b'", "gap of 4 bytes", "ends at 4"]);
    // A first tensor that does not begin at 0 leaves a gap too.
    let header = format!(r#"{{"a":{{{ONE},"data_offsets":[4,8]}}}}"#);
    let bytes = file(&header, &f32s(&[1.0, 2.0]));
    assert!(!reference_accepts(&bytes));
    refused("gap-first", &bytes, "a", &["'a'", "byte 0"]);
}

/// The one place ndkeras is stricter than the reference, which keeps the last entry: a name
/// listed twice could be read as either tensor.
#[test]
fn duplicate_names() {
    let header = format!(
        r#"{{"a":{{{ONE},"data_offsets":[0,4]}},"a":{{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}}}"#
    );
    let bytes = file(&header, &f32s(&[1.0]));
    assert!(
        reference_accepts(&bytes),
        "the reference keeps the last 'a'"
    );
    refused("duplicate", &bytes, "a", &["\"a\"", "twice"]);
}

#[test]
fn header_size_beyond_the_file() {
    let mut bytes = file(
        r#"{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}"#,
        &[0; 4],
    );
    bytes[..8].copy_from_slice(&1000u64.to_le_bytes());
    assert!(!reference_accepts(&bytes));
    refused("beyond", &bytes, "a", &["claims 1000 bytes", "only"]);
    refused("tiny", &bytes[..5], "a", &["5 bytes", "8-byte"]);
    refused("empty", &[], "a", &["0 bytes"]);
}

#[test]
fn huge_header_size_is_refused_before_allocating() {
    for claim in [u64::MAX, 1 << 40, 100_000_001] {
        let mut bytes = claim.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{}");
        assert!(!reference_accepts(&bytes));
        refused("huge", &bytes, "a", &[&format!("claims {claim}"), "limit"]);
    }
}

#[test]
fn header_that_is_not_json_or_not_utf8() {
    let bytes = file("{not json", &[]);
    assert!(!reference_accepts(&bytes));
    refused("json", &bytes, "a", &["not valid JSON"]);
    let mut bytes = file("{\"\u{e9}\":1}", &[]);
    bytes[10] = 0xff; // inside the two bytes of "é"
    assert!(!reference_accepts(&bytes));
    refused("utf8", &bytes, "a", &["UTF-8"]);
    let bytes = file("[1, 2]", &[]);
    assert!(!reference_accepts(&bytes));
    refused("array", &bytes, "a", &["invalid header", "object"]);
    let bytes = file(r#"{"__metadata__":{"n":1}}"#, &[]);
    assert!(!reference_accepts(&bytes));
    refused("metadata", &bytes, "a", &["__metadata__", "strings"]);
    let bytes = file(
        r#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}"#,
        &[],
    );
    assert!(!reference_accepts(&bytes));
    refused("negative", &bytes, "a", &["'a'", "-1"]);
}

#[test]
fn data_shorter_than_the_offsets() {
    let header = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    let bytes = file(header, &f32s(&[1.0]));
    assert!(!reference_accepts(&bytes));
    refused(
        "short",
        &bytes,
        "a",
        &["end at byte 8", "only 4 bytes", "truncated"],
    );
}

#[test]
fn offsets_past_the_end() {
    let header = format!(
        r#"{{"a":{{{ONE},"data_offsets":[0,4]}},"b":{{"dtype":"F32","shape":[249],"data_offsets":[4,1000]}}}}"#
    );
    let bytes = file(&header, &f32s(&[1.0, 2.0]));
    assert!(!reference_accepts(&bytes));
    refused("past", &bytes, "a", &["end at byte 1000", "only 8 bytes"]);
}

#[test]
fn bytes_after_the_last_tensor() {
    let header = format!(r#"{{"a":{{{ONE},"data_offsets":[0,4]}}}}"#);
    let bytes = file(&header, &f32s(&[1.0, 2.0]));
    assert!(!reference_accepts(&bytes));
    refused("trailing", &bytes, "a", &["4 bytes after the last tensor"]);
}

#[test]
fn shape_and_dtype_disagree_with_the_offsets() {
    let header = r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#;
    let bytes = file(header, &f32s(&[1.0, 2.0]));
    assert!(!reference_accepts(&bytes));
    refused(
        "mismatch",
        &bytes,
        "a",
        &["'a'", "(3,)", "F32", "needs 12 bytes", "hold 8"],
    );
    let header =
        r#"{"a":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,8]}}"#;
    let bytes = file(header, &f32s(&[1.0, 2.0]));
    assert!(!reference_accepts(&bytes));
    refused("overflow", &bytes, "a", &["'a'", "more bytes than fit"]);
    let header =
        format!(r#"{{"a":{{{ONE},"data_offsets":[0,4]}},"b":{{{ONE},"data_offsets":[4,0]}}}}"#);
    let bytes = file(&header, &f32s(&[1.0]));
    assert!(!reference_accepts(&bytes));
    refused("reversed", &bytes, "a", &["'b'", "[4, 0]", "end is before"]);
}

#[test]
fn unknown_and_unsupported_dtypes_are_named() {
    let header = r#"{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}"#;
    let bytes = file(header, &[0; 16]);
    assert!(!reference_accepts(&bytes));
    refused("unknown-dtype", &bytes, "a", &["'a'", "F128"]);
    // Known to the format, not a float ndkeras reads.
    let header = r#"{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#;
    let bytes = file(header, &[0; 8]);
    assert!(reference_accepts(&bytes));
    refused(
        "i64",
        &bytes,
        "a",
        &["'a'", "I64", "expected F32, F16, BF16 or F64"],
    );
}

#[test]
fn non_finite_values_name_tensor_position_and_value() {
    let cases: [(&str, Vec<u8>, &str); 6] = [
        ("F32", f32s(&[1.0, 2.0, 3.0, 4.0, f32::NAN, 6.0]), "NaN"),
        (
            "F32",
            f32s(&[1.0, 2.0, 3.0, 4.0, f32::INFINITY, 6.0]),
            "inf",
        ),
        (
            "F32",
            f32s(&[1.0, 2.0, 3.0, 4.0, f32::NEG_INFINITY, 6.0]),
            "-inf",
        ),
        (
            "F16",
            [0x3c00u16, 0x3c00, 0x3c00, 0x3c00, 0x7c00, 0x3c00]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
            "inf",
        ),
        (
            "BF16",
            [0x3f80u16, 0x3f80, 0x3f80, 0x3f80, 0x7fc0, 0x3f80]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
            "NaN",
        ),
        (
            "F64",
            [1.0f64, 2.0, 3.0, 4.0, 1e300, 6.0]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
            "1e300, beyond the float32 range",
        ),
    ];
    for (dtype, data, written) in cases {
        let header = format!(
            r#"{{"table":{{"dtype":"{dtype}","shape":[2,3],"data_offsets":[0,{}]}}}}"#,
            data.len()
        );
        let bytes = file(&header, &data);
        assert!(reference_accepts(&bytes));
        refused(
            &format!("nonfinite-{dtype}"),
            &bytes,
            "table",
            &[
                "element [1, 1] (flat index 4) of tensor 'table'",
                &format!("is {written}"),
                "finite float32",
            ],
        );
    }
    // Finite F64 values round to float32, the smallest to zero.
    let data: Vec<u8> = [1e-300f64, 0.1]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let bytes = file(
        r#"{"t":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}}"#,
        &data,
    );
    let read = safetensors::read_tensor_bytes(&bytes, "t").unwrap();
    assert_eq!(read.as_slice().unwrap(), &[0.0, 0.1f32]);
}

/// A 5 GiB file (sparse: it takes no disk space) whose first tensor is 8 bytes: reading that
/// tensor, or listing the file, reads the header and those bytes only.
#[test]
fn one_small_tensor_of_a_huge_file_costs_only_its_bytes() {
    const BIG: u64 = 5 << 30;
    let header = format!(
        r#"{{"small":{{"dtype":"F32","shape":[2],"data_offsets":[0,8]}},"rest":{{"dtype":"U8","shape":[{BIG}],"data_offsets":[8,{}]}}}}"#,
        8 + BIG
    );
    let head = file(&header, &f32s(&[0.5, -1.5]));
    let dir = scratch("sparse");
    let path = dir.join("huge.safetensors");
    let out = std::fs::File::create(&path).unwrap();
    std::io::Write::write_all(&mut &out, &head).unwrap();
    out.set_len(head.len() as u64 + BIG).unwrap();
    drop(out);

    let before = bytes_read_by_this_thread();
    let listed = safetensors::list_tensors(&path).unwrap();
    let small = safetensors::read_tensor(&path, "small").unwrap();
    let err = safetensors::read_tensor(&path, "rest").unwrap_err();
    let read = bytes_read_by_this_thread().zip(before).map(|(a, b)| a - b);
    std::fs::remove_dir_all(&dir).unwrap();

    assert_eq!(small.as_slice().unwrap(), &[0.5, -1.5]);
    assert_eq!(listed.len(), 2);
    assert!(err.to_string().contains("U8"), "{err}");
    if let Some(read) = read {
        // Three headers and one small tensor; the whole file would be 5 GiB.
        assert!(read < 1 << 20, "read {read} bytes");
    }
}

/// The bytes this thread has read through system calls (`rchar`), where Linux reports them.
fn bytes_read_by_this_thread() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/thread-self/io").ok()?;
    io.lines()
        .find_map(|line| line.strip_prefix("rchar: "))
        .and_then(|n| n.trim().parse().ok())
}

/// Bits per element of the dtypes generated below.
fn bits(dtype: &str) -> usize {
    match dtype {
        "F4" => 4,
        "U8" | "BOOL" => 8,
        "F16" | "BF16" => 16,
        "F32" => 32,
        _ => 64,
    }
}

/// A valid file of up to three tensors, then at most one change: an offset moved, the data
/// made longer or shorter, a dtype or a dimension changed. About half the files are valid.
fn arbitrary_file() -> impl Strategy<Value = Vec<u8>> {
    const DTYPES: [&str; 8] = ["F32", "F16", "BF16", "F64", "I64", "U8", "F4", "BOOL"];
    let tensor = (
        prop::sample::select(DTYPES.to_vec()),
        prop::collection::vec(0usize..4, 0..3),
    );
    (
        prop::collection::vec(tensor, 0..4),
        0usize..6,
        0usize..3,
        -9isize..9,
        prop::sample::select(DTYPES.to_vec()),
        any::<bool>(),
        0usize..3,
    )
        .prop_map(
            |(mut tensors, change, which, delta, dtype, metadata, padding)| {
                let which = which.min(tensors.len().saturating_sub(1));
                if let Some((old, shape)) = tensors.get_mut(which) {
                    match change {
                        1 => *old = dtype,
                        2 => shape.push(delta.unsigned_abs()),
                        _ => {}
                    }
                }
                let mut offsets = Vec::new();
                let mut end = 0usize;
                for (dtype, shape) in &tensors {
                    let size = shape.iter().product::<usize>() * bits(dtype) / 8;
                    offsets.push([end, end + size]);
                    end += size;
                }
                let mut data_len = end;
                let shift = |v: usize| v.saturating_add_signed(delta);
                match (change, offsets.get_mut(which)) {
                    (3, Some([begin, _])) => *begin = shift(*begin),
                    (4, Some([_, end])) => *end = shift(*end),
                    (5, _) => data_len = shift(data_len),
                    _ => {}
                }
                let mut entries: Vec<String> = tensors
                    .iter()
                    .zip(&offsets)
                    .enumerate()
                    .map(|(i, ((dtype, shape), offsets))| {
                        format!(
                            r#""t{i}":{{"dtype":"{dtype}","shape":{shape:?},"data_offsets":{offsets:?}}}"#
                        )
                    })
                    .collect();
                if metadata {
                    entries.push(r#""__metadata__":{"format":"pt"}"#.into());
                }
                let header = format!("{{{}}}{}", entries.join(","), " ".repeat(padding));
                // Finite values whatever the dtype (0x3c bytes).
                file(&header, &vec![0x3c; data_len])
            },
        )
}

proptest! {
    /// ndkeras refuses a header exactly when the reference does (no duplicates are generated).
    #[test]
    fn as_strict_as_the_reference(bytes in arbitrary_file()) {
        let reference = ::safetensors::SafeTensors::deserialize(&bytes);
        for name in ["t0", "t1", "t2"] {
            let ours = safetensors::read_tensor_bytes(&bytes, name);
            match (&reference, ours) {
                (Err(_), Ok(_)) => prop_assert!(false, "the reference refuses, ndkeras reads {name}"),
                (Ok(reference), Err(err)) => {
                    let message = err.to_string();
                    let known = reference.names().contains(&name);
                    prop_assert!(
                        message.contains("no tensor named") && !known
                            || message.contains("dtype") && known,
                        "the reference accepts, ndkeras says {message}"
                    );
                }
                (Ok(reference), Ok(ours)) => {
                    let view = reference.tensor(name).unwrap();
                    prop_assert_eq!(ours.shape(), view.shape());
                }
                (Err(_), Err(err)) => prop_assert!(!err.to_string().is_empty()),
            }
        }
    }
}

/// An unknown name lists the names the file holds, at most 20 of them.
#[test]
fn unknown_names_list_what_the_file_holds() {
    let entries: Vec<String> = (0..25)
        .map(|i| format!(r#""w{i:02}":{{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}"#))
        .collect();
    let bytes = file(&format!("{{{}}}", entries.join(",")), &[]);
    let message = refused(
        "names",
        &bytes,
        "embed",
        &[
            "no tensor named 'embed'",
            "\"w00\"",
            "\"w19\"",
            "and 5 more",
        ],
    );
    assert!(!message.contains("w20"), "{message}");
}
