//! Keras initializers: the same names, the same formulas, seedable and reproducible.
//!
//! Every random initializer draws from [`ChaCha8Rng`], a named, portable generator: the same
//! seed gives the same table on every platform and every run. Without a seed the generator is
//! seeded from the operating system, as Keras does without `set_random_seed`. The numbers
//! differ from Keras' (which uses other generators); the distributions are Keras'.
//!
//! Fans are computed from the shape as Keras' `compute_fans` does: for an embedding table
//! `(input_dim, output_dim)`, `fan_in = input_dim` and `fan_out = output_dim`.
//!
//! ```
//! use ndkeras::prelude::*;
//!
//! let init: Initializer = "glorot_uniform".parse()?;
//! let table = init.with_seed(7).initialize(&[1000, 64])?;
//! let limit = (6.0f64 / (1000.0 + 64.0)).sqrt() as f32;
//! assert!(table.iter().all(|v| v.abs() <= limit));
//! # Ok::<(), ndkeras::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use ndarray::{ArrayD, IxDyn};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution as _, StandardNormal, Uniform};

use crate::error::{Dims, Error, Result};
use crate::storage::try_zeroed;
use crate::tensor::checked_size;

/// `1 / std` of a standard normal truncated to `[-2, 2]`: Keras divides the stddev by this
/// constant so that a truncated normal `VarianceScaling` keeps the requested variance.
pub const TRUNCATION_CORRECTION: f64 = 0.879_625_661_034_239_8;

/// Which fan `VarianceScaling` divides the scale by (Keras' `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FanMode {
    /// `"fan_in"`: number of input units (`input_dim` for an embedding table).
    FanIn,
    /// `"fan_out"`: number of output units (`output_dim` for an embedding table).
    FanOut,
    /// `"fan_avg"`: the mean of both.
    FanAvg,
}

/// The distribution `VarianceScaling` draws from (Keras' `distribution`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Distribution {
    /// `"truncated_normal"` (Keras also accepts `"normal"` for it): re-drawn beyond 2 stddev,
    /// stddev corrected by [`TRUNCATION_CORRECTION`].
    TruncatedNormal,
    /// `"untruncated_normal"`: a plain normal.
    UntruncatedNormal,
    /// `"uniform"`: `U(-sqrt(3 s), sqrt(3 s))`.
    Uniform,
}

/// How a weight array is filled when a layer is built.
///
/// Variants and parameters carry Keras' names; [`Initializer::default()`] is Keras' default
/// for embeddings, `RandomUniform(minval=-0.05, maxval=0.05)`. Parameters are checked by
/// [`Initializer::validate`], which [`Initializer::initialize`] (and so every layer build)
/// calls first.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Initializer {
    /// All zeros (`"zeros"`, `"zero"`).
    Zeros,
    /// All ones (`"ones"`, `"one"`).
    Ones,
    /// A constant: a scalar (a rank-0 or one-element array) fills the table, a full array must
    /// have exactly the table's shape. Keras 2 would reshape an array of the same size and
    /// another shape; ndkeras refuses, since that silently scrambles rows.
    Constant(ArrayD<f32>),
    /// `U(minval, maxval)` (`"uniform"`, `"random_uniform"`).
    RandomUniform {
        /// Lower bound (inclusive). Keras default: -0.05.
        minval: f64,
        /// Upper bound (exclusive). Keras default: 0.05.
        maxval: f64,
        /// Seed for a reproducible table.
        seed: Option<u64>,
    },
    /// `N(mean, stddev)` (`"normal"`, `"random_normal"`).
    RandomNormal {
        /// Mean. Keras default: 0.
        mean: f64,
        /// Standard deviation. Keras default: 0.05.
        stddev: f64,
        /// Seed for a reproducible table.
        seed: Option<u64>,
    },
    /// `N(mean, stddev)` with values beyond 2 stddev re-drawn (`"truncated_normal"`).
    TruncatedNormal {
        /// Mean. Keras default: 0.
        mean: f64,
        /// Standard deviation before truncation. Keras default: 0.05.
        stddev: f64,
        /// Seed for a reproducible table.
        seed: Option<u64>,
    },
    /// Scale divided by a fan, then drawn from `distribution` (`"variance_scaling"`).
    VarianceScaling {
        /// Scale, `> 0`. Keras default: 1.
        scale: f64,
        /// Which fan to divide by. Keras default: `FanIn`.
        mode: FanMode,
        /// Distribution. Keras default: `TruncatedNormal`.
        distribution: Distribution,
        /// Seed for a reproducible table.
        seed: Option<u64>,
    },
    /// `VarianceScaling(1, fan_avg, uniform)` (`"glorot_uniform"`).
    GlorotUniform {
        /// Seed for a reproducible table.
        seed: Option<u64>,
    },
    /// `VarianceScaling(1, fan_avg, truncated_normal)` (`"glorot_normal"`).
    GlorotNormal {
        /// Seed for a reproducible table.
        seed: Option<u64>,
    },
    /// `VarianceScaling(2, fan_in, uniform)` (`"he_uniform"`).
    HeUniform {
        /// Seed for a reproducible table.
        seed: Option<u64>,
    },
    /// `VarianceScaling(2, fan_in, truncated_normal)` (`"he_normal"`).
    HeNormal {
        /// Seed for a reproducible table.
        seed: Option<u64>,
    },
    /// `VarianceScaling(1, fan_in, uniform)` (`"lecun_uniform"`).
    LecunUniform {
        /// Seed for a reproducible table.
        seed: Option<u64>,
    },
    /// `VarianceScaling(1, fan_in, truncated_normal)` (`"lecun_normal"`).
    LecunNormal {
        /// Seed for a reproducible table.
        seed: Option<u64>,
    },
    /// An orthogonal matrix times `gain` (`"orthogonal"`): the Q of a QR decomposition of a
    /// normal matrix, sign-fixed, transposed when there are fewer rows than columns.
    Orthogonal {
        /// Multiplier. Keras default: 1.
        gain: f64,
        /// Seed for a reproducible table.
        seed: Option<u64>,
    },
    /// `eye(rows, cols) * gain` (`"identity"`); 2-D shapes only, not necessarily square.
    Identity {
        /// Multiplier. Keras default: 1.
        gain: f64,
    },
}

