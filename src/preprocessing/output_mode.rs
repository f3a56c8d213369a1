//! `output_mode`: ids, or a vector per sample (`multi_hot`, `count`, `one_hot`, `tf_idf`), as
//! `preprocessing_utils.encode_categorical_inputs` of tf_keras builds it.

use std::fmt;
use std::str::FromStr;

use ndarray::Array2;

use crate::error::{Error, Result};

/// What a lookup layer returns (Keras' `output_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputMode {
    /// The ids themselves (`"int"`, the default).
    #[default]
    Int,
    /// One vector per input element, 1 at its id (`"one_hot"`): an input of shape
    /// `(batch, 1)` gives `(batch, depth)`.
    OneHot,
    /// One vector per sample, 1 at every id present (`"multi_hot"`, also `"binary"`).
    MultiHot,
    /// One vector per sample, the number of times each id occurs (`"count"`).
    Count,
    /// One vector per sample, the count of each id times its inverse document frequency
    /// (`"tf_idf"`, also `"tf-idf"`): the weights are learned by `adapt` or given with the
    /// vocabulary.
    TfIdf,
}

impl OutputMode {
    /// Keras' name.
    pub fn name(self) -> &'static str {
        match self {
            OutputMode::Int => "int",
            OutputMode::OneHot => "one_hot",
            OutputMode::MultiHot => "multi_hot",
            OutputMode::Count => "count",
            OutputMode::TfIdf => "tf_idf",
        }
    }
}

impl fmt::Display for OutputMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OutputMode {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        match name {
            "int" => Ok(OutputMode::Int),
            "one_hot" => Ok(OutputMode::OneHot),
            "multi_hot" | "binary" => Ok(OutputMode::MultiHot),
            "count" => Ok(OutputMode::Count),
            "tf_idf" | "tf-idf" => Ok(OutputMode::TfIdf),
            _ => Err(Error::UnknownName {
                kind: "output_mode",
                name: name.to_string(),
                valid: vec!["int", "one_hot", "multi_hot", "binary", "count", "tf_idf"],
            }),
        }
    }
}

/// The `(rows, depth)` encoding of rows of ids: ids outside `[0, depth)` (the mask's
/// `int64.max` in non-int modes) are dropped, as `tf.math.bincount` with `maxlength=depth`
/// drops them. In `"tf_idf"` mode the counts are multiplied by `idf` (one weight per id;
/// a missing weight counts as 0).
pub(crate) fn encode_rows(
    rows: &[Vec<i64>],
    depth: usize,
    mode: OutputMode,
    idf: &[f32],
    owner: &str,
) -> Result<Array2<f32>> {
    let elements = rows
        .len()
        .checked_mul(depth)
        .ok_or_else(|| Error::ShapeOverflow {
            context: format!("{owner}: {mode} output"),
            shape: vec![rows.len(), depth],
        })?;
    let mut data: Vec<f32> = Vec::new();
    data.try_reserve_exact(elements)
        .map_err(|_| Error::Allocation {
            context: format!("{owner}: {mode} output of shape ({}, {depth})", rows.len()),
            bytes: elements.saturating_mul(4),
        })?;
    data.resize(elements, 0.0);
    for (row, ids) in rows.iter().enumerate() {
        if mode == OutputMode::OneHot && ids.len() != 1 {
            return Err(Error::invalid_argument(
                owner,
                "inputs",
                format!("a sample of {} elements (row {row})", ids.len()),
                "one element per sample with output_mode=\"one_hot\" (Keras: the maximum supported output rank is 2)",
            ));
        }
        let out = &mut data[row * depth..(row + 1) * depth];
        for &id in ids {
            if let Some(slot) = usize::try_from(id).ok().and_then(|i| out.get_mut(i)) {
                match mode {
                    OutputMode::Count | OutputMode::TfIdf => *slot += 1.0,
                    _ => *slot = 1.0,
                }
            }
        }
        if mode == OutputMode::TfIdf {
            // tf.multiply(bincounts, idf_weights)
            for (k, slot) in out.iter_mut().enumerate() {
                *slot *= idf.get(k).copied().unwrap_or(0.0);
            }
        }
    }
    Array2::from_shape_vec((rows.len(), depth), data)
        .map_err(|e| Error::invalid_argument(owner, "inputs", e, "a shape that matches its data"))
}
