//! Keras weight constraints: projections applied to a weight after each optimizer step.
//!
//! `axis` is Keras' argument: the axis along which norms are computed. Keras' default
//! `axis=0` on an embedding table `(input_dim, output_dim)` constrains each *column* (over
//! all rows); `axis: 1` constrains each row (each embedding vector).
//!
//! Keras also takes a list of axes (`MaxNorm(axis=[0, 1])`): the norm then runs over all of
//! them at once (`tf.reduce_sum(tf.square(w), axis=[0, 1])`), so `[0, 1]` on a 2-D table is
//! one norm for the whole table, and an empty list makes every element its own slice.
//! Negative axes count from the end, as in TensorFlow. Such a constraint is one of the
//! `*OverAxes` variants, holding an [`Axes`]; [`Constraint::with_axes`] makes one, and
//! `get_config` writes `axis` back in the form it was given (an integer or a list). An axis
//! outside the weight's rank, or two entries naming the same axis, is an error when the
//! constraint is applied (TensorFlow raises there too).
//!
//! ```
//! use ndarray::array;
//! use ndkeras::constraints::{Axes, Constraint};
//!
//! // MaxNorm(1.0, axis=[0, 1]): the whole table is scaled to norm 1.
//! let mut w = array![[3.0f32, 0.0], [0.0, 4.0]].into_dyn();
//! Constraint::max_norm(1.0).with_axes(Axes::list(&[0, 1])?).apply(&mut w.view_mut())?;
//! assert!((w[[0, 0]] - 0.6).abs() < 1e-6 && (w[[1, 1]] - 0.8).abs() < 1e-6);
//! # Ok::<(), ndkeras::Error>(())
//! ```
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

use ndarray::{ArrayD, ArrayViewMutD, Axis, Zip};

use crate::error::{Error, Result};

/// Keras' `backend.epsilon()`, added to norms before dividing.
const EPSILON: f32 = 1e-7;

/// Keras' `axis` argument when it is not one non-negative integer: a list of axes (norms run
/// over all of them at once) or a single negative axis (counted from the end).
///
/// At most [`Axes::MAX`] entries, in the order given (`get_config` writes them back so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Axes {
    axes: [isize; Axes::MAX],
    len: usize,
    list: bool,
}

impl Axes {
    /// The most axes a list can hold (weights in ndkeras have at most 2 dimensions).
    pub const MAX: usize = 8;

    /// A list of axes, as Keras' `axis=[0, 1]`. An empty list makes every element its own
    /// slice (a norm of `|w|`), as `tf.reduce_sum(.., axis=[])` does.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for more than [`Axes::MAX`] entries, or an entry given
    /// twice (TensorFlow: "Axes contains duplicate dimension").
    pub fn list(axes: &[isize]) -> Result<Self> {
        if axes.len() > Self::MAX {
            return Err(Error::invalid_argument(
                "constraint",
                "axis",
                format!("{axes:?}"),
                format!("at most {} axes", Self::MAX),
            ));
        }
        if let Some((k, _)) = axes
            .iter()
            .enumerate()
            .find(|(k, a)| axes[..*k].contains(a))
        {
            return Err(Error::invalid_argument(
                "constraint",
                "axis",
                format!("{axes:?}"),
                format!("distinct axes (axis {} is given twice)", axes[k]),
            ));
        }
        let mut stored = [0; Self::MAX];
        stored[..axes.len()].copy_from_slice(axes);
        Ok(Axes {
            axes: stored,
            len: axes.len(),
            list: true,
        })
    }

    /// One axis given as a plain integer; negative counts from the end (`-1` = the last).
    /// (A non-negative one is simply the `axis` field of the single-axis variants.)
    pub fn single(axis: isize) -> Self {
        let mut axes = [0; Self::MAX];
        axes[0] = axis;
        Axes {
            axes,
            len: 1,
            list: false,
        }
    }

    /// The axes, as given.
    pub fn as_slice(&self) -> &[isize] {
        &self.axes[..self.len]
    }

