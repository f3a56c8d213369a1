//! Keras weight regularizers: a penalty added to the loss.
//!
//! ```
//! use ndarray::array;
//! use ndkeras::regularizers::Regularizer;
//!
//! let w = array![[1.0f32, -2.0]].into_dyn();
//! assert_eq!(Regularizer::L2(0.01).penalty(&w.view()), 0.01 * 5.0);
//! assert_eq!(Regularizer::L1(0.1).penalty(&w.view()), 0.1 * 3.0);
//! ```

use ndarray::{ArrayD, ArrayViewD, Zip};

use crate::error::{Error, Result};

/// A penalty on a weight's values, added to the training loss (Keras' `regularizers`).
///
/// A regularized weight receives a gradient in every element, so training an `Embedding`
/// with a regularizer updates the whole table at every step, as in Keras.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Regularizer {
    /// `l1 * sum(|w|)` (Keras `L1`, default factor 0.01).
    L1(f32),
    /// `l2 * sum(w^2)` (Keras `L2`, default factor 0.01).
    L2(f32),
    /// `l1 * sum(|w|) + l2 * sum(w^2)` (Keras `L1L2`).
    L1L2 {
        /// The L1 factor.
        l1: f32,
        /// The L2 factor.
        l2: f32,
    },
}

impl Regularizer {
    /// Keras' `"l1"`: `L1(0.01)`.
    pub fn l1() -> Self {
        Regularizer::L1(0.01)
    }

    /// Keras' `"l2"`: `L2(0.01)`.
    pub fn l2() -> Self {
        Regularizer::L2(0.01)
    }

    fn factors(self) -> (f32, f32) {
        match self {
            Regularizer::L1(l1) => (l1, 0.0),
            Regularizer::L2(l2) => (0.0, l2),
            Regularizer::L1L2 { l1, l2 } => (l1, l2),
        }
    }

    /// Checks the factors: finite and `>= 0`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the factor.
    pub fn validate(self) -> Result<()> {
        let (l1, l2) = self.factors();
        for (name, v) in [("l1", l1), ("l2", l2)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid_argument(
                    "regularizer",
                    name,
                    v,
                    "a finite factor >= 0",
                ));
            }
        }
        Ok(())
    }

    /// The penalty for `weight`.
    pub fn penalty(self, weight: &ArrayViewD<'_, f32>) -> f32 {
        let (l1, l2) = self.factors();
        let (mut abs, mut squares) = (0.0f32, 0.0f32);
        for &w in weight {
            abs += w.abs();
            squares += w * w;
        }
        l1 * abs + l2 * squares
    }

    /// Adds the penalty's gradient `l1 * sign(w) + 2 * l2 * w` to `gradient`.
    ///
    /// # Errors
    /// [`Error::IncompatibleShape`] when `gradient` does not have the weight's shape.
    pub fn add_gradient(
        self,
        weight: &ArrayViewD<'_, f32>,
        gradient: &mut ArrayD<f32>,
    ) -> Result<()> {
        if weight.shape() != gradient.shape() {
            return Err(Error::IncompatibleShape {
                context: "Regularizer::add_gradient: the gradient must have the weight's shape"
                    .into(),
                expected: weight.shape().iter().map(|&d| Some(d)).collect(),
                got: gradient.shape().iter().map(|&d| Some(d)).collect(),
            });
        }
        let (l1, l2) = self.factors();
        Zip::from(gradient).and(weight).for_each(|g, &w| {
            // Keras' L1 uses sign(w), which is 0 at 0.
            let sign = if w > 0.0 {
                1.0
            } else if w < 0.0 {
                -1.0
            } else {
                0.0
            };
            *g += l1 * sign + 2.0 * l2 * w;
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn gradient_of_the_penalty() {
        let w = array![[1.0f32, -2.0, 0.0]].into_dyn();
        let mut g = ArrayD::zeros(vec![1, 3]);
        Regularizer::L1L2 { l1: 0.1, l2: 0.5 }
            .add_gradient(&w.view(), &mut g)
            .unwrap();
        assert!(
            Regularizer::l2()
                .add_gradient(&w.view(), &mut ArrayD::zeros(vec![3]))
                .is_err()
        );
        assert_eq!(g, array![[1.1f32, -2.1, 0.0]].into_dyn());
        assert!(Regularizer::L2(-1.0).validate().is_err());
    }
}
