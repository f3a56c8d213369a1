//! Keras optimizers: names, parameters and defaults of `tf_keras` 2.x.
//!
//! Each optimizer is a builder with Keras' parameter names and defaults, converted into an
//! [`Optimizer`] for [`Sequential::compile`](crate::model::Sequential::compile), which
//! validates it. `"rmsprop".parse::<Optimizer>()` gives the same object as Keras'
//! `compile(optimizer="rmsprop")`.
//!
//! ```
//! use ndkeras::prelude::*;
//! use ndkeras::optimizers::RMSprop;
//!
//! let by_name: Optimizer = "rmsprop".parse()?;
//! assert_eq!(by_name, Optimizer::from(RMSprop::default()));
//! let tuned: Optimizer = RMSprop::default().learning_rate(0.01).rho(0.8).into();
//! tuned.validate()?;
//! # Ok::<(), ndkeras::Error>(())
//! ```
//!
//! One optimizer is PyTorch's rather than Keras': [`SparseAdam`] (`torch.optim.SparseAdam`),
//! which updates only the rows a row-sparse gradient touches, with PyTorch's defaults and
//! bias correction, matching PyTorch's steps to float32 rounding
//! (`tests/data/pytorch_embedding_bag.json`).

use std::fmt;
use std::str::FromStr;

use crate::error::{Dims, Error, Result};
use crate::layer::Gradient;
use crate::storage::try_zeroed;
use crate::tensor::checked_size;
use crate::weight::Weight;

/// Stochastic gradient descent, with optional (Nesterov) momentum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SGD {
    /// Step size. Keras default: 0.01.
    pub learning_rate: f32,
    /// Momentum, in `[0, 1]`. Keras default: 0.
    pub momentum: f32,
    /// Nesterov momentum. Keras default: `false`.
    pub nesterov: bool,
}

/// RMSprop: steps divided by a moving root mean square of the gradients.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RMSprop {
    /// Step size. Keras default: 0.001.
    pub learning_rate: f32,
    /// Decay of the moving average, in `[0, 1)`. Keras default: 0.9.
    pub rho: f32,
    /// Momentum, in `[0, 1]`. Keras default: 0.
    pub momentum: f32,
    /// Small constant added inside the square root. Keras default: 1e-7.
    pub epsilon: f32,
    /// Divide by the variance instead of the second moment. Keras default: `false`.
    pub centered: bool,
}

/// Adam: adaptive moments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adam {
    /// Step size. Keras default: 0.001.
    pub learning_rate: f32,
    /// Decay of the first moment, in `[0, 1)`. Keras default: 0.9.
    pub beta_1: f32,
    /// Decay of the second moment, in `[0, 1)`. Keras default: 0.999.
    pub beta_2: f32,
    /// Small constant for numerical stability. Keras default: 1e-7.
    pub epsilon: f32,
    /// The AMSGrad variant. Keras default: `false`.
    pub amsgrad: bool,
    /// Update only the embedding rows a batch touches (TensorFlow Addons' `LazyAdam`) instead
    /// of Keras' dense update. Not a Keras parameter; default: `false` (Keras parity).
    pub lazy: bool,
}

/// Adagrad: steps divided by the root of the accumulated squared gradients.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Adagrad {
    /// Step size. Keras default: 0.001.
    pub learning_rate: f32,
    /// Starting value of the accumulators, `>= 0`. Keras default: 0.1.
    pub initial_accumulator_value: f32,
    /// Small constant for numerical stability. Keras default: 1e-7.
    pub epsilon: f32,
}

/// PyTorch's `torch.optim.SparseAdam`: Adam that updates only the rows a row-sparse gradient
/// touches (an embedding table's [`Gradient::Rows`]); untouched rows keep their values and
/// moments.
///
/// For each touched row, with the step count `t` of the whole model (PyTorch counts the
/// steps of each parameter, which is the same while every weight is trained at every step):
/// `m = m + (g - m)(1 - beta_1)`, `v = v + (g² - v)(1 - beta_2)`,
/// `w = w - lr·sqrt(1 - beta_2^t)/(1 - beta_1^t) · m / (sqrt(v) + epsilon)`: epsilon is
/// added to the uncorrected `sqrt(v)`, and the bias correction is computed in double
/// precision on the decimal betas, as PyTorch does in Python (`torch/optim/_functional.py`,
/// `sparse_adam`).
///
/// Why not `Adam::default().lazy(true).epsilon(1e-8)`: the update has the same shape, but
/// Keras' Adam computes `beta^t` in float32 on the float32 beta (`0.999f32` is
/// `0.99900001`), so its step size at step 1 differs from PyTorch's by 6e-6 (relative),
/// more than float32 rounding.
///
/// A dense gradient (a `Dense` kernel trained in the same model) gets the same formula on
/// every element; PyTorch's `SparseAdam` refuses dense gradients instead (there, use
/// `torch.optim.Adam` for the other parameters).
///
/// ```
/// use ndkeras::prelude::*;
///
/// let optimizer: Optimizer = SparseAdam::default().learning_rate(0.01).into();
/// assert_eq!(optimizer.class_name(), "SparseAdam");
/// assert_eq!(SparseAdam::default().epsilon, 1e-8);
/// optimizer.validate()?;
/// # Ok::<(), ndkeras::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SparseAdam {
    /// Step size. PyTorch default: 0.001.
    pub learning_rate: f32,
    /// Decay of the first moment, in `[0, 1)`. PyTorch default: 0.9.
    pub beta_1: f32,
    /// Decay of the second moment, in `[0, 1)`. PyTorch default: 0.999.
    pub beta_2: f32,
    /// Added to `sqrt(v)`. PyTorch default: 1e-8.
    pub epsilon: f32,
}