    /// Whether they were given as a list (`axis=[0]`) rather than one integer (`axis=-1`).
    pub fn is_list(&self) -> bool {
        self.list
    }

    /// The axes of a weight of `ndim` dimensions, negative ones counted from the end.
    fn resolve(&self, ndim: usize) -> Result<Vec<usize>> {
        let mut resolved = Vec::with_capacity(self.len);
        for &axis in self.as_slice() {
            let index = if axis < 0 {
                ndim.checked_sub(axis.unsigned_abs())
            } else {
                Some(axis.unsigned_abs()).filter(|&a| a < ndim)
            };
            let Some(index) = index else {
                return Err(axis_error(axis, ndim));
            };
            if resolved.contains(&index) {
                return Err(Error::invalid_argument(
                    "constraint",
                    "axis",
                    format!("{:?}", self.as_slice()),
                    format!("distinct axes of the weight (two entries name axis {index})"),
                ));
            }
            resolved.push(index);
        }
        Ok(resolved)
    }
}

fn axis_error(axis: impl std::fmt::Display, ndim: usize) -> Error {
    Error::invalid_argument(
        "constraint",
        "axis",
        axis,
        format!("an axis of the weight, which has {ndim} dimensions"),
    )
}

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
    /// [`Constraint::MaxNorm`] whose norms run over several axes at once, or along a
    /// negative axis (Keras `MaxNorm(axis=[0, 1])`).
    MaxNormOverAxes {
        /// The largest norm kept.
        max_value: f32,
        /// The axes the norms run over.
        axes: Axes,
    },
    /// [`Constraint::UnitNorm`] over several axes at once (Keras `UnitNorm(axis=[0, 1])`).
    UnitNormOverAxes {
        /// The axes the norms run over.
        axes: Axes,
    },
    /// [`Constraint::MinMaxNorm`] over several axes at once (Keras
    /// `MinMaxNorm(axis=[0, 1])`).
    MinMaxNormOverAxes {
        /// Smallest norm.
        min_value: f32,
        /// Largest norm.
        max_value: f32,
        /// `1` enforces the bounds at once; smaller values move part of the way.
        rate: f32,
        /// The axes the norms run over.
        axes: Axes,
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
            Constraint::MaxNorm { max_value, .. }
            | Constraint::MaxNormOverAxes { max_value, .. } => {
                Constraint::MaxNorm { max_value, axis }
            }
            Constraint::UnitNorm { .. } | Constraint::UnitNormOverAxes { .. } => {
                Constraint::UnitNorm { axis }
            }
            Constraint::MinMaxNorm {
                min_value,
                max_value,
                rate,
                ..
            }
            | Constraint::MinMaxNormOverAxes {
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

    /// The same constraint with norms over `axes` (Keras `axis=[0, 1]`, or a negative
    /// `axis`); no effect on `NonNeg`, which has no axis.
    pub fn with_axes(self, axes: Axes) -> Self {
        match self {
            Constraint::MaxNorm { max_value, .. }
            | Constraint::MaxNormOverAxes { max_value, .. } => {
                Constraint::MaxNormOverAxes { max_value, axes }
            }
            Constraint::UnitNorm { .. } | Constraint::UnitNormOverAxes { .. } => {
                Constraint::UnitNormOverAxes { axes }
            }
            Constraint::MinMaxNorm {
                min_value,
                max_value,
                rate,
                ..
            }
            | Constraint::MinMaxNormOverAxes {
                min_value,
                max_value,
                rate,
                ..
            } => Constraint::MinMaxNormOverAxes {
                min_value,
                max_value,
                rate,
                axes,
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
            Constraint::MaxNorm { max_value, .. }
            | Constraint::MaxNormOverAxes { max_value, .. } => bound("max_value", max_value),
            Constraint::MinMaxNorm {
                min_value,
                max_value,
                rate,
                ..
            }
            | Constraint::MinMaxNormOverAxes {
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
            Constraint::NonNeg
            | Constraint::UnitNorm { .. }
            | Constraint::UnitNormOverAxes { .. } => Ok(()),
        }
    }

    /// Projects `weight` in place.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when an axis is not an axis of the weight, or two entries
    /// of a list name the same axis; the weight is then unchanged.
    pub fn apply(self, weight: &mut ArrayViewMutD<'_, f32>) -> Result<()> {
        let (axes, target): (Result<Vec<usize>>, NormTarget) = match self {
            Constraint::NonNeg => {
                weight.mapv_inplace(|w| if w >= 0.0 { w } else { 0.0 });
                return Ok(());
            }
            Constraint::MaxNorm { max_value, axis } => (
                single_axis(axis, weight.ndim()),
                Box::new(move |n: f32| n.clamp(0.0, max_value)),
            ),
            Constraint::MaxNormOverAxes { max_value, axes } => (
                axes.resolve(weight.ndim()),
                Box::new(move |n: f32| n.clamp(0.0, max_value)),
            ),
            Constraint::UnitNorm { axis } => (single_axis(axis, weight.ndim()), Box::new(|_| 1.0)),
            Constraint::UnitNormOverAxes { axes } => {
                (axes.resolve(weight.ndim()), Box::new(|_| 1.0))
            }
            Constraint::MinMaxNorm {
                min_value,
                max_value,
                rate,
                axis,
            } => (
                single_axis(axis, weight.ndim()),
                Box::new(move |n: f32| rate * n.clamp(min_value, max_value) + (1.0 - rate) * n),
            ),
            Constraint::MinMaxNormOverAxes {
                min_value,
                max_value,
                rate,
                axes,
            } => (
                axes.resolve(weight.ndim()),
                Box::new(move |n: f32| rate * n.clamp(min_value, max_value) + (1.0 - rate) * n),
            ),
        };
        let axes = axes?;
        // Keras: w * (desired(norms) / (epsilon + norms)), norms with keepdims.
        let scale_of = |n: f32| target(n) / (EPSILON + n);
        let norms = match axes.as_slice() {
            [] => {
                // No axis reduced: every element is its own slice, of norm |w|.
                weight.mapv_inplace(|w| w * scale_of(w.abs()));
                return Ok(());
            }
            &[axis] => weight
                .map_axis(Axis(axis), |lane| {
                    lane.iter().map(|v| v * v).sum::<f32>().sqrt()
                })
                .insert_axis(Axis(axis)),
            several => squared_sums(weight, several).mapv(f32::sqrt),
        };
        let scale = norms.mapv(scale_of);
        Zip::from(weight)
            .and_broadcast(&scale)
            .for_each(|w, &s| *w *= s);
        Ok(())
    }
}

/// The norm a slice is moved to, from its current norm.
type NormTarget = Box<dyn Fn(f32) -> f32>;

/// A single non-negative axis, checked against the weight's rank.
fn single_axis(axis: usize, ndim: usize) -> Result<Vec<usize>> {
    if axis < ndim {
        Ok(vec![axis])
    } else {
        Err(axis_error(axis, ndim))
    }
}

/// The sums of squares of `weight` over `axes` (distinct, each < ndim), with those axes
/// kept as length 1 so that the result broadcasts against `weight`. The longest axis is
/// folded first, so the intermediate array is at most `len / longest` elements.
fn squared_sums(weight: &ArrayViewMutD<'_, f32>, axes: &[usize]) -> ArrayD<f32> {
    let mut order = axes.to_vec();
    order.sort_by_key(|&a| std::cmp::Reverse(weight.len_of(Axis(a))));
    let mut rest = order.into_iter();
    let Some(first) = rest.next() else {
        return weight.mapv(|w| w * w);
    };
    let mut sums = weight
        .fold_axis(Axis(first), 0.0f32, |acc, w| acc + w * w)
        .insert_axis(Axis(first));
    for axis in rest {
        sums = sums
            .fold_axis(Axis(axis), 0.0f32, |acc, s| acc + s)
            .insert_axis(Axis(axis));
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn apply(c: Constraint, w: &ArrayD<f32>) -> Result<ArrayD<f32>> {
        let mut w = w.clone();
        c.apply(&mut w.view_mut())?;
        Ok(w)
    }

    #[test]
    fn a_list_of_one_axis_equals_that_axis() {
        let w = array![[3.0f32, 0.0], [4.0, 1.0], [0.5, -2.0]].into_dyn();
        for axis in 0..2 {
            let single = apply(Constraint::max_norm(1.0).with_axis(axis), &w).unwrap();
            let listed = Axes::list(&[axis as isize]).unwrap();
            let list = apply(Constraint::max_norm(1.0).with_axes(listed), &w).unwrap();
            assert_eq!(single, list);
            let negative = Axes::single(axis as isize - 2);
            assert_eq!(
                single,
                apply(Constraint::max_norm(1.0).with_axes(negative), &w).unwrap()
            );
        }
    }

    #[test]
    fn all_axes_take_one_norm_and_no_axis_takes_each_element() {
        let w = array![[3.0f32, 0.0], [0.0, 4.0]].into_dyn();
        let whole = apply(
            Constraint::unit_norm().with_axes(Axes::list(&[1, 0]).unwrap()),
            &w,
        )
        .unwrap();
        assert!((whole[[0, 0]] - 0.6).abs() < 1e-6 && (whole[[1, 1]] - 0.8).abs() < 1e-6);
        let none = apply(
            Constraint::max_norm(1.0).with_axes(Axes::list(&[]).unwrap()),
            &w,
        )
        .unwrap();
        assert!((none[[0, 0]] - 1.0).abs() < 1e-6 && none[[0, 1]] == 0.0);
        let cube = ArrayD::from_shape_fn(vec![2, 3, 4], |i| (i[0] + i[1] + i[2]) as f32);
        let out = apply(
            Constraint::unit_norm().with_axes(Axes::list(&[0, 2]).unwrap()),
            &cube,
        )
        .unwrap();
        for j in 0..3 {
            let norm: f32 = out
                .index_axis(Axis(1), j)
                .iter()
                .map(|v| v * v)
                .sum::<f32>()
                .sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        }
    }

    #[test]
    fn bad_axes_are_errors_that_leave_the_weight_alone() {
        let w = array![[3.0f32, 0.0], [4.0, 1.0]].into_dyn();
        assert!(Axes::list(&[0, 0]).is_err());
        assert!(Axes::list(&[0; 9]).is_err());
        for axes in [
            Axes::list(&[0, 2]).unwrap(),
            Axes::list(&[1, -1]).unwrap(),
            Axes::single(-3),
        ] {
            let mut copy = w.clone();
            let err = Constraint::max_norm(1.0)
                .with_axes(axes)
                .apply(&mut copy.view_mut())
                .unwrap_err();
            assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
            assert_eq!(copy, w);
        }
        assert!(
            Constraint::UnitNorm { axis: 2 }
                .apply(&mut w.clone().view_mut())
                .is_err()
        );
    }

    #[test]
    fn with_axis_and_with_axes_convert_both_ways() {
        let axes = Axes::list(&[0, 1]).unwrap();
        let c = Constraint::min_max_norm(0.5, 1.5).with_axes(axes);
        assert_eq!(
            c,
            Constraint::MinMaxNormOverAxes {
                min_value: 0.5,
                max_value: 1.5,
                rate: 1.0,
                axes
            }
        );
        assert_eq!(
            c.with_axis(1),
            Constraint::min_max_norm(0.5, 1.5).with_axis(1)
        );
        assert_eq!(Constraint::NonNeg.with_axes(axes), Constraint::NonNeg);
        assert!(axes.is_list() && !Axes::single(-1).is_list());
        assert_eq!(axes.as_slice(), &[0, 1]);
    }
}
