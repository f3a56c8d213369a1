//! Word vectors read from GloVe and word2vec files: tokens and their vectors, with the
//! checks every line gets and the policies for what is not clean.
//!
//! # What every reader guarantees
//! - **Bad input is an error, never a panic or an abort.** Every line (text) or row
//!   (binary) is checked: a token followed by exactly `dims` numbers, `dims` the same on
//!   every line (the header's, for word2vec), the row count the header claims.
//! - **Finite `f32` values only.** This is the crate's policy for every table, not an option:
//!   `NaN`, `inf`, `-inf` and text numbers that overflow `f32` (such as `1e40`) are an
//!   [`Error::InvalidFile`] naming the file, the line (text) or row (binary), the component
//!   and the value as written. [`WordVectors::new`] refuses them too, so the writers never
//!   write a value that the readers would refuse: what ndkeras writes, ndkeras reads back.
//! - **Memory is bounded by the data.** Sizes from a header are checked with overflow-checked
//!   arithmetic against what the file can hold before anything is allocated (when the length
//!   is known: the `read_*` functions on a path); readers without a known length (`*_from`)
//!   grow their buffers only as data arrives. Every allocation is fallible and a failure is
//!   an [`Error::Allocation`]. A vector has at most [`MAX_DIMS`] components, a token at most
//!   [`MAX_TOKEN_BYTES`] bytes and a text line at most what a token and `dims` numbers can
//!   need ([`MAX_LINE_BYTES`] while `dims` is not known yet).
//!
//! Lines, rows and components in error messages are counted from 1, as a text editor counts
//! lines. Positions in an array ([`WordVectors::new`]) are `[row, column]` counted from 0, as
//! ndarray indexes.
//!
//! [`ReadOptions`] holds the policies a user may choose: duplicates, invalid UTF-8 and
//! normalization.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::BufRead;

use ndarray::{Array2, ArrayView1};

use crate::error::{Error, Result};

/// The most components a vector may have (2^22 = 4,194,304; real word vectors have a few
/// hundred): a header or a line claiming more is refused as not word vectors.
pub const MAX_DIMS: usize = 1 << 22;

/// The longest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 1 << 16;

/// The longest text line accepted before the number of components is known (the first line
/// of a GloVe file), in bytes (64 MiB, room for [`MAX_DIMS`] numbers of 16 characters). Once
/// `dims` is known, a line may hold at most a token and `dims` numbers of
/// [`MAX_NUMBER_BYTES`] each, with their separators (and never more than this).
pub const MAX_LINE_BYTES: usize = 1 << 26;

/// The room allowed for each number on a text line when bounding the line's length.
pub const MAX_NUMBER_BYTES: usize = 128;

/// What the non-finite policy says in every message.
pub(crate) const FINITE_EXPECTED: &str =
    "expected finite float32 values (NaN, infinities and numbers beyond ±3.4028235e38 are refused)";

/// What to do with a token that appears twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Duplicates {
    /// An error naming the token and both lines (default).
    #[default]
    Error,
    /// Keep the first vector, skip later ones.
    KeepFirst,
}

/// What to do with bytes that are not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Utf8 {
    /// An error naming the line (default).
    #[default]
    Error,
    /// Replace invalid sequences in tokens with U+FFFD (invalid bytes inside a number make it
    /// "not a number").
    Lossy,
}

/// How word vector files are read: the policies a user may choose.
///
/// The non-finite rule is not among them: it is the crate's policy (finite `f32` values only,
/// see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadOptions {
    /// Duplicate tokens: an error (default) or keep the first.
    pub duplicates: Duplicates,
    /// Invalid UTF-8: an error (default) or lossy.
    pub utf8: Utf8,
    /// Scale every vector to unit L2 norm (zero vectors stay zero). Default: `false`, the
    /// vectors stay as the file has them.
    pub normalize: bool,
}

impl ReadOptions {
    /// Sets the duplicate policy.
    pub fn duplicates(mut self, duplicates: Duplicates) -> Self {
        self.duplicates = duplicates;
        self
    }

