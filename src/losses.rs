//! Keras losses, by the names `compile` accepts.
//!
//! ```
//! use ndkeras::prelude::*;
//!
//! assert_eq!("mse".parse::<Loss>()?, Loss::MeanSquaredError);
//! assert_eq!("binary_crossentropy".parse::<Loss>()?, Loss::BinaryCrossentropy);
//! # Ok::<(), ndkeras::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A Keras loss, reduced as Keras' default `sum_over_batch_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Loss {
    /// `mean((y_pred - y_true)^2)` (`"mse"`, `"mean_squared_error"`).
    MeanSquaredError,
    /// `mean(|y_pred - y_true|)` (`"mae"`, `"mean_absolute_error"`).
    MeanAbsoluteError,
    /// Binary cross-entropy on probabilities (`"binary_crossentropy"`).
    BinaryCrossentropy,
    /// Cross-entropy on one-hot targets (`"categorical_crossentropy"`).
    CategoricalCrossentropy,
    /// Cross-entropy on integer class targets (`"sparse_categorical_crossentropy"`).
    SparseCategoricalCrossentropy,
}

impl Loss {
    /// Keras' function name (`"mean_squared_error"`).
    pub fn keras_name(self) -> &'static str {
        match self {
            Loss::MeanSquaredError => "mean_squared_error",
            Loss::MeanAbsoluteError => "mean_absolute_error",
            Loss::BinaryCrossentropy => "binary_crossentropy",
            Loss::CategoricalCrossentropy => "categorical_crossentropy",
            Loss::SparseCategoricalCrossentropy => "sparse_categorical_crossentropy",
        }
    }
}

impl FromStr for Loss {
    type Err = Error;

    /// Keras' names and aliases: function names (`"mean_squared_error"`), short names
    /// (`"mse"`, `"mae"`) and class names (`"MeanSquaredError"`).
    ///
    /// # Errors
    /// [`Error::UnknownName`] listing the accepted names.
    fn from_str(name: &str) -> Result<Self> {
        let key: String = name
            .trim()
            .chars()
            .filter(|c| *c != '_')
            .map(|c| c.to_ascii_lowercase())
            .collect();
        match key.as_str() {
            "mse" | "meansquarederror" => Ok(Loss::MeanSquaredError),
            "mae" | "meanabsoluteerror" => Ok(Loss::MeanAbsoluteError),
            "binarycrossentropy" => Ok(Loss::BinaryCrossentropy),
            "categoricalcrossentropy" => Ok(Loss::CategoricalCrossentropy),
            "sparsecategoricalcrossentropy" => Ok(Loss::SparseCategoricalCrossentropy),
            _ => Err(Error::UnknownName {
                kind: "loss",
                name: name.to_string(),
                valid: vec![
                    "mse",
                    "mean_squared_error",
                    "mae",
                    "mean_absolute_error",
                    "binary_crossentropy",
                    "categorical_crossentropy",
                    "sparse_categorical_crossentropy",
                ],
            }),
        }
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keras_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_parse_to_the_same_loss() {
        for name in ["mse", "mean_squared_error", "MeanSquaredError"] {
            assert_eq!(
                name.parse::<Loss>().ok(),
                Some(Loss::MeanSquaredError),
                "{name}"
            );
        }
        assert_eq!("mae".parse::<Loss>().ok(), Some(Loss::MeanAbsoluteError));
        let err = "hinge".parse::<Loss>().unwrap_err();
        assert!(err.to_string().contains("binary_crossentropy"), "{err}");
    }
}
