//! Keras weight constraints: projections applied to a weight after each optimizer step.
//!
//! `axis` is Keras' argument: the axis along which norms are computed. Keras' default
//! `axis=0` on an embedding table `(input_dim, output_dim)` constrains each *column* (over
//! all rows); `axis: 1` constrains each row (each embedding vector).
//!
//! ```
//! use ndarray::array;
//! use ndkeras::constraints::Constraint;
//!
//! let mut w = array![[3.0f32, 0.0], [4.0, 1.0]].into_dyn();
//! assert_eq!(Constraint::max_norm(1.0), Constraint::MaxNorm { max_value: 1.0, axis: 0 });
//! Constraint::max_norm(1.0).apply(&mut w.view_mut())?;
//! assert!((w[[0, 0]] - 0.6).abs() < 1e-6 && (w[[1, 0]] - 0.8).abs() < 1e-6);
//! # Ok::<(), ndkeras::Error>(())
//! ```

use ndarray::{ArrayViewMutD, Axis, Zip};

use crate::error::{Error, Result};

/// Keras' `backend.epsilon()`, added to norms before dividing.
const EPSILON: f32 = 1e-7;

/// A projection of a weight onto a set, applied after every training step (Keras'
/// `constraints`). Applied to the whole weight, so a constrained `Embedding` is updated
/// densely, as in Keras.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Constraint {
    /// Rescales slices whose norm along `axis` exceeds `max_value` (Keras `MaxNorm`,
    /// defaults `max_value=2`, `axis=0`).
    MaxNorm {
        /// The largest norm kept.
        max_value: f32,
        /// The axis the norms run along.
        axis: usize,
    },
    /// Sets negative values to zero (Keras `NonNeg`).
    NonNeg,
    /// Scales every slice along `axis` to norm 1 (Keras `UnitNorm`, default `axis=0`).
    UnitNorm {
        /// The axis the norms run along.
        axis: usize,
    },
    /// Keeps norms along `axis` within `[min_value, max_value]`, moving them there at `rate`
    /// (Keras `MinMaxNorm`, defaults `0, 1, rate=1, axis=0`).
    MinMaxNorm {
        /// Smallest norm.
        min_value: f32,
        /// Largest norm.
        max_value: f32,
        /// `1` enforces the bounds at once; smaller values move part of the way.
        rate: f32,
        /// The axis the norms run along.
        axis: usize,
    },
}

impl Constraint {
    /// Keras' `MaxNorm(max_value)` with its default `axis=0`.
    pub fn max_norm(max_value: f32) -> Self {
        Constraint::MaxNorm { max_value, axis: 0 }
    }

    /// Keras' `UnitNorm()` with its default `axis=0`.
    pub fn unit_norm() -> Self {
        Constraint::UnitNorm { axis: 0 }
    }

    /// Keras' `MinMaxNorm(min_value, max_value)` with its defaults `rate=1`, `axis=0`.
    pub fn min_max_norm(min_value: f32, max_value: f32) -> Self {
        Constraint::MinMaxNorm {
            min_value,
            max_value,
            rate: 1.0,
            axis: 0,
        }
    }

    /// The same constraint along another axis (no effect on `NonNeg`).
    pub fn with_axis(self, axis: usize) -> Self {
        match self {
            Constraint::MaxNorm { max_value, .. } => Constraint::MaxNorm { max_value, axis },
            Constraint::UnitNorm { .. } => Constraint::UnitNorm { axis },
            Constraint::MinMaxNorm {
                min_value,
                max_value,
                rate,
                ..
            } => Constraint::MinMaxNorm {
                min_value,
                max_value,
                rate,
                axis,
            },
            Constraint::NonNeg => Constraint::NonNeg,
        }
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a negative or non-finite bound, `min_value >
    /// max_value`, or a `rate` outside `[0, 1]`.
    pub fn validate(self) -> Result<()> {
        let owner = "constraint";
        let bound = |name: &str, v: f32| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(Error::invalid_argument(
                    owner,
                    name,
                    v,
                    "a finite number >= 0",
                ))
            }
        };
        match self {
            Constraint::MaxNorm { max_value, .. } => bound("max_value", max_value),
            Constraint::MinMaxNorm {
                min_value,
                max_value,
                rate,
                ..
            } => {
                bound("min_value", min_value)?;
                bound("max_value", max_value)?;
                if min_value > max_value {
                    return Err(Error::invalid_argument(
                        owner,
                        "min_value",
                        min_value,
                        "min_value <= max_value",
                    ));
                }
                if !(0.0..=1.0).contains(&rate) {
                    return Err(Error::invalid_argument(
                        owner,
                        "rate",
                        rate,
                        "a number in [0, 1]",
                    ));
                }
                Ok(())
            }
            Constraint::NonNeg | Constraint::UnitNorm { .. } => Ok(()),
        }
    }

    /// Projects `weight` in place.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `axis` is not an axis of the weight.
    pub fn apply(self, weight: &mut ArrayViewMutD<'_, f32>) -> Result<()> {
        let (axis, target): (usize, Box<dyn Fn(f32) -> f32>) = match self {
            Constraint::NonNeg => {
                weight.mapv_inplace(|w| if w >= 0.0 { w } else { 0.0 });
                return Ok(());
            }
            Constraint::MaxNorm { max_value, axis } => {
                (axis, Box::new(move |n: f32| n.clamp(0.0, max_value)))
            }
            Constraint::UnitNorm { axis } => (axis, Box::new(|_| 1.0)),
            Constraint::MinMaxNorm {
                min_value,
                max_value,
                rate,
                axis,
            } => (
                axis,
                Box::new(move |n: f32| rate * n.clamp(min_value, max_value) + (1.0 - rate) * n),
            ),
        };
        if axis >= weight.ndim() {
            return Err(Error::invalid_argument(
                "constraint",
                "axis",
                axis,
                format!(
                    "an axis of the weight, which has {} dimensions",
                    weight.ndim()
                ),
            ));
        }
        let norms = weight.map_axis(Axis(axis), |lane| {
            lane.iter().map(|v| v * v).sum::<f32>().sqrt()
        });
        let scale = norms
            .mapv(|n| target(n) / (EPSILON + n))
            .insert_axis(Axis(axis));
        Zip::from(weight)
            .and_broadcast(&scale)
            .for_each(|w, &s| *w *= s);
        Ok(())
    }
}
