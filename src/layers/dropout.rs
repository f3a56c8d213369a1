//! The `Dropout` layer: zeroes a fraction of the inputs during training.

use ndarray::{ArrayD, Zip};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result, Shape};
use crate::layer::{Backward, Layer, unique_name};
use crate::tensor::Tensor;

/// Sets each input to 0 with probability `rate` during training and scales the others by
/// `1 / (1 - rate)` (Keras' `Dropout`). Inactive in `predict` and `evaluate`: the identity.
///
/// Seeded with [`Dropout::seed`] for reproducible training. A mask passes through.
#[derive(Debug, Clone)]
pub struct Dropout {
    name: String,
    rate: f32,
    seed: Option<u64>,
    rng: ChaCha8Rng,
    /// The scale of each element in the last `forward` (0 or `1 / (1 - rate)`).
    scale: Option<ArrayD<f32>>,
}

impl Dropout {
    /// Drops each input with probability `rate`, in `[0, 1)`.
    pub fn new(rate: f32) -> Self {
        Dropout {
            name: unique_name("dropout"),
            rate,
            seed: None,
            rng: ChaCha8Rng::from_rng(&mut rand::rng()),
            scale: None,
        }
    }

    /// A seed for reproducible dropout masks. Default: from the OS.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self.rng = ChaCha8Rng::seed_from_u64(seed);
        self
    }

    /// The layer's name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The drop probability.
    pub fn rate(&self) -> f32 {
        self.rate
    }

    fn float<'a>(&self, inputs: &'a Tensor) -> Result<&'a ArrayD<f32>> {
        inputs.as_float().ok_or_else(|| Error::IncompatibleDtype {
            context: format!("layer \"{}\" (Dropout)", self.name),
            expected: "float32".into(),
            got: inputs.dtype().to_string(),
        })
    }
}

impl Dropout {
    /// The seed given with [`Dropout::seed`], if any.
    pub fn seed_value(&self) -> Option<u64> {
        self.seed
    }
}

impl Layer for Dropout {
    fn name(&self) -> &str {
        &self.name
    }

    fn class_name(&self) -> &'static str {
        "Dropout"
    }

    fn validate(&self) -> Result<()> {
        if (0.0..1.0).contains(&self.rate) {
            Ok(())
        } else {
            Err(Error::invalid_argument(
                format!("layer \"{}\" (Dropout)", self.name),
                "rate",
                self.rate,
                "a probability in [0, 1)",
            ))
        }
    }

    fn check_input(&self, inputs: &Tensor) -> Result<()> {
        self.float(inputs).map(|_| ())
    }

    /// Inference: the identity.
    fn call(&self, inputs: &Tensor) -> Result<Tensor> {
        Ok(Tensor::from(self.float(inputs)?.clone()))
    }

    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        Ok(input_shape.to_vec())
    }

    fn supports_masking(&self) -> bool {
        true
    }

    fn forward(&mut self, inputs: &Tensor, training: bool) -> Result<Tensor> {
        self.validate()?;
        let values = self.float(inputs)?;
        if !training {
            self.scale = Some(ArrayD::ones(values.raw_dim()));
            return Ok(Tensor::from(values.clone()));
        }
        let keep = 1.0 / (1.0 - self.rate);
        let rate = self.rate;
        let rng = &mut self.rng;
        let scale = values.mapv(|_| {
            if rng.random::<f32>() < rate {
                0.0
            } else {
                keep
            }
        });
        let out = values * &scale;
        self.scale = Some(scale);
        Ok(Tensor::from(out))
    }

    fn backward(&mut self, _inputs: &Tensor, output_gradient: ArrayD<f32>) -> Result<Backward> {
        let mut gradient = output_gradient;
        match &self.scale {
            Some(scale) if scale.shape() == gradient.shape() => {
                Zip::from(&mut gradient)
                    .and(scale)
                    .for_each(|g, &s| *g *= s);
            }
            _ => {
                return Err(Error::IncompatibleShape {
                    context: format!(
                        "layer \"{}\" (Dropout): output gradient (run forward first)",
                        self.name
                    ),
                    expected: self
                        .scale
                        .as_ref()
                        .map(|s| s.shape().iter().map(|&d| Some(d)).collect())
                        .unwrap_or_default(),
                    got: gradient.shape().iter().map(|&d| Some(d)).collect(),
                });
            }
        }
        Ok(Backward {
            input_gradient: Some(gradient),
            weight_gradients: Vec::new(),
        })
    }

    weightless_layer!();
}
