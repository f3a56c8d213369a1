//! `.safetensors` files (Hugging Face): named tensors, such as a model's token embeddings.
//!
//! F32 tensors are read exactly; F16, BF16 and F64 are converted to `f32` (F64 rounded to
//! nearest); other dtypes are an error naming them. The header is checked against the file
//! before anything is allocated.
//!
//! ```
//! use ndarray::array;
//! use ndkeras::io::safetensors;
//!
//! let table = array![[1.0f32, 2.0], [3.0, 4.0]].into_dyn();
//! let bytes = safetensors::to_bytes(&[("embed.weight".to_string(), table.view())])?;
//! assert_eq!(safetensors::read_tensor_bytes(&bytes, "embed.weight")?, table);
//! assert!(safetensors::read_tensor_bytes(&bytes, "lm_head.weight").is_err());
//! # Ok::<(), ndkeras::Error>(())
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use serde_json::{Map, Value, json};

use crate::error::{Dims, Error, Result};
use crate::io::{write_all, write_atomically};

/// The largest header accepted (the format's own limit is 100 MB).
const MAX_HEADER: u64 = 100_000_000;

/// A tensor listed in a `.safetensors` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Its name.
    pub name: String,
    /// Its dtype as the file writes it (`F32`, `BF16`, ...).
    pub dtype: String,
    /// Its shape.
    pub shape: Vec<usize>,
    data: (usize, usize),
}

fn element_size(dtype: &str) -> Option<usize> {
    match dtype {
        "F32" => Some(4),
        "F16" | "BF16" => Some(2),
        "F64" => Some(8),
        _ => None,
    }
}

/// Parses the header; returns the tensors and where the data starts.
fn parse(bytes: &[u8], source: &str) -> Result<(Vec<TensorInfo>, usize)> {
    let bad = |message: String| Error::invalid_file(source, message);
    let size: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("shorter than the 8-byte header size".into()))?;
    let header_len = u64::from_le_bytes(size);
    if header_len > MAX_HEADER || header_len > (bytes.len() - 8) as u64 {
        return Err(bad(format!(
            "the header claims {header_len} bytes, the file has {} after the size",
            bytes.len() - 8
        )));
    }
    let start = 8 + header_len as usize;
    let header: Map<String, Value> = serde_json::from_slice(&bytes[8..start])
        .map_err(|e| bad(format!("the header is not a JSON object: {e}")))?;
    let data_len = bytes.len() - start;
    let mut tensors = Vec::new();
    for (name, entry) in header {
        if name == "__metadata__" {
            continue;
        }
        let field = |key: &str| {
            entry
                .get(key)
                .ok_or_else(|| bad(format!("tensor '{name}' has no '{key}'")))
        };
        let dtype = field("dtype")?
            .as_str()
            .ok_or_else(|| bad(format!("tensor '{name}': dtype is not a string")))?
            .to_string();
        let numbers = |key: &str| -> Result<Vec<usize>> {
            field(key)?
                .as_array()
                .ok_or_else(|| bad(format!("tensor '{name}': {key} is not a list")))?
                .iter()
                .map(|v| {
                    v.as_u64()
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(|| {
                            bad(format!("tensor '{name}': {key} holds {v}, not a count"))
                        })
                })
                .collect()
        };
        let shape = numbers("shape")?;
        let offsets = numbers("data_offsets")?;
        let [begin, end] = offsets[..] else {
            return Err(bad(format!(
                "tensor '{name}': data_offsets must be [begin, end]"
            )));
        };
        if begin > end || end > data_len {
            return Err(bad(format!(
                "tensor '{name}': data_offsets [{begin}, {end}] fall outside the {data_len} bytes of data (a truncated file?)"
            )));
        }
        if let Some(size) = element_size(&dtype) {
            let expected = shape.iter().try_fold(size, |acc, &d| acc.checked_mul(d));
            if expected != Some(end - begin) {
                return Err(bad(format!(
                    "tensor '{name}': shape {} of {dtype} does not match its {} bytes",
                    Dims(&shape),
                    end - begin
                )));
            }
        }
        tensors.push(TensorInfo {
            name,
            dtype,
            shape,
            data: (start + begin, start + end),
        });
    }
    Ok((tensors, start))
}