impl Default for Initializer {
    /// Keras' default `embeddings_initializer`: `RandomUniform(minval=-0.05, maxval=0.05)`.
    fn default() -> Self {
        Initializer::RandomUniform {
            minval: -0.05,
            maxval: 0.05,
            seed: None,
        }
    }
}

/// Keras' string names (and aliases) with the initializer each one gives.
const NAMES: &[&str] = &[
    "zeros",
    "zero",
    "ones",
    "one",
    "constant",
    "uniform",
    "random_uniform",
    "normal",
    "random_normal",
    "truncated_normal",
    "variance_scaling",
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "orthogonal",
    "identity",
];

impl FromStr for Initializer {
    type Err = Error;

    /// Parses a Keras name (`"glorot_uniform"`) or class name (`"GlorotUniform"`), with Keras'
    /// default parameters.
    ///
    /// # Errors
    /// [`Error::UnknownName`] listing the accepted names.
    fn from_str(name: &str) -> Result<Self> {
        let snake = to_snake_case(name.trim());
        let seed = None;
        Ok(match snake.as_str() {
            "zeros" | "zero" => Initializer::Zeros,
            "ones" | "one" => Initializer::Ones,
            "constant" => Initializer::constant(0.0),
            "uniform" | "random_uniform" => Initializer::default(),
            "normal" | "random_normal" => Initializer::RandomNormal {
                mean: 0.0,
                stddev: 0.05,
                seed,
            },
            "truncated_normal" => Initializer::TruncatedNormal {
                mean: 0.0,
                stddev: 0.05,
                seed,
            },
            "variance_scaling" => Initializer::VarianceScaling {
                scale: 1.0,
                mode: FanMode::FanIn,
                distribution: Distribution::TruncatedNormal,
                seed,
            },
            "glorot_uniform" => Initializer::GlorotUniform { seed },
            "glorot_normal" => Initializer::GlorotNormal { seed },
            "he_uniform" => Initializer::HeUniform { seed },
            "he_normal" => Initializer::HeNormal { seed },
            "lecun_uniform" => Initializer::LecunUniform { seed },
            "lecun_normal" => Initializer::LecunNormal { seed },
            "orthogonal" => Initializer::Orthogonal { gain: 1.0, seed },
            "identity" => Initializer::Identity { gain: 1.0 },
            _ => {
                return Err(Error::UnknownName {
                    kind: "initializer",
                    name: name.to_string(),
                    valid: NAMES.to_vec(),
                });
            }
        })
    }
}

/// `"GlorotUniform"` -> `"glorot_uniform"`; snake_case names pass through unchanged.
fn to_snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

impl FromStr for FanMode {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        match name {
            "fan_in" => Ok(FanMode::FanIn),
            "fan_out" => Ok(FanMode::FanOut),
            "fan_avg" => Ok(FanMode::FanAvg),
            _ => Err(Error::UnknownName {
                kind: "VarianceScaling mode",
                name: name.to_string(),
                valid: vec!["fan_in", "fan_out", "fan_avg"],
            }),
        }
    }
}

impl FromStr for Distribution {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        match name {
            "truncated_normal" | "normal" => Ok(Distribution::TruncatedNormal),
            "untruncated_normal" => Ok(Distribution::UntruncatedNormal),
            "uniform" => Ok(Distribution::Uniform),
            _ => Err(Error::UnknownName {
                kind: "VarianceScaling distribution",
                name: name.to_string(),
                valid: vec![
                    "truncated_normal",
                    "normal",
                    "untruncated_normal",
                    "uniform",
                ],
            }),
        }
    }
}

impl fmt::Display for Initializer {
    /// Keras' class name, e.g. `RandomUniform`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.class_name())
    }
}

/// The fans of a weight shape, as Keras' `compute_fans`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fans {
    /// Input fan: `shape[0]` for a 2-D table.
    pub fan_in: f64,
    /// Output fan: `shape[1]` for a 2-D table.
    pub fan_out: f64,
}

impl Fans {
    /// Computes the fans of `shape`: scalars have fans 1, vectors `len`, matrices
    /// `(rows, cols)`, higher ranks multiply by the receptive field `prod(shape[..-2])`.
    pub fn of(shape: &[usize]) -> Fans {
        let (fan_in, fan_out) = match shape {
            [] => (1.0, 1.0),
            [n] => (*n as f64, *n as f64),
            [rows, cols] => (*rows as f64, *cols as f64),
            [field @ .., rows, cols] => {
                let receptive: f64 = field.iter().map(|&d| d as f64).product();
                (*rows as f64 * receptive, *cols as f64 * receptive)
            }
        };
        Fans { fan_in, fan_out }
    }

    fn select(self, mode: FanMode) -> f64 {
        match mode {
            FanMode::FanIn => self.fan_in,
            FanMode::FanOut => self.fan_out,
            FanMode::FanAvg => (self.fan_in + self.fan_out) / 2.0,
        }
    }
}

