//! NumPy `.npy` and `.npz` files, as `np.save`, `np.savez` and `np.savez_compressed` write
//! them: the format of `layer.get_weights()[0]` exported from Keras.
//!
//! # Dtypes
//! `float32` (`<f4`, `>f4`) and `float16` (`<f2`, `>f2`) are read exactly. `float64` (`<f8`,
//! `>f8`) is rounded to the nearest `float32`, which is what Keras does when it assigns a
//! float64 array to its float32 variable. Any other dtype is an error naming it, except in
//! [`read_npz_typed`], which also reads `int8` (`|i1`) and keeps int8 and float16 arrays in
//! their type ([`NpyArray`]): that is how `load_weights` reads quantized codes and
//! half-precision tables bit-exactly. Fortran-ordered arrays are read into standard
//! (row-major) layout. Writers produce C order in format version 1.0 (2.0 when the header does
//! not fit in 1.0, as NumPy does): little-endian `float32`, or with [`write_npz_typed`] /
//! [`write_npy_typed`] each array in its own type ([`NpyView`]: `<f4`, `|i1`, `<f2`), which
//! `np.load` reads back in that type.
//!
//! NumPy has no bfloat16 type (`np.save` of an `ml_dtypes.bfloat16` array writes opaque
//! 2-byte records, `<V2`), so ndkeras writes bfloat16 tables as float32, which every NumPy
//! reads as numbers and Keras assigns back to a bfloat16 variable exactly.
//!
//! # What is checked
//! - The header is parsed as the Python dictionary literal it is, as strictly as NumPy's
//!   `read_array_header`: exactly the keys `descr`, `fortran_order` and `shape` (each once, in
//!   any order), a dtype string, `True` or `False`, and a tuple of non-negative integers.
//!   Anything else (another key, a duplicate, text after the dictionary) is an error naming it.
//! - The data the header promises is checked against what the file (or archive entry) holds
//!   before anything is allocated; every allocation whose size a file decides is fallible and
//!   reported as [`Error::Allocation`].
//! - In an `.npz`, each entry's size must agree with the `.npy` header inside it, a stored
//!   entry can never claim more than the archive holds, a deflated one more than deflate can
//!   expand to, and inflation stops at the size the header gives: a decompression bomb is an
//!   error after reading at most that much. Entries that together claim more bytes than the
//!   archive holds (overlapping entries) are refused. CRCs are checked.
//! - Values: a table holds finite float32 values only. Readers refuse NaN, infinities
//!   (float16 ones too) and float64 values that overflow float32, naming the element
//!   (`[2, 1]`) and the value; writers refuse NaN and infinities (float32 and float16) before
//!   touching the target file, so what ndkeras writes, ndkeras reads back. `map_npy` and
//!   `map_npy_half` are the exception: they read nothing, so they cannot check the values.
//!
//! # Memory maps
//! With the `mmap` feature, `map_npy` (float32), `map_npy_codes` (the int8 or packed int4
//! codes of a quantized table) and `map_npy_half` (float16) map a 2-D C-order table in O(1),
//! after checking its header as strictly as the readers do; [`read_npy_scales`] reads and
//! checks the per-row scales that go with int8 codes, and [`write_quantized_npy`] writes both
//! from a layer quantized in memory. int4 codes go to
//! `Embedding::from_mapped_quantized_with` with their other variables.
//!
//! ```
//! use ndarray::array;
//! use ndkeras::io::npy;
//!
//! let dir = std::env::temp_dir().join(format!("ndkeras-npy-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("table.npy");
//! let table = array![[0.5f32, 1.5], [2.5, 3.5]].into_dyn();
//! npy::write_npy(&path, &table.view())?;
//! assert_eq!(npy::read_npy(&path)?, table);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), ndkeras::Error>(())
//! ```

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, Write};
use std::path::Path;

use ndarray::{ArrayD, ArrayViewD, IxDyn, ShapeBuilder};

use crate::error::{Dims, Error, Result};
use crate::io::{excerpt, write_all, write_atomically};
use crate::tensor::Tensor;

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Headers larger than this are refused before they are read.
const MAX_HEADER: usize = 1 << 20;
/// The most a deflated zip entry can expand (deflate's limit is about 1032:1).
const MAX_DEFLATE_RATIO: u64 = 1100;
/// What every message about a non-finite value says was expected.
const FINITE: &str = "expected finite float32 values";

/// The element type of an `.npy` file that ndkeras can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    F32 {
        little: bool,
    },
    F64 {
        little: bool,
    },
    /// IEEE half precision: read exactly (widened to float32 by the float readers).
    F16 {
        little: bool,
    },
    /// An integer of `size` bytes (ids, as Keras users save `x_train`): read by
    /// [`read_npy_ids`] only.
    Int {
        size: usize,
        signed: bool,
        little: bool,
    },
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::F32 { .. } => 4,
            Dtype::F64 { .. } => 8,
            Dtype::F16 { .. } => 2,
            Dtype::Int { size, .. } => size,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Dtype::F32 { .. } => "float32",
            Dtype::F64 { .. } => "float64",
            Dtype::F16 { .. } => "float16",
            Dtype::Int { size, signed, .. } => match (size, signed) {
                (1, true) => "int8",
                (2, true) => "int16",
                (4, true) => "int32",
                (8, true) => "int64",
                (1, false) => "uint8",
                (2, false) => "uint16",
                (4, false) => "uint32",
                _ => "uint64",
            },
        }
    }

    /// Parses a NumPy `descr` such as `<f4`.
    fn parse(descr: &str) -> std::result::Result<Dtype, String> {
        // Split on a character, not a byte: the descr is any text the file holds.
        let mut chars = descr.chars();
        let little = match chars.next() {
            Some('<') => true,
            Some('>') => false,
            Some('=' | '|') => cfg!(target_endian = "little"),
            _ => return Err(describe(descr)),
        };
        let int = |size: usize, signed: bool| {
            Ok(Dtype::Int {
                size,
                signed,
                little,
            })
        };
        match chars.as_str() {
            "f4" => Ok(Dtype::F32 { little }),
            "f8" => Ok(Dtype::F64 { little }),
            "f2" => Ok(Dtype::F16 { little }),
            "i1" => int(1, true),
            "i2" => int(2, true),
            "i4" => int(4, true),
            "i8" => int(8, true),
            "u1" => int(1, false),
            "u2" => int(2, false),
            "u4" => int(4, false),
            "u8" => int(8, false),
            _ => Err(describe(descr)),
        }
    }
}

/// A message naming an unsupported dtype in NumPy's words.
fn describe(descr: &str) -> String {
    let name = match descr.trim_start_matches(['<', '>', '=', '|']) {
        "f2" => "float16",
        "i1" => "int8",
        "i2" => "int16",
        "i4" => "int32",
        "i8" => "int64",
        "u1" => "uint8",
        "u2" => "uint16",
        "u4" => "uint32",
        "u8" => "uint64",
        "b1" => "bool",
        "c8" => "complex64",
        "c16" => "complex128",
        "O" => "object",
        _ => "an unsupported type",
    };
    format!(
        "dtype '{descr}' ({name}) is not supported: expected float32 ('<f4'), float16 ('<f2', read exactly) or float64 ('<f8', rounded to the nearest float32)"
    )
}

/// An array in the type an `.npy` file (or `.npz` entry) stores it: what
/// [`read_npz_typed`] reads.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum NpyArray {
    /// float32 (`<f4`), or float64 (`<f8`) rounded to the nearest float32.
    Float32(ArrayD<f32>),
    /// int8 (`|i1`).
    Int8(ArrayD<i8>),
    /// float16 (`<f2`): the bits of each value (`half::f16::from_bits`), all finite.
    Float16(ArrayD<u16>),
}

