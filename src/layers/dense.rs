//! The `Dense` layer: `activation(inputs · kernel + bias)` on the last axis.

use std::fmt;

use ndarray::{Array2, ArrayD, ArrayView1, Axis, Ix1, IxDyn};

use crate::activations::Activation;
use crate::constraints::Constraint;
use crate::error::{Error, OptDims, Result, Shape};
use crate::initializers::Initializer;
use crate::layer::{Backward, Gradient, Layer, assign_pending, check_initial_weights, unique_name};
use crate::regularizers::Regularizer;
use crate::tensor::Tensor;
use crate::weight::Weight;

/// The settings of a [`Dense`] layer, with Keras' names.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseConfig {
    /// Number of output units.
    pub units: usize,
    /// Activation applied to `inputs · kernel + bias`.
    pub activation: Activation,
    /// Whether a bias is added.
    pub use_bias: bool,
    /// How the kernel is filled (default `glorot_uniform`).
    pub kernel_initializer: Initializer,
    /// How the bias is filled (default `zeros`).
    pub bias_initializer: Initializer,
    /// Penalty on the kernel.
    pub kernel_regularizer: Option<Regularizer>,
    /// Penalty on the bias.
    pub bias_regularizer: Option<Regularizer>,
    /// Projection of the kernel after each step.
    pub kernel_constraint: Option<Constraint>,
    /// Projection of the bias after each step.
    pub bias_constraint: Option<Constraint>,
    /// Whether training updates the weights.
    pub trainable: bool,
}

/// A densely connected layer (Keras' `Dense`): `activation(inputs · kernel + bias)`.
///
/// # Shapes
/// - input: `(batch, ..., input_dim)`, `f32`; the last axis must be known when building;
/// - kernel: `(input_dim, units)`, bias: `(units,)`;
/// - output: `(batch, ..., units)`. A mask passes through unchanged, as in Keras.
///
/// # Example
/// ```
/// use ndarray::array;
/// use ndkeras::prelude::*;
///
/// let kernel = array![[1.0f32], [2.0]].into_dyn();
/// let bias = array![0.5f32].into_dyn();
/// let mut dense = Dense::new(1).weights(vec![kernel, bias]);
/// let out = dense.apply(&Tensor::from(array![[1.0f32, 1.0]]))?;
/// assert_eq!(out.as_float().unwrap(), &array![[3.5f32]].into_dyn());
/// # Ok::<(), ndkeras::Error>(())
/// ```
#[derive(Clone)]
pub struct Dense {
    name: String,
    config: DenseConfig,
    initial_weights: Option<Vec<ArrayD<f32>>>,
    kernel: Option<Weight>,
    bias: Option<Weight>,
    /// Whether the weights were made from `initial_weights` (which `unbuild` gives back).
    built_from_weights: bool,
    /// Pre-activation values and activated output of the last `forward`.
    cache: Option<(ArrayD<f32>, ArrayD<f32>)>,
    /// An activation name given to [`Dense::activation`] that is not one: reported by
    /// `validate` (when the layer is added or first called), as the builder cannot fail.
    unknown_activation: Option<String>,
}

impl Dense {
    /// A dense layer of `units` outputs with Keras' defaults: linear activation, a bias,
    /// `glorot_uniform` kernel, `zeros` bias, trainable, name `dense`, `dense_1`, ...
    pub fn new(units: usize) -> Self {
        Dense {
            name: unique_name("dense"),
            config: DenseConfig {
                units,
                activation: Activation::Linear,
                use_bias: true,
                kernel_initializer: Initializer::GlorotUniform { seed: None },
                bias_initializer: Initializer::Zeros,
                kernel_regularizer: None,
                bias_regularizer: None,
                kernel_constraint: None,
                bias_constraint: None,
                trainable: true,
            },
            initial_weights: None,
            kernel: None,
            bias: None,
            built_from_weights: false,
            cache: None,
            unknown_activation: None,
        }
    }