/// What a random initializer draws, with its parameters resolved for a shape.
enum Draw {
    Uniform { low: f64, high: f64 },
    Normal { mean: f64, stddev: f64 },
    Truncated { mean: f64, stddev: f64 },
}

impl Initializer {
    /// A scalar [`Initializer::Constant`].
    pub fn constant(value: f32) -> Self {
        Initializer::Constant(ndarray::arr0(value).into_dyn())
    }

    /// Keras' class name (`"RandomUniform"`, `"GlorotUniform"`, ...).
    pub fn class_name(&self) -> &'static str {
        match self {
            Initializer::Zeros => "Zeros",
            Initializer::Ones => "Ones",
            Initializer::Constant(_) => "Constant",
            Initializer::RandomUniform { .. } => "RandomUniform",
            Initializer::RandomNormal { .. } => "RandomNormal",
            Initializer::TruncatedNormal { .. } => "TruncatedNormal",
            Initializer::VarianceScaling { .. } => "VarianceScaling",
            Initializer::GlorotUniform { .. } => "GlorotUniform",
            Initializer::GlorotNormal { .. } => "GlorotNormal",
            Initializer::HeUniform { .. } => "HeUniform",
            Initializer::HeNormal { .. } => "HeNormal",
            Initializer::LecunUniform { .. } => "LecunUniform",
            Initializer::LecunNormal { .. } => "LecunNormal",
            Initializer::Orthogonal { .. } => "Orthogonal",
            Initializer::Identity { .. } => "Identity",
        }
    }

    /// The same initializer with `seed` (ignored by the deterministic ones).
    pub fn with_seed(mut self, new_seed: u64) -> Self {
        match &mut self {
            Initializer::RandomUniform { seed, .. }
            | Initializer::RandomNormal { seed, .. }
            | Initializer::TruncatedNormal { seed, .. }
            | Initializer::VarianceScaling { seed, .. }
            | Initializer::GlorotUniform { seed }
            | Initializer::GlorotNormal { seed }
            | Initializer::HeUniform { seed }
            | Initializer::HeNormal { seed }
            | Initializer::LecunUniform { seed }
            | Initializer::LecunNormal { seed }
            | Initializer::Orthogonal { seed, .. } => *seed = Some(new_seed),
            Initializer::Zeros
            | Initializer::Ones
            | Initializer::Constant(_)
            | Initializer::Identity { .. } => {}
        }
        self
    }

    /// The seed, for the random initializers that have one.
    pub fn seed(&self) -> Option<u64> {
        match self {
            Initializer::RandomUniform { seed, .. }
            | Initializer::RandomNormal { seed, .. }
            | Initializer::TruncatedNormal { seed, .. }
            | Initializer::VarianceScaling { seed, .. }
            | Initializer::GlorotUniform { seed }
            | Initializer::GlorotNormal { seed }
            | Initializer::HeUniform { seed }
            | Initializer::HeNormal { seed }
            | Initializer::LecunUniform { seed }
            | Initializer::LecunNormal { seed }
            | Initializer::Orthogonal { seed, .. } => *seed,
            Initializer::Zeros
            | Initializer::Ones
            | Initializer::Constant(_)
            | Initializer::Identity { .. } => None,
        }
    }

    /// Checks the parameters, independently of any shape.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for `minval > maxval`, a negative `stddev`, `scale <= 0`,
    /// any non-finite parameter or constant, and any parameter that is finite in `f64` but
    /// would give values that overflow `f32` (the table's type): a parameter beyond
    /// `f32::MAX`, or a normal distribution reaching past it within 10 standard deviations.
    /// The message shows the value as given.
    pub fn validate(&self) -> Result<()> {
        let owner = format!("{} initializer", self.class_name());
        // `{:?}` writes a float as short as it reads back (`1e300`, not 301 digits).
        let finite = |name: &str, v: f64| {
            if !v.is_finite() {
                Err(Error::invalid_argument(&owner, name, v, "a finite number"))
            } else if v.abs() > f64::from(f32::MAX) {
                Err(Error::invalid_argument(
                    &owner,
                    name,
                    format!("{v:?}"),
                    format!(
                        "a number that fits in float32, the table's type (|x| <= {:e})",
                        f32::MAX
                    ),
                ))
            } else {
                Ok(())
            }
        };
        match self {
            Initializer::Constant(value) => {
                if let Some(bad) = value.iter().find(|v| !v.is_finite()) {
                    return Err(Error::invalid_argument(
                        &owner,
                        "value",
                        bad,
                        "finite numbers",
                    ));
                }
            }
            Initializer::RandomUniform { minval, maxval, .. } => {
                finite("minval", *minval)?;
                finite("maxval", *maxval)?;
                if minval > maxval {
                    return Err(Error::invalid_argument(
                        &owner,
                        "minval",
                        minval,
                        format!("minval <= maxval (maxval = {maxval})"),
                    ));
                }
            }
            Initializer::RandomNormal { mean, stddev, .. }
            | Initializer::TruncatedNormal { mean, stddev, .. } => {
                finite("mean", *mean)?;
                finite("stddev", *stddev)?;
                if *stddev < 0.0 {
                    return Err(Error::invalid_argument(
                        &owner,
                        "stddev",
                        stddev,
                        "stddev >= 0",
                    ));
                }
                if mean.abs() + 10.0 * stddev > f64::from(f32::MAX) {
                    return Err(Error::invalid_argument(
                        &owner,
                        "stddev",
                        format!("{stddev:?}"),
                        format!(
                            "|mean| + 10 * stddev <= {:e}, so that the values drawn fit in float32 (mean = {mean:?})",
                            f32::MAX
                        ),
                    ));
                }
            }
            Initializer::VarianceScaling { scale, .. } => {
                finite("scale", *scale)?;
                if *scale <= 0.0 {
                    return Err(Error::invalid_argument(
                        &owner,
                        "scale",
                        scale,
                        "a positive float",
                    ));
                }
            }
            Initializer::Orthogonal { gain, .. } | Initializer::Identity { gain } => {
                finite("gain", *gain)?;
            }
            Initializer::Zeros
            | Initializer::Ones
            | Initializer::GlorotUniform { .. }
            | Initializer::GlorotNormal { .. }
            | Initializer::HeUniform { .. }
            | Initializer::HeNormal { .. }
            | Initializer::LecunUniform { .. }
            | Initializer::LecunNormal { .. } => {}
        }
        Ok(())
    }

    /// Creates an array of `shape` filled by this initializer (Keras' `initializer(shape)`).
    ///
    /// # Errors
    /// - the parameter errors of [`Initializer::validate`];
    /// - [`Error::InvalidArgument`] for a `Constant` array whose shape is not `shape`, and for
    ///   `Orthogonal` (rank < 2) or `Identity` (rank != 2) on a shape they do not support;
    /// - [`Error::ShapeOverflow`] / [`Error::Allocation`] when the array cannot exist.
    pub fn initialize(&self, shape: &[usize]) -> Result<ArrayD<f32>> {
        let owner = || format!("{} initializer", self.class_name());
        // Whatever the initializer refuses, refused before the array is allocated.
        let len = self.validate_for(shape)?;
        let mut values = try_zeroed(len, owner)?;
        self.initialize_into(shape, &mut values)?;
        ArrayD::from_shape_vec(IxDyn(shape), values).map_err(|_| Error::ShapeOverflow {
            context: owner(),
            shape: shape.to_vec(),
        })
    }

    /// Fills `values`, the row-major elements of an array of `shape`, as
    /// [`Initializer::initialize`] would (so a layer can fill storage it allocated itself).
    ///
    /// # Errors
    /// Those of [`Initializer::initialize`], and [`Error::InvalidArgument`] when
    /// `values.len()` is not the number of elements of `shape`.
    pub fn initialize_into(&self, shape: &[usize], values: &mut [f32]) -> Result<()> {
        let len = self.validate_for(shape)?;
        let owner = || format!("{} initializer", self.class_name());
        if values.len() != len {
            return Err(Error::invalid_argument(
                owner(),
                "values",
                values.len(),
                format!("{len} elements for shape {}", Dims(shape)),
            ));
        }
        match self {
            Initializer::Zeros => values.fill(0.0),
            Initializer::Ones => values.fill(1.0),
            Initializer::Constant(value) => {
                if value.len() == 1 {
                    values.fill(value.iter().copied().next().unwrap_or_default());
                } else {
                    values
                        .iter_mut()
                        .zip(value.iter())
                        .for_each(|(v, &c)| *v = c);
                }
            }
            Initializer::Identity { gain } => {
                values.fill(0.0);
                if let [rows, cols] = shape {
                    for i in 0..(*rows).min(*cols) {
                        values[i * cols + i] = *gain as f32;
                    }
                }
            }
            Initializer::Orthogonal { gain, .. } => {
                let cols = shape.last().copied().unwrap_or(1);
                let rows = len.checked_div(cols).unwrap_or(0);
                orthogonal(&mut self.rng(), rows, cols, *gain, values, owner)?;
            }
            _ => {
                let draw = self.draw(Fans::of(shape));
                fill_random(&mut self.rng(), &draw, values)?;
            }
        }
        Ok(())
    }

    /// Checks that this initializer can fill an array of `shape`, without filling anything:
    /// the parameters ([`Initializer::validate`]), the size, and the shapes an initializer
    /// supports (a `Constant` array of another shape, `Orthogonal` below rank 2, `Identity`
    /// other than rank 2 are errors, as Keras raises them). A layer built from explicit
    /// weights runs this check instead of the initializer, so it reports the errors Keras
    /// reports without filling a table it would overwrite at once. Returns the number of
    /// elements.
    ///
    /// # Errors
    /// Those of [`Initializer::initialize`], except allocation.
    pub fn validate_for(&self, shape: &[usize]) -> Result<usize> {
        self.validate()?;
        let owner = || format!("{} initializer", self.class_name());
        let len = checked_size(shape, owner)?;
        match self {
            Initializer::Constant(value) if value.len() != 1 && value.shape() != shape => {
                Err(Error::invalid_argument(
                    owner(),
                    "value",
                    format!("an array of shape {}", Dims(value.shape())),
                    format!("a scalar or an array of shape {}", Dims(shape)),
                ))
            }
            Initializer::Identity { .. } if shape.len() != 2 => Err(Error::invalid_argument(
                owner(),
                "shape",
                Dims(shape),
                "a 2-D shape (rows, cols)",
            )),
            Initializer::Orthogonal { .. } if shape.len() < 2 => Err(Error::invalid_argument(
                owner(),
                "shape",
                Dims(shape),
                "a shape of rank 2 or more",
            )),
            Initializer::Orthogonal { .. } if orthogonal_work(shape) > MAX_ORTHOGONAL_WORK => {
                Err(Error::invalid_argument(
                    owner(),
                    "shape",
                    Dims(shape),
                    format!(
                        "rows x cols x min(rows, cols) <= 2^36 (the QR factorisation's work, about 20 s here; this shape needs {:.1}x that, and Keras warns of slowness above 2000 x 2000): use another initializer, or give the table as `weights`",
                        orthogonal_work(shape) as f64 / MAX_ORTHOGONAL_WORK as f64
                    ),
                ))
            }
            _ => Ok(len),
        }
    }

    /// The generator: seeded when a seed is given, from the OS otherwise.
    fn rng(&self) -> ChaCha8Rng {
        match self.seed() {
            Some(seed) => ChaCha8Rng::seed_from_u64(seed),
            None => ChaCha8Rng::from_rng(&mut rand::rng()),
        }
    }

    /// The distribution of a random initializer for the given fans (Keras' formulas).
    fn draw(&self, fans: Fans) -> Draw {
        let (scale, mode, distribution) = match self {
            Initializer::RandomUniform { minval, maxval, .. } => {
                return Draw::Uniform {
                    low: *minval,
                    high: *maxval,
                };
            }
            Initializer::RandomNormal { mean, stddev, .. } => {
                return Draw::Normal {
                    mean: *mean,
                    stddev: *stddev,
                };
            }
            Initializer::TruncatedNormal { mean, stddev, .. } => {
                return Draw::Truncated {
                    mean: *mean,
                    stddev: *stddev,
                };
            }
            Initializer::VarianceScaling {
                scale,
                mode,
                distribution,
                ..
            } => (*scale, *mode, *distribution),
            Initializer::GlorotUniform { .. } => (1.0, FanMode::FanAvg, Distribution::Uniform),
            Initializer::GlorotNormal { .. } => {
                (1.0, FanMode::FanAvg, Distribution::TruncatedNormal)
            }
            Initializer::HeUniform { .. } => (2.0, FanMode::FanIn, Distribution::Uniform),
            Initializer::HeNormal { .. } => (2.0, FanMode::FanIn, Distribution::TruncatedNormal),
            Initializer::LecunUniform { .. } => (1.0, FanMode::FanIn, Distribution::Uniform),
            Initializer::LecunNormal { .. } => (1.0, FanMode::FanIn, Distribution::TruncatedNormal),
            // Deterministic initializers never get here; a zero-width uniform is all zeros.
            _ => {
                return Draw::Uniform {
                    low: 0.0,
                    high: 0.0,
                };
            }
        };
        // Keras' VarianceScaling.__call__: scale /= max(1., fan).
        let s = scale / fans.select(mode).max(1.0);
        match distribution {
            Distribution::TruncatedNormal => Draw::Truncated {
                mean: 0.0,
                stddev: s.sqrt() / TRUNCATION_CORRECTION,
            },
            Distribution::UntruncatedNormal => Draw::Normal {
                mean: 0.0,
                stddev: s.sqrt(),
            },
            Distribution::Uniform => {
                let limit = (3.0 * s).sqrt();
                Draw::Uniform {
                    low: -limit,
                    high: limit,
                }
            }
        }
    }
}