impl NpyArray {
    /// NumPy's name of the type: `"float32"`, `"int8"`, `"float16"`.
    pub fn dtype_name(&self) -> &'static str {
        self.view().dtype_name()
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            NpyArray::Float32(a) => a.shape(),
            NpyArray::Int8(a) => a.shape(),
            NpyArray::Float16(a) => a.shape(),
        }
    }

    /// A view to write it back with [`write_npz_typed`].
    pub fn view(&self) -> NpyView<'_> {
        match self {
            NpyArray::Float32(a) => NpyView::Float32(a.view()),
            NpyArray::Int8(a) => NpyView::Int8(a.view()),
            NpyArray::Float16(a) => NpyView::Float16(a.view()),
        }
    }

    /// The values as float32, exactly (every int8 and float16 value is a float32); a
    /// float32 array is moved, not copied.
    ///
    /// # Errors
    /// [`Error::Allocation`] naming `context` when the copy does not fit in memory.
    pub fn into_f32(self, context: impl Fn() -> String) -> Result<ArrayD<f32>> {
        fn widen<T: Copy>(
            array: &ArrayD<T>,
            widen: impl Fn(T) -> f32,
            context: impl Fn() -> String,
        ) -> Result<ArrayD<f32>> {
            let mut values: Vec<f32> = Vec::new();
            values
                .try_reserve_exact(array.len())
                .map_err(|_| Error::Allocation {
                    context: context(),
                    bytes: array.len().saturating_mul(4),
                })?;
            values.extend(array.iter().map(|&v| widen(v)));
            ArrayD::from_shape_vec(array.raw_dim(), values).map_err(|_| Error::ShapeOverflow {
                context: context(),
                shape: array.shape().to_vec(),
            })
        }
        match self {
            NpyArray::Float32(a) => Ok(a),
            NpyArray::Int8(a) => widen(&a, f32::from, context),
            NpyArray::Float16(a) => widen(&a, |b| half::f16::from_bits(b).to_f32(), context),
        }
    }
}

/// A view of an array to write in its own type with [`write_npz_typed`] or
/// [`write_npy_typed`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum NpyView<'a> {
    /// Written as `<f4`.
    Float32(ArrayViewD<'a, f32>),
    /// Written as `|i1`.
    Int8(ArrayViewD<'a, i8>),
    /// The bits of float16 values (`half::f16::to_bits`), written as `<f2`.
    Float16(ArrayViewD<'a, u16>),
}

impl NpyView<'_> {
    /// NumPy's name of the type: `"float32"`, `"int8"`, `"float16"`.
    pub fn dtype_name(&self) -> &'static str {
        match self {
            NpyView::Float32(_) => "float32",
            NpyView::Int8(_) => "int8",
            NpyView::Float16(_) => "float16",
        }
    }

    /// The dtype string of the `.npy` header.
    fn descr(&self) -> &'static str {
        match self {
            NpyView::Float32(_) => "<f4",
            NpyView::Int8(_) => "|i1",
            NpyView::Float16(_) => "<f2",
        }
    }

    fn shape(&self) -> &[usize] {
        match self {
            NpyView::Float32(a) => a.shape(),
            NpyView::Int8(a) => a.shape(),
            NpyView::Float16(a) => a.shape(),
        }
    }

    /// The first value that is not finite, as an error naming `what` and its position.
    fn check_finite(&self, owner: &str, what: &str) -> Result<()> {
        let bad = match self {
            NpyView::Float32(a) => return check_finite(a, owner, what),
            NpyView::Int8(_) => return Ok(()),
            NpyView::Float16(a) => a
                .iter()
                .enumerate()
                .find(|(_, b)| !half::f16::from_bits(**b).is_finite())
                .map(|(flat, &b)| (flat, half::f16::from_bits(b).to_f32(), a.shape())),
        };
        let Some((flat, value, shape)) = bad else {
            return Ok(());
        };
        let index = crate::tensor::unravel(flat, shape);
        Err(Error::invalid_argument(
            owner,
            what,
            format!("{value:?} at {}", format_position(&index)),
            "finite float16 values, so that what ndkeras writes it can read back",
        ))
    }
}

/// What an `.npy` header says.
#[derive(Debug, Clone, PartialEq)]
struct Header {
    dtype: Dtype,
    fortran_order: bool,
    shape: Vec<usize>,
}

impl Header {
    fn data_len(&self, source: &str) -> Result<usize> {
        self.shape
            .iter()
            .try_fold(self.dtype.size(), |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= isize::MAX as usize)
            .ok_or_else(|| {
                Error::invalid_file(
                    source,
                    format!(
                        "the header's shape {} has more elements than fit in memory",
                        Dims(&self.shape)
                    ),
                )
            })
    }

    /// The position of the `flat`-th element in file order, as `[2, 1]`.
    fn position(&self, mut flat: usize) -> String {
        let mut index = vec![0; self.shape.len()];
        let mut place = |axis: usize| {
            let dim = self.shape[axis].max(1);
            index[axis] = flat % dim;
            flat /= dim;
        };
        if self.fortran_order {
            (0..self.shape.len()).for_each(&mut place);
        } else {
            (0..self.shape.len()).rev().for_each(&mut place);
        }
        format_position(&index)
    }
}