impl SparseAdam {
    /// Sets `learning_rate` (default 0.001).
    pub fn learning_rate(mut self, learning_rate: f32) -> Self {
        self.learning_rate = learning_rate;
        self
    }

    /// Sets `beta_1` (default 0.9).
    pub fn beta_1(mut self, beta_1: f32) -> Self {
        self.beta_1 = beta_1;
        self
    }

    /// Sets `beta_2` (default 0.999).
    pub fn beta_2(mut self, beta_2: f32) -> Self {
        self.beta_2 = beta_2;
        self
    }

    /// Sets `epsilon` (default 1e-8).
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }
}

impl Default for SparseAdam {
    /// PyTorch's `SparseAdam(params)`: `lr=1e-3, betas=(0.9, 0.999), eps=1e-8`.
    fn default() -> Self {
        SparseAdam {
            learning_rate: 0.001,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
        }
    }
}

impl SGD {
    /// SGD with the given learning rate and no momentum.
    pub fn new(learning_rate: f32) -> Self {
        SGD {
            learning_rate,
            momentum: 0.0,
            nesterov: false,
        }
    }

    /// Sets `learning_rate`.
    pub fn learning_rate(mut self, learning_rate: f32) -> Self {
        self.learning_rate = learning_rate;
        self
    }

    /// Sets `momentum` (default 0).
    pub fn momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }

    /// Sets `nesterov` (default `false`).
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }
}

impl Default for SGD {
    /// Keras' `SGD()`: learning rate 0.01, no momentum.
    fn default() -> Self {
        SGD::new(0.01)
    }
}

impl RMSprop {
    /// Sets `learning_rate` (default 0.001).
    pub fn learning_rate(mut self, learning_rate: f32) -> Self {
        self.learning_rate = learning_rate;
        self
    }

    /// Sets `rho` (default 0.9).
    pub fn rho(mut self, rho: f32) -> Self {
        self.rho = rho;
        self
    }

    /// Sets `momentum` (default 0).
    pub fn momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }

    /// Sets `epsilon` (default 1e-7).
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Sets `centered` (default `false`).
    pub fn centered(mut self, centered: bool) -> Self {
        self.centered = centered;
        self
    }
}

impl Default for RMSprop {
    /// Keras' `RMSprop()`.
    fn default() -> Self {
        RMSprop {
            learning_rate: 0.001,
            rho: 0.9,
            momentum: 0.0,
            epsilon: 1e-7,
            centered: false,
        }
    }
}

impl Adam {
    /// Sets `learning_rate` (default 0.001).
    pub fn learning_rate(mut self, learning_rate: f32) -> Self {
        self.learning_rate = learning_rate;
        self
    }

    /// Sets `beta_1` (default 0.9).
    pub fn beta_1(mut self, beta_1: f32) -> Self {
        self.beta_1 = beta_1;
        self
    }

    /// Sets `beta_2` (default 0.999).
    pub fn beta_2(mut self, beta_2: f32) -> Self {
        self.beta_2 = beta_2;
        self
    }

    /// Sets `epsilon` (default 1e-7).
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Sets `amsgrad` (default `false`).
    pub fn amsgrad(mut self, amsgrad: bool) -> Self {
        self.amsgrad = amsgrad;
        self
    }

    /// Sets `lazy` (default `false`): see [`Adam::lazy`](struct.Adam.html#structfield.lazy).
    pub fn lazy(mut self, lazy: bool) -> Self {
        self.lazy = lazy;
        self
    }
}

impl Default for Adam {
    /// Keras' `Adam()`.
    fn default() -> Self {
        Adam {
            learning_rate: 0.001,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            amsgrad: false,
            lazy: false,
        }
    }
}

impl Adagrad {
    /// Sets `learning_rate` (default 0.001).
    pub fn learning_rate(mut self, learning_rate: f32) -> Self {
        self.learning_rate = learning_rate;
        self
    }

    /// Sets `initial_accumulator_value` (default 0.1).
    pub fn initial_accumulator_value(mut self, value: f32) -> Self {
        self.initial_accumulator_value = value;
        self
    }

    /// Sets `epsilon` (default 1e-7).
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }
}

impl Default for Adagrad {
    /// Keras' `Adagrad()`.
    fn default() -> Self {
        Adagrad {
            learning_rate: 0.001,
            initial_accumulator_value: 0.1,
            epsilon: 1e-7,
        }
    }
}

/// One of the Keras optimizers, as given to `compile`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Optimizer {
    /// See [`SGD`].
    SGD(SGD),
    /// See [`RMSprop`].
    RMSprop(RMSprop),
    /// See [`Adam`].
    Adam(Adam),
    /// See [`Adagrad`].
    Adagrad(Adagrad),
    /// See [`SparseAdam`] (PyTorch's).
    SparseAdam(SparseAdam),
}