    /// The activation, as an [`Activation`] or by Keras' name (`"sigmoid"`, Keras'
    /// `Dense(1, activation="sigmoid")`). Default: `Activation::Linear`.
    ///
    /// An unknown name is reported when the layer is added to a model or first called
    /// ([`Layer::validate`]), with the valid names.
    ///
    /// ```
    /// use ndkeras::prelude::*;
    ///
    /// let dense = Dense::new(1).activation("sigmoid");
    /// assert_eq!(dense.config().activation, Activation::Sigmoid);
    /// let err = Dense::new(1).activation("sigmoidd").validate().unwrap_err();
    /// assert!(err.to_string().contains("softmax"));
    /// ```
    pub fn activation<A>(mut self, activation: A) -> Self
    where
        A: TryInto<Activation>,
        A::Error: std::fmt::Display,
    {
        match activation.try_into() {
            Ok(activation) => {
                self.config.activation = activation;
                self.unknown_activation = None;
            }
            Err(error) => self.unknown_activation = Some(error.to_string()),
        }
        self
    }

    /// Whether to add a bias. Default: `true`.
    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.config.use_bias = use_bias;
        self
    }

    /// The kernel's initializer. Default: `glorot_uniform`.
    pub fn kernel_initializer(mut self, initializer: Initializer) -> Self {
        self.config.kernel_initializer = initializer;
        self
    }

    /// The bias' initializer. Default: `zeros`.
    pub fn bias_initializer(mut self, initializer: Initializer) -> Self {
        self.config.bias_initializer = initializer;
        self
    }

    /// A penalty on the kernel. Default: none.
    pub fn kernel_regularizer(mut self, regularizer: Regularizer) -> Self {
        self.config.kernel_regularizer = Some(regularizer);
        if let Some(weight) = &mut self.kernel {
            weight.set_regularizer(Some(regularizer));
        }
        self
    }

    /// A penalty on the bias. Default: none.
    pub fn bias_regularizer(mut self, regularizer: Regularizer) -> Self {
        self.config.bias_regularizer = Some(regularizer);
        if let Some(weight) = &mut self.bias {
            weight.set_regularizer(Some(regularizer));
        }
        self
    }

    /// A projection of the kernel after each step. Default: none.
    pub fn kernel_constraint(mut self, constraint: Constraint) -> Self {
        self.config.kernel_constraint = Some(constraint);
        if let Some(weight) = &mut self.kernel {
            weight.set_constraint(Some(constraint));
        }
        self
    }

    /// A projection of the bias after each step. Default: none.
    pub fn bias_constraint(mut self, constraint: Constraint) -> Self {
        self.config.bias_constraint = Some(constraint);
        if let Some(weight) = &mut self.bias {
            weight.set_constraint(Some(constraint));
        }
        self
    }

    /// Weights to start from, as Keras' `weights=[kernel, bias]` (just `[kernel]` without a
    /// bias); they become the weights when the layer is built (the initializers do not run).
    /// Default: none.
    pub fn weights<D: ndarray::Dimension>(mut self, weights: Vec<ndarray::Array<f32, D>>) -> Self {
        self.initial_weights = Some(weights.into_iter().map(|w| w.into_dyn()).collect());
        self
    }

    /// The layer's name. Default: `dense`, `dense_1`, ...
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Whether training updates the weights. Default: `true`.
    pub fn trainable(mut self, trainable: bool) -> Self {
        self.set_trainable(trainable);
        self
    }

    /// The settings.
    pub fn config(&self) -> &DenseConfig {
        &self.config
    }

    /// The kernel `(input_dim, units)`, once built.
    pub fn kernel(&self) -> Option<&Array2<f32>> {
        self.kernel.as_ref().and_then(Weight::as_matrix)
    }

    /// The bias `(units,)`, once built (and `use_bias`).
    pub fn bias(&self) -> Option<ArrayView1<'_, f32>> {
        self.bias
            .as_ref()
            .and_then(|b| b.view().into_dimensionality::<Ix1>().ok())
    }

    fn context(&self) -> String {
        format!("layer \"{}\" (Dense)", self.name)
    }

    fn input_dim(&self, input_shape: &[Option<usize>]) -> Result<usize> {
        match input_shape {
            [_, .., Some(dim)] => Ok(*dim),
            _ => Err(Error::IncompatibleShape {
                context: format!(
                    "{}: the last axis of the input must be known (received {}); Dense needs at least 2 dimensions",
                    self.context(),
                    OptDims(input_shape)
                ),
                expected: vec![None, Some(0)],
                got: input_shape.to_vec(),
            }),
        }
    }

    fn float_input<'a>(&self, inputs: &'a Tensor) -> Result<&'a ArrayD<f32>> {
        let values = inputs.as_float().ok_or_else(|| Error::IncompatibleDtype {
            context: self.context(),
            expected: "float32".into(),
            got: inputs.dtype().to_string(),
        })?;
        let kernel_rows = self.kernel().map(|k| k.nrows());
        let dim = values.shape().last().copied();
        if values.ndim() < 2 || (kernel_rows.is_some() && dim != kernel_rows) {
            let mut expected: Shape = vec![None; values.ndim().max(2)];
            if let Some(last) = expected.last_mut() {
                *last = kernel_rows;
            }
            return Err(Error::IncompatibleShape {
                context: self.context(),
                expected,
                got: inputs.keras_shape(),
            });
        }
        Ok(values)
    }

    /// `inputs · kernel + bias`, before the activation, shaped `(..., units)`.
    fn pre_activation(&self, values: &ArrayD<f32>) -> Result<ArrayD<f32>> {
        let kernel = self.kernel().ok_or_else(|| Error::NotBuilt {
            context: self.context(),
            what: "the kernel".into(),
            hint: "use `apply` or `build` first".into(),
        })?;
        let rows = values.len() / kernel.nrows().max(1);
        let flat = values
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((rows, kernel.nrows()))
            .map_err(|_| self.shape_error(values.shape()))?;
        let mut z = flat.dot(kernel);
        if let Some(bias) = self.bias() {
            z += &bias;
        }
        let mut out_shape = values.shape().to_vec();
        if let Some(last) = out_shape.last_mut() {
            *last = self.config.units;
        }
        z.as_standard_layout()
            .into_owned()
            .into_shape_with_order(IxDyn(&out_shape))
            .map_err(|_| self.shape_error(values.shape()))
    }

    fn shape_error(&self, shape: &[usize]) -> Error {
        Error::IncompatibleShape {
            context: self.context(),
            expected: vec![None, self.kernel().map(|k| k.nrows())],
            got: shape.iter().map(|&d| Some(d)).collect(),
        }
    }

    /// The gradients from the gradient with respect to the pre-activation values.
    fn backward_pre_activation(&self, inputs: &Tensor, dz: ArrayD<f32>) -> Result<Backward> {
        let values = self.float_input(inputs)?;
        let kernel = self
            .kernel()
            .ok_or_else(|| self.shape_error(values.shape()))?;
        let (in_dim, units) = kernel.dim();
        let rows = values.len() / in_dim.max(1);
        let x = values
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((rows, in_dim))
            .map_err(|_| self.shape_error(values.shape()))?;
        let dz = dz
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order((rows, units))
            .map_err(|_| self.shape_error(values.shape()))?;
        let input_gradient = dz
            .dot(&kernel.t())
            .as_standard_layout()
            .into_owned()
            .into_shape_with_order(IxDyn(values.shape()))
            .map_err(|_| self.shape_error(values.shape()))?;
        let mut weight_gradients = Vec::new();
        if let Some(kernel) = self.kernel.as_ref().filter(|w| w.is_trainable()) {
            weight_gradients.push((kernel.id(), Gradient::Dense(x.t().dot(&dz).into_dyn())));
        }
        if let Some(bias) = self.bias.as_ref().filter(|w| w.is_trainable()) {
            weight_gradients.push((bias.id(), Gradient::Dense(dz.sum_axis(Axis(0)).into_dyn())));
        }
        Ok(Backward {
            input_gradient: Some(input_gradient),
            weight_gradients,
        })
    }
}

