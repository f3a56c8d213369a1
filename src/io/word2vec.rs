//! word2vec files, text and binary: a `rows dims` header, then one vector per token.
//!
//! The binary layout is the original C tool's (and gensim's): after the header line, each
//! entry is the token's UTF-8 bytes, a space, `dims` little-endian `f32`, and an optional
//! newline.
//!
//! The header is checked before anything is allocated: `dims` between 1 and
//! [`MAX_DIMS`], `rows × dims × 4` bytes computed without
//! overflow, and, when the file's length is known (the functions taking a path), no more rows
//! than the file can hold. See [`word_vectors`](crate::io::word_vectors) for the checks and
//! the finite-values policy every reader applies.
//!
//! A header that counts fewer rows than the file holds is an error naming the file, in both
//! formats: gensim reads the counted rows and silently drops the rest, a silent truncation
//! ndkeras refuses (fix the header, or cut the file to the rows wanted).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::error::{Error, Result};
use crate::io::word_vectors::{
    Collector, FINITE_EXPECTED, MAX_DIMS, MAX_TOKEN_BYTES, ReadOptions, Unit, WordVectors, shown,
};
use crate::io::{write_all, write_atomically};

/// The longest header line accepted, newline included.
const MAX_HEADER_BYTES: usize = 256;

/// How many bytes of floats are read at a time.
const CHUNK_BYTES: usize = 1 << 16;

/// Opens `path`; its length when it is a regular file (a pipe's length says nothing).
fn open(path: &Path) -> Result<(BufReader<File>, Option<u64>)> {
    let file = File::open(path).map_err(|e| Error::io(path, "cannot open", &e))?;
    let metadata = file
        .metadata()
        .map_err(|e| Error::io(path, "cannot read the size", &e))?;
    let size = metadata.is_file().then_some(metadata.len());
    Ok((BufReader::new(file), size))
}

fn io_error(source: &str, doing: String, e: &std::io::Error) -> Error {
    Error::Io {
        path: source.to_string(),
        message: format!("{doing}: {e}"),
    }
}

/// The `rows dims` header, checked.
struct Header {
    rows: usize,
    dims: usize,
    /// Its length in bytes, newline included.
    bytes: u64,
}

/// Reads and checks the `rows dims` header line.
fn read_header(reader: &mut impl BufRead, source: &str) -> Result<Header> {
    let mut header = Vec::new();
    reader
        .by_ref()
        .take(MAX_HEADER_BYTES as u64)
        .read_until(b'\n', &mut header)
        .map_err(|e| io_error(source, "cannot read the header".into(), &e))?;
    let at_line_1 = format!("{source}: line 1");
    if header.len() == MAX_HEADER_BYTES && header.last() != Some(&b'\n') {
        return Err(Error::invalid_file(
            at_line_1,
            format!(
                "the first line is longer than {} bytes: expected a 'rows dims' header",
                MAX_HEADER_BYTES - 1
            ),
        ));
    }
    let text = String::from_utf8_lossy(&header);
    let fields: Vec<&str> = text.split_ascii_whitespace().collect();
    let [rows, dims] = fields.as_slice() else {
        return Err(Error::invalid_file(
            at_line_1,
            format!(
                "expected a 'rows dims' header, found '{}'",
                shown(text.trim())
            ),
        ));
    };
    let (Ok(rows), Ok(dims)) = (rows.parse::<usize>(), dims.parse::<usize>()) else {
        return Err(Error::invalid_file(
            at_line_1,
            format!(
                "the header '{}' is not two counts 'rows dims' (dims > 0)",
                shown(text.trim())
            ),
        ));
    };
    // `0 0` is an empty file, as the writers write one; otherwise vectors have components.
    if (dims == 0 && rows > 0) || dims > MAX_DIMS {
        return Err(Error::invalid_file(
            at_line_1,
            format!(
                "the header claims vectors of {dims} components: expected between 1 and {MAX_DIMS}"
            ),
        ));
    }
    if rows
        .checked_mul(dims)
        .and_then(|n| n.checked_mul(4))
        .is_none()
    {
        return Err(Error::invalid_file(
            at_line_1,
            format!(
                "the header claims {rows} rows of {dims} floats: {rows} × {dims} × 4 bytes overflows, more than any file or memory can hold"
            ),
        ));
    }
    Ok(Header {
        rows,
        dims,
        bytes: header.len() as u64,
    })
}

/// Checks that `rows` entries of at least `entry_bytes` each fit in what follows the header
/// of a `size`-byte file.
fn check_fits(source: &str, header: &Header, size: u64, entry_bytes: u64) -> Result<()> {
    let room = size.saturating_sub(header.bytes);
    let least = entry_bytes.checked_mul(header.rows as u64);
    if least.is_none_or(|least| least > room) {
        return Err(Error::invalid_file(
            source,
            format!(
                "the header claims {} rows of {} floats, more than the {size}-byte file can hold (each row needs at least {entry_bytes} bytes)",
                header.rows, header.dims
            ),
        ));
    }
    Ok(())
}