/// Formats a multi-index like `[2, 1]`.
fn format_position(index: &[usize]) -> String {
    let parts: Vec<String> = index.iter().map(ToString::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// Reads the magic, version and header dictionary; returns the header and how many bytes
/// it took (the offset of the data).
fn read_header(reader: &mut impl Read, source: &str) -> Result<(Header, u64)> {
    let mut preamble = [0u8; 8];
    reader.read_exact(&mut preamble).map_err(|_| {
        Error::invalid_file(
            source,
            "not an .npy file: it is shorter than the 8-byte preamble",
        )
    })?;
    if &preamble[..6] != MAGIC {
        return Err(Error::invalid_file(
            source,
            "not an .npy file: the magic string \\x93NUMPY is missing",
        ));
    }
    let (major, minor) = (preamble[6], preamble[7]);
    let (header_len, len_size) = match (major, minor) {
        (1, 0) => {
            let mut len = [0u8; 2];
            reader
                .read_exact(&mut len)
                .map_err(|_| truncated(source, "header length"))?;
            (usize::from(u16::from_le_bytes(len)), 2)
        }
        (2 | 3, 0) => {
            let mut len = [0u8; 4];
            reader
                .read_exact(&mut len)
                .map_err(|_| truncated(source, "header length"))?;
            (u32::from_le_bytes(len) as usize, 4)
        }
        _ => {
            return Err(Error::invalid_file(
                source,
                format!(
                    "unsupported .npy format version {major}.{minor}: expected 1.0, 2.0 or 3.0"
                ),
            ));
        }
    };
    if header_len > MAX_HEADER {
        return Err(Error::invalid_file(
            source,
            format!("the header claims {header_len} bytes: at most {MAX_HEADER} are accepted"),
        ));
    }
    // Grown as bytes arrive, so a short file never allocates what its length field claims.
    let mut bytes = Vec::new();
    reader
        .take(header_len as u64)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::invalid_file(source, format!("cannot read the header: {e}")))?;
    if bytes.len() != header_len {
        return Err(truncated(source, "header"));
    }
    // NumPy decodes versions 1.0 and 2.0 as latin-1 and 3.0 as UTF-8.
    let text = if major == 3 {
        String::from_utf8(bytes).map_err(|_| {
            Error::invalid_file(source, "the header of a version 3.0 file is not UTF-8")
        })?
    } else {
        bytes.iter().map(|&b| char::from(b)).collect()
    };
    let header = parse_header(&text, major < 3).map_err(|message| {
        Error::invalid_file(
            source,
            format!("bad header {:?}: {message}", excerpt(text.trim_end(), 200)),
        )
    })?;
    Ok((header, (8 + len_size + header_len) as u64))
}

fn truncated(source: &str, part: &str) -> Error {
    Error::invalid_file(source, format!("the file ends inside its {part}"))
}

/// Parses the header as the Python dictionary literal NumPy writes with `repr`, e.g.
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }`, as strictly as NumPy's
/// `read_array_header` (`ast.literal_eval`, then exactly the three keys, a tuple of ints and
/// a bool). Two differences, both for text NumPy never writes: a duplicated key is an error
/// (Python keeps the last), and so are literal forms NumPy does not produce (escapes, hex,
/// comments). `python2_ints` accepts the `3L` that Python 2 wrote in versions 1.0 and 2.0.
fn parse_header(text: &str, python2_ints: bool) -> std::result::Result<Header, String> {
    let mut literal = Literal {
        text,
        at: 0,
        python2_ints,
    };
    let (mut descr, mut fortran_order, mut shape) = (None, None, None);
    literal.expect('{', "at the start of the header")?;
    loop {
        if literal.eat('}') {
            break;
        }
        let key = literal.string("a key")?;
        literal.expect(':', &format!("after the key '{key}'"))?;
        let twice = || format!("the key '{key}' appears twice");
        match key.as_str() {
            "descr" => {
                if literal.peek() == Some('[') {
                    return Err("descr is a list: structured dtypes are not supported, expected a dtype string such as '<f4'".into());
                }
                let value = literal.string("the descr string")?;
                if descr.replace(Dtype::parse(&value)?).is_some() {
                    return Err(twice());
                }
            }
            "fortran_order" => {
                let value = match literal.word() {
                    "True" => true,
                    "False" => false,
                    other => {
                        return Err(format!(
                            "fortran_order is '{}': expected True or False",
                            excerpt(other, 20)
                        ));
                    }
                };
                if fortran_order.replace(value).is_some() {
                    return Err(twice());
                }
            }
            "shape" => {
                let value = literal.shape()?;
                if shape.replace(value).is_some() {
                    return Err(twice());
                }
            }
            other => {
                return Err(format!(
                    "unexpected key '{}': expected exactly the keys 'descr', 'fortran_order' and 'shape'",
                    excerpt(other, 40)
                ));
            }
        }
        if !literal.eat(',') {
            literal.expect('}', "or ',' after a value")?;
            break;
        }
    }
    if literal.peek().is_some() {
        return Err(format!(
            "unexpected text after the dictionary: {:?}",
            excerpt(literal.rest(), 20)
        ));
    }
    let missing = |key: &str| format!("the key '{key}' is missing");
    Ok(Header {
        dtype: descr.ok_or_else(|| missing("descr"))?,
        fortran_order: fortran_order.ok_or_else(|| missing("fortran_order"))?,
        shape: shape.ok_or_else(|| missing("shape"))?,
    })
}

/// A cursor over header text; `at` is always on a character boundary.
struct Literal<'a> {
    text: &'a str,
    at: usize,
    python2_ints: bool,
}

impl<'a> Literal<'a> {
    fn rest(&self) -> &'a str {
        self.text.get(self.at..).unwrap_or_default()
    }

    /// The next character after Python's whitespace (inside brackets, newlines are too).
    fn peek(&mut self) -> Option<char> {
        let rest = self.rest();
        let trimmed = rest.trim_start_matches([' ', '\t', '\n', '\r', '\x0c']);
        self.at += rest.len() - trimmed.len();
        trimmed.chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        let found = self.peek() == Some(c);
        if found {
            self.at += c.len_utf8();
        }
        found
    }

    fn found(&mut self) -> String {
        match self.peek() {
            None => "the end of the header".into(),
            Some(_) => format!("{:?}", excerpt(self.rest(), 20)),
        }
    }

    fn expect(&mut self, c: char, context: &str) -> std::result::Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected '{c}' {context}, found {}", self.found()))
        }
    }

    /// A quoted string without escapes (NumPy's keys and dtype strings have none).
    fn string(&mut self, what: &str) -> std::result::Result<String, String> {
        let quote = match self.peek() {
            Some(q @ ('\'' | '"')) => q,
            _ => return Err(format!("expected {what} in quotes, found {}", self.found())),
        };
        self.at += 1;
        let rest = self.rest();
        match rest.find([quote, '\\', '\n']) {
            Some(end) if rest[end..].starts_with(quote) => {
                let value = rest[..end].to_string();
                self.at += end + 1;
                Ok(value)
            }
            Some(_) => Err(format!(
                "{what} holds an escape or a line break: expected a plain string"
            )),
            None => Err(format!("{what} is not terminated")),
        }
    }

    /// The run of characters up to the next separator (`,`, `)`, `}`, `:`, whitespace).
    fn word(&mut self) -> &'a str {
        self.peek();
        let rest = self.rest();
        let end = rest
            .find([',', ')', '}', ':', ' ', '\t', '\n', '\r', '\x0c'])
            .unwrap_or(rest.len());
        self.at += end;
        &rest[..end]
    }

    /// A tuple of non-negative integers: `()`, `(6,)`, `(3, 2)`, `(3, 2,)`.
    fn shape(&mut self) -> std::result::Result<Vec<usize>, String> {
        if self.peek() != Some('(') {
            return Err(format!(
                "shape is {}: expected a tuple of integers such as (3, 2)",
                self.found()
            ));
        }
        self.at += 1;
        let mut shape = Vec::new();
        loop {
            if self.eat(')') {
                return Ok(shape);
            }
            let python2_ints = self.python2_ints;
            let word = self.word();
            shape.push(dimension(word, python2_ints)?);
            if !self.eat(',') {
                self.expect(')', "or ',' in the shape tuple")?;
                if shape.len() == 1 {
                    return Err("shape is an integer in parentheses, not a tuple: expected (n,) for one dimension".into());
                }
                return Ok(shape);
            }
        }
    }
}

/// One dimension of a shape as Python writes an int: `0` or digits without a leading zero.
fn dimension(word: &str, python2_ints: bool) -> std::result::Result<usize, String> {
    let digits = match word.strip_suffix(['L', 'l']) {
        Some(digits) if python2_ints => digits,
        _ => word,
    };
    let is_int = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !is_int {
        let what = match word.strip_prefix('-') {
            Some(d) if !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) => "it is negative",
            _ if word.is_empty() => return Err("a dimension is missing in the shape tuple".into()),
            _ => "it is not an integer",
        };
        return Err(format!(
            "shape entry '{}' is not a length ({what}): expected an integer >= 0",
            excerpt(word, 30)
        ));
    }
    digits.parse().map_err(|_| {
        format!(
            "shape entry {} is larger than any length this machine can hold",
            excerpt(digits, 30)
        )
    })
}

/// Reads the data after a header; `available` bounds what the source can hold, so a header
/// that claims more is an error before anything is allocated. Values are checked as they
/// are decoded (the first non-finite one is an error naming its position).
fn read_data(
    reader: &mut impl Read,
    header: &Header,
    available: u64,
    source: &str,
) -> Result<ArrayD<f32>> {
    if let Dtype::Int { .. } = header.dtype {
        return Err(Error::invalid_file(
            source,
            format!(
                "dtype {} is not supported for a table: expected float32 ('<f4'), float16 ('<f2', read exactly) or float64 ('<f8', rounded to the nearest float32); ids are read with `read_npy_ids`",
                header.dtype.name()
            ),
        ));
    }
    let data_len = header.data_len(source)?;
    if (data_len as u64) > available {
        return Err(Error::invalid_file(
            source,
            format!(
                "the file is shorter than its header says: shape {} of {} needs {data_len} bytes of data, {available} are there",
                Dims(&header.shape),
                header.dtype.name()
            ),
        ));
    }
    let size = header.dtype.size();
    let count = data_len / size;
    let mut values: Vec<f32> = Vec::new();
    values
        .try_reserve_exact(count)
        .map_err(|_| Error::Allocation {
            context: format!("{source}: the array's values"),
            bytes: count * 4,
        })?;
    let mut chunk = vec![0u8; data_len.min((1 << 16) * size)];
    let mut remaining = data_len;
    while remaining > 0 {
        let take = remaining.min(chunk.len());
        let bytes = &mut chunk[..take];
        reader.read_exact(bytes).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => truncated(source, "data"),
            _ => Error::invalid_file(source, format!("cannot read the data: {e}")),
        })?;
        for element in bytes.chunks_exact(size) {
            let value = decode(header.dtype, element)
                .map_err(|written| non_finite(source, &header.position(values.len()), &written))?;
            values.push(value);
        }
        remaining -= take;
    }
    shaped_array(values, header, source)
}

/// The raw data bytes after a header, bounded by `available` before anything is allocated.
fn read_raw(
    reader: &mut impl Read,
    header: &Header,
    available: u64,
    source: &str,
) -> Result<Vec<u8>> {
    let data_len = header.data_len(source)?;
    if (data_len as u64) > available {
        return Err(Error::invalid_file(
            source,
            format!(
                "the file is shorter than its header says: shape {} of {} needs {data_len} bytes of data, {available} are there",
                Dims(&header.shape),
                header.dtype.name()
            ),
        ));
    }
    let mut bytes: Vec<u8> = try_vec(data_len, source)?;
    bytes.resize(data_len, 0);
    reader.read_exact(&mut bytes).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => truncated(source, "data"),
        _ => Error::invalid_file(source, format!("cannot read the data: {e}")),
    })?;
    Ok(bytes)
}

/// An empty `Vec` with room for `len` values, allocated fallibly.
fn try_vec<T>(len: usize, source: &str) -> Result<Vec<T>> {
    let mut values = Vec::new();
    values
        .try_reserve_exact(len)
        .map_err(|_| Error::Allocation {
            context: format!("{source}: the array's values"),
            bytes: len.saturating_mul(size_of::<T>()),
        })?;
    Ok(values)
}

/// Reads the data after a header in the type the file stores it: int8 and float16 as they
/// are (float16 values checked to be finite), float32 and float64 as [`read_data`] reads them.
fn read_typed(
    reader: &mut impl Read,
    header: &Header,
    available: u64,
    source: &str,
) -> Result<NpyArray> {
    match header.dtype {
        Dtype::Int {
            size: 1,
            signed: true,
            ..
        } => {
            let bytes = read_raw(reader, header, available, source)?;
            let mut values: Vec<i8> = try_vec(bytes.len(), source)?;
            values.extend(bytes.iter().map(|&b| b as i8));
            Ok(NpyArray::Int8(shaped_array(values, header, source)?))
        }
        Dtype::F16 { little } => {
            let bytes = read_raw(reader, header, available, source)?;
            let mut values: Vec<u16> = try_vec(bytes.len() / 2, source)?;
            for element in bytes.chunks_exact(2) {
                let bits = half_bits(element, little);
                if !half::f16::from_bits(bits).is_finite() {
                    let written = format!("{:?}", half::f16::from_bits(bits).to_f32());
                    return Err(non_finite(source, &header.position(values.len()), &written));
                }
                values.push(bits);
            }
            Ok(NpyArray::Float16(shaped_array(values, header, source)?))
        }
        Dtype::Int { .. } => Err(Error::invalid_file(
            source,
            format!(
                "dtype {} is not supported for a weight: expected float32 ('<f4'), float16 ('<f2') or int8 ('|i1')",
                header.dtype.name()
            ),
        )),
        Dtype::F32 { .. } | Dtype::F64 { .. } => {
            read_data(reader, header, available, source).map(NpyArray::Float32)
        }
    }
}

/// `values` in file order as an array in standard layout.
fn shaped_array<T: Clone>(values: Vec<T>, header: &Header, source: &str) -> Result<ArrayD<T>> {
    let shape = IxDyn(&header.shape);
    let array = if header.fortran_order {
        ArrayD::from_shape_vec(shape.f(), values).map(|a| a.as_standard_layout().into_owned())
    } else {
        ArrayD::from_shape_vec(shape, values)
    };
    array.map_err(|e| {
        Error::invalid_file(
            source,
            format!(
                "the data does not fit the shape {}: {e}",
                Dims(&header.shape)
            ),
        )
    })
}

/// Decodes one element; a value that is not a finite float32 comes back as written.
fn decode(dtype: Dtype, bytes: &[u8]) -> std::result::Result<f32, String> {
    match dtype {
        Dtype::F32 { little } => {
            let bytes: [u8; 4] = bytes.try_into().unwrap_or_default();
            let value = if little {
                f32::from_le_bytes(bytes)
            } else {
                f32::from_be_bytes(bytes)
            };
            if value.is_finite() {
                Ok(value)
            } else {
                Err(format!("{value:?}"))
            }
        }
        Dtype::F64 { little } => {
            let bytes: [u8; 8] = bytes.try_into().unwrap_or_default();
            let value = if little {
                f64::from_le_bytes(bytes)
            } else {
                f64::from_be_bytes(bytes)
            };
            let rounded = value as f32;
            if rounded.is_finite() {
                Ok(rounded)
            } else if value.is_finite() {
                Err(format!(
                    "{value:?}, which overflows float32 (largest {:?})",
                    f32::MAX
                ))
            } else {
                Err(format!("{value:?}"))
            }
        }
        Dtype::F16 { little } => {
            let bits = half_bits(bytes, little);
            let value = half::f16::from_bits(bits).to_f32();
            if value.is_finite() {
                Ok(value)
            } else {
                Err(format!("{value:?}"))
            }
        }
        Dtype::Int { .. } => Err("an integer".into()),
    }
}

/// The bits of one float16 element.
fn half_bits(bytes: &[u8], little: bool) -> u16 {
    let bytes: [u8; 2] = bytes.try_into().unwrap_or_default();
    if little {
        u16::from_le_bytes(bytes)
    } else {
        u16::from_be_bytes(bytes)
    }
}

fn non_finite(source: &str, position: &str, written: &str) -> Error {
    Error::invalid_file(
        source,
        format!("element {position} is {written}: {FINITE} (a table holds finite values only)"),
    )
}

/// Reads one array from `.npy` bytes (e.g. an entry of an archive).
///
/// # Errors
/// [`Error::InvalidFile`] for a bad header, an unsupported dtype, data shorter than the
/// header says, or a value that is not a finite float32 (NaN, an infinity, a float64 beyond
/// float32's range), naming its position; [`Error::Allocation`] when the array does not fit
/// in memory.
pub fn read_npy_bytes(bytes: &[u8]) -> Result<ArrayD<f32>> {
    let mut reader = Cursor::new(bytes);
    let (header, offset) = read_header(&mut reader, "<bytes>")?;
    let available = (bytes.len() as u64).saturating_sub(offset);
    read_data(&mut reader, &header, available, "<bytes>")
}

/// Reads an `.npy` file as `np.save` writes it.
///
/// # Errors
/// [`Error::Io`] naming the path when the file cannot be read; [`Error::InvalidFile`] for a
/// bad header, an unsupported dtype (named), a file shorter than its header says, or a value
/// that is not a finite float32 (NaN, an infinity, a float64 beyond float32's range), naming
/// its position and value; [`Error::Allocation`] when the array does not fit in memory.
pub fn read_npy(path: impl AsRef<Path>) -> Result<ArrayD<f32>> {
    let path = path.as_ref();
    let source = path.display().to_string();
    let file = File::open(path).map_err(|e| Error::io(path, "cannot open", &e))?;
    let size = file
        .metadata()
        .map_err(|e| Error::io(path, "cannot read the size", &e))?
        .len();
    let mut reader = BufReader::new(file);
    let (header, offset) = read_header(&mut reader, &source)?;
    read_data(&mut reader, &header, size.saturating_sub(offset), &source)
}

/// Reads a 2-D `.npy` table (`np.save("t.npy", table)`) as an `Array2`, ready for
/// `Embedding::from_table` or `weights`.
///
/// # Errors
/// Those of [`read_npy`], and [`Error::InvalidFile`] naming the file and its shape when the
/// array is not 2-D.
pub fn read_npy_table(path: impl AsRef<Path>) -> Result<ndarray::Array2<f32>> {
    let path = path.as_ref();
    let array = read_npy(path)?;
    let shape = array.shape().to_vec();
    array.into_dimensionality().map_err(|_| {
        Error::invalid_file(
            path.display().to_string(),
            format!(
                "the array has shape {}: a table is 2-D, (rows, dim)",
                Dims(&shape)
            ),
        )
    })
}

/// Reads an `.npy` file of ids (`np.save("x_train.npy", x_train)`) as a [`Tensor`] to give
/// `predict` or `fit`: integer files (int8 to int64, uint8 to uint64, either byte order)
/// keep their type and every value exactly; float32 and float64 files are read as
/// [`read_npy`] reads them (whole-number float ids are accepted by the layers).
///
/// # Errors
/// [`Error::Io`] naming the path; [`Error::InvalidFile`] for a bad header, another dtype
/// (named), or a file shorter than its header says; [`Error::Allocation`].
pub fn read_npy_ids(path: impl AsRef<Path>) -> Result<Tensor> {
    let path = path.as_ref();
    let source = path.display().to_string();
    let file = File::open(path).map_err(|e| Error::io(path, "cannot open", &e))?;
    let size = file
        .metadata()
        .map_err(|e| Error::io(path, "cannot read the size", &e))?
        .len();
    let mut reader = BufReader::new(file);
    let (header, offset) = read_header(&mut reader, &source)?;
    let available = size.saturating_sub(offset);
    let Dtype::Int {
        size,
        signed,
        little,
    } = header.dtype
    else {
        return read_data(&mut reader, &header, available, &source).map(Tensor::from);
    };
    let bytes = read_raw(&mut reader, &header, available, &source)?;
    let shape = &header.shape;
    let fortran = header.fortran_order;
    let fail = |e: ndarray::ShapeError| {
        Error::invalid_file(
            &source,
            format!("the data does not fit the shape {}: {e}", Dims(shape)),
        )
    };
    macro_rules! ints {
        ($t:ty) => {{
            let values: Vec<$t> = bytes
                .chunks_exact(size)
                .map(|chunk| {
                    let array = chunk.try_into().unwrap_or_default();
                    if little {
                        <$t>::from_le_bytes(array)
                    } else {
                        <$t>::from_be_bytes(array)
                    }
                })
                .collect();
            let array = if fortran {
                ArrayD::from_shape_vec(IxDyn(shape).f(), values)
                    .map(|a| a.as_standard_layout().into_owned())
            } else {
                ArrayD::from_shape_vec(IxDyn(shape), values)
            };
            Tensor::from(array.map_err(fail)?)
        }};
    }
    Ok(match (size, signed) {
        (1, true) => ints!(i8),
        (2, true) => ints!(i16),
        (4, true) => ints!(i32),
        (8, true) => ints!(i64),
        (1, false) => ints!(u8),
        (2, false) => ints!(u16),
        (4, false) => ints!(u32),
        _ => ints!(u64),
    })
}

/// Maps a 2-D little-endian float32 `.npy` file without reading it: O(1) time and no copy,
/// whatever the table's size. The result feeds [`Embedding::from_mapped`](crate::layers::Embedding::from_mapped).
///
/// The header is checked as strictly as by [`read_npy`], but the values are not checked (that
/// would read the whole file): a table with NaN maps fine and will be refused by
/// `save_weights`.
///
/// The file must not be modified or truncated while the table is in use: the map would see
/// the new bytes, and reading a truncated page ends the process with SIGBUS (as with any
/// memory-mapped file). Copy it into memory with `Embedding::make_owned` if that cannot be
/// promised.
///
/// # Errors
/// [`Error::Io`] naming the path; [`Error::InvalidFile`] for a bad header, a dtype other than
/// little-endian float32, a Fortran-ordered array, a rank other than 2, or a file shorter than
/// its header says.
#[cfg(feature = "mmap")]
pub fn map_npy(path: impl AsRef<Path>) -> Result<crate::storage::MappedTable> {
    map_table(
        path.as_ref(),
        |dtype| dtype == Dtype::F32 { little: true },
        "little-endian float32 ('<f4')",
        "read it with read_npy",
    )
}

/// Maps a 2-D `.npy` file of int8 codes (`|i1`, C order, shape `(input_dim, output_dim)`)
/// without reading it: O(1) time and no copy, whatever its size. With the per-row scales
/// ([`read_npy_scales`]) it feeds
/// [`Embedding::from_mapped_quantized`](crate::layers::Embedding::from_mapped_quantized),
/// whose lookups decode only the rows they gather. [`write_quantized_npy`] writes such files
/// from a layer quantized with `quantize("int8")` (they are the layer's `embeddings` and
/// `embeddings_scale` variables, as `np.save` writes them). Packed int4 codes (shape
/// `(input_dim, ceil(output_dim / 2))`) map the same way and go, with their other variables,
/// to [`Embedding::from_mapped_quantized_with`](crate::layers::Embedding::from_mapped_quantized_with).
///
/// The header is checked as strictly as by [`read_npy`]; every byte is a valid int8 code,
/// so there are no values to check. The file must not be modified or truncated while the
/// table is in use (see [`map_npy`]).
///
/// ```
/// use ndarray::array;
/// use ndkeras::io::npy;
/// use ndkeras::prelude::*;
/// use ndkeras::quantization::QuantizationMode;
///
/// let dir = std::env::temp_dir().join(format!("ndkeras-codes-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let (codes, scales) = (dir.join("codes.npy"), dir.join("scales.npy"));
///
/// let mut layer = Embedding::from_table(array![[0.5f32, -1.0], [0.25, 0.0], [2.0, 1.0]]);
/// layer.apply(&Tensor::from(vec![0i64]))?; // builds it
/// layer.quantize("int8")?;
/// npy::write_quantized_npy(&layer, &codes, &scales)?;
///
/// let table = npy::map_npy_codes(&codes)?;
/// let scales = npy::read_npy_scales(&scales, table.rows())?;
/// let mut mapped = Embedding::from_mapped_quantized(table, scales, QuantizationMode::Int8)?;
/// let ids = Tensor::from(array![[2i64, 0]]);
/// assert_eq!(mapped.apply(&ids)?, layer.apply(&ids)?); // bit for bit
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), ndkeras::Error>(())
/// ```
///
/// # Errors
/// [`Error::Io`] naming the path; [`Error::InvalidFile`] naming the path for a bad header, a
/// dtype other than int8, a Fortran-ordered array, a rank other than 2, or a file shorter than
/// its header says.
#[cfg(feature = "mmap")]
pub fn map_npy_codes(path: impl AsRef<Path>) -> Result<crate::storage::MappedTable<i8>> {
    map_table(
        path.as_ref(),
        |dtype| {
            matches!(
                dtype,
                Dtype::Int {
                    size: 1,
                    signed: true,
                    ..
                }
            )
        },
        "int8 ('|i1')",
        "a float32 table is mapped with map_npy, or read with read_npy and quantized in memory",
    )
}

