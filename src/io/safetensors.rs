//! `.safetensors` files (Hugging Face): named tensors, such as a model's token embeddings.
//!
//! # What is accepted
//! A header is accepted exactly when the reference implementation, the Hugging Face
//! [`safetensors`](https://docs.rs/safetensors) crate (which the Python package also runs),
//! accepts it, with one deliberate difference: a name that appears twice in the header is an
//! error (the reference silently keeps the last one, so two readers could see different
//! tensors). The rules (the JSON, dtypes, shapes and offsets are checked by the crate's own
//! code; the size field and the file's length by ndkeras, as the crate's `read_metadata` does,
//! which a property test compares):
//! - an 8-byte little-endian header size of at most 100,000,000 bytes, followed by that many
//!   bytes of UTF-8 JSON (trailing spaces allowed);
//! - an object of tensors `{"name": {"dtype", "shape", "data_offsets": [begin, end]}}`, plus
//!   an optional `"__metadata__"` object of strings; the dtype is one the format defines;
//! - sorted by offsets, the tensors cover the data section from byte 0 with no gap and no
//!   overlap, each `end - begin` equals shape × dtype size (computed without overflow), and
//!   the last one ends exactly at the end of the file.
//!
//! # What is read
//! Reading one tensor reads the 8-byte size, the header (refused before anything is
//! allocated if it is larger than the limit or than the file) and that tensor's bytes, nothing
//! else: a 10 GB file costs the header plus the one tensor. The header is validated against the
//! file's length rather than a buffer of the whole file, so no memory map is needed (and no
//! SIGBUS can come from a file truncated while it is read: that is an error).
//!
//! The header itself is parsed in memory by the crate, as the reference does: its cost grows
//! with its size, and a hostile header near the 100 MB limit can take seconds and a few GB
//! (measured: 2.7 GB peak for 90 MB of seven million `__metadata__` strings).
//!
//! F32 tensors are read exactly; F16, BF16 and F64 are converted to `f32` (F64 rounded to
//! nearest); other dtypes are an error naming them. Tables hold finite float32 values only:
//! NaN, ±infinity, and F64 values beyond the float32 range are an error naming the file, the
//! tensor, the element's position and its value. An unknown name is an error listing the names
//! the file holds (the first 20).
//!
//! [`read_token_embeddings`] finds a PyTorch model's token-embedding table under the names
//! models use ([`TOKEN_EMBEDDING_NAMES`], also after a prefix such as `bert.`), with the same
//! checks; when none matches, the error lists the names tried and the names the file holds.
//!
//! # What is written
//! Writers produce F32 files whose header is made and checked by the `safetensors` crate
//! itself, with the data 8-byte aligned; they refuse duplicate names, the reserved name
//! `__metadata__` and non-finite values, so what ndkeras writes, ndkeras and the reference
//! implementation read back.
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

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::path::Path;

use ::safetensors::tensor::{Dtype, Metadata, TensorInfo as ReferenceInfo};
use ndarray::{ArrayD, ArrayViewD, IxDyn};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::error::{Dims, Error, Result};
use crate::io::{write_all, write_atomically};

/// The largest header accepted: the `safetensors` crate's own limit (`MAX_HEADER_SIZE`, which
/// it does not export; a unit test checks that the two agree).
const MAX_HEADER: u64 = 100_000_000;
/// The header size field.
const SIZE_FIELD: u64 = 8;
/// Bytes read or written at a time: a fixed buffer, whatever the tensor's size.
const CHUNK: usize = 1 << 18;
/// The key the format reserves for string metadata.
const METADATA_KEY: &str = "__metadata__";

/// A tensor listed in a `.safetensors` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Its name.
    pub name: String,
    /// Its dtype as the file writes it (`F32`, `BF16`, ...).
    pub dtype: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Where its bytes begin, from the start of the file.
    begin: u64,
    /// How many bytes it has (shape × dtype size, checked by the header validation).
    len: usize,
}