macro_rules! optimizer_from {
    ($($t:ident),*) => {$(
        impl From<$t> for Optimizer {
            fn from(optimizer: $t) -> Self {
                Optimizer::$t(optimizer)
            }
        }
    )*};
}
optimizer_from!(SGD, RMSprop, Adam, Adagrad, SparseAdam);

impl Optimizer {
    /// Keras' class name (`"RMSprop"`).
    pub fn class_name(&self) -> &'static str {
        match self {
            Optimizer::SGD(_) => "SGD",
            Optimizer::RMSprop(_) => "RMSprop",
            Optimizer::Adam(_) => "Adam",
            Optimizer::Adagrad(_) => "Adagrad",
            Optimizer::SparseAdam(_) => "SparseAdam",
        }
    }

    /// The same optimizer with another learning rate.
    pub fn with_learning_rate(self, learning_rate: f32) -> Optimizer {
        match self {
            Optimizer::SGD(o) => Optimizer::SGD(SGD { learning_rate, ..o }),
            Optimizer::RMSprop(o) => Optimizer::RMSprop(RMSprop { learning_rate, ..o }),
            Optimizer::Adam(o) => Optimizer::Adam(Adam { learning_rate, ..o }),
            Optimizer::Adagrad(o) => Optimizer::Adagrad(Adagrad { learning_rate, ..o }),
            Optimizer::SparseAdam(o) => Optimizer::SparseAdam(SparseAdam { learning_rate, ..o }),
        }
    }

    /// The learning rate.
    pub fn learning_rate(&self) -> f32 {
        match self {
            Optimizer::SGD(o) => o.learning_rate,
            Optimizer::RMSprop(o) => o.learning_rate,
            Optimizer::Adam(o) => o.learning_rate,
            Optimizer::Adagrad(o) => o.learning_rate,
            Optimizer::SparseAdam(o) => o.learning_rate,
        }
    }

    /// Checks the parameters against the ranges Keras accepts.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the parameter: a negative or non-finite learning
    /// rate, momentum outside `[0, 1]`, `rho`/`beta_1`/`beta_2` outside `[0, 1)`, a negative
    /// `epsilon` or `initial_accumulator_value`.
    pub fn validate(&self) -> Result<()> {
        let owner = format!("{} optimizer", self.class_name());
        let at_least_zero = |name: &str, v: f32| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(Error::invalid_argument(
                    &owner,
                    name,
                    v,
                    "a finite number >= 0",
                ))
            }
        };
        let unit_closed = |name: &str, v: f32| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(Error::invalid_argument(
                    &owner,
                    name,
                    v,
                    "a number in [0, 1]",
                ))
            }
        };
        let unit_open = |name: &str, v: f32| {
            if (0.0..1.0).contains(&v) {
                Ok(())
            } else {
                Err(Error::invalid_argument(
                    &owner,
                    name,
                    v,
                    "a number in [0, 1)",
                ))
            }
        };
        at_least_zero("learning_rate", self.learning_rate())?;
        match self {
            Optimizer::SGD(o) => unit_closed("momentum", o.momentum),
            Optimizer::RMSprop(o) => {
                unit_open("rho", o.rho)?;
                unit_closed("momentum", o.momentum)?;
                at_least_zero("epsilon", o.epsilon)
            }
            Optimizer::Adam(o) => {
                unit_open("beta_1", o.beta_1)?;
                unit_open("beta_2", o.beta_2)?;
                at_least_zero("epsilon", o.epsilon)
            }
            Optimizer::Adagrad(o) => {
                at_least_zero("initial_accumulator_value", o.initial_accumulator_value)?;
                at_least_zero("epsilon", o.epsilon)
            }
            Optimizer::SparseAdam(o) => {
                unit_open("beta_1", o.beta_1)?;
                unit_open("beta_2", o.beta_2)?;
                at_least_zero("epsilon", o.epsilon)
            }
        }
    }
}

impl FromStr for Optimizer {
    type Err = Error;

    /// Keras' names, case-insensitive as in Keras: `"sgd"`, `"rmsprop"`, `"adam"`,
    /// `"adagrad"`, with Keras' default parameters; and PyTorch's `"sparseadam"` (also
    /// `"sparse_adam"`), with PyTorch's.
    ///
    /// # Errors
    /// [`Error::UnknownName`] listing the accepted names.
    fn from_str(name: &str) -> Result<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "sgd" => Ok(SGD::default().into()),
            "rmsprop" => Ok(RMSprop::default().into()),
            "adam" => Ok(Adam::default().into()),
            "adagrad" => Ok(Adagrad::default().into()),
            "sparseadam" | "sparse_adam" => Ok(SparseAdam::default().into()),
            _ => Err(Error::UnknownName {
                kind: "optimizer",
                name: name.to_string(),
                valid: vec!["sgd", "rmsprop", "adam", "adagrad", "sparseadam"],
            }),
        }
    }
}