/// Maps a 2-D little-endian float16 `.npy` file (`<f2`, C order) without reading it: O(1)
/// time and no copy. It feeds
/// [`Embedding::from_mapped_half`](crate::layers::Embedding::from_mapped_half), whose lookups
/// widen only the rows they gather to float32 (exactly).
///
/// As with [`map_npy`], the values are not read, so they are not checked: an infinity or NaN
/// in the file comes out of lookups. The file must not be modified while the table is in use.
///
/// # Errors
/// Those of [`map_npy`], for a dtype other than little-endian float16.
#[cfg(feature = "mmap")]
pub fn map_npy_half(path: impl AsRef<Path>) -> Result<crate::storage::MappedTable<u16>> {
    map_table(
        path.as_ref(),
        |dtype| dtype == Dtype::F16 { little: true },
        "little-endian float16 ('<f2')",
        "read it with read_npy",
    )
}

/// Checks the header of an `.npy` file to map (a dtype `accept`s, `wanted` in words; C
/// order; 2-D) and maps its data.
#[cfg(feature = "mmap")]
fn map_table<T: crate::storage::MappedElement>(
    path: &Path,
    accept: impl Fn(Dtype) -> bool,
    wanted: &str,
    otherwise: &str,
) -> Result<crate::storage::MappedTable<T>> {
    let source = path.display().to_string();
    let file = File::open(path).map_err(|e| Error::io(path, "cannot open", &e))?;
    let mut reader = BufReader::new(file);
    let (header, offset) = read_header(&mut reader, &source)?;
    if !accept(header.dtype) || header.fortran_order {
        let order = if header.fortran_order { "Fortran" } else { "C" };
        let endian = match header.dtype {
            Dtype::F32 { little: false } | Dtype::F16 { little: false } => "big-endian ",
            _ => "",
        };
        return Err(Error::invalid_file(
            &source,
            format!(
                "only {wanted} arrays in C order can be mapped, the file holds {endian}{} in {order} order: {otherwise}",
                header.dtype.name()
            ),
        ));
    }
    let [rows, cols] = header.shape[..] else {
        return Err(Error::invalid_file(
            &source,
            format!(
                "a table must have 2 dimensions (input_dim, output_dim), the file holds shape {}",
                Dims(&header.shape)
            ),
        ));
    };
    let offset = usize::try_from(offset)
        .map_err(|_| Error::invalid_file(&source, "the header is too large to map"))?;
    crate::storage::MappedTable::map(path, offset, rows, cols)
}