/// Reads and validates the size field and the header; `total` is the length of the whole
/// file. Returns the tensors in name order.
fn read_header(reader: &mut impl Read, total: u64, source: &str) -> Result<Vec<TensorInfo>> {
    let bad = |message: String| Error::invalid_file(source, message);
    if total < SIZE_FIELD {
        return Err(bad(format!(
            "the file is {total} bytes, shorter than the 8-byte header size that begins a safetensors file"
        )));
    }
    let mut size = [0u8; SIZE_FIELD as usize];
    reader
        .read_exact(&mut size)
        .map_err(|e| bad(format!("cannot read the header size: {e}")))?;
    let header_len = u64::from_le_bytes(size);
    let after_size = total - SIZE_FIELD;
    if header_len > MAX_HEADER {
        return Err(bad(format!(
            "the header claims {header_len} bytes, more than the format's limit of {MAX_HEADER} bytes"
        )));
    }
    if header_len > after_size {
        return Err(bad(format!(
            "the header claims {header_len} bytes, but the file has only {after_size} bytes after the header size (a truncated file?)"
        )));
    }
    // Bounded by MAX_HEADER and by the file, so this fits in memory addresses.
    let header_len = header_len as usize;
    let mut header = Vec::new();
    header
        .try_reserve_exact(header_len)
        .map_err(|_| Error::Allocation {
            context: format!("{source}: safetensors header"),
            bytes: header_len,
        })?;
    let read = reader
        .take(header_len as u64)
        .read_to_end(&mut header)
        .map_err(|e| bad(format!("cannot read the header: {e}")))?;
    if read != header_len {
        return Err(bad(format!(
            "the file ended after {read} of the header's {header_len} bytes (it shrank while being read?)"
        )));
    }
    let data_start = SIZE_FIELD + header_len as u64;
    parse_header(&header, data_start, total - data_start, source)
}

/// Validates the header text with the `safetensors` crate (plus the check for duplicate names
/// it lacks) against the `data_len` bytes that follow it.
fn parse_header(
    header: &[u8],
    data_start: u64,
    data_len: u64,
    source: &str,
) -> Result<Vec<TensorInfo>> {
    let bad = |message: String| Error::invalid_file(source, message);
    let text = std::str::from_utf8(header)
        .map_err(|e| bad(format!("the header is not UTF-8 text: {e}")))?;
    serde_json::from_str::<DistinctNames>(text).map_err(|e| {
        bad(match e.classify() {
            serde_json::error::Category::Data => format!("invalid header: {e}"),
            _ => format!("the header is not valid JSON: {e}"),
        })
    })?;
    let metadata: Metadata = serde_json::from_str(text).map_err(|e| {
        bad(explain_layout(text, data_len)
            .unwrap_or_else(|| format!("the header does not follow the safetensors format: {e}")))
    })?;
    let end = metadata.data_len() as u64;
    if end != data_len {
        return Err(bad(if end > data_len {
            format!(
                "the tensors' data_offsets end at byte {end} of the data, but the file holds only {data_len} bytes after the header (a truncated file?)"
            )
        } else {
            format!(
                "the file holds {} bytes after the last tensor's data: the data must end exactly where the last tensor ends ({end} bytes after the header)",
                data_len - end
            )
        }));
    }
    let mut tensors: Vec<TensorInfo> = metadata
        .tensors()
        .into_iter()
        .map(|(name, info)| TensorInfo {
            name,
            dtype: info.dtype.to_string(),
            shape: info.shape.clone(),
            // Both fit: the offsets end within the file (checked above).
            begin: data_start + info.data_offsets.0 as u64,
            len: info.data_offsets.1 - info.data_offsets.0,
        })
        .collect();
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tensors)
}

/// Accepts a JSON object whose keys are all different (the values are only checked to be
/// JSON). The reference parser keeps the last of two equal keys; we refuse them.
struct DistinctNames;

impl<'de> Deserialize<'de> for DistinctNames {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_map(DistinctNames)
    }
}