impl fmt::Display for Optimizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.class_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_give_keras_defaults() {
        assert_eq!(
            "RMSprop".parse::<Optimizer>().ok(),
            Some(Optimizer::RMSprop(RMSprop::default()))
        );
        assert_eq!(
            "sgd".parse::<Optimizer>().ok(),
            Some(Optimizer::SGD(SGD::new(0.01)))
        );
        assert!(matches!(
            "adamw".parse::<Optimizer>(),
            Err(Error::UnknownName { .. })
        ));
    }

    #[test]
    fn out_of_range_parameters_are_named() {
        let err = Optimizer::from(RMSprop::default().rho(1.0))
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("`rho`"), "{err}");
        let err = Optimizer::from(SGD::new(-0.1)).validate().unwrap_err();
        assert!(err.to_string().contains("`learning_rate`"), "{err}");
        assert!(
            Optimizer::from(Adam::default().beta_2(f32::NAN))
                .validate()
                .is_err()
        );
        assert!(Optimizer::from(Adagrad::default()).validate().is_ok());
    }

    #[test]
    fn one_minus_beta_is_computed_on_the_written_decimal_as_keras_does() {
        assert_eq!(complement(0.999), 0.001f32);
        assert_eq!(complement(0.9), 0.1f32);
        assert_ne!(1.0 - 0.999f32, 0.001f32, "what plain f32 arithmetic gives");
        assert_eq!(complement(0.0), 1.0);
    }

    #[test]
    fn sparse_adam_is_not_a_lazy_adam_preset() {
        // Keras' float32 bias correction moves the step size by more than float32 rounding.
        let pytorch = sparse_adam_step_size(&SparseAdam::default(), 1);
        let keras = adam_step_size(&Adam::default().lazy(true).epsilon(1e-8), 1);
        assert!(
            ((pytorch - keras) / pytorch).abs() > 1e-6,
            "{pytorch} vs {keras}"
        );
        // PyTorch's value: 1e-3 * sqrt(1 - 0.999) / (1 - 0.9), in double, then float32.
        let expected = (1e-3f64 * (1.0f64 - 0.999).sqrt() / (1.0 - 0.9)) as f32;
        assert_eq!(pytorch, expected);
        assert_eq!(
            "SparseAdam".parse::<Optimizer>().ok(),
            Some(Optimizer::SparseAdam(SparseAdam::default()))
        );
    }

    #[test]
    fn slots_that_do_not_fit_in_memory_are_errors() {
        // 2^36 floats per slot (256 GiB): an error naming the optimizer and the shape.
        for optimizer in [
            Optimizer::from(Adam::default()),
            Optimizer::from(RMSprop::default()),
            Optimizer::from(Adagrad::default()),
            Optimizer::from(SparseAdam::default()),
        ] {
            let err = optimizer.new_state(&[1 << 30, 64]).err().unwrap();
            assert!(matches!(err, Error::Allocation { .. }), "{err}");
            assert!(err.to_string().contains("(1073741824, 64)"), "{err}");
        }
        let adagrad = Optimizer::from(Adagrad::default());
        let state = adagrad.new_state(&[3, 2]).unwrap();
        assert!(
            state.first.iter().all(|&v| v == 0.1),
            "Keras' initial accumulator"
        );
    }
}

// ----- the update equations -----------------------------------------------------------------
//
// One set of per-element equations serves the dense and the row-sparse update, so both give
// the same numbers: Keras' dense branch for a whole weight, its `IndexedSlices` branch for
// the rows a batch touched. Where Keras also changes rows a sparse step does not touch
// (RMSprop's velocity decays by `rho` every step; momentum keeps moving a row), the rows are
// brought up to date lazily, in closed form, when they are next touched or read.

/// The optimizer's state for one weight (Keras' slot variables).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WeightState {
    /// `(rows, columns)` of the weight, viewed as a matrix (a vector is one row).
    columns: usize,
    /// SGD momentum; RMSprop velocity; Adam first moment; Adagrad accumulator.
    first: Vec<f32>,
    /// RMSprop momentum; Adam second moment.
    second: Vec<f32>,
    /// RMSprop average gradient (`centered`); Adam `v_hat` (`amsgrad`).
    third: Vec<f32>,
    /// For row-sparse updates with state that changes on untouched rows: the last step at
    /// which each row is up to date.
    row_step: Vec<u64>,
}

/// How many rows ahead a row-sparse update prefetches: far enough for the lines to arrive
/// while the rows in between are updated.
const PREFETCH_ROWS_AHEAD: usize = 4;

/// A contiguous range of a weight's rows with their slots: the part of an update one
/// thread owns. Slot arrays a weight does not have are empty here too.
struct RowRange<'a> {
    /// The first row of the range.
    start: usize,
    /// The row after the last.
    end: usize,
    columns: usize,
    weight: &'a mut [f32],
    first: &'a mut [f32],
    second: &'a mut [f32],
    third: &'a mut [f32],
    row_step: &'a mut [u64],
}

impl<'a> RowRange<'a> {
    /// Every row of `weight`.
    fn whole(weight: &'a mut [f32], state: &'a mut WeightState) -> Self {
        let columns = state.columns.max(1);
        RowRange {
            start: 0,
            end: weight.len() / columns,
            columns,
            weight,
            first: &mut state.first,
            second: &mut state.second,
            third: &mut state.third,
            row_step: &mut state.row_step,
        }
    }

    fn holds(&self, row: usize) -> bool {
        (self.start..self.end).contains(&row)
    }