/// Reads the per-row scales of an int8 table (`embeddings_scale`, a 1-D `.npy` of `rows`
/// float32 values) into memory, checked: each must be finite and positive, and every code
/// divided by it finite (as the scales `quantize("int8")` computes). They go with the codes
/// of [`map_npy_codes`] (pass its `rows()`).
///
/// # Errors
/// Those of [`read_npy`]; [`Error::InvalidFile`] naming the file when the array is not 1-D,
/// when its length is not `rows`, or for the first bad scale (its position and value).
pub fn read_npy_scales(path: impl AsRef<Path>, rows: usize) -> Result<ndarray::Array1<f32>> {
    let path = path.as_ref();
    let source = path.display().to_string();
    let array = read_npy(path)?;
    let shape = array.shape().to_vec();
    let scales: ndarray::Array1<f32> = array.into_dimensionality().map_err(|_| {
        Error::invalid_file(
            &source,
            format!(
                "the scales have shape {}: expected one scale per row of the table, shape ({rows},)",
                Dims(&shape)
            ),
        )
    })?;
    if scales.len() != rows {
        return Err(Error::invalid_file(
            &source,
            format!(
                "{} scales for a table of {rows} rows: expected one scale per row, shape ({rows},)",
                scales.len()
            ),
        ));
    }
    // `read_npy` gives standard layout.
    let flat = scales.as_slice().unwrap_or_default();
    if let Some((k, scale)) = crate::quantization::first_bad_int8_scale(flat) {
        return Err(Error::invalid_file(
            &source,
            format!(
                "scale [{k}] is {scale:?}: expected {}",
                crate::quantization::INT8_SCALES_EXPECTED
            ),
        ));
    }
    Ok(scales)
}