impl<'de> Visitor<'de> for DistinctNames {
    type Value = DistinctNames;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of tensors")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self, A::Error> {
        let mut seen = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            map.next_value::<IgnoredAny>()?;
            if seen.contains(&name) {
                return Err(de::Error::custom(format!(
                    "the name \"{name}\" appears twice: each tensor must be listed once"
                )));
            }
            seen.insert(name);
        }
        Ok(DistinctNames)
    }
}

/// Says which tensor breaks which layout rule, when the crate refused a header (its errors
/// do not always name the tensor). `None` when no rule is found broken here: the caller then
/// gives the crate's own message.
fn explain_layout(text: &str, data_len: u64) -> Option<String> {
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).ok()?;
    let mut tensors = Vec::new();
    for (name, entry) in header {
        if name == METADATA_KEY {
            if let Err(e) =
                serde_json::from_value::<Option<std::collections::HashMap<String, String>>>(entry)
            {
                return Some(format!(
                    "the {METADATA_KEY} entry must be an object of strings: {e}"
                ));
            }
            continue;
        }
        match serde_json::from_value::<ReferenceInfo>(entry) {
            Ok(info) => tensors.push((name, info)),
            Err(e) => return Some(format!("tensor '{name}': {e}")),
        }
    }
    // The order the format checks them in.
    tensors.sort_by_key(|(_, info)| info.data_offsets);
    let mut previous: Option<(&str, usize)> = None;
    for (name, info) in &tensors {
        let (begin, end) = info.data_offsets;
        let expected = previous.map_or(0, |(_, end)| end);
        if begin != expected {
            return Some(match previous {
                None => format!(
                    "tensor '{name}' has data_offsets [{begin}, {end}]: the first tensor must begin at byte 0 of the data (no gap)"
                ),
                Some((before, _)) if begin > expected => format!(
                    "tensor '{name}' begins at byte {begin}, but the previous tensor '{before}' ends at {expected}: a gap of {} bytes (each tensor must begin where the previous one ends)",
                    begin - expected
                ),
                Some((before, _)) => format!(
                    "tensor '{name}' begins at byte {begin}, inside the previous tensor '{before}' which ends at {expected}: the data_offsets overlap"
                ),
            });
        }
        if end < begin {
            return Some(format!(
                "tensor '{name}' has data_offsets [{begin}, {end}]: the end is before the beginning"
            ));
        }
        let bits = info
            .shape
            .iter()
            .try_fold(info.dtype.bitsize(), |acc, &d| acc.checked_mul(d));
        let Some(bits) = bits else {
            return Some(format!(
                "tensor '{name}': shape {} of {} has more bytes than fit in memory addresses",
                Dims(&info.shape),
                info.dtype
            ));
        };
        if bits % 8 != 0 || bits / 8 != end - begin {
            return Some(format!(
                "tensor '{name}': shape {} of {} needs {} bytes, but its data_offsets [{begin}, {end}] hold {}",
                Dims(&info.shape),
                info.dtype,
                if bits % 8 == 0 {
                    (bits / 8).to_string()
                } else {
                    format!("{bits} bits (not a whole number of bytes)")
                },
                end - begin
            ));
        }
        previous = Some((name, end));
    }
    let end = previous.map_or(0, |(_, end)| end) as u64;
    (end > data_len).then(|| {
        format!(
            "the tensors' data_offsets end at byte {end} of the data, but the file holds only {data_len} bytes after the header (a truncated file?)"
        )
    })
}

/// The dtypes read into `f32`.
#[derive(Debug, Clone, Copy)]
enum Readable {
    F32,
    F16,
    BF16,
    F64,
}

impl Readable {
    fn of(info: &TensorInfo, source: &str) -> Result<Readable> {
        match info.dtype.as_str() {
            "F32" => Ok(Readable::F32),
            "F16" => Ok(Readable::F16),
            "BF16" => Ok(Readable::BF16),
            "F64" => Ok(Readable::F64),
            other => Err(Error::invalid_file(
                source,
                format!(
                    "tensor '{}' has dtype {other}: expected F32, F16, BF16 or F64",
                    info.name
                ),
            )),
        }
    }

    fn size(self) -> usize {
        match self {
            Readable::F32 => 4,
            Readable::F16 | Readable::BF16 => 2,
            Readable::F64 => 8,
        }
    }