    /// The rows before `row` and the rows from `row` on (`row` within the range).
    #[cfg(feature = "rayon")]
    fn split_at(self, row: usize) -> (Self, Self) {
        let row = row.clamp(self.start, self.end);
        let values = (row - self.start) * self.columns;
        fn cut<T>(slice: &mut [T], at: usize) -> (&mut [T], &mut [T]) {
            if slice.is_empty() {
                (Default::default(), Default::default())
            } else {
                slice.split_at_mut(at)
            }
        }
        let (weight_a, weight_b) = cut(self.weight, values);
        let (first_a, first_b) = cut(self.first, values);
        let (second_a, second_b) = cut(self.second, values);
        let (third_a, third_b) = cut(self.third, values);
        let (step_a, step_b) = cut(self.row_step, row - self.start);
        (
            RowRange {
                start: self.start,
                end: row,
                columns: self.columns,
                weight: weight_a,
                first: first_a,
                second: second_a,
                third: third_a,
                row_step: step_a,
            },
            RowRange {
                start: row,
                end: self.end,
                columns: self.columns,
                weight: weight_b,
                first: first_b,
                second: second_b,
                third: third_b,
                row_step: step_b,
            },
        )
    }

    /// Up to `parts` ranges holding about as many of `rows` each (split at quantiles of a
    /// sample of `rows`).
    #[cfg(feature = "rayon")]
    fn split_evenly(self, rows: &[usize], parts: usize) -> Vec<Self> {
        let parts = parts.clamp(1, 64);
        let stride = (rows.len() / 1024).max(1);
        let mut sample: Vec<usize> = rows.iter().step_by(stride).copied().collect();
        sample.sort_unstable();
        let mut ranges = Vec::with_capacity(parts);
        let mut rest = self;
        for part in 1..parts {
            let Some(&boundary) = sample.get(part * sample.len() / parts) else {
                break;
            };
            let (head, tail) = rest.split_at(boundary);
            ranges.push(head);
            rest = tail;
        }
        ranges.push(rest);
        ranges
    }

    /// The values of row `row` (held by this range) and its slots.
    fn row(&mut self, row: usize) -> (&mut [f32], Slots<'_>) {
        let c = self.columns;
        let range = (row - self.start) * c..(row - self.start + 1) * c;
        fn part(values: &mut [f32], range: std::ops::Range<usize>) -> &mut [f32] {
            if values.is_empty() {
                &mut []
            } else {
                &mut values[range]
            }
        }
        (
            part(self.weight, range.clone()),
            Slots {
                first: part(self.first, range.clone()),
                second: part(self.second, range.clone()),
                third: part(self.third, range),
            },
        )
    }

    /// Asks for the cache lines of row `row` (its values, slots and step), if this range
    /// holds it: a hint, with no effect on any value.
    fn prefetch(&self, row: usize) {
        if !self.holds(row) {
            return;
        }
        let c = self.columns;
        let at = (row - self.start) * c;
        for values in [&*self.weight, &*self.first, &*self.second, &*self.third] {
            if let Some(values) = values.get(at..at + c) {
                crate::kernels::prefetch(values);
            }
        }
        if let Some(step) = self.row_step.get(row - self.start..=row - self.start) {
            crate::kernels::prefetch(step);
        }
    }

    /// The last step row `row` is up to date at, if the optimizer keeps it.
    fn row_step(&mut self, row: usize) -> Option<&mut u64> {
        self.row_step.get_mut(row.checked_sub(self.start)?)
    }
}

/// The per-element state slices of one row.
struct Slots<'a> {
    first: &'a mut [f32],
    second: &'a mut [f32],
    third: &'a mut [f32],
}

/// The constants of one step: Adam's step size and `1 - beta_1`, `1 - beta_2`; RMSprop's
/// `1 - rho` (in `first`).
struct StepFactors {
    alpha: f32,
    first: f32,
    second: f32,
}

/// `1 - beta` as Keras computes it: on the Python float written in the code (here the
/// shortest decimal that reads back as `beta`: `0.999`), in double precision, rounded to f32
/// afterwards. In f32, `1 - 0.999` is 0.00099998713; Keras' factor is 0.001. The difference
/// compounds: a dense Adam recommender drifted 2.5e-5 (relative) from tf_keras' weights in
/// three epochs before this.
fn complement(beta: f32) -> f32 {
    let written: f64 = beta.to_string().parse().unwrap_or(f64::from(beta));
    (1.0 - written) as f32
}

/// Adam's step size at step `step` (from 1): `lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)`.
fn adam_step_size(o: &Adam, step: u64) -> f32 {
    let t = step as f32;
    o.learning_rate * (1.0 - o.beta_2.powf(t)).sqrt() / (1.0 - o.beta_1.powf(t))
}

/// A parameter as the decimal the user wrote (the shortest decimal that reads back as `value`:
/// `0.999`), in double precision, as PyTorch's Python floats hold it.
fn written(value: f32) -> f64 {
    value.to_string().parse().unwrap_or(f64::from(value))
}