impl fmt::Debug for Dense {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dense")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("built", &self.kernel.is_some())
            .finish()
    }
}

impl Layer for Dense {
    fn name(&self) -> &str {
        &self.name
    }

    fn class_name(&self) -> &'static str {
        "Dense"
    }

    fn is_trainable(&self) -> bool {
        self.config.trainable
    }

    fn set_trainable(&mut self, trainable: bool) {
        self.config.trainable = trainable;
        for weight in self.kernel.iter_mut().chain(self.bias.iter_mut()) {
            weight.set_trainable(trainable);
        }
    }

    fn validate(&self) -> Result<()> {
        if let Some(message) = &self.unknown_activation {
            return Err(Error::invalid_argument(
                self.context(),
                "activation",
                message,
                "an Activation or one of Keras' names",
            ));
        }
        if self.config.units == 0 {
            return Err(Error::invalid_argument(
                self.context(),
                "units",
                0,
                "a positive number of units",
            ));
        }
        self.config.kernel_initializer.validate()?;
        self.config.bias_initializer.validate()?;
        for regularizer in [self.config.kernel_regularizer, self.config.bias_regularizer]
            .into_iter()
            .flatten()
        {
            regularizer.validate()?;
        }
        for constraint in [self.config.kernel_constraint, self.config.bias_constraint]
            .into_iter()
            .flatten()
        {
            constraint.validate()?;
        }
        Ok(())
    }

    fn is_built(&self) -> bool {
        self.kernel.is_some()
    }

    fn weight_shapes_for(&self, input_shape: &[Option<usize>]) -> Result<Vec<Vec<usize>>> {
        let in_dim = self.input_dim(input_shape)?;
        let mut shapes = vec![vec![in_dim, self.config.units]];
        if self.config.use_bias {
            shapes.push(vec![self.config.units]);
        }
        Ok(shapes)
    }

    /// The kernel and bias come from the initial `weights` when there are any (checked, then
    /// used as they are, or copied once into standard layout; the initializers do not run),
    /// otherwise from the initializers.
    fn build(&mut self, input_shape: &[Option<usize>]) -> Result<()> {
        if self.is_built() {
            // Weights given after the build replace the values, as `set_weights` would.
            let mut pending = self.initial_weights.take();
            let assigned = assign_pending(self, &mut pending);
            self.initial_weights = pending;
            return assigned;
        }
        self.validate()?;
        let (kernel, bias) = match self.initial_weights.as_deref() {
            Some(_) => {
                check_initial_weights(self, input_shape)?;
                // Keras would run the initializers first: report what they would raise.
                let in_dim = self.input_dim(input_shape)?;
                self.config
                    .kernel_initializer
                    .validate_for(&[in_dim, self.config.units])?;
                if self.config.use_bias {
                    self.config
                        .bias_initializer
                        .validate_for(&[self.config.units])?;
                }
                let context = format!("{}: weights", self.context());
                let prepared = self
                    .initial_weights
                    .iter()
                    .flatten()
                    .map(|array| Weight::prepare(array, || context.clone()))
                    .collect::<Result<Vec<_>>>()?;
                let weights = self.initial_weights.take().unwrap_or_default();
                let mut made = weights
                    .into_iter()
                    .zip(prepared)
                    .zip(["kernel", "bias"])
                    .map(|((array, prepared), name)| Weight::from_prepared(name, array, prepared));
                let kernel = made
                    .next()
                    .transpose()?
                    .ok_or_else(|| self.shape_error(&[]))?;
                let bias = made.next().transpose()?;
                self.built_from_weights = true;
                (kernel, bias)
            }
            None => {
                let in_dim = self.input_dim(input_shape)?;
                let kernel = Weight::new(
                    "kernel",
                    self.config
                        .kernel_initializer
                        .initialize(&[in_dim, self.config.units])?,
                )?;
                let bias = if self.config.use_bias {
                    Some(Weight::new(
                        "bias",
                        self.config
                            .bias_initializer
                            .initialize(&[self.config.units])?,
                    )?)
                } else {
                    None
                };
                self.built_from_weights = false;
                (kernel, bias)
            }
        };
        let trainable = self.config.trainable;
        self.kernel = Some(
            kernel
                .with_trainable(trainable)
                .with_regularizer(self.config.kernel_regularizer)
                .with_constraint(self.config.kernel_constraint),
        );
        self.bias = bias.map(|bias| {
            bias.with_trainable(trainable)
                .with_regularizer(self.config.bias_regularizer)
                .with_constraint(self.config.bias_constraint)
        });
        Ok(())
    }

    fn unbuild(&mut self) {
        let kernel = self.kernel.take();
        let bias = self.bias.take();
        if std::mem::take(&mut self.built_from_weights) {
            let weights: Option<Vec<ArrayD<f32>>> = kernel
                .into_iter()
                .chain(bias)
                .map(Weight::into_array)
                .collect();
            self.initial_weights = weights;
        }
    }

    fn initial_weights(&self) -> Option<&[ArrayD<f32>]> {
        self.initial_weights.as_deref()
    }

    fn check_input(&self, inputs: &Tensor) -> Result<()> {
        self.float_input(inputs)?;
        if !self.is_built() {
            self.input_dim(&inputs.keras_shape())?;
        }
        Ok(())
    }

    fn call(&self, inputs: &Tensor) -> Result<Tensor> {
        let values = self.float_input(inputs)?;
        let mut out = self.pre_activation(values)?;
        self.config.activation.apply(&mut out);
        Ok(Tensor::from(out))
    }

    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        let in_dim = self.input_dim(input_shape)?;
        if let Some(kernel) = self.kernel()
            && kernel.nrows() != in_dim
        {
            return Err(self.shape_error(&[in_dim]));
        }
        let mut output = input_shape.to_vec();
        if let Some(last) = output.last_mut() {
            *last = Some(self.config.units);
        }
        Ok(output)
    }

    fn supports_masking(&self) -> bool {
        true
    }

    fn forward(&mut self, inputs: &Tensor, _training: bool) -> Result<Tensor> {
        let values = self.float_input(inputs)?;
        let z = self.pre_activation(values)?;
        let mut a = z.clone();
        self.config.activation.apply(&mut a);
        self.cache = Some((z, a.clone()));
        Ok(Tensor::from(a))
    }

    fn backward(&mut self, inputs: &Tensor, output_gradient: ArrayD<f32>) -> Result<Backward> {
        let activated = match &self.cache {
            Some((_, a)) if a.shape() == output_gradient.shape() => a,
            _ => {
                return Err(Error::IncompatibleShape {
                    context: format!("{}: output gradient (run forward first)", self.context()),
                    expected: self
                        .cache
                        .as_ref()
                        .map(|(_, a)| a.shape().iter().map(|&d| Some(d)).collect())
                        .unwrap_or_default(),
                    got: output_gradient.shape().iter().map(|&d| Some(d)).collect(),
                });
            }
        };
        let dz = self
            .config
            .activation
            .backward(activated, output_gradient)?;
        self.backward_pre_activation(inputs, dz)
    }

    fn output_logits(&self) -> Option<(Activation, &ArrayD<f32>)> {
        self.cache
            .as_ref()
            .map(|(z, _)| (self.config.activation, z))
    }

    fn backward_from_logits(
        &mut self,
        inputs: &Tensor,
        logits_gradient: ArrayD<f32>,
    ) -> Result<Backward> {
        self.backward_pre_activation(inputs, logits_gradient)
    }

    fn variables(&self) -> Vec<&Weight> {
        self.kernel.iter().chain(self.bias.iter()).collect()
    }

    fn variables_mut(&mut self) -> Vec<&mut Weight> {
        self.kernel.iter_mut().chain(self.bias.iter_mut()).collect()
    }
}