    /// One element, exactly as the file holds it (every one of these fits an `f64`).
    fn decode(self, bytes: &[u8]) -> f64 {
        let mut le = [0u8; 8];
        for (to, from) in le.iter_mut().zip(bytes) {
            *to = *from;
        }
        let [a, b, c, d, ..] = le;
        match self {
            Readable::F32 => f64::from(f32::from_le_bytes([a, b, c, d])),
            Readable::F16 => f64::from(f16_to_f32(u16::from_le_bytes([a, b]))),
            Readable::BF16 => {
                f64::from(f32::from_bits(u32::from(u16::from_le_bytes([a, b])) << 16))
            }
            Readable::F64 => f64::from_le_bytes(le),
        }
    }
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

/// "element [1, 2] (flat index 5) of tensor 'name'".
fn element(name: &str, shape: &[usize], flat: usize) -> String {
    format!(
        "element {:?} (flat index {flat}) of tensor '{name}'",
        crate::tensor::unravel(flat, shape)
    )
}

/// Reads the tensor described by `info` (whose bytes were checked against the file by
/// [`read_header`]) as finite `f32` values.
fn read_data(
    reader: &mut (impl Read + Seek),
    info: &TensorInfo,
    source: &str,
) -> Result<ArrayD<f32>> {
    let dtype = Readable::of(info, source)?;
    // The header validation made `len` = elements × size, within the file.
    let count = info.len / dtype.size();
    let mut values: Vec<f32> = Vec::new();
    values
        .try_reserve_exact(count)
        .map_err(|_| Error::Allocation {
            context: format!("{source}: tensor '{}'", info.name),
            bytes: count.saturating_mul(4),
        })?;
    reader.seek(SeekFrom::Start(info.begin)).map_err(|e| {
        Error::invalid_file(
            source,
            format!("cannot seek to tensor '{}': {e}", info.name),
        )
    })?;
    let mut chunk = vec![0u8; CHUNK];
    while values.len() < count {
        let take = (count - values.len()).min(CHUNK / dtype.size()) * dtype.size();
        let bytes = chunk.get_mut(..take).unwrap_or_default();
        reader.read_exact(bytes).map_err(|e| {
            Error::invalid_file(
                source,
                format!(
                    "cannot read the data of tensor '{}' (the file shrank while being read?): {e}",
                    info.name
                ),
            )
        })?;
        for raw in bytes.chunks_exact(dtype.size()) {
            let written = dtype.decode(raw);
            let value = written as f32;
            if !value.is_finite() {
                let what = if written.is_finite() {
                    format!("{written:?}, beyond the float32 range")
                } else {
                    format!("{written:?}")
                };
                return Err(Error::invalid_file(
                    source,
                    format!(
                        "{} is {what}: expected finite float32 values",
                        element(&info.name, &info.shape, values.len())
                    ),
                ));
            }
            values.push(value);
        }
    }
    ArrayD::from_shape_vec(IxDyn(&info.shape), values)
        .map_err(|e| Error::invalid_file(source, format!("tensor '{}': {e}", info.name)))
}

/// The most names an unknown-name error lists (a model can hold thousands of tensors).
const NAMES_SHOWN: usize = 20;

fn find<'a>(tensors: &'a [TensorInfo], name: &str, source: &str) -> Result<&'a TensorInfo> {
    tensors.iter().find(|t| t.name == name).ok_or_else(|| {
        let names: Vec<&str> = tensors
            .iter()
            .take(NAMES_SHOWN)
            .map(|t| t.name.as_str())
            .collect();
        let more = match tensors.len().saturating_sub(NAMES_SHOWN) {
            0 => String::new(),
            n => format!(" and {n} more (list them with list_tensors)"),
        };
        Error::invalid_file(
            source,
            format!("no tensor named '{name}': the file holds {names:?}{more}"),
        )
    })
}