fn count_mismatch(source: &str, header_rows: usize, found: usize) -> Error {
    Error::invalid_file(
        source,
        format!("the header says {header_rows} rows, the file has {found}"),
    )
}

/// Reads a word2vec text file with the default [`ReadOptions`], checking the header counts and every line (see
/// [`ReadOptions`] for duplicates, UTF-8 and normalization). The header is checked against
/// the file's length: each row needs at least a token byte and two bytes per component.
///
/// # Errors
/// [`Error::Io`] naming the path; [`Error::InvalidFile`] naming the line and what is wrong
/// (including a value that is not a finite `f32`), or the header/row count mismatch;
/// [`Error::Allocation`] when the vectors do not fit in memory.
pub fn read_word2vec_text(path: impl AsRef<Path>) -> Result<WordVectors> {
    read_word2vec_text_with(path, ReadOptions::default())
}

/// [`read_word2vec_text`] with other [`ReadOptions`].
///
/// # Errors
/// Those of [`read_word2vec_text`].
pub fn read_word2vec_text_with(
    path: impl AsRef<Path>,
    options: ReadOptions,
) -> Result<WordVectors> {
    let path = path.as_ref();
    let (reader, size) = open(path)?;
    read_text(reader, size, &path.display().to_string(), options)
}

/// [`read_word2vec_text`] from any reader; `source` names it in errors. The length is not
/// known, so memory grows only as rows arrive.
///
/// # Errors
/// Those of [`read_word2vec_text`].
pub fn read_word2vec_text_from(
    reader: impl Read,
    source: &str,
    options: ReadOptions,
) -> Result<WordVectors> {
    read_text(reader, None, source, options)
}

fn read_text(
    reader: impl Read,
    size: Option<u64>,
    source: &str,
    options: ReadOptions,
) -> Result<WordVectors> {
    let mut reader = BufReader::new(reader);
    let header = read_header(&mut reader, source)?;
    let mut collector = Collector::new(source, options, Some(header.dims), Unit::Line);
    if let Some(size) = size {
        // A token byte, then a separator and a digit per component.
        let least = (header.dims as u64).saturating_mul(2).saturating_add(1);
        check_fits(source, &header, size, least)?;
        // Fewer bytes than the file has (4 per component, at least 2 in the file).
        collector.reserve_exact(header.rows * header.dims)?;
    }
    let entries = collector.read_text_rows(&mut reader, 1, header.rows)?;
    if entries != header.rows {
        return Err(count_mismatch(source, header.rows, entries));
    }
    collector.finish()
}

/// Reads a word2vec binary file with the default [`ReadOptions`]. The header is checked against the file size before
/// anything is allocated, so a header claiming 10^12 rows is an error.
///
/// # Errors
/// Those of [`read_word2vec_text`] (positions are rows, counted from 1), and
/// [`Error::InvalidFile`] for a truncated entry.
pub fn read_word2vec_binary(path: impl AsRef<Path>) -> Result<WordVectors> {
    read_word2vec_binary_with(path, ReadOptions::default())
}

/// [`read_word2vec_binary`] with other [`ReadOptions`].
///
/// # Errors
/// Those of [`read_word2vec_binary`].
pub fn read_word2vec_binary_with(
    path: impl AsRef<Path>,
    options: ReadOptions,
) -> Result<WordVectors> {
    let path = path.as_ref();
    let (reader, size) = open(path)?;
    read_word2vec_binary_from(reader, size, &path.display().to_string(), options)
}

/// [`read_word2vec_binary`] from any reader; `size` (when known) bounds what the header may
/// claim. When it is `None`, memory grows only as rows arrive.
///
/// # Errors
/// Those of [`read_word2vec_binary`].
pub fn read_word2vec_binary_from(
    reader: impl Read,
    size: Option<u64>,
    source: &str,
    options: ReadOptions,
) -> Result<WordVectors> {
    let mut reader = BufReader::new(reader);
    let header = read_header(&mut reader, source)?;
    let Header { rows, dims, .. } = header;
    let mut collector = Collector::new(source, options, Some(dims), Unit::Row);
    if let Some(size) = size {
        // A token byte, a space and the floats (dims <= MAX_DIMS: no overflow).
        check_fits(source, &header, size, dims as u64 * 4 + 2)?;
        collector.reserve_exact(rows * dims)?;
    }
    let mut token = Vec::new();
    // dims <= MAX_DIMS, so this is at most CHUNK_BYTES whatever the header says.
    let mut chunk = vec![0u8; CHUNK_BYTES.min(dims * 4)];
    for row in 1..=rows {
        if !read_token(&mut reader, &mut token, &collector, row)? {
            return Err(count_mismatch(source, rows, row - 1));
        }
        let text = collector.text(&token, row, "the token")?;
        let start = collector.value_count();
        let (mut left, mut column) = (dims * 4, 0usize);
        while left > 0 {
            let bytes = &mut chunk[..left.min(CHUNK_BYTES)];
            reader.read_exact(bytes).map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    collector.error(
                        row,
                        format!(
                            "the vector of '{}' is cut short: expected {dims} floats ({} bytes) after the token, the file ends first",
                            shown(&text),
                            dims * 4
                        ),
                    )
                } else {
                    io_error(source, format!("cannot read row {row}"), &e)
                }
            })?;
            let floats = bytes.as_chunks::<4>().0;
            if let Some((k, bad)) = floats
                .iter()
                .map(|b| f32::from_le_bytes(*b))
                .enumerate()
                .find(|(_, v)| !v.is_finite())
            {
                return Err(collector.error(
                    row,
                    format!(
                        "component {} of '{}' is {bad} (bits 0x{:08x}), not a finite float32: {FINITE_EXPECTED}",
                        column + k + 1,
                        shown(&text),
                        bad.to_bits()
                    ),
                ));
            }
            collector.extend(floats.iter().map(|b| f32::from_le_bytes(*b)))?;
            column += floats.len();
            left -= bytes.len();
        }
        collector.finish_row(text, start, dims, row)?;
    }
    // Anything but whitespace after the last entry means the header undercounts.
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(source, "cannot read past the last row".into(), &e)),
        };
        if available.is_empty() {
            break;
        }
        if available.iter().any(|b| !b.is_ascii_whitespace()) {
            return Err(Error::invalid_file(
                source,
                format!("the header says {rows} rows, but data follows the last one"),
            ));
        }
        let consumed = available.len();
        reader.consume(consumed);
    }
    collector.finish()
}