/// Largest `f32` not above `x`, so a bound computed in `f64` holds exactly after the cast.
fn f32_at_most(x: f64) -> f32 {
    let v = x as f32;
    if f64::from(v) > x { v.next_down() } else { v }
}

/// Smallest `f32` not below `x`.
fn f32_at_least(x: f64) -> f32 {
    let v = x as f32;
    if f64::from(v) < x { v.next_up() } else { v }
}

fn fill_random(rng: &mut ChaCha8Rng, draw: &Draw, values: &mut [f32]) -> Result<()> {
    match *draw {
        Draw::Uniform { low, high } => {
            let (low, high) = (f32_at_least(low), f32_at_most(high));
            if low >= high {
                values.fill(low);
                return Ok(());
            }
            let uniform = Uniform::new(low, high).map_err(|e| {
                Error::invalid_argument("RandomUniform initializer", "minval", low, e.to_string())
            })?;
            values.iter_mut().for_each(|v| *v = uniform.sample(rng));
        }
        Draw::Normal { mean, stddev } => {
            for v in values.iter_mut() {
                let z: f64 = StandardNormal.sample(rng);
                *v = (mean + stddev * z) as f32;
            }
        }
        Draw::Truncated { mean, stddev } => {
            let (low, high) = (
                f32_at_least(mean - 2.0 * stddev),
                f32_at_most(mean + 2.0 * stddev),
            );
            for v in values.iter_mut() {
                let z = loop {
                    let z: f64 = StandardNormal.sample(rng);
                    if z.abs() <= 2.0 {
                        break z;
                    }
                };
                // The clamp only absorbs the rounding of the f64 value to f32.
                *v = ((mean + stddev * z) as f32).clamp(low, high.max(low));
            }
        }
    }
    Ok(())
}