/// Opens `path` and returns it with its length.
fn open(path: &Path) -> Result<(File, u64)> {
    let file = File::open(path).map_err(|e| Error::io(path, "cannot open", &e))?;
    let len = file
        .metadata()
        .map_err(|e| Error::io(path, "cannot read the size", &e))?
        .len();
    Ok((file, len))
}

/// The tensors a file holds, in name order. Only the header is read.
///
/// # Errors
/// [`Error::Io`] naming the path; [`Error::InvalidFile`] for a header the format refuses (see
/// the [module docs](self)); [`Error::Allocation`] if the header cannot be held in memory.
pub fn list_tensors(path: impl AsRef<Path>) -> Result<Vec<TensorInfo>> {
    let path = path.as_ref();
    let (mut file, len) = open(path)?;
    read_header(&mut file, len, &path.display().to_string())
}

/// Reads the tensor `name` as `f32`, reading only the header and that tensor's bytes.
///
/// # Errors
/// [`Error::Io`] naming the path; [`Error::InvalidFile`] naming the path for a header the
/// format refuses (see the [module docs](self)), an unknown name (listing up to 20 of the
/// names there are), an unsupported dtype (named) or a value that is not a finite float32 (naming the
/// tensor, the element's position and the value); [`Error::Allocation`] if the tensor cannot be
/// held in memory.
pub fn read_tensor(path: impl AsRef<Path>, name: &str) -> Result<ArrayD<f32>> {
    let path = path.as_ref();
    let (mut file, len) = open(path)?;
    read_from(&mut file, len, name, &path.display().to_string())
}

/// [`read_tensor`] from the bytes of a whole file in memory (named `<bytes>` in errors).
///
/// # Errors
/// Those of [`read_tensor`], except [`Error::Io`].
pub fn read_tensor_bytes(bytes: &[u8], name: &str) -> Result<ArrayD<f32>> {
    read_from(&mut Cursor::new(bytes), bytes.len() as u64, name, "<bytes>")
}

fn read_from(
    reader: &mut (impl Read + Seek),
    len: u64,
    name: &str,
    source: &str,
) -> Result<ArrayD<f32>> {
    let tensors = read_header(reader, len, source)?;
    read_data(reader, find(&tensors, name, source)?, source)
}

/// The names PyTorch models give their token-embedding table, in the order they are tried:
/// Llama/Mistral/Qwen (`model.embed_tokens.weight`), BERT (`embeddings.word_embeddings.weight`,
/// or `word_embeddings.weight` without the prefix), GPT-2 (`wte.weight`), T5 (`shared.weight`),
/// a bare decoder (`embed_tokens.weight`), Meta's Llama checkpoints (`tok_embeddings.weight`).
/// A name is also matched after any prefix ending in `.`, such as `bert.` or `transformer.`.
pub const TOKEN_EMBEDDING_NAMES: [&str; 7] = [
    "model.embed_tokens.weight",
    "embeddings.word_embeddings.weight",
    "word_embeddings.weight",
    "wte.weight",
    "shared.weight",
    "embed_tokens.weight",
    "tok_embeddings.weight",
];

/// Reads a PyTorch model's token-embedding table `(vocabulary, dim)`: the first of
/// [`TOKEN_EMBEDDING_NAMES`] the file holds, exactly or after a prefix (`bert.embeddings.
/// word_embeddings.weight`, `transformer.wte.weight`); returns its name and values. Only the
/// header and that tensor are read. Give the result to
/// [`Embedding::from_pretrained`](crate::layers::Embedding::from_pretrained).
///
/// # Errors
/// Those of [`read_tensor`]; [`Error::InvalidFile`] naming the path when no tensor has one
/// of the names (listing the names tried and up to 20 of the names the file holds), when
/// several prefixed tensors match the same name (naming them), or when the tensor found is
/// not 2-D (naming it and its shape).
pub fn read_token_embeddings(path: impl AsRef<Path>) -> Result<(String, ndarray::Array2<f32>)> {
    let path = path.as_ref();
    let (mut file, len) = open(path)?;
    token_embeddings_from(&mut file, len, &path.display().to_string())
}

