//! Word vectors read from GloVe and word2vec files: tokens and their vectors, with the
//! checks every line gets and the policies for what is not clean.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::BufRead;

use ndarray::{Array2, ArrayView1};

use crate::error::{Error, Result};

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
    /// Replace invalid sequences with U+FFFD.
    Lossy,
}

/// How word vector files are read.
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

/// Tokens and their vectors, in file order.
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
    /// [`Error::InvalidArgument`] when the counts differ or a token repeats.
    pub fn new(tokens: Vec<String>, vectors: Array2<f32>) -> Result<Self> {
        if tokens.len() != vectors.nrows() {
            return Err(Error::invalid_argument(
                "WordVectors",
                "tokens",
                tokens.len(),
                format!("one token per vector ({} vectors)", vectors.nrows()),
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

/// Collects rows while reading, applying the duplicate and normalization policies.
pub(crate) struct Collector<'a> {
    source: &'a str,
    options: ReadOptions,
    dims: Option<usize>,
    tokens: Vec<String>,
    values: Vec<f32>,
    first_line: HashMap<String, usize>,
}

impl<'a> Collector<'a> {
    pub(crate) fn new(source: &'a str, options: ReadOptions, dims: Option<usize>) -> Self {
        Collector {
            source,
            options,
            dims,
            tokens: Vec::new(),
            values: Vec::new(),
            first_line: HashMap::new(),
        }
    }

    /// Decodes a token or line according to the UTF-8 policy.
    pub(crate) fn text(&self, bytes: &[u8], line: usize) -> Result<String> {
        match (std::str::from_utf8(bytes), self.options.utf8) {
            (Ok(text), _) => Ok(text.to_string()),
            (Err(_), Utf8::Lossy) => Ok(String::from_utf8_lossy(bytes).into_owned()),
            (Err(e), Utf8::Error) => Err(Error::invalid_file(
                format!("{}: line {line}", self.source),
                format!(
                    "invalid UTF-8 at byte {} of the line (read with `Utf8::Lossy` to replace it)",
                    e.valid_up_to()
                ),
            )),
        }
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
            bytes.clear();
            let read = reader.read_until(b'\n', &mut bytes).map_err(|e| {
                Error::invalid_file(self.source, format!("cannot read line {}: {e}", line + 1))
            })?;
            if read == 0 {
                return Ok(rows);
            }
            line += 1;
            let text = self.text(&bytes, line)?;
            if text.trim().is_empty() {
                continue;
            }
            rows += 1;
            if rows > max_rows {
                return Err(Error::invalid_file(
                    self.source,
                    format!("the header says {max_rows} rows, the file has more"),
                ));
            }
            self.text_row(&text, line)?;
        }
    }

    /// Parses one text row `token v1 ... vd`.
    pub(crate) fn text_row(&mut self, text: &str, line: usize) -> Result<()> {
        let mut fields = text.split_ascii_whitespace();
        let Some(token) = fields.next() else {
            return Err(self.error(
                line,
                "the line is empty: expected a token and its vector".into(),
            ));
        };
        let start = self.values.len();
        let mut count = 0;
        for (column, field) in fields.enumerate() {
            let value: f32 = field.parse().map_err(|_| {
                self.error(
                    line,
                    format!(
                        "component {} of '{token}' is '{field}', not a number",
                        column + 1
                    ),
                )
            })?;
            self.values.push(value);
            count += 1;
        }
        self.finish_row(token.to_string(), start, count, line)
    }

    /// Adds a row whose values were pushed from `start` on.
    pub(crate) fn finish_row(
        &mut self,
        token: String,
        start: usize,
        count: usize,
        line: usize,
    ) -> Result<()> {
        let dims = *self.dims.get_or_insert(count);
        if count != dims || dims == 0 {
            self.values.truncate(start);
            return Err(self.error(
                line,
                format!(
                    "'{token}' has {count} components, expected {dims} (a ragged row)",
                    dims = dims.max(1)
                ),
            ));
        }
        if let Some(&first) = self.first_line.get(&token) {
            self.values.truncate(start);
            return match self.options.duplicates {
                Duplicates::KeepFirst => Ok(()),
                Duplicates::Error => Err(self.error(
                    line,
                    format!("duplicate token '{token}' (first on line {first}; read with `Duplicates::KeepFirst` to keep the first)"),
                )),
            };
        }
        if self.options.normalize {
            let row = &mut self.values[start..];
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|v| *v /= norm);
            }
        }
        self.first_line.insert(token.clone(), line);
        self.tokens.push(token);
        Ok(())
    }

    pub(crate) fn error(&self, line: usize, message: String) -> Error {
        Error::invalid_file(format!("{}: line {line}", self.source), message)
    }

    /// Reserves room for values, bounded by what the file can hold.
    pub(crate) fn values_mut(&mut self) -> &mut Vec<f32> {
        &mut self.values
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
