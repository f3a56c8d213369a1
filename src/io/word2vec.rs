//! word2vec files, text and binary: a `rows dims` header, then one vector per token.
//!
//! The binary layout is the original C tool's (and gensim's): after the header line, each
//! entry is the token's UTF-8 bytes, a space, `dims` little-endian `f32`, and an optional
//! newline.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::error::{Error, Result};
use crate::io::word_vectors::{Collector, ReadOptions, WordVectors};
use crate::io::{write_all, write_atomically};

/// The longest token accepted in a binary file.
const MAX_TOKEN_BYTES: usize = 1 << 16;

fn open(path: &Path) -> Result<(BufReader<File>, u64)> {
    let file = File::open(path).map_err(|e| Error::io(path, "cannot open", &e))?;
    let size = file
        .metadata()
        .map_err(|e| Error::io(path, "cannot read the size", &e))?
        .len();
    Ok((BufReader::new(file), size))
}

/// Reads the `rows dims` header line.
fn read_header(reader: &mut impl BufRead, source: &str) -> Result<(usize, usize)> {
    let mut header = Vec::new();
    reader
        .by_ref()
        .take(256)
        .read_until(b'\n', &mut header)
        .map_err(|e| Error::invalid_file(source, format!("cannot read the header: {e}")))?;
    let text = String::from_utf8_lossy(&header);
    let fields: Vec<&str> = text.split_ascii_whitespace().collect();
    match fields.as_slice() {
        [rows, dims] => match (rows.parse::<usize>(), dims.parse::<usize>()) {
            (Ok(rows), Ok(dims)) if dims > 0 => Ok((rows, dims)),
            _ => Err(Error::invalid_file(
                format!("{source}: line 1"),
                format!(
                    "the header '{}' is not two counts 'rows dims' (dims > 0)",
                    text.trim()
                ),
            )),
        },
        _ => Err(Error::invalid_file(
            format!("{source}: line 1"),
            format!("expected a 'rows dims' header, found '{}'", text.trim()),
        )),
    }
}

fn count_mismatch(source: &str, header_rows: usize, found: usize) -> Error {
    Error::invalid_file(
        source,
        format!("the header says {header_rows} rows, the file has {found}"),
    )
}

/// Reads a word2vec text file, checking the header counts and every line (see
/// [`ReadOptions`] for duplicates, UTF-8 and normalization).
///
/// # Errors
/// [`Error::Io`] naming the path; [`Error::InvalidFile`] naming the line and what is wrong,
/// or the header/row count mismatch.
pub fn read_word2vec_text(path: impl AsRef<Path>, options: ReadOptions) -> Result<WordVectors> {
    let path = path.as_ref();
    let (reader, _) = open(path)?;
    read_word2vec_text_from(reader, &path.display().to_string(), options)
}

/// [`read_word2vec_text`] from any reader.
///
/// # Errors
/// Those of [`read_word2vec_text`].
pub fn read_word2vec_text_from(
    reader: impl Read,
    source: &str,
    options: ReadOptions,
) -> Result<WordVectors> {
    let mut reader = BufReader::new(reader);
    let (rows, dims) = read_header(&mut reader, source)?;
    let mut collector = Collector::new(source, options, Some(dims));
    let entries = collector.read_text_rows(&mut reader, 1, rows)?;
    if entries != rows {
        return Err(count_mismatch(source, rows, entries));
    }
    collector.finish()
}

/// Reads a word2vec binary file. The header is checked against the file size before
/// anything is allocated, so a header claiming 10^12 rows is an error.
///
/// # Errors
/// Those of [`read_word2vec_text`], and [`Error::InvalidFile`] for a truncated entry.
pub fn read_word2vec_binary(path: impl AsRef<Path>, options: ReadOptions) -> Result<WordVectors> {
    let path = path.as_ref();
    let (reader, size) = open(path)?;
    read_word2vec_binary_from(reader, Some(size), &path.display().to_string(), options)
}

/// [`read_word2vec_binary`] from any reader; `size` (when known) bounds what the header may
/// claim.
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
    let (rows, dims) = read_header(&mut reader, source)?;
    // Each entry needs at least one token byte, a space and dims * 4 bytes.
    let entry_min = (dims as u64).saturating_mul(4).saturating_add(2);
    if let Some(size) = size
        && (rows as u64).saturating_mul(entry_min) > size
    {
        return Err(Error::invalid_file(
            source,
            format!(
                "the header claims {rows} rows of {dims} floats, more than the {size}-byte file can hold"
            ),
        ));
    }
    let mut collector = Collector::new(source, options, Some(dims));
    let mut token = Vec::new();
    let mut floats = vec![0u8; dims.saturating_mul(4)];
    for entry in 1..=rows {
        token.clear();
        // Skip the newline that ends the previous entry, then read up to the space.
        loop {
            let mut byte = [0u8; 1];
            reader
                .read_exact(&mut byte)
                .map_err(|_| count_mismatch(source, rows, entry - 1))?;
            match byte[0] {
                b' ' if !token.is_empty() => break,
                b'\n' | b'\r' if token.is_empty() => {}
                b => token.push(b),
            }
            if token.len() > MAX_TOKEN_BYTES {
                return Err(collector.error(entry + 1, format!("a token longer than {MAX_TOKEN_BYTES} bytes: the file is not word2vec binary")));
            }
        }
        let text = collector.text(&token, entry + 1)?;
        reader.read_exact(&mut floats).map_err(|_| {
            collector.error(
                entry + 1,
                format!("the vector of '{text}' is cut short: expected {dims} floats"),
            )
        })?;
        let start = collector.values_mut().len();
        collector.values_mut().extend(
            floats
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        if let Some(bad) = collector.values_mut()[start..]
            .iter()
            .copied()
            .find(|v| !v.is_finite())
        {
            return Err(collector.error(entry + 1, format!("the vector of '{text}' holds {bad}")));
        }
        collector.finish_row(text, start, dims, entry + 1)?;
    }
    // Anything but whitespace after the last entry means the header undercounts.
    let mut rest = Vec::new();
    reader
        .take(1 << 20)
        .read_to_end(&mut rest)
        .map_err(|e| Error::invalid_file(source, e.to_string()))?;
    if rest.iter().any(|b| !b.is_ascii_whitespace()) {
        return Err(Error::invalid_file(
            source,
            format!("the header says {rows} rows, but data follows the last one"),
        ));
    }
    collector.finish()
}

/// Writes `vectors` as a word2vec text file (`rows dims` header), atomically; components
/// round-trip exactly.
///
/// # Errors
/// [`Error::Io`] naming the path.
pub fn write_word2vec_text(path: impl AsRef<Path>, vectors: &WordVectors) -> Result<()> {
    let path = path.as_ref();
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

/// Writes `vectors` as a word2vec binary file, atomically.
///
/// # Errors
/// [`Error::Io`] naming the path; [`Error::InvalidArgument`] for a token with a space.
pub fn write_word2vec_binary(path: impl AsRef<Path>, vectors: &WordVectors) -> Result<()> {
    let path = path.as_ref();
    if let Some(bad) = vectors
        .tokens()
        .iter()
        .find(|t| t.is_empty() || t.contains([' ', '\n']))
    {
        return Err(Error::invalid_argument(
            "write_word2vec_binary",
            "token",
            format!("{bad:?}"),
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