    /// Sets the UTF-8 policy.
    pub fn utf8(mut self, utf8: Utf8) -> Self {
        self.utf8 = utf8;
        self
    }

    /// Sets `normalize`.
    pub fn normalize(mut self, normalize: bool) -> Self {
        self.normalize = normalize;
        self
    }
}

/// Tokens and their vectors, in file order. Every value is a finite `f32`.
#[derive(Debug, Clone, PartialEq)]
pub struct WordVectors {
    tokens: Vec<String>,
    vectors: Array2<f32>,
    index: HashMap<String, usize>,
}

impl WordVectors {
    /// Word vectors from tokens and a `(tokens, dims)` matrix.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the counts differ, a token repeats, or a value is not
    /// a finite `f32` (naming its `[row, column]` and token).
    pub fn new(tokens: Vec<String>, vectors: Array2<f32>) -> Result<Self> {
        if tokens.len() != vectors.nrows() {
            return Err(Error::invalid_argument(
                "WordVectors",
                "tokens",
                tokens.len(),
                format!("one token per vector ({} vectors)", vectors.nrows()),
            ));
        }
        // The readers' limits, so that whatever is written reads back.
        if vectors.ncols() > MAX_DIMS || (vectors.nrows() > 0 && vectors.ncols() == 0) {
            return Err(Error::invalid_argument(
                "WordVectors",
                "vectors",
                format!("{} components", vectors.ncols()),
                format!("between 1 and {MAX_DIMS} components per vector"),
            ));
        }
        if let Some(token) = tokens.iter().find(|t| t.len() > MAX_TOKEN_BYTES) {
            return Err(Error::invalid_argument(
                "WordVectors",
                "tokens",
                format!("'{}' ({} bytes)", shown(token), token.len()),
                format!("tokens of at most {MAX_TOKEN_BYTES} bytes"),
            ));
        }
        if let Some(((row, column), value)) = vectors.indexed_iter().find(|(_, v)| !v.is_finite()) {
            let token = tokens.get(row).map_or("", String::as_str);
            return Err(Error::invalid_argument(
                "WordVectors",
                "vectors",
                format!("{value} at [{row}, {column}] (token '{}')", shown(token)),
                FINITE_EXPECTED,
            ));
        }
        let mut index = HashMap::with_capacity(tokens.len());
        for (i, token) in tokens.iter().enumerate() {
            if index.insert(token.clone(), i).is_some() {
                return Err(Error::invalid_argument(
                    "WordVectors",
                    "tokens",
                    token,
                    "distinct tokens",
                ));
            }
        }
        Ok(WordVectors {
            tokens,
            vectors,
            index,
        })
    }

    /// The tokens, in file order.
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The vectors, one row per token.
    pub fn vectors(&self) -> &Array2<f32> {
        &self.vectors
    }

    /// The vector of `token`, if present.
    pub fn get(&self, token: &str) -> Option<ArrayView1<'_, f32>> {
        self.index.get(token).map(|&i| self.vectors.row(i))
    }

    /// The number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The length of each vector.
    pub fn dims(&self) -> usize {
        self.vectors.ncols()
    }

    /// Refuses tokens a text file cannot hold: empty, or with ASCII whitespace (the readers
    /// split on it), so that what is written reads back.
    pub(crate) fn check_text_tokens(&self, writer: &str) -> Result<()> {
        match self
            .tokens
            .iter()
            .enumerate()
            .find(|(_, t)| t.is_empty() || t.bytes().any(|b| b.is_ascii_whitespace()))
        {
            Some((row, bad)) => Err(Error::invalid_argument(
                writer,
                "token",
                format!("{:?} (row {row})", shown(bad)),
                "non-empty tokens without spaces, tabs or newlines",
            )),
            None => Ok(()),
        }
    }

    /// The text line of row `i`: the token then each component, space-separated, written
    /// with Rust's shortest round-trip formatting so a reader gets the same `f32` back.
    pub(crate) fn text_line(&self, i: usize) -> String {
        let mut line = self.tokens[i].clone();
        for &v in self.vectors.row(i) {
            // Rust prints the shortest decimal that reads back as the same f32; very small
            // or large values in exponent form keep lines short.
            if v != 0.0 && !(1e-4..1e7).contains(&v.abs()) {
                let _ = write!(line, " {v:e}");
            } else {
                let _ = write!(line, " {v}");
            }
        }
        line
    }
}