/// The most work an `Orthogonal` table may ask for, as `rows * cols * min(rows, cols)`:
/// 4096 x 4096 or 1M x 256, each about 20 s of matrix products on the 2-core development
/// machine. A deliberate difference from Keras, which factorises any shape (and warns of
/// slowness above 2000 x 2000): a short config must not be able to occupy a process for
/// hours.
const MAX_ORTHOGONAL_WORK: u128 = 1 << 36;

/// `rows * cols * min(rows, cols)` of the matrix an `Orthogonal` table of `shape` factorises.
fn orthogonal_work(shape: &[usize]) -> u128 {
    let cols = shape.last().copied().unwrap_or(1) as u128;
    let rows = shape[..shape.len().saturating_sub(1)]
        .iter()
        .fold(1u128, |acc, &d| acc.saturating_mul(d as u128));
    rows.saturating_mul(cols).saturating_mul(rows.min(cols))
}

/// Fills `out` (row-major `rows x cols`) with an orthogonal matrix times `gain`, as Keras'
/// `Orthogonal`: the Q factor of a `(max, min)` standard normal matrix, sign-fixed so that R
/// has a positive diagonal, transposed when `rows < cols`.
///
/// The normal matrix is drawn straight into `out` (as `f32`) and factorised there by
/// Cholesky QR: `G = A^T A`, `G = R^T R`, `Q = A R^-1`, with `f64` arithmetic and matrix
/// products done a block of rows at a time. R from a Cholesky factorisation has a positive
/// diagonal, so Q is the very factor Keras' sign fix gives. A tall Gaussian matrix is well
/// conditioned, so one pass is orthogonal to `f32` precision; a nearly square one (whose
/// condition number can be large) gets a second pass, which restores orthogonality (Cholesky
/// QR2). Extra memory: two `min x min` `f64` matrices and one block of rows, all allocated
/// fallibly; time: O(rows * cols * min(rows, cols)), as Keras' QR, in matrix products.
/// (Measured against the previous modified Gram-Schmidt on an `f64` copy of the table:
/// 100,000 x 128 went from 9.7 s to 0.53 s in a release build on the 2-core machine.)
fn orthogonal(
    rng: &mut impl Rng,
    rows: usize,
    cols: usize,
    gain: f64,
    out: &mut [f32],
    owner: impl Fn() -> String,
) -> Result<()> {
    use ndarray::{Array2, ArrayViewMut2, Axis};

    let short = rows.min(cols);
    let table = ArrayViewMut2::from_shape((rows, cols), out).map_err(|_| Error::ShapeOverflow {
        context: owner(),
        shape: vec![rows, cols],
    })?;
    // A is (tall, short): the table itself, or its transpose for a wide table.
    let mut a = if rows >= cols {
        table
    } else {
        table.reversed_axes()
    };
    if short == 0 {
        return Ok(());
    }
    // Keras' draw order: column j of A holds draws j * tall .. (j + 1) * tall.
    for v in a.view_mut().reversed_axes().iter_mut() {
        let draw: f64 = StandardNormal.sample(rng);
        *v = draw as f32;
    }
    let square_bytes = short.saturating_mul(short).saturating_mul(8);
    let allocation = |what: &str| Error::Allocation {
        context: format!("{}: {what} of the QR factorisation", owner()),
        bytes: square_bytes,
    };
    let mut gram = try_f64_zeros(short, short).ok_or_else(|| allocation("the Gram matrix"))?;
    let mut inverse = try_f64_zeros(short, short).ok_or_else(|| allocation("R^-1"))?;
    // About 1 MiB of f64 per block of rows.
    let block_rows = ((1 << 17) / short).max(1);
    let tall = rows.max(cols);
    for pass in 0..2 {
        gram.fill(0.0);
        for block in a.axis_chunks_iter(Axis(0), block_rows) {
            let block = block.mapv(f64::from);
            ndarray::linalg::general_mat_mul(1.0, &block.t(), &block, 1.0, &mut gram);
        }
        let Some(ratio) = cholesky_upper_blocked(&mut gram) else {
            // Numerically rank deficient (practically impossible for a normal matrix): the
            // slower Gram-Schmidt handles it.
            gram_schmidt(&mut a);
            break;
        };
        invert_upper_blocked(&gram, &mut inverse);
        for mut block in a.axis_chunks_iter_mut(Axis(0), block_rows) {
            let product: Array2<f64> = block.mapv(f64::from).dot(&inverse);
            block.zip_mut_with(&product, |v, &q| *v = q as f32);
        }
        // One pass leaves an orthogonality error of about eps * cond(A)^2, and cond(A)
        // exceeds the ratio of R's diagonal extremes: a second pass when that is not small.
        let well_conditioned = ratio < 30.0 && tall >= 2 * short;
        if pass == 0 && well_conditioned {
            break;
        }
    }
    let gain = gain as f32;
    if gain != 1.0 {
        a.mapv_inplace(|v| v * gain);
    }
    Ok(())
}

