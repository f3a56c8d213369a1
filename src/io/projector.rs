//! Export for the TensorBoard Embedding Projector: `vectors.tsv` and `metadata.tsv`.

use std::fmt::Write as _;
use std::path::Path;

use ndarray::Array2;

use crate::error::{Error, Result};
use crate::io::vocabulary::Vocabulary;
use crate::io::word_vectors::FINITE_EXPECTED;
use crate::io::{write_all, write_atomically};

/// Writes `vectors.tsv` (one tab-separated row per id) and `metadata.tsv` (one token per
/// line; the mask token is written `<pad>`, tabs and newlines in tokens become spaces) into
/// `folder`, for <https://projector.tensorflow.org> ("Load" both files).
///
/// Values must be finite `f32` (the crate's policy for every table): a table holding `NaN`
/// or an infinity is refused before anything is written.
///
/// # Errors
/// [`Error::WeightShape`] when the table does not have one row per vocabulary id;
/// [`Error::InvalidArgument`] naming the `[row, column]` of a value that is not finite;
/// [`Error::Io`] naming the file.
pub fn write_projector(
    folder: impl AsRef<Path>,
    table: &Array2<f32>,
    vocabulary: &Vocabulary,
) -> Result<()> {
    let folder = folder.as_ref();
    if table.nrows() != vocabulary.len() {
        return Err(Error::WeightShape {
            layer: "projector export".into(),
            index: 0,
            expected: vec![vocabulary.len(), table.ncols()],
            got: table.shape().to_vec(),
        });
    }
    if let Some(((row, column), value)) = table.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(Error::invalid_argument(
            "write_projector",
            "table",
            format!("{value} at [{row}, {column}]"),
            FINITE_EXPECTED,
        ));
    }
    let vectors = folder.join("vectors.tsv");
    write_atomically(&vectors, |w| {
        for row in table.rows() {
            let mut line = String::with_capacity(row.len() * 10);
            for (i, v) in row.iter().enumerate() {
                if i > 0 {
                    line.push('\t');
                }
                let _ = write!(line, "{v}");
            }
            line.push('\n');
            write_all(w, line.as_bytes(), &vectors)?;
        }
        Ok(())
    })?;
    let metadata = folder.join("metadata.tsv");
    write_atomically(&metadata, |w| {
        for token in vocabulary.tokens() {
            let token = if token.is_empty() {
                "<pad>".to_string()
            } else {
                token.replace(['\t', '\n', '\r'], " ")
            };
            write_all(w, format!("{token}\n").as_bytes(), &metadata)?;
        }
        Ok(())
    })
}
