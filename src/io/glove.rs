//! GloVe text files: one `token v1 v2 ... vd` line per word, no header.
//!
//! The first line sets the number of components; see
//! [`word_vectors`](crate::io::word_vectors) for the checks and the finite-values policy every
//! reader applies.
//!
//! ```
//! use ndkeras::io::glove;
//! use ndkeras::io::word_vectors::ReadOptions;
//!
//! let text = "the 0.1 0.2\ncat 0.3 -0.4\n";
//! let vectors = glove::read_glove_from(text.as_bytes(), "inline", ReadOptions::default())?;
//! assert_eq!(vectors.tokens(), ["the", "cat"]);
//! assert_eq!(vectors.get("cat").unwrap().to_vec(), vec![0.3f32, -0.4]);
//! # Ok::<(), ndkeras::Error>(())
//! ```

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use crate::error::{Error, Result};
use crate::io::word_vectors::{Collector, ReadOptions, Unit, WordVectors};
use crate::io::{write_all, write_atomically};

/// Reads a GloVe file with the default [`ReadOptions`]. Every line is checked: the same number of components as the first
/// line, numbers that parse as finite `f32`, UTF-8, no duplicate token (see [`ReadOptions`]).
/// Blank lines are skipped; `\r\n` line ends and a last line without a newline are fine.
/// Tokens cannot contain spaces.
///
/// # Errors
/// [`Error::Io`] naming the path; [`Error::InvalidFile`] naming the line and what is wrong
/// (a ragged row, a token without a vector, `NaN`, `inf`, `1e40`, a line longer than
/// a token and its numbers can need, ...); [`Error::Allocation`] when the vectors do not fit
/// in memory.
pub fn read_glove(path: impl AsRef<Path>) -> Result<WordVectors> {
    read_glove_with(path, ReadOptions::default())
}

/// [`read_glove`] with other [`ReadOptions`] (duplicates, UTF-8, normalization).
///
/// # Errors
/// Those of [`read_glove`].
pub fn read_glove_with(path: impl AsRef<Path>, options: ReadOptions) -> Result<WordVectors> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| Error::io(path, "cannot open", &e))?;
    read_glove_from(file, &path.display().to_string(), options)
}

/// [`read_glove`] from any reader; `source` names it in errors. Memory grows only as lines
/// arrive.
///
/// # Errors
/// Those of [`read_glove`].
pub fn read_glove_from(
    reader: impl Read,
    source: &str,
    options: ReadOptions,
) -> Result<WordVectors> {
    let mut collector = Collector::new(source, options, None, Unit::Line);
    collector.read_text_rows(&mut BufReader::new(reader), 0, usize::MAX)?;
    collector.finish()
}

/// Writes `vectors` as a GloVe file, atomically. Components are written with the shortest
/// decimal that reads back as the same `f32`, so a round trip is exact. A [`WordVectors`]
/// holds finite values only ([`WordVectors::new`] refuses the others), so every file written
/// reads back.
///
/// # Errors
/// [`Error::Io`] naming the path; [`Error::InvalidArgument`] for a token that is empty or
/// holds a space, tab or newline (it would not read back).
pub fn write_glove(path: impl AsRef<Path>, vectors: &WordVectors) -> Result<()> {
    let path = path.as_ref();
    vectors.check_text_tokens("write_glove")?;
    write_atomically(path, |w| {
        for i in 0..vectors.len() {
            let mut line = vectors.text_line(i);
            line.push('\n');
            write_all(w, line.as_bytes(), path)?;
        }
        Ok(())
    })
}
