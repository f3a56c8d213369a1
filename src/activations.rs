//! Keras activations for `Dense`: `linear`, `relu`, `sigmoid`, `tanh`, `softmax`.

use std::fmt;
use std::str::FromStr;

use ndarray::{ArrayD, Axis, Zip};

use crate::error::{Error, Result};

/// An element-wise (or, for `Softmax`, last-axis) activation (Keras' `activation=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Activation {
    /// `x` (Keras' default for `Dense`).
    #[default]
    Linear,
    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// `exp(x) / sum(exp(x))` over the last axis.
    Softmax,
}

impl Activation {
    /// Keras' name (`"sigmoid"`).
    pub fn keras_name(self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softmax => "softmax",
        }
    }

    /// Applies the activation in place (`Softmax` over the last axis; a scalar is one lane).
    pub fn apply(self, values: &mut ArrayD<f32>) {
        if values.ndim() == 0 {
            let mut lane = values.view_mut().insert_axis(Axis(0)).into_dyn().to_owned();
            self.apply(&mut lane);
            values.assign(&lane.index_axis(Axis(0), 0));
            return;
        }
        match self {
            Activation::Linear => {}
            Activation::Relu => values.mapv_inplace(|v| v.max(0.0)),
            Activation::Sigmoid => values.mapv_inplace(sigmoid),
            Activation::Tanh => values.mapv_inplace(f32::tanh),
            Activation::Softmax => {
                let last = Axis(values.ndim().saturating_sub(1));
                for mut lane in values.lanes_mut(last) {
                    let max = lane.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    lane.mapv_inplace(|v| (v - max).exp());
                    let sum: f32 = lane.sum();
                    lane.mapv_inplace(|v| v / sum);
                }
            }
        }
    }

    /// The gradient with respect to the activation's input, from its output `activated` and
    /// the gradient with respect to that output.
    ///
    /// # Errors
    /// [`Error::IncompatibleShape`] when the two arrays differ in shape.
    pub fn backward(
        self,
        activated: &ArrayD<f32>,
        output_gradient: ArrayD<f32>,
    ) -> Result<ArrayD<f32>> {
        if activated.shape() != output_gradient.shape() {
            return Err(Error::IncompatibleShape {
                context: format!("{} activation: backward", self.keras_name()),
                expected: activated.shape().iter().map(|&d| Some(d)).collect(),
                got: output_gradient.shape().iter().map(|&d| Some(d)).collect(),
            });
        }
        if activated.ndim() == 0 {
            let lane = |a: &ArrayD<f32>| a.view().insert_axis(Axis(0)).into_dyn().to_owned();
            let gradient = self.backward(&lane(activated), lane(&output_gradient))?;
            return Ok(gradient.index_axis(Axis(0), 0).to_owned());
        }
        let mut gradient = output_gradient;
        match self {
            Activation::Linear => {}
            Activation::Relu => {
                Zip::from(&mut gradient).and(activated).for_each(|g, &a| {
                    if a <= 0.0 {
                        *g = 0.0;
                    }
                });
            }
            Activation::Sigmoid => {
                Zip::from(&mut gradient)
                    .and(activated)
                    .for_each(|g, &a| *g *= a * (1.0 - a));
            }
            Activation::Tanh => {
                Zip::from(&mut gradient)
                    .and(activated)
                    .for_each(|g, &a| *g *= 1.0 - a * a);
            }
            Activation::Softmax => {
                let last = Axis(gradient.ndim().saturating_sub(1));
                for (mut g, a) in gradient
                    .lanes_mut(last)
                    .into_iter()
                    .zip(activated.lanes(last))
                {
                    let dot: f32 = g.iter().zip(a.iter()).map(|(g, a)| g * a).sum();
                    Zip::from(&mut g)
                        .and(&a)
                        .for_each(|g, &a| *g = a * (*g - dot));
                }
            }
        }
        Ok(gradient)
    }
}

/// The logistic function, stable for large `|x|`.
pub(crate) fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

impl TryFrom<&str> for Activation {
    type Error = Error;

    /// [`Activation::from_str`]: Keras' names.
    fn try_from(name: &str) -> Result<Self> {
        name.parse()
    }
}

impl TryFrom<String> for Activation {
    type Error = Error;

    /// [`Activation::from_str`]: Keras' names.
    fn try_from(name: String) -> Result<Self> {
        name.parse()
    }
}

impl FromStr for Activation {
    type Err = Error;

    /// Keras' names: `"linear"` (or `"None"`), `"relu"`, `"sigmoid"`, `"tanh"`, `"softmax"`.
    ///
    /// # Errors
    /// [`Error::UnknownName`] listing them.
    fn from_str(name: &str) -> Result<Self> {
        match name.trim() {
            "linear" | "None" | "" => Ok(Activation::Linear),
            "relu" => Ok(Activation::Relu),
            "sigmoid" => Ok(Activation::Sigmoid),
            "tanh" => Ok(Activation::Tanh),
            "softmax" => Ok(Activation::Softmax),
            _ => Err(Error::UnknownName {
                kind: "activation",
                name: name.to_string(),
                valid: vec!["linear", "relu", "sigmoid", "tanh", "softmax"],
            }),
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keras_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Each analytic gradient against a central difference.
    #[test]
    fn gradients_match_finite_differences() {
        let x = array![[0.3f32, -1.2, 2.0], [0.1, 0.5, -0.25]].into_dyn();
        let upstream = array![[0.7f32, -0.2, 0.4], [1.0, -1.0, 0.5]].into_dyn();
        for act in [
            Activation::Linear,
            Activation::Relu,
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::Softmax,
        ] {
            let mut a = x.clone();
            act.apply(&mut a);
            let analytic = act.backward(&a, upstream.clone()).unwrap();
            let h = 1e-3f32;
            for idx in 0..x.len() {
                let (mut plus, mut minus) = (x.clone(), x.clone());
                plus.as_slice_mut().unwrap()[idx] += h;
                minus.as_slice_mut().unwrap()[idx] -= h;
                act.apply(&mut plus);
                act.apply(&mut minus);
                let numeric: f32 = ((&plus - &minus) * &upstream).sum() / (2.0 * h);
                let got = analytic.as_slice().unwrap()[idx];
                assert!(
                    (numeric - got).abs() < 2e-3,
                    "{act}: {numeric} vs {got} at {idx}"
                );
            }
        }
    }

    #[test]
    fn scalars_and_mismatched_shapes_do_not_panic() {
        let mut scalar = ndarray::arr0(3.0f32).into_dyn();
        Activation::Softmax.apply(&mut scalar);
        assert_eq!(scalar, ndarray::arr0(1.0f32).into_dyn());
        let grad = Activation::Sigmoid
            .backward(
                &ndarray::arr0(0.5f32).into_dyn(),
                ndarray::arr0(1.0f32).into_dyn(),
            )
            .unwrap();
        assert_eq!(grad, ndarray::arr0(0.25f32).into_dyn());
        assert!(
            Activation::Tanh
                .backward(&ArrayD::zeros(vec![2]), ArrayD::zeros(vec![3]))
                .is_err()
        );
    }

    #[test]
    fn names_parse() {
        assert_eq!(
            "sigmoid".parse::<Activation>().ok(),
            Some(Activation::Sigmoid)
        );
        assert!("gelu".parse::<Activation>().is_err());
    }
}