/// [`read_token_embeddings`] from the bytes of a whole file in memory (named `<bytes>` in
/// errors).
///
/// # Errors
/// Those of [`read_token_embeddings`], except [`Error::Io`].
pub fn read_token_embeddings_bytes(bytes: &[u8]) -> Result<(String, ndarray::Array2<f32>)> {
    token_embeddings_from(&mut Cursor::new(bytes), bytes.len() as u64, "<bytes>")
}

fn token_embeddings_from(
    reader: &mut (impl Read + Seek),
    len: u64,
    source: &str,
) -> Result<(String, ndarray::Array2<f32>)> {
    let tensors = read_header(reader, len, source)?;
    let mut found = None;
    for wanted in TOKEN_EMBEDDING_NAMES {
        let matches: Vec<&TensorInfo> = tensors
            .iter()
            .filter(|t| {
                t.name == wanted
                    || t.name
                        .strip_suffix(wanted)
                        .is_some_and(|prefix| prefix.ends_with('.'))
            })
            .collect();
        // An exact name wins over prefixed ones.
        if let Some(exact) = matches.iter().find(|t| t.name == wanted) {
            found = Some(*exact);
            break;
        }
        match matches.as_slice() {
            [] => continue,
            [one] => {
                found = Some(*one);
                break;
            }
            several => {
                let names: Vec<&str> = several.iter().map(|t| t.name.as_str()).collect();
                return Err(Error::invalid_file(
                    source,
                    format!(
                        "several tensors could be the token embeddings ({names:?} all end in '{wanted}'): read the one you mean with read_tensor"
                    ),
                ));
            }
        }
    }
    let Some(info) = found else {
        let names: Vec<&str> = tensors
            .iter()
            .take(NAMES_SHOWN)
            .map(|t| t.name.as_str())
            .collect();
        let more = match tensors.len().saturating_sub(NAMES_SHOWN) {
            0 => String::new(),
            n => format!(" and {n} more (list them with list_tensors)"),
        };
        return Err(Error::invalid_file(
            source,
            format!(
                "no token-embedding tensor: looked for {TOKEN_EMBEDDING_NAMES:?} (also after a prefix such as 'bert.'), but the file holds {names:?}{more}; read another tensor by name with read_tensor"
            ),
        ));
    };
    if info.shape.len() != 2 {
        return Err(Error::invalid_file(
            source,
            format!(
                "tensor '{}' has shape {:?}: a token-embedding table (vocabulary, dim) is 2-D",
                info.name, info.shape
            ),
        ));
    }
    let values = read_data(reader, info, source)?;
    let table = values
        .into_dimensionality::<ndarray::Ix2>()
        .map_err(|_| Error::invalid_file(source, format!("tensor '{}' is not 2-D", info.name)))?;
    Ok((info.name.clone(), table))
}

/// A checked header for `tensors` stored as F32 in the order given.
struct Layout {
    /// The 8-byte size, then the JSON padded with spaces to a multiple of 8.
    head: Vec<u8>,
    /// Bytes of tensor data after it.
    data_len: usize,
}