/// A zero `(rows, cols)` `f64` matrix, or `None` when it does not fit in memory.
fn try_f64_zeros(rows: usize, cols: usize) -> Option<ndarray::Array2<f64>> {
    let len = rows.checked_mul(cols)?;
    let mut values: Vec<f64> = Vec::new();
    values.try_reserve_exact(len).ok()?;
    values.resize(len, 0.0);
    ndarray::Array2::from_shape_vec((rows, cols), values).ok()
}

/// Overwrites the symmetric positive definite `g` with its Cholesky factor `R` (upper,
/// positive diagonal, `g = R^T R`; the strict lower part is zeroed). Returns the ratio of the
/// largest to the smallest diagonal entry of R, or `None` when `g` is not numerically
/// positive definite. Right-looking, on contiguous rows (the trailing updates vectorise).
fn cholesky_upper(g: &mut ndarray::Array2<f64>) -> Option<f64> {
    let n = g.nrows();
    let values = g.as_slice_mut()?;
    let (mut largest, mut smallest) = (0.0f64, f64::INFINITY);
    for j in 0..n {
        let (done, rest) = values.split_at_mut((j + 1) * n);
        let row_j = &mut done[j * n..];
        let pivot = row_j[j];
        if !(pivot > 0.0 && pivot.is_finite()) {
            return None;
        }
        let diagonal = pivot.sqrt();
        largest = largest.max(diagonal);
        smallest = smallest.min(diagonal);
        row_j[..j].fill(0.0);
        row_j[j] = diagonal;
        row_j[j + 1..].iter_mut().for_each(|v| *v /= diagonal);
        // Trailing update of the upper part: G[i, i..] -= R[j, i] * R[j, i..].
        for (offset, row_i) in rest.chunks_exact_mut(n).enumerate() {
            let i = j + 1 + offset;
            let factor = row_j[i];
            row_i[i..]
                .iter_mut()
                .zip(&row_j[i..])
                .for_each(|(v, &r)| *v -= factor * r);
        }
    }
    Some(largest / smallest)
}