/// At most 40 characters of `text`, for messages (a hostile token or number may be huge).
pub(crate) fn shown(text: &str) -> String {
    crate::io::excerpt(text, 40)
}

/// How rows are numbered in messages: `line` in text files, `row` in binary ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Line,
    Row,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Line => "line",
            Unit::Row => "row",
        }
    }
}

/// Why a line could not be read whole.
enum LineRead {
    /// A line (maybe without its final newline) is in the buffer.
    Line,
    /// The input ended.
    End,
    /// The line is longer than the limit.
    TooLong,
}

/// Collects rows while reading, applying the checks and the policies.
pub(crate) struct Collector<'a> {
    source: &'a str,
    options: ReadOptions,
    unit: Unit,
    dims: Option<usize>,
    tokens: Vec<String>,
    values: Vec<f32>,
    first_seen: HashMap<String, usize>,
}

impl<'a> Collector<'a> {
    pub(crate) fn new(
        source: &'a str,
        options: ReadOptions,
        dims: Option<usize>,
        unit: Unit,
    ) -> Self {
        Collector {
            source,
            options,
            unit,
            dims,
            tokens: Vec::new(),
            values: Vec::new(),
            first_seen: HashMap::new(),
        }
    }

    /// An [`Error::InvalidFile`] at line or row `at`.
    pub(crate) fn error(&self, at: usize, message: String) -> Error {
        Error::invalid_file(
            format!("{}: {} {at}", self.source, self.unit.name()),
            message,
        )
    }

    fn allocation(&self, values: usize) -> Error {
        Error::Allocation {
            context: format!("{}: the vectors", self.source),
            bytes: values.saturating_mul(std::mem::size_of::<f32>()),
        }
    }

    /// Reserves room for `count` more values at once (only for a count the file's length
    /// justifies).
    pub(crate) fn reserve_exact(&mut self, count: usize) -> Result<()> {
        self.values
            .try_reserve_exact(count)
            .map_err(|_| self.allocation(count))
    }

    /// Appends values, growing the buffer fallibly as they arrive.
    pub(crate) fn extend(&mut self, values: impl ExactSizeIterator<Item = f32>) -> Result<()> {
        let count = values.len();
        if self.values.capacity() - self.values.len() < count {
            let total = self.values.len().saturating_add(count);
            self.values
                .try_reserve(count)
                .map_err(|_| self.allocation(total))?;
        }
        self.values.extend(values);
        Ok(())
    }

    /// The number of values collected so far.
    pub(crate) fn value_count(&self) -> usize {
        self.values.len()
    }