/// Writes the variables of an int8-quantized [`Embedding`](crate::layers::Embedding)
/// (`quantize("int8")`) as two `.npy` files: its codes (`embeddings`, `|i1`,
/// `(input_dim, output_dim)`) and its per-row scales (`embeddings_scale`, `<f4`,
/// `(input_dim,)`), as `np.save` writes them. [`map_npy_codes`] and [`read_npy_scales`]
/// read them back (see the example there); NumPy reads them as Keras' variables.
///
/// Each file is replaced atomically (see [saving](crate::io#saving)), and both are written
/// and flushed to disk before either is replaced, so a failed save leaves both files as they
/// were. The one exception is a failure in the instant after the codes file was renamed (to
/// flush its folder, or to rename the scales file); its error says so.
///
/// # Errors
/// [`Error::InvalidArgument`] for a layer that is not built, not int8-quantized, or has LoRA
/// enabled (its effective table is not the codes: save it with `save_own_variables`), or
/// the same path for both files; those of [`write_npy_typed`].
pub fn write_quantized_npy(
    layer: &crate::layers::Embedding,
    codes_path: impl AsRef<Path>,
    scales_path: impl AsRef<Path>,
) -> Result<()> {
    use crate::layer::Layer;
    use crate::weight::WeightValues;
    let refuse = |value: &str, expected: &str| {
        Error::invalid_argument(
            format!("write_quantized_npy: layer \"{}\"", layer.name()),
            "layer",
            value,
            expected,
        )
    };
    if layer.quantization_mode() != Some(crate::quantization::QuantizationMode::Int8) {
        let mode = layer
            .quantization_mode()
            .map_or_else(|| "not quantized".to_string(), |m| m.policy_mode());
        return Err(refuse(
            &mode,
            "a built layer quantized with quantize(\"int8\") (int4 codes: write them with `write_npy_typed` and map them with `Embedding::from_mapped_quantized_with`)",
        ));
    }
    if layer.lora_enabled() {
        return Err(refuse(
            "LoRA enabled",
            "an int8 layer without LoRA (its effective table is not its codes: use save_own_variables)",
        ));
    }
    let variables = layer.variables();
    let find = |name: &str| variables.iter().find(|w| w.name() == name);
    let (Some(codes), Some(scales)) = (find("embeddings"), find("embeddings_scale")) else {
        return Err(refuse(
            "not built",
            "a built layer quantized with quantize(\"int8\")",
        ));
    };
    let (WeightValues::Int8(codes), WeightValues::Float32(scales)) =
        (codes.values(), scales.values())
    else {
        return Err(refuse(
            "variables of other types",
            "int8 codes and float32 scales",
        ));
    };
    let (codes_path, scales_path) = (codes_path.as_ref(), scales_path.as_ref());
    if super::same_target(codes_path, scales_path) {
        return Err(Error::invalid_argument(
            "write_quantized_npy",
            "scales_path",
            scales_path.display(),
            "a path other than codes_path (the codes and the scales are two files)",
        ));
    }
    let (codes, scales) = (NpyView::Int8(codes), NpyView::Float32(scales));
    scales.check_finite(
        &format!("write_quantized_npy {}", scales_path.display()),
        "embeddings_scale",
    )?;
    // Both files are written and flushed before either replaces its target: a failure
    // while writing (a full disk, a folder that is missing) leaves both as they were.
    let staged_codes = super::stage(codes_path, |w| write_npy_to(w, &codes, codes_path))?;
    let staged_scales = super::stage(scales_path, |w| write_npy_to(w, &scales, scales_path))?;
    staged_codes.commit()?;
    staged_scales.commit().map_err(|e| match e {
        Error::Io { path, message } => Error::Io {
            path,
            message: format!(
                "{message} (the codes file \"{}\" was already replaced: save both again)",
                codes_path.display()
            ),
        },
        other => other,
    })
}