/// PyTorch's `SparseAdam` step size at step `step` (from 1), computed in double precision on
/// the written parameters as Python does: `lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)`, then
/// rounded to float32 as PyTorch's kernel rounds the Python scalar.
fn sparse_adam_step_size(o: &SparseAdam, step: u64) -> f32 {
    let t = i32::try_from(step).unwrap_or(i32::MAX);
    let (b1, b2) = (written(o.beta_1), written(o.beta_2));
    (written(o.learning_rate) * (1.0 - b2.powi(t)).sqrt() / (1.0 - b1.powi(t))) as f32
}

/// `mu + mu^2 + ... + mu^k` (`k` for `mu == 1`).
fn geometric_sum(mu: f32, k: u64) -> f32 {
    let (mu, k) = (f64::from(mu), k as f64);
    if (1.0 - mu).abs() < 1e-12 {
        k as f32
    } else {
        (mu * (1.0 - mu.powf(k)) / (1.0 - mu)) as f32
    }
}

fn power(base: f32, k: u64) -> f32 {
    f64::from(base).powf(k as f64) as f32
}

impl Optimizer {
    /// Fresh state for a weight of `shape`: up to three slot arrays of the weight's size
    /// (lazily zeroed pages, so rows that training never touches cost no memory).
    ///
    /// # Errors
    /// [`Error::Allocation`] when a slot does not fit in memory.
    pub(crate) fn new_state(&self, shape: &[usize]) -> Result<WeightState> {
        let context = || {
            format!(
                "{} optimizer: slots for a weight of shape {}",
                self.class_name(),
                Dims(shape)
            )
        };
        let len = checked_size(shape, context)?;
        let columns = match shape {
            [] => 1,
            [n] => (*n).max(1),
            [_, rest @ ..] => rest.iter().product::<usize>().max(1),
        };
        let slot = |wanted: bool| -> Result<Vec<f32>> {
            if wanted {
                try_zeroed(len, context)
            } else {
                Ok(Vec::new())
            }
        };
        let (first, second, third) = match self {
            Optimizer::SGD(o) => (slot(o.momentum > 0.0)?, Vec::new(), Vec::new()),
            Optimizer::RMSprop(o) => (slot(true)?, slot(o.momentum > 0.0)?, slot(o.centered)?),
            Optimizer::Adam(o) => (slot(true)?, slot(true)?, slot(o.amsgrad)?),
            Optimizer::SparseAdam(_) => (slot(true)?, slot(true)?, Vec::new()),
            Optimizer::Adagrad(o) => {
                let mut accumulator = slot(true)?;
                if o.initial_accumulator_value != 0.0 {
                    accumulator.fill(o.initial_accumulator_value);
                }
                (accumulator, Vec::new(), Vec::new())
            }
        };
        let rows = len / columns;
        let mut row_step: Vec<u64> = Vec::new();
        if self.changes_untouched_rows() {
            row_step
                .try_reserve_exact(rows)
                .map_err(|_| Error::Allocation {
                    context: context(),
                    bytes: rows.saturating_mul(8),
                })?;
            row_step.resize(rows, 0);
        }
        Ok(WeightState {
            columns,
            first,
            second,
            third,
            row_step,
        })
    }

    /// Whether Keras' sparse update changes state or weights of rows a step does not touch,
    /// in a way that has a closed form (applied lazily).
    fn changes_untouched_rows(&self) -> bool {
        match self {
            Optimizer::SGD(o) => o.momentum > 0.0,
            Optimizer::RMSprop(_) => true,
            Optimizer::Adam(_) | Optimizer::Adagrad(_) | Optimizer::SparseAdam(_) => false,
        }
    }

    /// Whether Keras moves the weights of rows a step does not touch (momentum), so that the
    /// lazily kept rows must be brought up to date before the weights are read.
    pub(crate) fn moves_untouched_weights(&self) -> bool {
        match self {
            Optimizer::SGD(o) => o.momentum > 0.0,
            Optimizer::RMSprop(o) => o.momentum > 0.0,
            Optimizer::Adam(_) | Optimizer::Adagrad(_) | Optimizer::SparseAdam(_) => false,
        }
    }

    /// Whether a row-sparse gradient must be applied densely to match Keras: Adam moves
    /// every row (its moments decay) and has no closed form, unless `lazy`.
    pub(crate) fn needs_dense_update(&self) -> bool {
        matches!(self, Optimizer::Adam(o) if !o.lazy)
    }

    /// Brings `rows` up to date through step `to`: applies, in closed form, what Keras'
    /// sparse update does to a row during the steps that did not touch it.
    pub(crate) fn catch_up(
        &self,
        weight: &mut [f32],
        state: &mut WeightState,
        rows: impl IntoIterator<Item = usize>,
        to: u64,
    ) {
        if state.row_step.is_empty() {
            return;
        }
        let mut range = RowRange::whole(weight, state);
        for row in rows {
            self.catch_up_row(&mut range, row, to);
        }
    }