    /// Decodes a token according to the UTF-8 policy; `what` names where it was
    /// (`"the line"`, `"the token"`).
    pub(crate) fn text(&self, bytes: &[u8], at: usize, what: &str) -> Result<String> {
        self.check_utf8(bytes, at, what)?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    /// Under [`Utf8::Error`], an error when `bytes` are not UTF-8.
    fn check_utf8(&self, bytes: &[u8], at: usize, what: &str) -> Result<()> {
        match (std::str::from_utf8(bytes), self.options.utf8) {
            (Err(e), Utf8::Error) => Err(self.error(
                at,
                format!(
                    "invalid UTF-8 at byte {} of {what} (read with `Utf8::Lossy` to replace it)",
                    e.valid_up_to()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The longest line that a token and `dims` numbers can need.
    fn line_limit(&self) -> usize {
        self.dims.map_or(MAX_LINE_BYTES, |dims| {
            dims.saturating_mul(MAX_NUMBER_BYTES + 1)
                .saturating_add(MAX_TOKEN_BYTES + 2)
                .min(MAX_LINE_BYTES)
        })
    }

    /// Reads `token v1 ... vd` lines to the end, numbering them after `lines_before` (a
    /// header), skipping blank lines; stops with an error at the first bad line, or when more
    /// than `max_rows` rows appear. Returns the number of rows read.
    pub(crate) fn read_text_rows(
        &mut self,
        reader: &mut impl BufRead,
        lines_before: usize,
        max_rows: usize,
    ) -> Result<usize> {
        let (mut bytes, mut line, mut rows) = (Vec::new(), lines_before, 0usize);
        loop {
            line += 1;
            let limit = self.line_limit();
            let read = read_line(reader, &mut bytes, limit).map_err(|e| match e {
                LineError::Io(e) => Error::Io {
                    path: self.source.to_string(),
                    message: format!("cannot read line {line}: {e}"),
                },
                LineError::Allocation(bytes) => Error::Allocation {
                    context: format!("{}: line {line}", self.source),
                    bytes,
                },
            })?;
            match read {
                LineRead::End => return Ok(rows),
                LineRead::TooLong => {
                    let expected = match self.dims {
                        Some(dims) => {
                            format!("a token and {dims} numbers need at most {limit} bytes")
                        }
                        None => format!("at most {limit} bytes are accepted on a line"),
                    };
                    return Err(self.error(
                        line,
                        format!("the line is longer than {limit} bytes: {expected}"),
                    ));
                }
                LineRead::Line => {}
            }
            if bytes.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            rows += 1;
            if rows > max_rows {
                return Err(Error::invalid_file(
                    self.source,
                    format!("the header says {max_rows} rows, the file has more"),
                ));
            }
            self.text_row(&bytes, line)?;
        }
    }

    /// Parses one text row `token v1 ... vd` (not blank).
    fn text_row(&mut self, bytes: &[u8], line: usize) -> Result<()> {
        // Checked on the whole line, so the message points at the byte.
        self.check_utf8(bytes, line, "the line")?;
        let mut fields = bytes
            .split(u8::is_ascii_whitespace)
            .filter(|field| !field.is_empty());
        let token = match fields.next() {
            Some(token) if token.len() > MAX_TOKEN_BYTES => {
                return Err(self.error(
                    line,
                    format!(
                        "a token of {} bytes: expected at most {MAX_TOKEN_BYTES}",
                        token.len()
                    ),
                ));
            }
            Some(token) => self.text(token, line, "the line")?,
            None => return Err(self.error(line, "the line is blank: expected a token".into())),
        };
        let start = self.values.len();
        let mut count = 0usize;
        for field in fields {
            count += 1;
            let most = self.dims.unwrap_or(MAX_DIMS);
            if count > most {
                return Err(self.error(
                    line,
                    format!(
                        "'{}' has more than {most} components, expected {} (a ragged row)",
                        shown(&token),
                        match self.dims {
                            Some(dims) => dims.to_string(),
                            None => format!("at most {MAX_DIMS}"),
                        }
                    ),
                ));
            }
            let written = String::from_utf8_lossy(field);
            let value = match written.parse::<f32>() {
                Ok(value) if value.is_finite() => value,
                Ok(_) => {
                    return Err(self.error(
                        line,
                        format!(
                            "component {count} of '{}' is '{}', not a finite float32: {FINITE_EXPECTED}",
                            shown(&token),
                            shown(&written)
                        ),
                    ));
                }
                Err(_) => {
                    return Err(self.error(
                        line,
                        format!(
                            "component {count} of '{}' is '{}', not a number",
                            shown(&token),
                            shown(&written)
                        ),
                    ));
                }
            };
            self.extend(std::iter::once(value))?;
        }
        self.finish_row(token, start, count, line)
    }

    /// Adds a row whose `count` values were pushed from `start` on; `at` is its line or row.
    pub(crate) fn finish_row(
        &mut self,
        token: String,
        start: usize,
        count: usize,
        at: usize,
    ) -> Result<()> {
        if count == 0 {
            return Err(self.error(
                at,
                format!(
                    "'{}' has no components: expected a token followed by its vector",
                    shown(&token)
                ),
            ));
        }
        let dims = *self.dims.get_or_insert(count);
        if count != dims {
            return Err(self.error(
                at,
                format!(
                    "'{}' has {count} components, expected {dims} (a ragged row)",
                    shown(&token)
                ),
            ));
        }
        if let Some(&first) = self.first_seen.get(&token) {
            self.values.truncate(start);
            let unit = self.unit.name();
            return match self.options.duplicates {
                Duplicates::KeepFirst => Ok(()),
                Duplicates::Error => Err(self.error(
                    at,
                    format!(
                        "duplicate token '{}' (first on {unit} {first}; read with `Duplicates::KeepFirst` to keep the first)",
                        shown(&token)
                    ),
                )),
            };
        }
        if self.options.normalize
            && let Some(row) = self.values.get_mut(start..)
        {
            // In f64: squares of large f32 values (3e38) would overflow f32, and those of
            // tiny ones (1e-30) underflow to zero.
            let norm = row
                .iter()
                .map(|&v| f64::from(v) * f64::from(v))
                .sum::<f64>()
                .sqrt();
            if norm > 0.0 {
                row.iter_mut()
                    .for_each(|v| *v = (f64::from(*v) / norm) as f32);
            }
        }
        self.first_seen.insert(token.clone(), at);
        self.tokens.push(token);
        Ok(())
    }

    pub(crate) fn finish(self) -> Result<WordVectors> {
        let dims = self.dims.unwrap_or(0);
        let rows = self.tokens.len();
        let vectors = Array2::from_shape_vec((rows, dims), self.values).map_err(|e| {
            Error::invalid_file(self.source, format!("rows do not form a table: {e}"))
        })?;
        let index = self
            .tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i))
            .collect();
        Ok(WordVectors {
            tokens: self.tokens,
            vectors,
            index,
        })
    }
}

enum LineError {
    Io(std::io::Error),
    Allocation(usize),
}

/// Reads one line into `line` (cleared first, newline not included), growing it fallibly
/// and never past `limit` bytes.
fn read_line(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    limit: usize,
) -> std::result::Result<LineRead, LineError> {
    line.clear();
    let mut any = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(LineError::Io(e)),
        };
        if available.is_empty() {
            return Ok(if any { LineRead::Line } else { LineRead::End });
        }
        any = true;
        let (take, done) = match available.iter().position(|&b| b == b'\n') {
            Some(newline) => (newline, true),
            None => (available.len(), false),
        };
        if line.len().saturating_add(take) > limit {
            return Ok(LineRead::TooLong);
        }
        if line.capacity() - line.len() < take {
            line.try_reserve(take)
                .map_err(|_| LineError::Allocation(line.len().saturating_add(take)))?;
        }
        line.extend_from_slice(&available[..take]);
        reader.consume(if done { take + 1 } else { take });
        if done {
            return Ok(LineRead::Line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], limit: usize) -> Vec<std::result::Result<Vec<u8>, &'static str>> {
        let mut reader = std::io::BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        let mut line = Vec::new();
        loop {
            match read_line(&mut reader, &mut line, limit) {
                Ok(LineRead::Line) => out.push(Ok(line.clone())),
                Ok(LineRead::End) => return out,
                Ok(LineRead::TooLong) => {
                    out.push(Err("too long"));
                    return out;
                }
                Err(_) => {
                    out.push(Err("error"));
                    return out;
                }
            }
        }
    }

    #[test]
    fn lines_are_split_across_buffer_refills_and_bounded() {
        assert_eq!(
            lines(b"abcdefg\nhi\n\nlast", 100),
            vec![
                Ok(b"abcdefg".to_vec()),
                Ok(b"hi".to_vec()),
                Ok(Vec::new()),
                Ok(b"last".to_vec())
            ]
        );
        assert_eq!(lines(b"abcdefg\n", 7), vec![Ok(b"abcdefg".to_vec())]);
        assert_eq!(lines(b"abcdefgh\n", 7), vec![Err("too long")]);
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        assert_eq!(shown("abc"), "abc");
        let long = "é".repeat(50);
        assert_eq!(shown(&long), format!("{}...", "é".repeat(40)));
    }
}
