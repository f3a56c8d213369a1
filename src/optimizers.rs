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

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

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
optimizer_from!(SGD, RMSprop, Adam, Adagrad);

impl Optimizer {
    /// Keras' class name (`"RMSprop"`).
    pub fn class_name(&self) -> &'static str {
        match self {
            Optimizer::SGD(_) => "SGD",
            Optimizer::RMSprop(_) => "RMSprop",
            Optimizer::Adam(_) => "Adam",
            Optimizer::Adagrad(_) => "Adagrad",
        }
    }

    /// The learning rate.
    pub fn learning_rate(&self) -> f32 {
        match self {
            Optimizer::SGD(o) => o.learning_rate,
            Optimizer::RMSprop(o) => o.learning_rate,
            Optimizer::Adam(o) => o.learning_rate,
            Optimizer::Adagrad(o) => o.learning_rate,
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
        }
    }
}

impl FromStr for Optimizer {
    type Err = Error;

    /// Keras' names, case-insensitive as in Keras: `"sgd"`, `"rmsprop"`, `"adam"`,
    /// `"adagrad"`, with Keras' default parameters.
    ///
    /// # Errors
    /// [`Error::UnknownName`] listing the accepted names.
    fn from_str(name: &str) -> Result<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "sgd" => Ok(SGD::default().into()),
            "rmsprop" => Ok(RMSprop::default().into()),
            "adam" => Ok(Adam::default().into()),
            "adagrad" => Ok(Adagrad::default().into()),
            _ => Err(Error::UnknownName {
                kind: "optimizer",
                name: name.to_string(),
                valid: vec!["sgd", "rmsprop", "adam", "adagrad"],
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
}