/// The size of the diagonal blocks of the blocked factorisations: large enough for the
/// matrix products to dominate, small enough for the scalar parts to stay cheap.
const BLOCK: usize = 64;

/// [`cholesky_upper`] by blocks of [`BLOCK`] rows: each diagonal block is factored by the
/// scalar routine, and the panel solve and the trailing update are matrix products
/// (O(n^3) work at matrix-product speed).
fn cholesky_upper_blocked(g: &mut ndarray::Array2<f64>) -> Option<f64> {
    use ndarray::s;
    let n = g.nrows();
    let (mut largest, mut smallest) = (0.0f64, f64::INFINITY);
    for k0 in (0..n).step_by(BLOCK) {
        let k1 = (k0 + BLOCK).min(n);
        let mut diagonal = g.slice(s![k0..k1, k0..k1]).to_owned();
        cholesky_upper(&mut diagonal)?;
        for j in 0..k1 - k0 {
            largest = largest.max(diagonal[[j, j]]);
            smallest = smallest.min(diagonal[[j, j]]);
        }
        g.slice_mut(s![k0..k1, k0..k1]).assign(&diagonal);
        if k1 < n {
            // R12 = R11^-T G12, then G22 -= R12^T R12.
            let mut inverse = ndarray::Array2::zeros((k1 - k0, k1 - k0));
            invert_upper(&diagonal, &mut inverse);
            let panel = inverse.t().dot(&g.slice(s![k0..k1, k1..]));
            g.slice_mut(s![k0..k1, k1..]).assign(&panel);
            ndarray::linalg::general_mat_mul(
                -1.0,
                &panel.t(),
                &panel,
                1.0,
                &mut g.slice_mut(s![k1.., k1..]),
            );
        }
    }
    for i in 0..n {
        for j in 0..i {
            g[[i, j]] = 0.0;
        }
    }
    Some(largest / smallest)
}

/// [`invert_upper`] by blocks of [`BLOCK`] rows, from the bottom:
/// `X[i, i] = R[i, i]^-1`, `X[i, i+1..] = -X[i, i] R[i, i+1..] X[i+1.., i+1..]`.
fn invert_upper_blocked(r: &ndarray::Array2<f64>, inverse: &mut ndarray::Array2<f64>) {
    use ndarray::s;
    let n = r.nrows();
    inverse.fill(0.0);
    let starts: Vec<usize> = (0..n).step_by(BLOCK).collect();
    for &i0 in starts.iter().rev() {
        let i1 = (i0 + BLOCK).min(n);
        let mut diagonal = ndarray::Array2::zeros((i1 - i0, i1 - i0));
        invert_upper(&r.slice(s![i0..i1, i0..i1]).to_owned(), &mut diagonal);
        if i1 < n {
            let right = r
                .slice(s![i0..i1, i1..])
                .dot(&inverse.slice(s![i1.., i1..]));
            let block = diagonal.dot(&right).mapv(|v| -v);
            inverse.slice_mut(s![i0..i1, i1..]).assign(&block);
        }
        inverse.slice_mut(s![i0..i1, i0..i1]).assign(&diagonal);
    }
}

/// Writes the inverse of the upper triangular `r` (positive diagonal) into `inverse`, by
/// back substitution on contiguous rows: `X[i, :] = (e_i - sum_{k>i} R[i, k] X[k, :]) / R[i, i]`.
fn invert_upper(r: &ndarray::Array2<f64>, inverse: &mut ndarray::Array2<f64>) {
    let n = r.nrows();
    inverse.fill(0.0);
    let (Some(r), Some(x)) = (r.as_slice(), inverse.as_slice_mut()) else {
        return;
    };
    for i in (0..n).rev() {
        let (upper, lower) = x.split_at_mut((i + 1) * n);
        let row_i = &mut upper[i * n..];
        row_i[i] = 1.0;
        for (offset, row_k) in lower.chunks_exact(n).enumerate() {
            let k = i + 1 + offset;
            let factor = r[i * n + k];
            row_i[k..]
                .iter_mut()
                .zip(&row_k[k..])
                .for_each(|(v, &xk)| *v -= factor * xk);
        }
        let diagonal = r[i * n + i];
        row_i[i..].iter_mut().for_each(|v| *v /= diagonal);
    }
}

