//! The one error type of the crate.
//!
//! Every variant carries the values a user needs to fix the call: the layer, the offending
//! value, where it was and what was expected. Messages keep the information Keras puts in its
//! own messages (for example TensorFlow's `indices[0,1] = 3 is not in [0, 3)`), worded for Rust.

use std::fmt;

/// `Result` with the crate's [`Error`].
///
/// Not exported by the [`prelude`](crate::prelude): a one-parameter `Result` would shadow
/// `std::result::Result` in users' code.
pub type Result<T> = std::result::Result<T, Error>;

/// A shape as Keras writes it: known dimensions and `None` for unknown ones (the batch axis).
pub type Shape = Vec<Option<usize>>;

/// Everything that can go wrong in ndkeras.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An integer index outside `[0, input_dim)` (TensorFlow raises
    /// `indices[i,j] = v is not in [0, n)`; JAX returns NaN rows or wraps; a GPU returns zeros).
    #[error(
        "layer \"{layer}\": index {index} at position {} is out of range: expected an index in [0, {input_dim}) (input_dim = {input_dim})",
        Position(position)
    )]
    IndexOutOfRange {
        /// Name of the layer that was called.
        layer: String,
        /// The offending index as given (negative indices are kept as they were).
        index: i128,
        /// Its position (one coordinate per input axis).
        position: Vec<usize>,
        /// The size of the table: valid indices are `0..input_dim`.
        input_dim: usize,
    },

    /// A float index that is not a whole number (fractional, NaN or infinite).
    ///
    /// Keras casts float ids to int32 by truncation (`1.5 -> 1`); ndkeras refuses instead of
    /// silently looking up another row.
    #[error(
        "layer \"{layer}\": index {value} at position {} is not a whole number: expected integer ids (Keras would silently truncate it)",
        Position(position)
    )]
    NonIntegerIndex {
        /// Name of the layer that was called.
        layer: String,
        /// The offending value.
        value: f32,
        /// Its position (one coordinate per input axis).
        position: Vec<usize>,
    },

    /// A list of weight arrays of the wrong length (`set_weights`, or `weights` at build).
    #[error(
        "layer \"{layer}\": received a list of {got} weight arrays, but the layer expects {expected}{}",
        if *expected == 0 { " (it is not built yet and holds no weights: call it once, or add it to a model, first)" } else { "" }
    )]
    WeightCount {
        /// Name of the layer.
        layer: String,
        /// How many arrays the layer holds.
        expected: usize,
        /// How many were given.
        got: usize,
    },

    /// A weight array whose shape does not match the layer's variable.
    #[error(
        "layer \"{layer}\": weight {index} has shape {}, which is not compatible with the provided weight shape {}",
        Dims(expected),
        Dims(got)
    )]
    WeightShape {
        /// Name of the layer.
        layer: String,
        /// Position of the array in the weight list.
        index: usize,
        /// Shape of the layer's variable.
        expected: Vec<usize>,
        /// Shape of the array given.
        got: Vec<usize>,
    },

    /// An input whose shape does not fit what the layer or model expects.
    #[error(
        "{context}: expected input shape {}, received shape {}",
        OptDims(expected),
        OptDims(got)
    )]
    IncompatibleShape {
        /// The layer or model and what it was doing.
        context: String,
        /// The expected shape (`None` = any size).
        expected: Shape,
        /// The shape received.
        got: Shape,
    },

    /// An input of a type the layer cannot take (e.g. float values for an index lookup).
    #[error("{context}: expected {expected} input, received {got}")]
    IncompatibleDtype {
        /// The layer or model and what it was doing.
        context: String,
        /// What the layer takes.
        expected: String,
        /// What it received.
        got: String,
    },

    /// A layer or initializer setting that cannot work (zero `input_dim`, `minval > maxval`, ...).
    #[error("{owner}: invalid `{parameter}` = {value}: expected {expected}")]
    InvalidArgument {
        /// The layer, initializer, optimizer or loss that holds the setting.
        owner: String,
        /// The Keras name of the setting.
        parameter: String,
        /// The value given.
        value: String,
        /// What would be valid.
        expected: String,
    },

    /// A Keras string name (initializer, optimizer, loss, ...) that is not known.
    #[error("unknown {kind} name \"{name}\": expected one of {}", valid.join(", "))]
    UnknownName {
        /// What was being named: `"initializer"`, `"optimizer"`, `"loss"`, ...
        kind: &'static str,
        /// The name given.
        name: String,
        /// The names that are accepted.
        valid: Vec<&'static str>,
    },

    /// A shape whose number of elements does not fit in memory addresses (`usize`).
    #[error(
        "{context}: the shape {} has more elements than fit in memory (the product overflows)",
        Dims(shape)
    )]
    ShapeOverflow {
        /// What was being computed.
        context: String,
        /// The shape whose product overflows.
        shape: Vec<usize>,
    },

    /// Memory for an array could not be allocated.
    #[error("{context}: could not allocate {bytes} bytes")]
    Allocation {
        /// What was being allocated.
        context: String,
        /// How many bytes were requested.
        bytes: usize,
    },

    /// An operation that needs a built layer or model was called too early.
    #[error("{context}: {what} is not known yet: {hint}")]
    NotBuilt {
        /// The layer or model.
        context: String,
        /// What was asked for.
        what: String,
        /// How to get there.
        hint: String,
    },

    /// A masked input given to a layer that cannot use a mask (`Flatten`, `Reshape`, ...).
    /// A deliberate difference: tf_keras 2 drops the mask silently at such a layer, so padding
    /// would flow into the next layer unnoticed.
    #[error(
        "layer \"{layer}\" ({class_name}) does not support masking, but received a masked input: put a layer that consumes the mask (e.g. GlobalAveragePooling1D) before it, or turn `mask_zero` off"
    )]
    MaskNotSupported {
        /// Name of the layer.
        layer: String,
        /// Its class.
        class_name: &'static str,
    },

    /// A loss that is NaN or infinite during training; the weights are those of the last
    /// good step.
    #[error(
        "the loss became {loss} at epoch {epoch}, batch {batch}: training stopped, the weights are those after the last finite step (lower the learning rate, or check the inputs for extreme values)"
    )]
    NonFiniteLoss {
        /// The loss value.
        loss: f32,
        /// Epoch, counted from 1.
        epoch: usize,
        /// Batch within the epoch, counted from 1.
        batch: usize,
    },

    /// A file that could not be opened, read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What the operating system said, and what was being done.
        message: String,
    },

    /// A file whose contents are not what its format requires (bad header, wrong dtype,
    /// truncated data, ragged rows, ...).
    #[error("{path}: {message}")]
    InvalidFile {
        /// The file (and the entry or line inside it, where there is one).
        path: String,
        /// What is wrong and what was expected.
        message: String,
    },

    /// A model-level misuse: an empty model, duplicate layer names, a missing `compile`, ...
    #[error("model \"{model}\": {message}")]
    Model {
        /// Name of the model.
        model: String,
        /// What went wrong and what was expected.
        message: String,
    },
}