    /// [`Optimizer::catch_up`] of one row of `range`.
    fn catch_up_row(&self, range: &mut RowRange<'_>, row: usize, to: u64) {
        let Some(row_step) = range.row_step(row) else {
            return;
        };
        let missed = to.saturating_sub(*row_step);
        *row_step = to;
        if missed == 0 {
            return;
        }
        let (w, slots) = range.row(row);
        match self {
            Optimizer::SGD(o) => {
                // m_i = m * mu^i; w += m_i (Nesterov: w += mu * m_i), for i = 1..=k.
                let moved =
                    geometric_sum(o.momentum, missed) * if o.nesterov { o.momentum } else { 1.0 };
                let decay = power(o.momentum, missed);
                for (w, m) in w.iter_mut().zip(slots.first.iter_mut()) {
                    *w += *m * moved;
                    *m *= decay;
                }
            }
            Optimizer::RMSprop(o) => {
                let decay = power(o.rho, missed);
                slots.first.iter_mut().for_each(|v| *v *= decay);
                slots.third.iter_mut().for_each(|a| *a *= decay);
                if o.momentum > 0.0 {
                    let moved = geometric_sum(o.momentum, missed);
                    let decay = power(o.momentum, missed);
                    for (w, m) in w.iter_mut().zip(slots.second.iter_mut()) {
                        *w -= *m * moved;
                        *m *= decay;
                    }
                }
            }
            Optimizer::Adam(_) | Optimizer::Adagrad(_) | Optimizer::SparseAdam(_) => {}
        }
    }

    /// Step `step` of one weight with its prepared gradient and its slots: a row gradient
    /// updates only its rows (bringing them up to date first), a dense one the whole weight;
    /// then the weight's constraint projects it (Keras applies constraints after the
    /// update).
    ///
    /// # Errors
    /// The constraint's errors (its axes were checked before the step, so none in training).
    pub(crate) fn apply_update(
        &self,
        weight: &mut Weight,
        gradient: &Gradient,
        state: &mut WeightState,
        step: u64,
    ) -> Result<()> {
        if let Some(values) = weight.as_slice_mut() {
            match gradient {
                Gradient::Rows {
                    rows,
                    values: rows_gradient,
                } => {
                    let flat = rows_gradient.as_standard_layout();
                    self.update_rows(
                        values,
                        rows,
                        flat.as_slice().unwrap_or_default(),
                        state,
                        step,
                    );
                }
                Gradient::Dense(full) => {
                    self.catch_up_all(values, state, step - 1);
                    let full = full.as_standard_layout();
                    self.update_dense(values, full.as_slice().unwrap_or_default(), state, step);
                }
            }
        }
        if let (Some(constraint), Some(mut values)) = (weight.constraint(), weight.view_mut()) {
            constraint.apply(&mut values)?;
        }
        Ok(())
    }

    /// Marks every row of a frozen weight as up to date through step `to` without changing
    /// it: Keras never touches a frozen variable, and its rows were brought up to date when
    /// the call that last trained it ended, so unfreezing must not replay the frozen steps.
    pub(crate) fn skip_frozen(&self, state: &mut WeightState, to: u64) {
        state.row_step.iter_mut().for_each(|s| *s = (*s).max(to));
    }

    /// Brings every row up to date through step `to` (before the weights are read).
    pub(crate) fn catch_up_all(&self, weight: &mut [f32], state: &mut WeightState, to: u64) {
        let rows = state.row_step.len();
        self.catch_up(weight, state, 0..rows, to);
    }

    /// Step `step` (counted from 1) on the whole weight: Keras' dense update.
    pub(crate) fn update_dense(
        &self,
        weight: &mut [f32],
        gradient: &[f32],
        state: &mut WeightState,
        step: u64,
    ) {
        let c = state.columns;
        let factors = self.factors(step);
        let mut range = RowRange::whole(weight, state);
        for row in 0..range.end {
            let (w, slots) = range.row(row);
            self.update_row(w, &gradient[row * c..(row + 1) * c], slots, &factors);
        }
        state.row_step.iter_mut().for_each(|s| *s = step);
    }