impl Layout {
    fn new(tensors: &[(String, ArrayViewD<'_, f32>)]) -> Result<Layout> {
        let refuse = |value: String, expected: &str| {
            Error::invalid_argument("safetensors", "tensors", value, expected)
        };
        let mut names = HashSet::new();
        let mut entries = Vec::new();
        entries
            .try_reserve_exact(tensors.len())
            .map_err(|_| Error::Allocation {
                context: "safetensors header".into(),
                bytes: tensors
                    .len()
                    .saturating_mul(size_of::<(String, ReferenceInfo)>()),
            })?;
        let mut data_len = 0usize;
        for (name, array) in tensors {
            if name == METADATA_KEY {
                return Err(refuse(
                    format!("a tensor named '{name}'"),
                    "tensor names other than __metadata__, which the format reserves",
                ));
            }
            if !names.insert(name.as_str()) {
                return Err(refuse(format!("'{name}' twice"), "distinct names"));
            }
            if let Some((flat, bad)) = array.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(refuse(
                    format!("{bad} at {}", element(name, array.shape(), flat)),
                    "finite float32 values",
                ));
            }
            let begin = data_len;
            data_len = array
                .len()
                .checked_mul(4)
                .and_then(|bytes| bytes.checked_add(begin))
                .ok_or_else(|| Error::ShapeOverflow {
                    context: format!("safetensors: tensor '{name}'"),
                    shape: array.shape().to_vec(),
                })?;
            entries.push((
                name.clone(),
                ReferenceInfo {
                    dtype: Dtype::F32,
                    shape: array.shape().to_vec(),
                    data_offsets: (begin, data_len),
                },
            ));
        }
        // The crate makes and checks the header, so it reads back what we write.
        let refused = |e: &dyn fmt::Display| {
            refuse(
                format!("{} tensors", tensors.len()),
                &format!("tensors the safetensors format can hold ({e})"),
            )
        };
        let metadata = Metadata::new(None, entries).map_err(|e| refused(&e))?;
        let mut json = serde_json::to_vec(&metadata).map_err(|e| refused(&e))?;
        json.resize(json.len().next_multiple_of(8), b' ');
        if json.len() as u64 > MAX_HEADER {
            return Err(refused(&format!(
                "the header would be {} bytes, over the limit of {MAX_HEADER}",
                json.len()
            )));
        }
        let mut head = (json.len() as u64).to_le_bytes().to_vec();
        head.extend_from_slice(&json);
        Ok(Layout { head, data_len })
    }

    /// Writes the header and the values, a chunk at a time.
    fn write(
        &self,
        writer: &mut impl Write,
        tensors: &[(String, ArrayViewD<'_, f32>)],
        path: &Path,
    ) -> Result<()> {
        write_all(writer, &self.head, path)?;
        let mut buffer = Vec::with_capacity(CHUNK);
        for (_, array) in tensors {
            for v in array.iter() {
                buffer.extend_from_slice(&v.to_le_bytes());
                if buffer.len() == CHUNK {
                    write_all(writer, &buffer, path)?;
                    buffer.clear();
                }
            }
        }
        write_all(writer, &buffer, path)
    }
}

/// The bytes of a `.safetensors` file holding `tensors` as F32, in the order given.
///
/// # Errors
/// [`Error::InvalidArgument`] for a duplicate name, the reserved name `__metadata__`, or a
/// value that is not finite (naming the tensor and the element's position);
/// [`Error::Allocation`] if the bytes cannot be held in memory.
pub fn to_bytes(tensors: &[(String, ArrayViewD<'_, f32>)]) -> Result<Vec<u8>> {
    let layout = Layout::new(tensors)?;
    let total = layout.head.len().saturating_add(layout.data_len);
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(total)
        .map_err(|_| Error::Allocation {
            context: "safetensors::to_bytes".into(),
            bytes: total,
        })?;
    layout.write(&mut bytes, tensors, Path::new("<bytes>"))?;
    Ok(bytes)
}

/// Writes `tensors` as an F32 `.safetensors` file, atomically, streaming the values (no copy
/// of the whole data is made).
///
/// # Errors
/// [`Error::Io`] naming the path; those of [`to_bytes`] except [`Error::Allocation`].
pub fn write_tensors(
    path: impl AsRef<Path>,
    tensors: &[(String, ArrayViewD<'_, f32>)],
) -> Result<()> {
    let path = path.as_ref();
    let layout = Layout::new(tensors)?;
    write_atomically(path, |w| layout.write(w, tensors, path))
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

    /// Our limit is the crate's: one byte over is "too large" for both.
    #[test]
    fn header_limit_is_the_reference_one() {
        let claim = |n: u64| n.to_le_bytes().to_vec();
        assert!(matches!(
            ::safetensors::SafeTensors::deserialize(&claim(MAX_HEADER + 1)),
            Err(::safetensors::SafeTensorError::HeaderTooLarge)
        ));
        assert!(matches!(
            ::safetensors::SafeTensors::deserialize(&claim(MAX_HEADER)),
            Err(::safetensors::SafeTensorError::InvalidHeaderLength)
        ));
    }
}