impl Error {
    /// Shorthand for [`Error::Io`] from an `std::io::Error`.
    pub(crate) fn io(path: &std::path::Path, doing: &str, err: &std::io::Error) -> Self {
        Error::Io {
            path: path.display().to_string(),
            message: format!("{doing}: {err}"),
        }
    }

    /// Shorthand for [`Error::InvalidFile`].
    pub(crate) fn invalid_file(path: impl fmt::Display, message: impl Into<String>) -> Self {
        Error::InvalidFile {
            path: path.to_string(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::InvalidArgument`].
    pub(crate) fn invalid_argument(
        owner: impl Into<String>,
        parameter: impl Into<String>,
        value: impl fmt::Display,
        expected: impl Into<String>,
    ) -> Self {
        Error::InvalidArgument {
            owner: owner.into(),
            parameter: parameter.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }
}

impl Error {
    /// An error of a sub-layer, as the layer holding it reports it: a layer name becomes
    /// `outer/inner` (Keras' path of a nested layer), a context or owner gets `outer_context`
    /// in front, unless it names the outer layer already.
    pub(crate) fn within(mut self, outer_name: &str, outer_context: &str) -> Self {
        let nested = format!("{outer_name}/");
        match &mut self {
            Error::IndexOutOfRange { layer, .. }
            | Error::NonIntegerIndex { layer, .. }
            | Error::WeightCount { layer, .. }
            | Error::WeightShape { layer, .. }
            | Error::MaskNotSupported { layer, .. }
                if layer != outer_name && !layer.starts_with(&nested) =>
            {
                *layer = format!("{nested}{layer}");
            }
            Error::IncompatibleShape { context, .. }
            | Error::IncompatibleDtype { context, .. }
            | Error::ShapeOverflow { context, .. }
            | Error::Allocation { context, .. }
            | Error::NotBuilt { context, .. }
            | Error::InvalidArgument { owner: context, .. }
                if !context.starts_with(outer_context) =>
            {
                *context = format!("{outer_context}: {context}");
            }
            _ => {}
        }
        self
    }

    /// Moves the position of an index error from a batch drawn from the input in any order
    /// (a shuffled `fit` batch) to the whole input: row `r` of the batch is sample
    /// `samples[r]`.
    pub(crate) fn at_samples(mut self, samples: &[usize]) -> Self {
        if let Error::IndexOutOfRange { position, .. } | Error::NonIntegerIndex { position, .. } =
            &mut self
            && let Some(row) = position.first_mut()
            && let Some(&sample) = samples.get(*row)
        {
            *row = sample;
        }
        self
    }

    /// Moves the position of an index error from a batch to the whole input: a batch that
    /// starts at row `start` reports its rows counted from `start`.
    pub(crate) fn offset_batch(mut self, start: usize) -> Self {
        if let Error::IndexOutOfRange { position, .. } | Error::NonIntegerIndex { position, .. } =
            &mut self
            && let Some(row) = position.first_mut()
        {
            *row += start;
        }
        self
    }
}

/// Formats a position like `[0, 1]`.
struct Position<'a>(&'a [usize]);

impl fmt::Display for Position<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{p}")?;
        }
        write!(f, "]")
    }
}

/// Formats a concrete shape as Python does: `(3, 2)`, `(6,)`, `()`.
pub(crate) struct Dims<'a>(pub(crate) &'a [usize]);

impl fmt::Display for Dims<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write_tuple(f, &parts)
    }
}

/// Formats a Keras shape with unknown dimensions: `(None, 10, 64)`.
pub(crate) struct OptDims<'a>(pub(crate) &'a [Option<usize>]);

impl fmt::Display for OptDims<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|d| d.map_or_else(|| "None".to_string(), |d| d.to_string()))
            .collect();
        write_tuple(f, &parts)
    }
}

fn write_tuple(f: &mut fmt::Formatter<'_>, parts: &[String]) -> fmt::Result {
    match parts {
        [one] => write!(f, "({one},)"),
        _ => write!(f, "({})", parts.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_written_as_python_tuples() {
        assert_eq!(Dims(&[3, 2]).to_string(), "(3, 2)");
        assert_eq!(Dims(&[6]).to_string(), "(6,)");
        assert_eq!(Dims(&[]).to_string(), "()");
        assert_eq!(OptDims(&[None, Some(10)]).to_string(), "(None, 10)");
    }

    #[test]
    fn index_error_names_layer_index_position_and_range() {
        let err = Error::IndexOutOfRange {
            layer: "embedding".into(),
            index: 3,
            position: vec![0, 1],
            input_dim: 3,
        };
        let msg = err.to_string();
        for part in ["\"embedding\"", "index 3", "[0, 1]", "[0, 3)"] {
            assert!(msg.contains(part), "{msg} lacks {part}");
        }
    }

    #[test]
    fn weight_count_on_unbuilt_layer_says_why() {
        let err = Error::WeightCount {
            layer: "embedding".into(),
            expected: 0,
            got: 1,
        };
        assert!(err.to_string().contains("not built"));
        let err = Error::WeightCount {
            layer: "embedding".into(),
            expected: 1,
            got: 2,
        };
        assert!(!err.to_string().contains("not built"));
    }
}