    /// Step `step` on the given rows only (distinct, in any order): Keras' `IndexedSlices`
    /// update. Each row is first brought up to date through `step - 1` (the decay it missed
    /// while other steps did not touch it). Large updates are split across threads by
    /// ranges of rows (each thread owns the rows, and their slots, of its range).
    pub(crate) fn update_rows(
        &self,
        weight: &mut [f32],
        rows: &[usize],
        values: &[f32],
        state: &mut WeightState,
        step: u64,
    ) {
        let c = state.columns;
        let factors = self.factors(step);
        let update = |range: &mut RowRange<'_>| {
            for (k, &row) in rows.iter().enumerate() {
                if !range.holds(row) {
                    continue;
                }
                // Rows are scattered over the table: ask for a later row's lines while this
                // one is updated (measured: lazy Adam 13.0 -> 9.5 ms, RMSprop 11.0 -> 7.7 ms
                // per step on a 2M x 64 table, `benches/training.rs`).
                if let Some(&ahead) = rows.get(k + PREFETCH_ROWS_AHEAD) {
                    range.prefetch(ahead);
                }
                self.catch_up_row(range, row, step - 1);
                let (w, slots) = range.row(row);
                self.update_row(w, &values[k * c..(k + 1) * c], slots, &factors);
                if let Some(s) = range.row_step(row) {
                    *s = step;
                }
            }
        };
        let whole = RowRange::whole(weight, state);
        #[cfg(feature = "rayon")]
        if crate::kernels::in_parallel(values.len()) {
            use rayon::prelude::*;
            let mut ranges = whole.split_evenly(rows, rayon::current_num_threads());
            ranges.par_iter_mut().for_each(update);
            return;
        }
        let mut whole = whole;
        update(&mut whole);
    }

    /// The per-element equations of step `step` (Keras' `tf_keras` optimizers).
    /// The per-step constants of the update, computed once per step rather than per row.
    fn factors(&self, step: u64) -> StepFactors {
        match self {
            Optimizer::Adam(o) => StepFactors {
                alpha: adam_step_size(o, step),
                first: complement(o.beta_1),
                second: complement(o.beta_2),
            },
            Optimizer::RMSprop(o) => StepFactors {
                alpha: o.learning_rate,
                first: complement(o.rho),
                second: 0.0,
            },
            Optimizer::SGD(o) => StepFactors {
                alpha: o.learning_rate,
                first: 0.0,
                second: 0.0,
            },
            Optimizer::Adagrad(o) => StepFactors {
                alpha: o.learning_rate,
                first: 0.0,
                second: 0.0,
            },
            Optimizer::SparseAdam(o) => StepFactors {
                alpha: sparse_adam_step_size(o, step),
                first: complement(o.beta_1),
                second: complement(o.beta_2),
            },
        }
    }

    fn update_row(&self, w: &mut [f32], g: &[f32], slots: Slots<'_>, factors: &StepFactors) {
        match self {
            Optimizer::SGD(o) => {
                let lr = o.learning_rate;
                if o.momentum > 0.0 {
                    for ((w, &g), m) in w.iter_mut().zip(g).zip(slots.first.iter_mut()) {
                        *m = o.momentum * *m - lr * g;
                        *w += if o.nesterov {
                            o.momentum * *m - lr * g
                        } else {
                            *m
                        };
                    }
                } else {
                    for (w, &g) in w.iter_mut().zip(g) {
                        *w -= lr * g;
                    }
                }
            }
            // The common case, as one branch-free loop the compiler vectorizes.
            Optimizer::RMSprop(o) if !o.centered && o.momentum <= 0.0 => {
                let (lr, rho, epsilon) = (o.learning_rate, o.rho, o.epsilon);
                let decay = factors.first;
                for ((w, &g), v) in w.iter_mut().zip(g).zip(slots.first.iter_mut()) {
                    *v = rho * *v + decay * g * g;
                    *w -= lr * g / (*v + epsilon).sqrt();
                }
            }
            Optimizer::RMSprop(o) => {
                let (lr, rho) = (o.learning_rate, o.rho);
                let decay = factors.first;
                for (i, (w, &g)) in w.iter_mut().zip(g).enumerate() {
                    let v = &mut slots.first[i];
                    *v = rho * *v + decay * g * g;
                    let denominator = if o.centered {
                        let a = &mut slots.third[i];
                        *a = rho * *a + decay * g;
                        *v - *a * *a + o.epsilon
                    } else {
                        *v + o.epsilon
                    };
                    let increment = lr * g / denominator.sqrt();
                    if o.momentum > 0.0 {
                        let m = &mut slots.second[i];
                        *m = o.momentum * *m + increment;
                        *w -= *m;
                    } else {
                        *w -= increment;
                    }
                }
            }
            Optimizer::Adam(o) if !o.amsgrad => {
                let (alpha, b1, b2, epsilon) =
                    (factors.alpha, factors.first, factors.second, o.epsilon);
                for (((w, &g), m), v) in w
                    .iter_mut()
                    .zip(g)
                    .zip(slots.first.iter_mut())
                    .zip(slots.second.iter_mut())
                {
                    *m += (g - *m) * b1;
                    *v += (g * g - *v) * b2;
                    *w -= (*m * alpha) / (v.sqrt() + epsilon);
                }
            }
            Optimizer::Adam(o) => {
                let (alpha, b1, b2) = (factors.alpha, factors.first, factors.second);
                for (i, (w, &g)) in w.iter_mut().zip(g).enumerate() {
                    let m = &mut slots.first[i];
                    *m += (g - *m) * b1;
                    let v = &mut slots.second[i];
                    *v += (g * g - *v) * b2;
                    let v = if o.amsgrad {
                        let v_hat = &mut slots.third[i];
                        *v_hat = v_hat.max(*v);
                        *v_hat
                    } else {
                        *v
                    };
                    *w -= (*m * alpha) / (v.sqrt() + o.epsilon);
                }
            }
            Optimizer::SparseAdam(o) => {
                // PyTorch's order of operations: `numer / denom`, then times the step size.
                let (alpha, b1, b2, epsilon) =
                    (factors.alpha, factors.first, factors.second, o.epsilon);
                for (((w, &g), m), v) in w
                    .iter_mut()
                    .zip(g)
                    .zip(slots.first.iter_mut())
                    .zip(slots.second.iter_mut())
                {
                    *m += (g - *m) * b1;
                    *v += (g * g - *v) * b2;
                    *w += -alpha * (*m / (v.sqrt() + epsilon));
                }
            }
            Optimizer::Adagrad(o) => {
                for ((w, &g), acc) in w.iter_mut().zip(g).zip(slots.first.iter_mut()) {
                    *acc += g * g;
                    *w -= o.learning_rate * g / (*acc + o.epsilon).sqrt();
                }
            }
        }
    }
}