/// The first element of `array` (in logical order) that is not finite, as an error naming
/// `what` and its position.
fn check_finite(array: &ArrayViewD<'_, f32>, owner: &str, what: &str) -> Result<()> {
    let Some((flat, value)) = array.iter().enumerate().find(|(_, v)| !v.is_finite()) else {
        return Ok(());
    };
    let index = crate::tensor::unravel(flat, array.shape());
    Err(Error::invalid_argument(
        owner,
        what,
        format!("{value:?} at {}", format_position(&index)),
        format!("{FINITE}, so that what ndkeras writes it can read back"),
    ))
}

/// Writes the `.npy` bytes of `array` (little-endian, C order; version 1.0, or 2.0 when the
/// header does not fit in 1.0).
fn write_npy_to(writer: &mut impl Write, array: &NpyView<'_>, path: &Path) -> Result<()> {
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
        array.descr(),
        Dims(array.shape())
    );
    let (version, len_size) = if MAGIC.len() + 2 + 2 + header.len() + 64 <= usize::from(u16::MAX) {
        (1u8, 2)
    } else {
        (2u8, 4)
    };
    // Pad so that the data starts on a 64-byte boundary, as NumPy does.
    let unpadded = MAGIC.len() + 2 + len_size + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let too_long =
        || Error::invalid_file(path.display(), "the shape is too long for an .npy header");
    write_all(writer, MAGIC, path)?;
    write_all(writer, &[version, 0], path)?;
    if version == 1 {
        let len = u16::try_from(header.len()).map_err(|_| too_long())?;
        write_all(writer, &len.to_le_bytes(), path)?;
    } else {
        let len = u32::try_from(header.len()).map_err(|_| too_long())?;
        write_all(writer, &len.to_le_bytes(), path)?;
    }
    write_all(writer, header.as_bytes(), path)?;
    match array {
        NpyView::Float32(a) => {
            write_elements(writer, a.iter(), |v, b| b.extend(v.to_le_bytes()), path)
        }
        NpyView::Int8(a) => write_elements(writer, a.iter(), |v, b| b.push(*v as u8), path),
        NpyView::Float16(a) => {
            write_elements(writer, a.iter(), |v, b| b.extend(v.to_le_bytes()), path)
        }
    }
}

/// Writes `values` in chunks, in logical order, without a copy of the whole array.
fn write_elements<'a, T: 'a>(
    writer: &mut impl Write,
    values: impl Iterator<Item = &'a T>,
    encode: impl Fn(&T, &mut Vec<u8>),
    path: &Path,
) -> Result<()> {
    let mut buffer = Vec::with_capacity(1 << 16);
    let mut values = values.peekable();
    while values.peek().is_some() {
        buffer.clear();
        for v in values.by_ref().take(1 << 14) {
            encode(v, &mut buffer);
        }
        write_all(writer, &buffer, path)?;
    }
    Ok(())
}

/// Writes `array` as an `.npy` file that `np.load` reads, atomically.
///
/// # Errors
/// [`Error::InvalidArgument`] naming the position of the first NaN or infinite value (checked
/// before the file is touched); [`Error::Io`] naming the path.
pub fn write_npy(path: impl AsRef<Path>, array: &ArrayViewD<'_, f32>) -> Result<()> {
    write_npy_typed(path, &NpyView::Float32(array.view()))
}

/// Writes `array` in its own type (`<f4`, `|i1` or `<f2`) as an `.npy` file, atomically.
///
/// # Errors
/// Those of [`write_npy`].
pub fn write_npy_typed(path: impl AsRef<Path>, array: &NpyView<'_>) -> Result<()> {
    let path = path.as_ref();
    array.check_finite(&format!("write_npy {}", path.display()), "array")?;
    write_atomically(path, |w| write_npy_to(w, array, path))
}

/// Reads every array of an `.npz` archive (`np.savez` or `np.savez_compressed`), in archive
/// order, with the `.npy` suffix removed from the names.
///
/// Each entry's declared size must agree with its `.npy` header, and nothing larger than
/// what the archive can justify is allocated or inflated (see the [module docs](self)).
///
/// # Errors
/// [`Error::Io`] naming the path; [`Error::InvalidFile`] naming the entry for a bad or
/// truncated archive (as left by an interrupted save), an entry whose sizes disagree or
/// exceed what the archive holds, an entry that inflates beyond its header's size, a bad
/// array, or a value that is not a finite float32 (named with its position);
/// [`Error::Allocation`] when the arrays do not fit in memory.
pub fn read_npz(path: impl AsRef<Path>) -> Result<Vec<(String, ArrayD<f32>)>> {
    let path = path.as_ref();
    let (file, size) = open_archive(path)?;
    read_npz_from(
        file,
        size,
        &path.display().to_string(),
        |mut reader, header, available, source| read_data(&mut reader, header, available, source),
    )
}

/// [`read_npz`] from bytes in memory.
///
/// # Errors
/// Those of [`read_npz`].
pub fn read_npz_bytes(bytes: &[u8]) -> Result<Vec<(String, ArrayD<f32>)>> {
    read_npz_from(
        Cursor::new(bytes),
        bytes.len() as u64,
        "<bytes>",
        |mut reader, header, available, source| read_data(&mut reader, header, available, source),
    )
}

/// Reads every array of an `.npz` archive in the type each entry stores it: int8 (`|i1`)
/// and float16 (`<f2`) as they are, float32 (and float64, rounded to float32) as
/// [`read_npz`] reads them. This is how `load_weights` reads the codes of a quantized table
/// and a half-precision table bit-exactly.
///
/// # Errors
/// Those of [`read_npz`]; [`Error::InvalidFile`] naming the entry for another integer type,
/// and for a float16 NaN or infinity (naming its position).
pub fn read_npz_typed(path: impl AsRef<Path>) -> Result<Vec<(String, NpyArray)>> {
    let path = path.as_ref();
    let (file, size) = open_archive(path)?;
    read_npz_from(
        file,
        size,
        &path.display().to_string(),
        |mut reader, header, available, source| read_typed(&mut reader, header, available, source),
    )
}

/// An `.npz` file opened for reading, with its size (which bounds what its entries may
/// claim).
fn open_archive(path: &Path) -> Result<(BufReader<File>, u64)> {
    let file = File::open(path).map_err(|e| Error::io(path, "cannot open", &e))?;
    let size = file
        .metadata()
        .map_err(|e| Error::io(path, "cannot read the size", &e))?
        .len();
    Ok((BufReader::new(file), size))
}

/// How the data after an entry's header is read: [`read_data`] or [`read_typed`].
type Decoder<T> = fn(&mut dyn Read, &Header, u64, &str) -> Result<T>;

/// Reads every entry of an archive with `decode` (the data after each entry's header).
fn read_npz_from<T, R: Read + Seek>(
    reader: R,
    archive_size: u64,
    source: &str,
    decode: Decoder<T>,
) -> Result<Vec<(String, T)>> {
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| {
        Error::invalid_file(
            source,
            format!("not a readable .npz (zip) archive, or a truncated one: {e}"),
        )
    })?;
    let mut arrays = Vec::new();
    arrays
        .try_reserve_exact(archive.len())
        .map_err(|_| Error::Allocation {
            context: format!("{source}: the list of {} entries", archive.len()),
            bytes: archive.len().saturating_mul(size_of::<(String, T)>()),
        })?;
    // Honest entries do not overlap, so together they hold at most the archive's size.
    let mut claimed: u64 = 0;
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| Error::invalid_file(source, format!("entry {index}: {e}")))?;
        let name = entry
            .name()
            .map_err(|e| {
                Error::invalid_file(
                    source,
                    format!("entry {index}: the name is not readable: {e}"),
                )
            })?
            .to_string();
        let place = format!("{source}: entry '{name}'");
        claimed = claimed.saturating_add(entry.compressed_size());
        if claimed > archive_size {
            return Err(Error::invalid_file(
                &place,
                format!(
                    "the entries up to this one claim {claimed} compressed bytes, more than the archive's {archive_size}: overlapping or lying entries"
                ),
            ));
        }
        let array = read_entry(&mut entry, &place, decode)?;
        arrays.push((
            name.strip_suffix(".npy").unwrap_or(&name).to_string(),
            array,
        ));
    }
    Ok(arrays)
}