fn f16_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits >> 15) << 31;
    let exponent = u32::from((bits >> 10) & 0x1f);
    let mantissa = u32::from(bits & 0x3ff);
    let value = match (exponent, mantissa) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: normalize.
            let shift = m.leading_zeros() - 21;
            let mantissa = (m << shift) & 0x3ff;
            sign | ((127 - 15 + 1 - shift) << 23) | (mantissa << 13)
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, m) => sign | 0x7fc0_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(value)
}

fn decode(bytes: &[u8], info: &TensorInfo, source: &str) -> Result<ArrayD<f32>> {
    let data = &bytes[info.data.0..info.data.1];
    let values: Vec<f32> = match info.dtype.as_str() {
        "F32" => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        "F16" => data
            .chunks_exact(2)
            .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
            .collect(),
        "BF16" => data
            .chunks_exact(2)
            .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
            .collect(),
        "F64" => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
            .collect(),
        other => {
            return Err(Error::invalid_file(
                source,
                format!(
                    "tensor '{}' has dtype {other}: expected F32, F16, BF16 or F64",
                    info.name
                ),
            ));
        }
    };
    ArrayD::from_shape_vec(IxDyn(&info.shape), values)
        .map_err(|e| Error::invalid_file(source, format!("tensor '{}': {e}", info.name)))
}

fn find<'a>(tensors: &'a [TensorInfo], name: &str, source: &str) -> Result<&'a TensorInfo> {
    tensors.iter().find(|t| t.name == name).ok_or_else(|| {
        let names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
        Error::invalid_file(
            source,
            format!("no tensor named '{name}': the file holds {names:?}"),
        )
    })
}

/// The tensors a file holds, in name order.
///
/// # Errors
/// [`Error::Io`] naming the path; [`Error::InvalidFile`] for a bad header.
pub fn list_tensors(path: impl AsRef<Path>) -> Result<Vec<TensorInfo>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "cannot read", &e))?;
    Ok(parse(&bytes, &path.display().to_string())?.0)
}

/// Reads the tensor `name` as `f32`.
///
/// # Errors
/// [`Error::Io`] naming the path; [`Error::InvalidFile`] for a bad header, an unknown name
/// (listing the names there are) or an unsupported dtype (named).
pub fn read_tensor(path: impl AsRef<Path>, name: &str) -> Result<ArrayD<f32>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "cannot read", &e))?;
    read_from(&bytes, name, &path.display().to_string())
}

/// [`read_tensor`] from bytes in memory.
///
/// # Errors
/// Those of [`read_tensor`].
pub fn read_tensor_bytes(bytes: &[u8], name: &str) -> Result<ArrayD<f32>> {
    read_from(bytes, name, "<bytes>")
}

fn read_from(bytes: &[u8], name: &str, source: &str) -> Result<ArrayD<f32>> {
    let (tensors, _) = parse(bytes, source)?;
    decode(bytes, find(&tensors, name, source)?, source)
}

/// The bytes of a `.safetensors` file holding `tensors` as F32.
///
/// # Errors
/// [`Error::InvalidArgument`] for a duplicate name.
pub fn to_bytes(tensors: &[(String, ArrayViewD<'_, f32>)]) -> Result<Vec<u8>> {
    let mut header = BTreeMap::new();
    let mut data = Vec::new();
    for (name, array) in tensors {
        let begin = data.len();
        for v in array.iter() {
            data.extend_from_slice(&v.to_le_bytes());
        }
        let entry =
            json!({"dtype": "F32", "shape": array.shape(), "data_offsets": [begin, data.len()]});
        if header.insert(name.clone(), entry).is_some() {
            return Err(Error::invalid_argument(
                "safetensors",
                "tensors",
                name,
                "distinct names",
            ));
        }
    }
    let mut text = serde_json::to_string(&header)
        .unwrap_or_default()
        .into_bytes();
    // Pad the header with spaces so the data starts 8-byte aligned, as the format advises.
    while text.len() % 8 != 0 {
        text.push(b' ');
    }
    let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&text);
    bytes.extend_from_slice(&data);
    Ok(bytes)
}

/// Writes `tensors` as an F32 `.safetensors` file, atomically.
///
/// # Errors
/// [`Error::Io`] naming the path; [`Error::InvalidArgument`] for a duplicate name.
pub fn write_tensors(
    path: impl AsRef<Path>,
    tensors: &[(String, ArrayViewD<'_, f32>)],
) -> Result<()> {
    let path = path.as_ref();
    let bytes = to_bytes(tensors)?;
    write_atomically(path, |w| write_all(w, &bytes, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_converts_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
    }
}
