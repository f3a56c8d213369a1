//! The vocabulary file Keras writes beside a saved lookup layer (`assets/vocabulary.txt` in a
//! `.keras` archive: `IndexLookup.save_assets` / `load_assets`): every token of
//! `get_vocabulary()`, special tokens included, joined by `"\n"`, no newline at the end.
//!
//! Reading follows `load_assets`: the file is opened as text (Python's universal newlines:
//! `"\r\n"` and `"\r"` end lines too), split on `"\n"`, integers parsed with `int(line)`, and
//! the result given to `set_vocabulary`, which skips the special tokens at the start. A
//! trailing newline therefore makes a last, empty token, as in Keras.

use std::path::Path;

use super::index_lookup::IndexLookup;
use super::key::LookupKey;
use crate::error::{Error, Result};
use crate::io::{write_all, write_atomically};

impl<K: LookupKey> IndexLookup<K> {
    /// Writes the vocabulary file Keras writes (see the [module docs](crate::preprocessing::vocabulary_file)), atomically.
    ///
    /// # Errors
    /// [`Error::Io`] naming `path`; those of [`get_vocabulary`](Self::get_vocabulary).
    pub fn save_vocabulary(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let lines: Vec<String> = self
            .get_vocabulary(true)?
            .iter()
            .map(LookupKey::to_line)
            .collect();
        let text = lines.join("\n");
        write_atomically(path, |writer| write_all(writer, text.as_bytes(), path))
    }

    /// Replaces the vocabulary with the one in a Keras vocabulary file (see the
    /// [module docs](crate::preprocessing::vocabulary_file)).
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read; [`Error::InvalidFile`] naming the file
    /// (and the line) for text that is not UTF-8, a line that is not an integer
    /// (`IntegerLookup`), or a vocabulary `set_vocabulary` refuses (with its reason).
    pub fn load_vocabulary(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, "cannot read", &e))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            Error::invalid_file(
                path.display(),
                format!(
                    "not UTF-8 text (invalid byte at offset {}): expected a vocabulary file, one token per line",
                    e.utf8_error().valid_up_to()
                ),
            )
        })?;
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        let mut tokens = Vec::new();
        for (number, line) in text.split('\n').enumerate() {
            let token = K::from_line(line).map_err(|expected| {
                Error::invalid_file(
                    format!("{}, line {}", path.display(), number + 1),
                    format!(
                        "{:?} is not a token of this layer: expected {expected}",
                        crate::io::excerpt(line, 40)
                    ),
                )
            })?;
            tokens.push(token);
        }
        self.set_tokens(tokens).map(|_| ()).map_err(|e| match e {
            Error::InvalidArgument {
                value, expected, ..
            } => Error::invalid_file(
                path.display(),
                format!("{value} is not a valid vocabulary: expected {expected}"),
            ),
            other => other,
        })
    }
}