/// Reads one archive entry after checking every size it claims against its `.npy` header
/// and against what its compressed bytes can hold; inflates at most that much, plus one
/// probe byte.
fn read_entry<T, R: Read>(
    entry: &mut zip::read::ZipFile<'_, R>,
    place: &str,
    decode: Decoder<T>,
) -> Result<T> {
    let justified = match entry.compression() {
        zip::CompressionMethod::Stored if entry.size() != entry.compressed_size() => {
            return Err(Error::invalid_file(
                place,
                format!(
                    "a stored entry whose sizes disagree: {} bytes uncompressed, {} stored",
                    entry.size(),
                    entry.compressed_size()
                ),
            ));
        }
        zip::CompressionMethod::Stored => entry.compressed_size(),
        // Deflate expands at most ~1032-fold.
        _ => entry.compressed_size().saturating_mul(MAX_DEFLATE_RATIO),
    };
    if entry.size() > justified {
        return Err(Error::invalid_file(
            place,
            format!(
                "the entry claims {} bytes uncompressed, more than its {} compressed bytes can hold",
                entry.size(),
                entry.compressed_size()
            ),
        ));
    }
    let (header, offset) = read_header(entry, place)?;
    let data_len = header.data_len(place)?;
    let expected = offset.saturating_add(data_len as u64);
    if entry.size() != expected {
        return Err(Error::invalid_file(
            place,
            format!(
                "the entry's size ({} bytes) does not agree with its .npy header: {offset} header bytes and shape {} of {} ({data_len} bytes) make {expected}",
                entry.size(),
                Dims(&header.shape),
                header.dtype.name()
            ),
        ));
    }
    let array = decode(entry, &header, data_len as u64, place)?;
    // Nothing may follow the data. Reading the end lets the archive check the CRC; a
    // decoder that still yields bytes is a lying entry, not read any further.
    let mut probe = [0u8; 1];
    let beyond = format!("holds more than the {expected} bytes its .npy header gives");
    match entry.read(&mut probe) {
        Ok(0) => {}
        Ok(_) => return Err(Error::invalid_file(place, format!("the entry {beyond}"))),
        Err(e) => {
            return Err(Error::invalid_file(
                place,
                format!("the entry is corrupted, or {beyond}: {e}"),
            ));
        }
    }
    Ok(array)
}

/// Writes `arrays` as an `.npz` archive (uncompressed, as `np.savez`), atomically; each
/// name gets the `.npy` suffix NumPy expects.
///
/// # Errors
/// [`Error::InvalidArgument`] for a duplicate name, or naming the array and position of the
/// first NaN or infinite value (both checked before the file is touched); [`Error::Io`]
/// naming the path.
pub fn write_npz(path: impl AsRef<Path>, arrays: &[(String, ArrayViewD<'_, f32>)]) -> Result<()> {
    let typed: Vec<(&str, NpyView<'_>)> = arrays
        .iter()
        .map(|(name, array)| (name.as_str(), NpyView::Float32(array.view())))
        .collect();
    write_npz_entries(path.as_ref(), &typed)
}

/// [`write_npz`] with each array in its own type: float32 as `<f4`, int8 as `|i1`, float16
/// as `<f2` (`np.load` reads them back in those types).
///
/// # Errors
/// Those of [`write_npz`] (a float16 NaN or infinity too).
pub fn write_npz_typed(path: impl AsRef<Path>, arrays: &[(String, NpyView<'_>)]) -> Result<()> {
    let typed: Vec<(&str, NpyView<'_>)> = arrays
        .iter()
        .map(|(name, array)| (name.as_str(), array.clone()))
        .collect();
    write_npz_entries(path.as_ref(), &typed)
}

fn write_npz_entries(path: &Path, arrays: &[(&str, NpyView<'_>)]) -> Result<()> {
    for (i, (name, array)) in arrays.iter().enumerate() {
        if arrays[..i].iter().any(|(other, _)| other == name) {
            return Err(Error::invalid_argument(
                "write_npz",
                "arrays",
                name,
                "distinct names",
            ));
        }
        array.check_finite(
            &format!("write_npz {}", path.display()),
            &format!("array '{name}'"),
        )?;
    }
    write_atomically(path, |writer| {
        let mut zip = zip::ZipWriter::new_stream(writer);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(true);
        for (name, array) in arrays {
            zip.start_file(format!("{name}.npy"), options)
                .map_err(|e| Error::Io {
                    path: path.display().to_string(),
                    message: format!("cannot add {name}: {e}"),
                })?;
            write_npy_to(&mut zip, array, path)?;
        }
        zip.finish().map_err(|e| Error::Io {
            path: path.display().to_string(),
            message: format!("cannot finish the archive: {e}"),
        })?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> std::result::Result<Header, String> {
        parse_header(text, true)
    }

    #[test]
    fn headers_as_numpy_writes_them_parse() {
        let h = parse("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }").unwrap();
        assert_eq!(
            h,
            Header {
                dtype: Dtype::F32 { little: true },
                fortran_order: false,
                shape: vec![3, 2]
            }
        );
        let h = parse("{'descr': '>f8', 'fortran_order': True, 'shape': (6,), }").unwrap();
        assert_eq!(h.shape, vec![6]);
        assert!(h.fortran_order);
        assert_eq!(
            parse("{'descr': '<f4', 'fortran_order': False, 'shape': (), }  \n")
                .unwrap()
                .shape,
            Vec::<usize>::new()
        );
        // Other key orders, double quotes, no trailing comma, newlines, Python 2's longs.
        let h =
            parse("{\"shape\": (3L, 2L,),\n \"fortran_order\":True,\"descr\":\"|f4\"}").unwrap();
        assert_eq!(h.shape, vec![3, 2]);
        assert!(
            parse_header(
                "{'descr': '<f4', 'fortran_order': False, 'shape': (3L,)}",
                false
            )
            .is_err()
        );
    }

    #[test]
    fn other_dtypes_are_named() {
        let err = parse("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }").unwrap_err();
        assert!(err.contains("complex64") && err.contains("'<c8'"), "{err}");
        let err = parse("{'descr': 'éf4', 'fortran_order': False, 'shape': (2,), }").unwrap_err();
        assert!(err.contains("'éf4'"), "{err}");
    }

    #[test]
    fn long_shapes_are_written_in_version_2() {
        let array = ArrayD::from_elem(vec![1; 25_000], 2.5f32);
        let mut bytes = Vec::new();
        write_npy_to(
            &mut bytes,
            &NpyView::Float32(array.view()),
            Path::new("x.npy"),
        )
        .unwrap();
        assert_eq!(&bytes[6..8], &[2, 0]);
        let header_len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        assert_eq!((12 + header_len) % 64, 0);
        assert_eq!(read_npy_bytes(&bytes).unwrap(), array);
    }

    #[test]
    fn positions_follow_the_file_order() {
        let mut header = Header {
            dtype: Dtype::F32 { little: true },
            fortran_order: false,
            shape: vec![3, 2],
        };
        assert_eq!(header.position(5), "[2, 1]");
        assert_eq!(header.position(1), "[0, 1]");
        header.fortran_order = true;
        assert_eq!(header.position(1), "[1, 0]");
        header.shape.clear();
        assert_eq!(header.position(0), "[]");
    }
}
