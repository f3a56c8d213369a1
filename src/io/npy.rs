//! NumPy `.npy` and `.npz` files, as `np.save`, `np.savez` and `np.savez_compressed` write
//! them: the format of `layer.get_weights()[0]` exported from Keras.
//!
//! # Dtypes
//! `float32` (`<f4`, `>f4`) is read exactly. `float64` (`<f8`, `>f8`) is rounded to the
//! nearest `float32`, which is what Keras does when it assigns a float64 array to its float32
//! variable. Any other dtype is an error naming it. Fortran-ordered arrays are read into
//! standard (row-major) layout. Writers produce version 1.0 files of little-endian `float32`.
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
use crate::io::{write_all, write_atomically};

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Headers larger than this are refused before they are read.
const MAX_HEADER: usize = 1 << 20;
/// The most a deflated zip entry can expand (deflate's limit is about 1032:1).
const MAX_DEFLATE_RATIO: u64 = 1100;

/// The element type of an `.npy` file that ndkeras can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    F32 { little: bool },
    F64 { little: bool },
}

impl Dtype {
    fn size(self) -> usize {
        match self {
            Dtype::F32 { .. } => 4,
            Dtype::F64 { .. } => 8,
        }
    }

    /// Parses a NumPy `descr` such as `<f4`.
    fn parse(descr: &str) -> std::result::Result<Dtype, String> {
        let (order, kind) = descr.split_at(descr.len().min(1));
        let little = match order {
            "<" => true,
            ">" => false,
            "=" | "|" => cfg!(target_endian = "little"),
            _ => return Err(describe(descr)),
        };
        match kind {
            "f4" => Ok(Dtype::F32 { little }),
            "f8" => Ok(Dtype::F64 { little }),
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
        "dtype '{descr}' ({name}) is not supported: expected float32 ('<f4'), or float64 ('<f8', rounded to the nearest float32)"
    )
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
}

/// Reads the magic, version and header dictionary.
fn read_header(reader: &mut impl Read, source: &str) -> Result<Header> {
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
    let header_len = match preamble[6] {
        1 => {
            let mut len = [0u8; 2];
            reader
                .read_exact(&mut len)
                .map_err(|_| truncated(source, "header length"))?;
            usize::from(u16::from_le_bytes(len))
        }
        2 | 3 => {
            let mut len = [0u8; 4];
            reader
                .read_exact(&mut len)
                .map_err(|_| truncated(source, "header length"))?;
            u32::from_le_bytes(len) as usize
        }
        version => {
            return Err(Error::invalid_file(
                source,
                format!(
                    "unsupported .npy format version {version}.{}: expected 1.0, 2.0 or 3.0",
                    preamble[7]
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
    let mut text = vec![0u8; header_len];
    reader
        .read_exact(&mut text)
        .map_err(|_| truncated(source, "header"))?;
    let text = String::from_utf8(text)
        .map_err(|_| Error::invalid_file(source, "the header is not valid text"))?;
    parse_header(&text).map_err(|message| {
        Error::invalid_file(
            source,
            format!("bad header {:?}: {message}", text.trim_end()),
        )
    })
}

fn truncated(source: &str, part: &str) -> Error {
    Error::invalid_file(source, format!("the file ends inside its {part}"))
}

/// Parses `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }`.
fn parse_header(text: &str) -> std::result::Result<Header, String> {
    let body = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.trim_end().strip_suffix('}'))
        .ok_or("expected a {...} dictionary")?;
    let value_of = |key: &str| -> std::result::Result<&str, String> {
        let at = ["'", "\""]
            .iter()
            .find_map(|q| {
                body.find(&format!("{q}{key}{q}"))
                    .map(|i| i + key.len() + 2)
            })
            .ok_or_else(|| format!("the key '{key}' is missing"))?;
        let rest = body[at..]
            .trim_start()
            .strip_prefix(':')
            .ok_or_else(|| format!("':' expected after '{key}'"))?;
        Ok(rest.trim_start())
    };
    let descr = value_of("descr")?;
    let quote = descr
        .chars()
        .next()
        .filter(|c| *c == '\'' || *c == '"')
        .ok_or("descr must be a string (structured dtypes are not supported)")?;
    let descr = &descr[1..descr[1..]
        .find(quote)
        .map(|i| i + 1)
        .ok_or("unterminated descr string")?];
    let dtype = Dtype::parse(descr)?;
    let fortran = value_of("fortran_order")?;
    let fortran_order = if fortran.starts_with("True") {
        true
    } else if fortran.starts_with("False") {
        false
    } else {
        return Err("fortran_order must be True or False".into());
    };
    let shape = value_of("shape")?;
    let inside = shape
        .strip_prefix('(')
        .and_then(|s| s.split_once(')'))
        .map(|(inside, _)| inside)
        .ok_or("shape must be a tuple")?;
    let shape = inside
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|d| {
            d.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| format!("shape entry '{d}' is not a length"))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Header {
        dtype,
        fortran_order,
        shape,
    })
}

/// Reads the data after a header; `available` bounds what the source can hold, so a header
/// that claims more is an error before anything is allocated.
fn read_data(
    reader: &mut impl Read,
    header: &Header,
    available: Option<u64>,
    source: &str,
) -> Result<ArrayD<f32>> {
    let data_len = header.data_len(source)?;
    if let Some(available) = available
        && (data_len as u64) > available
    {
        return Err(Error::invalid_file(
            source,
            format!(
                "the file is shorter than its header says: shape {} of {} needs {data_len} bytes of data, {available} are there",
                Dims(&header.shape),
                match header.dtype {
                    Dtype::F32 { .. } => "float32",
                    Dtype::F64 { .. } => "float64",
                }
            ),
        ));
    }
    let count = data_len / header.dtype.size();
    let mut values: Vec<f32> = Vec::new();
    values
        .try_reserve_exact(count)
        .map_err(|_| Error::Allocation {
            context: source.to_string(),
            bytes: count * 4,
        })?;
    let mut chunk = vec![0u8; (1 << 16) * header.dtype.size()];
    let mut remaining = data_len;
    while remaining > 0 {
        let take = remaining.min(chunk.len());
        reader
            .read_exact(&mut chunk[..take])
            .map_err(|_| truncated(source, "data"))?;
        match header.dtype {
            Dtype::F32 { little } => values.extend(chunk[..take].chunks_exact(4).map(|b| {
                let bytes = [b[0], b[1], b[2], b[3]];
                if little {
                    f32::from_le_bytes(bytes)
                } else {
                    f32::from_be_bytes(bytes)
                }
            })),
            Dtype::F64 { little } => values.extend(chunk[..take].chunks_exact(8).map(|b| {
                let bytes = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
                (if little {
                    f64::from_le_bytes(bytes)
                } else {
                    f64::from_be_bytes(bytes)
                }) as f32
            })),
        }
        remaining -= take;
    }
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

/// Reads one array from `.npy` bytes (e.g. an entry of an archive).
///
/// # Errors
/// [`Error::InvalidFile`] for a bad header, an unsupported dtype, or data shorter than the
/// header says.
pub fn read_npy_bytes(bytes: &[u8]) -> Result<ArrayD<f32>> {
    let mut reader = Cursor::new(bytes);
    let header = read_header(&mut reader, "<bytes>")?;
    let available = bytes.len() as u64 - reader.position();
    read_data(&mut reader, &header, Some(available), "<bytes>")
}

/// Reads an `.npy` file as `np.save` writes it.
///
/// # Errors
/// [`Error::Io`] naming the path when the file cannot be read; [`Error::InvalidFile`] for a
/// bad header, an unsupported dtype (named), or a file shorter than its header says.
pub fn read_npy(path: impl AsRef<Path>) -> Result<ArrayD<f32>> {
    let path = path.as_ref();
    let source = path.display().to_string();
    let file = File::open(path).map_err(|e| Error::io(path, "cannot open", &e))?;
    let size = file
        .metadata()
        .map_err(|e| Error::io(path, "cannot read the size", &e))?
        .len();
    let mut reader = BufReader::new(file);
    let header = read_header(&mut reader, &source)?;
    let offset = reader
        .stream_position()
        .map_err(|e| Error::io(path, "cannot read", &e))?;
    read_data(
        &mut reader,
        &header,
        Some(size.saturating_sub(offset)),
        &source,
    )
}

/// Maps a 2-D little-endian float32 `.npy` file without reading it: O(1) time and no copy,
/// whatever the table's size. The result feeds [`Embedding::from_mapped`](crate::layers::Embedding::from_mapped).
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
    let path = path.as_ref();
    let source = path.display().to_string();
    let file = File::open(path).map_err(|e| Error::io(path, "cannot open", &e))?;
    let mut reader = BufReader::new(file);
    let header = read_header(&mut reader, &source)?;
    let offset = reader
        .stream_position()
        .map_err(|e| Error::io(path, "cannot read", &e))? as usize;
    if header.dtype != (Dtype::F32 { little: true }) || header.fortran_order {
        return Err(Error::invalid_file(
            &source,
            "only little-endian float32 ('<f4') arrays in C order can be mapped: read this one with read_npy",
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
    crate::storage::MappedTable::map(path, offset, rows, cols)
}

/// Writes the `.npy` bytes of `array` (version 1.0, little-endian float32, C order).
fn write_npy_to(writer: &mut impl Write, array: &ArrayViewD<'_, f32>, path: &Path) -> Result<()> {
    let shape: Vec<String> = array.shape().iter().map(ToString::to_string).collect();
    let shape = match shape.as_slice() {
        [one] => format!("({one},)"),
        _ => format!("({})", shape.join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Pad so that the data starts on a 64-byte boundary, as NumPy does.
    let unpadded = MAGIC.len() + 2 + 2 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let header_len = u16::try_from(header.len()).map_err(|_| {
        Error::invalid_file(path.display(), "the shape is too long for an .npy header")
    })?;
    write_all(writer, MAGIC, path)?;
    write_all(writer, &[1, 0], path)?;
    write_all(writer, &header_len.to_le_bytes(), path)?;
    write_all(writer, header.as_bytes(), path)?;
    let mut buffer = Vec::with_capacity(1 << 16);
    for chunk in array
        .as_standard_layout()
        .as_slice()
        .unwrap_or_default()
        .chunks(1 << 14)
    {
        buffer.clear();
        for v in chunk {
            buffer.extend_from_slice(&v.to_le_bytes());
        }
        write_all(writer, &buffer, path)?;
    }
    Ok(())
}

/// Writes `array` as an `.npy` file that `np.load` reads, atomically.
///
/// # Errors
/// [`Error::Io`] naming the path.
pub fn write_npy(path: impl AsRef<Path>, array: &ArrayViewD<'_, f32>) -> Result<()> {
    let path = path.as_ref();
    write_atomically(path, |w| write_npy_to(w, array, path))
}

/// Reads every array of an `.npz` archive (`np.savez` or `np.savez_compressed`), in archive
/// order, with the `.npy` suffix removed from the names.
///
/// # Errors
/// [`Error::Io`] naming the path; [`Error::InvalidFile`] naming the entry for a bad or
/// truncated archive (as left by an interrupted save) or a bad array.
pub fn read_npz(path: impl AsRef<Path>) -> Result<Vec<(String, ArrayD<f32>)>> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| Error::io(path, "cannot open", &e))?;
    read_npz_from(BufReader::new(file), &path.display().to_string())
}

/// [`read_npz`] from bytes in memory.
///
/// # Errors
/// Those of [`read_npz`].
pub fn read_npz_bytes(bytes: &[u8]) -> Result<Vec<(String, ArrayD<f32>)>> {
    read_npz_from(Cursor::new(bytes), "<bytes>")
}

fn read_npz_from(reader: impl Read + Seek, source: &str) -> Result<Vec<(String, ArrayD<f32>)>> {
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| {
        Error::invalid_file(
            source,
            format!("not a readable .npz (zip) archive, or a truncated one: {e}"),
        )
    })?;
    let mut arrays = Vec::with_capacity(archive.len().min(1 << 16));
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
        // A stored entry holds at most its compressed size; a deflated one expands at most
        // ~1000-fold: what the file can justify, whatever its headers claim.
        let justified = match entry.compression() {
            zip::CompressionMethod::Stored => entry.compressed_size(),
            _ => entry.compressed_size().saturating_mul(MAX_DEFLATE_RATIO),
        }
        .min(entry.size());
        let header = read_header(&mut entry, &place)?;
        let array = read_data(&mut entry, &header, Some(justified), &place)?;
        // Reading to the end lets the archive check the entry's CRC.
        std::io::copy(&mut entry, &mut std::io::sink())
            .map_err(|e| Error::invalid_file(&place, format!("corrupted entry: {e}")))?;
        arrays.push((
            name.strip_suffix(".npy").unwrap_or(&name).to_string(),
            array,
        ));
    }
    Ok(arrays)
}

/// Writes `arrays` as an `.npz` archive (uncompressed, as `np.savez`), atomically; each
/// name gets the `.npy` suffix NumPy expects.
///
/// # Errors
/// [`Error::Io`] naming the path; [`Error::InvalidArgument`] for a duplicate name.
pub fn write_npz(path: impl AsRef<Path>, arrays: &[(String, ArrayViewD<'_, f32>)]) -> Result<()> {
    let path = path.as_ref();
    for (i, (name, _)) in arrays.iter().enumerate() {
        if arrays[..i].iter().any(|(other, _)| other == name) {
            return Err(Error::invalid_argument(
                "write_npz",
                "arrays",
                name,
                "distinct names",
            ));
        }
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

    #[test]
    fn headers_as_numpy_writes_them_parse() {
        let h =
            parse_header("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }").unwrap();
        assert_eq!(
            h,
            Header {
                dtype: Dtype::F32 { little: true },
                fortran_order: false,
                shape: vec![3, 2]
            }
        );
        let h = parse_header("{'descr': '>f8', 'fortran_order': True, 'shape': (6,), }").unwrap();
        assert_eq!(h.shape, vec![6]);
        assert!(h.fortran_order);
        assert_eq!(
            parse_header("{'descr': '<f4', 'fortran_order': False, 'shape': (), }")
                .unwrap()
                .shape,
            Vec::<usize>::new()
        );
    }

    #[test]
    fn other_dtypes_are_named() {
        let err =
            parse_header("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }").unwrap_err();
        assert!(err.contains("int64") && err.contains("'<i8'"), "{err}");
    }
}