/// Reads the token of entry `row` up to its space into `token`, skipping the newline that
/// ends the previous entry. `Ok(false)` when the input ends before the token starts.
fn read_token(
    reader: &mut impl BufRead,
    token: &mut Vec<u8>,
    collector: &Collector<'_>,
    row: usize,
) -> Result<bool> {
    token.clear();
    let mut byte = [0u8; 1];
    loop {
        if let Err(e) = reader.read_exact(&mut byte) {
            return if e.kind() != std::io::ErrorKind::UnexpectedEof {
                Err(collector.error(row, format!("cannot read the token: {e}")))
            } else if token.is_empty() {
                Ok(false)
            } else {
                Err(collector.error(
                    row,
                    format!(
                        "the file ends inside the token '{}': expected a space and the vector after it",
                        shown(&String::from_utf8_lossy(token))
                    ),
                ))
            };
        }
        match byte[0] {
            b' ' if !token.is_empty() => return Ok(true),
            b'\n' | b'\r' if token.is_empty() => {}
            b => token.push(b),
        }
        if token.len() > MAX_TOKEN_BYTES {
            return Err(collector.error(
                row,
                format!(
                    "a token longer than {MAX_TOKEN_BYTES} bytes: the file is not word2vec binary"
                ),
            ));
        }
    }
}

/// Writes `vectors` as a word2vec text file (`rows dims` header), atomically; components
/// round-trip exactly. A [`WordVectors`] holds finite values only ([`WordVectors::new`]
/// refuses the others), so every file written reads back.
///
/// # Errors
/// [`Error::Io`] naming the path; [`Error::InvalidArgument`] for a token that is empty or
/// holds a space, tab or newline (it would not read back).
pub fn write_word2vec_text(path: impl AsRef<Path>, vectors: &WordVectors) -> Result<()> {
    let path = path.as_ref();
    vectors.check_text_tokens("write_word2vec_text")?;
    write_atomically(path, |w| {
        write_all(
            w,
            format!("{} {}\n", vectors.len(), vectors.dims()).as_bytes(),
            path,
        )?;
        for i in 0..vectors.len() {
            let mut line = vectors.text_line(i);
            line.push('\n');
            write_all(w, line.as_bytes(), path)?;
        }
        Ok(())
    })
}

/// Writes `vectors` as a word2vec binary file, atomically. A [`WordVectors`] holds finite
/// values only ([`WordVectors::new`] refuses the others), so every file written reads back.
///
/// # Errors
/// [`Error::Io`] naming the path; [`Error::InvalidArgument`] for a token that is empty or
/// holds a space, `\n` or `\r` (it would not read back).
pub fn write_word2vec_binary(path: impl AsRef<Path>, vectors: &WordVectors) -> Result<()> {
    let path = path.as_ref();
    if let Some((row, bad)) = vectors
        .tokens()
        .iter()
        .enumerate()
        .find(|(_, t)| t.is_empty() || t.contains([' ', '\n', '\r']))
    {
        return Err(Error::invalid_argument(
            "write_word2vec_binary",
            "token",
            format!("{:?} (row {row})", shown(bad)),
            "non-empty tokens without spaces or newlines",
        ));
    }
    write_atomically(path, |w| {
        write_all(
            w,
            format!("{} {}\n", vectors.len(), vectors.dims()).as_bytes(),
            path,
        )?;
        for (token, row) in vectors.tokens().iter().zip(vectors.vectors().rows()) {
            let mut entry = Vec::with_capacity(token.len() + 2 + row.len() * 4);
            entry.extend_from_slice(token.as_bytes());
            entry.push(b' ');
            for v in row {
                entry.extend_from_slice(&v.to_le_bytes());
            }
            entry.push(b'\n');
            write_all(w, &entry, path)?;
        }
        Ok(())
    })
}