/// Orthonormalises the columns of `a` in place by modified Gram-Schmidt, twice, in `f64`
/// per column pair: the fallback for a numerically rank-deficient draw.
fn gram_schmidt(a: &mut ndarray::ArrayViewMut2<'_, f32>) {
    let columns = a.ncols();
    for j in 0..columns {
        for _pass in 0..2 {
            for k in 0..j {
                let dot: f64 = a
                    .column(k)
                    .iter()
                    .zip(a.column(j))
                    .map(|(&q, &v)| f64::from(q) * f64::from(v))
                    .sum();
                let qk = a.column(k).to_owned();
                a.column_mut(j).zip_mut_with(&qk, |v, &q| {
                    *v = (f64::from(*v) - dot * f64::from(q)) as f32
                });
            }
        }
        let norm = a
            .column(j)
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt();
        if norm > 0.0 {
            a.column_mut(j)
                .mapv_inplace(|v| (f64::from(v) / norm) as f32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_qr_pieces_factor_and_invert() {
        use ndarray::array;
        let mut g = array![[4.0f64, 2.0, 0.4], [2.0, 5.0, 1.0], [0.4, 1.0, 3.0]];
        let original = g.clone();
        let ratio = cholesky_upper(&mut g).unwrap();
        assert!(ratio >= 1.0);
        let rebuilt = g.t().dot(&g);
        assert!(
            rebuilt
                .iter()
                .zip(&original)
                .all(|(a, b)| (a - b).abs() < 1e-12)
        );
        assert_eq!(g[[1, 0]], 0.0);
        let mut inverse = ndarray::Array2::zeros((3, 3));
        invert_upper(&g, &mut inverse);
        let identity = g.dot(&inverse);
        for ((i, j), v) in identity.indexed_iter() {
            assert!((v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
        }
        // A singular Gram matrix is refused, so the caller can fall back.
        let mut singular = array![[1.0f64, 1.0], [1.0, 1.0]];
        assert!(cholesky_upper(&mut singular).is_none());
    }

    #[test]
    fn blocked_factorisations_match_the_scalar_ones() {
        // 150 = two full blocks and a partial one.
        let n = 150;
        let a = ndarray::Array2::from_shape_fn((2 * n, n), |(i, j)| {
            ((i * 7 + j * 13) % 17) as f64 - 8.0 + if i == j { 20.0 } else { 0.0 }
        });
        let g = a.t().dot(&a);
        let (mut scalar, mut blocked) = (g.clone(), g.clone());
        let ratio = cholesky_upper(&mut scalar).unwrap();
        let blocked_ratio = cholesky_upper_blocked(&mut blocked).unwrap();
        assert!((ratio - blocked_ratio).abs() < 1e-9 * ratio);
        let scale = scalar.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(
            scalar
                .iter()
                .zip(&blocked)
                .all(|(a, b)| (a - b).abs() < 1e-9 * scale)
        );
        let (mut x, mut y) = (
            ndarray::Array2::zeros((n, n)),
            ndarray::Array2::zeros((n, n)),
        );
        invert_upper(&scalar, &mut x);
        invert_upper_blocked(&scalar, &mut y);
        let scale = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(x.iter().zip(&y).all(|(a, b)| (a - b).abs() < 1e-9 * scale));
    }

    #[test]
    fn the_gram_schmidt_fallback_orthonormalises_columns() {
        let mut values = vec![
            3.0f32, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0, 5.0, 3.0, 5.0, 8.0,
        ];
        let mut a = ndarray::ArrayViewMut2::from_shape((4, 3), &mut values).unwrap();
        gram_schmidt(&mut a);
        let a = a.mapv(f64::from);
        let gram = a.t().dot(&a);
        for ((i, j), v) in gram.indexed_iter() {
            assert!(
                (v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-6,
                "({i}, {j}) = {v}"
            );
        }
    }

    #[test]
    fn keras_names_and_class_names_parse() {
        assert_eq!("zero".parse::<Initializer>().ok(), Some(Initializer::Zeros));
        assert_eq!(
            "Zeros".parse::<Initializer>().ok(),
            Some(Initializer::Zeros)
        );
        assert_eq!(
            "uniform".parse::<Initializer>().ok(),
            Some(Initializer::default())
        );
        assert_eq!(
            "GlorotUniform".parse::<Initializer>().ok(),
            Some(Initializer::GlorotUniform { seed: None })
        );
        assert_eq!(to_snake_case("glorot_uniform"), "glorot_uniform");
    }

    #[test]
    fn unknown_name_lists_the_valid_ones() {
        let err = "glorot".parse::<Initializer>().unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("\"glorot\"") && msg.contains("glorot_uniform"),
            "{msg}"
        );
    }

    #[test]
    fn fans_follow_keras_compute_fans() {
        assert_eq!(
            Fans::of(&[1000, 64]),
            Fans {
                fan_in: 1000.0,
                fan_out: 64.0
            }
        );
        assert_eq!(
            Fans::of(&[]),
            Fans {
                fan_in: 1.0,
                fan_out: 1.0
            }
        );
        assert_eq!(
            Fans::of(&[5]),
            Fans {
                fan_in: 5.0,
                fan_out: 5.0
            }
        );
        assert_eq!(
            Fans::of(&[3, 3, 4, 8]),
            Fans {
                fan_in: 36.0,
                fan_out: 72.0
            }
        );
    }

    #[test]
    fn f32_bounds_round_inwards() {
        let x = 0.1f64;
        assert!(f64::from(f32_at_most(x)) <= x);
        assert!(f64::from(f32_at_least(x)) >= x);
    }

    #[test]
    fn invalid_parameters_are_rejected() {
        let bad = [
            Initializer::RandomUniform {
                minval: 1.0,
                maxval: 0.0,
                seed: None,
            },
            Initializer::RandomNormal {
                mean: 0.0,
                stddev: -1.0,
                seed: None,
            },
            Initializer::TruncatedNormal {
                mean: f64::NAN,
                stddev: 1.0,
                seed: None,
            },
            Initializer::VarianceScaling {
                scale: 0.0,
                mode: FanMode::FanIn,
                distribution: Distribution::Uniform,
                seed: None,
            },
            Initializer::constant(f32::NAN),
        ];
        for init in bad {
            assert!(
                matches!(init.initialize(&[2, 2]), Err(Error::InvalidArgument { .. })),
                "{init:?}"
            );
        }
    }
}
