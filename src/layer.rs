//! The [`Layer`] trait and the Keras lifecycle, top to bottom.
//!
//! A layer goes through the same stages as in Keras 2 (`tf_keras`):
//!
//! 1. **Configured.** A builder such as [`Embedding::new`](crate::layers::Embedding::new)
//!    records the settings and, optionally, `weights` to start from. No array exists yet.
//! 2. **Built.** On the first [`Layer::apply`] (Keras' `__call__`), or when a
//!    [`Sequential`](crate::model::Sequential) knows the input shape, [`Layer::build`] creates
//!    the weights from the input shape and runs the initializer.
//! 3. **Initial weights applied.** If `weights` were given at construction, they become the
//!    weights, once (a model whose build is undone gives them back as pending), overriding
//!    the initializer, as in Keras'
//!    `Layer.__call__` (`_maybe_build` -> `set_weights(self._initial_weights)`). ndkeras
//!    merges stages 2 and 3: a layer with initial weights never runs its initializer (the
//!    table Keras would fill with random numbers and overwrite at once is never filled), so
//!    building a large table from `weights` costs one copy of it.
//! 4. **Called.** Each call checks the input ([`Layer::check_input`]), computes the output
//!    ([`Layer::call`]) and the output mask ([`Layer::compute_mask`]), which travels with the
//!    output [`Tensor`].
//!
//! One deliberate difference: everything that can be checked without building (the layer's
//! configuration, the input, the count, shapes and values of the initial weights) is checked
//! *before* building, and a build either completes or changes nothing, so a call that fails
//! leaves an unbuilt layer unbuilt, with its initial weights still pending, and a built layer
//! exactly as it was. Keras would leave a half-initialised layer behind (with a NaN in
//! `weights`, a built layer holding the initializer's random table).
//!
//! ```
//! use ndarray::array;
//! use ndkeras::prelude::*;
//!
//! let table = array![[0.0f32, 1.0], [2.0, 3.0], [4.0, 5.0]].into_dyn();
//! let mut layer = Embedding::new(3, 2)
//!     .embeddings_initializer(Initializer::Ones)
//!     .weights(vec![table.clone()]);
//! assert!(!layer.is_built());
//!
//! let out = layer.apply(&Tensor::from(vec![2i64, 0]))?;
//! assert!(layer.is_built());
//! assert_eq!(layer.get_weights(), vec![table]); // the weights won over the initializer
//! assert_eq!(out.as_float().unwrap(), &array![[4.0f32, 5.0], [0.0, 1.0]].into_dyn());
//! # Ok::<(), ndkeras::Error>(())
//! ```

use std::any::Any;
use std::fmt;

use ndarray::{Array2, ArrayD, ArrayViewD};

use crate::activations::Activation;
use crate::error::{Error, Result, Shape};
use crate::tensor::Tensor;
use crate::weight::{Prepared, Weight, WeightId, WeightValues};

/// A Keras layer: configured, built lazily from its input shape, then called.
///
/// Layers are `Send + Sync`, so a model can be shared across threads for inference.
/// Implementors provide the required methods; [`Layer::apply`] ties them together in Keras'
/// order and should not be overridden.
pub trait Layer: Any + Send + Sync + fmt::Debug {
    // ----- identity and configuration -------------------------------------------------

    /// The layer's name (Keras' `name`), unique within a model.
    fn name(&self) -> &str;

    /// Keras' class name (`"Embedding"`).
    fn class_name(&self) -> &'static str;

    /// Whether the weights are updated by training (Keras' `trainable`).
    fn is_trainable(&self) -> bool;

    /// Freezes or unfreezes the layer (Keras' `layer.trainable = False`), its weights
    /// included. An optimizer keeps the slots of a frozen weight, so unfreezing resumes
    /// where training left off, and the other weights' slots are untouched.
    fn set_trainable(&mut self, trainable: bool);

    /// Checks the configuration (dimensions, initializer parameters, ...). Called before the
    /// layer is built or added to a model.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the setting.
    fn validate(&self) -> Result<()> {
        Ok(())
    }

    /// The shape of the model input this layer declares, including the batch axis (Keras'
    /// `batch_input_shape`), if it declares one. A `Sequential` whose first layer declares a
    /// shape is built as soon as the layer is added.
    fn batch_input_shape(&self) -> Option<Shape> {
        None
    }

    // ----- building ----------------------------------------------------------------------

    /// Whether [`Layer::build`] has run.
    fn is_built(&self) -> bool;

    /// The shapes of the weights `build` would create for `input_shape`, in
    /// [`Layer::get_weights`] order.
    ///
    /// # Errors
    /// [`Error::IncompatibleShape`] when the layer cannot take inputs of that shape.
    fn weight_shapes_for(&self, input_shape: &[Option<usize>]) -> Result<Vec<Vec<usize>>>;

    /// Creates the weights for `input_shape`: from the pending initial weights when the layer
    /// was given `weights` (the initializers do not run: at most one copy of each array is
    /// made), otherwise with the initializers. A built layer with pending initial weights
    /// (given after it was built) takes them now.
    ///
    /// Either succeeds completely or changes nothing: on error an unbuilt layer stays unbuilt
    /// with its initial weights still pending. Building a built layer with nothing pending is
    /// a no-op, as in Keras.
    ///
    /// # Errors
    /// The configuration errors of [`Layer::validate`], the errors of
    /// [`check_initial_weights`] (count, shapes, non-finite values), initializer errors,
    /// [`Error::ShapeOverflow`], [`Error::Allocation`].
    fn build(&mut self, input_shape: &[Option<usize>]) -> Result<()>;

    /// Undoes the last successful [`Layer::build`] of a layer that was unbuilt before it: the
    /// weights are dropped, and weights that came from the initial `weights` become pending
    /// again. A model uses it to make a build of several layers all-or-nothing. Layers without
    /// weights (always built) do nothing.
    fn unbuild(&mut self);

    /// The `weights` given at construction and not applied yet.
    fn initial_weights(&self) -> Option<&[ArrayD<f32>]>;

    // ----- calling -----------------------------------------------------------------------

    /// Checks that `inputs` can be passed to [`Layer::call`]: shape, type and values
    /// (every id of an embedding lookup). Needs only the configuration, not the weights.
    ///
    /// # Errors
    /// [`Error::IncompatibleShape`], [`Error::IncompatibleDtype`],
    /// [`Error::IndexOutOfRange`], [`Error::NonIntegerIndex`].
    fn check_input(&self, inputs: &Tensor) -> Result<()>;

    /// The layer's computation (Keras' `call`). Checks its input as [`Layer::check_input`]
    /// does, so it never panics on bad input; does not build.
    ///
    /// # Errors
    /// [`Error::NotBuilt`] on an unbuilt layer, and the errors of [`Layer::check_input`].
    fn call(&self, inputs: &Tensor) -> Result<Tensor>;

    /// The output shape for an input shape (`None` = unknown), without computing anything.
    ///
    /// # Errors
    /// [`Error::IncompatibleShape`] when the layer cannot take that shape.
    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape>;

    /// The mask of the output, from the input and the incoming mask (Keras' `compute_mask`).
    /// The default passes the incoming mask on.
    ///
    /// # Errors
    /// Layer-specific; the default never fails.
    fn compute_mask(
        &self,
        inputs: &Tensor,
        mask: Option<&ArrayD<bool>>,
    ) -> Result<Option<ArrayD<bool>>> {
        let _ = inputs;
        Ok(mask.cloned())
    }

    // ----- weights -----------------------------------------------------------------------

    /// Every weight the layer holds (trainable or not), in Keras' order (empty before
    /// `build`): Keras' `layer.variables` (`layer.weights` in Keras; here `weights` is the
    /// builder of the constructor argument). Everything else about weights derives from
    /// this: `get_weights`, `set_weights`, `count_params`, the names and shapes, what
    /// training updates.
    fn variables(&self) -> Vec<&Weight>;

    /// The weights, mutably, in [`Layer::variables`] order.
    fn variables_mut(&mut self) -> Vec<&mut Weight>;

    /// Read-only views of the weights, in Keras' order (empty before `build`): where the
    /// values live, without a copy for float32 weights. A quantized or half-precision weight
    /// is widened once and the float32 copy kept (see [`Weight::view`]): read those with
    /// [`Weight::values`], or copy them with [`Layer::try_get_weights`]. Saving a model
    /// writes float32 weights from their views straight into the file and widens the others
    /// for the save only.
    fn weight_views(&self) -> Vec<ArrayViewD<'_, f32>> {
        self.variables().into_iter().map(Weight::view).collect()
    }

    /// The shapes of the weights the layer holds, in [`Layer::get_weights`] order (empty
    /// before `build`).
    fn weight_shapes(&self) -> Vec<Vec<usize>> {
        self.variables()
            .iter()
            .map(|w| w.shape().to_vec())
            .collect()
    }

    /// The names of the weights, in [`Layer::get_weights`] order (Keras' variable names:
    /// `embeddings`, `kernel`, `bias`). Used to save and load weights by name.
    fn weight_names(&self) -> Vec<String> {
        self.variables()
            .iter()
            .map(|w| w.name().to_string())
            .collect()
    }

    /// Copies of the weights, in Keras' order (empty before `build`).
    ///
    /// Like any Rust copy (`Vec::clone`), a copy that does not fit in memory aborts the
    /// process: for a table whose copy may not fit, use [`Layer::try_get_weights`], or read it
    /// in place with [`Layer::weight_views`].
    fn get_weights(&self) -> Vec<ArrayD<f32>> {
        self.variables()
            .into_iter()
            .map(|weight| match weight.values() {
                WeightValues::Float32(view) => view.to_owned(),
                // Read once into a fresh copy (not the weight's own widened view, which
                // would keep a float32 copy of a quantized table alive).
                WeightValues::Int8(codes) => codes.mapv(f32::from),
                WeightValues::Half(bits, dtype) => {
                    bits.mapv(|b| crate::quantization::half_to_f32(b, dtype))
                }
            })
            .collect()
    }

    /// [`Layer::get_weights`] with fallible copies.
    ///
    /// # Errors
    /// [`Error::Allocation`] when a copy does not fit in memory.
    fn try_get_weights(&self) -> Result<Vec<ArrayD<f32>>> {
        self.variables()
            .into_iter()
            .map(|weight| weight.try_to_f32(|| format!("layer \"{}\": get_weights", self.name())))
            .collect()
    }

    /// What `save_weights` writes for the layer, as `(weight name, array)` pairs (Keras 3's
    /// `save_own_variables`). `None`, the default: every weight under its own name, written
    /// from where it lives. An embedding with LoRA saves its merged table only.
    ///
    /// # Errors
    /// [`Error::Allocation`] for a copy the saved form needs.
    fn saved_weights(&self) -> Result<Option<NamedArrays>> {
        Ok(None)
    }

    /// The weights to assign from the arrays a weights file holds for the layer (Keras 3's
    /// `load_own_variables`): by default the arrays themselves. An embedding with LoRA given
    /// its merged table alone gets the table, and zeros for `A` and `B`.
    ///
    /// # Errors
    /// [`Error::Allocation`] for the arrays the layer adds.
    fn weights_from_saved(&self, arrays: Vec<ArrayD<f32>>) -> Result<Vec<ArrayD<f32>>> {
        Ok(arrays)
    }

    /// Checks that `weights` (one array per weight, of the weight's shape: checked before)
    /// hold values the layer's variables can take, beyond finiteness: for an int8 or
    /// half-precision variable, values that survive its type
    /// ([`WeightDType`](crate::weight::WeightDType)); a layer with rules between its
    /// variables (the scales of a quantized table) adds them. [`prepare_weights`] runs it, so
    /// `set_weights`, a model's `set_weights` and `load_weights` all check the same way,
    /// before anything changes.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the layer, the weight, the first bad value and its
    /// position.
    fn check_weight_values(&self, weights: &[ArrayD<f32>]) -> Result<()> {
        for (weight, array) in self.variables().into_iter().zip(weights) {
            weight.check_convertible(array, self.name())?;
        }
        Ok(())
    }

    /// Replaces the weights (Keras' `set_weights`). The list must have one array per weight,
    /// each of the weight's exact shape and holding finite values only (see
    /// [`check_weights`]); every copy is made before the first weight changes, so nothing
    /// changes when any of this fails. Each weight keeps its id (optimizer slots stay
    /// attached, as Keras' `assign` keeps the variable).
    ///
    /// # Errors
    /// [`Error::WeightCount`] (an unbuilt layer holds 0 weights, as in Keras),
    /// [`Error::WeightShape`] naming both shapes, [`Error::InvalidArgument`] naming the first
    /// non-finite value and its position, or a value a variable cannot hold
    /// ([`Layer::check_weight_values`]), [`Error::Allocation`].
    fn set_weights(&mut self, weights: Vec<ArrayD<f32>>) -> Result<()> {
        let prepared = prepare_weights(self, &weights)?;
        assign_weights(self, weights, prepared)
    }

    /// The number of scalars in the weights (Keras' `count_params`).
    ///
    /// # Errors
    /// [`Error::NotBuilt`] before `build`, as in Keras.
    fn count_params(&self) -> Result<usize> {
        if !self.is_built() {
            return Err(Error::NotBuilt {
                context: format!("layer \"{}\"", self.name()),
                what: "the number of parameters".into(),
                hint: "build the layer (call it once, or add it to a model with a known input shape) first".into(),
            });
        }
        Ok(self
            .weight_shapes()
            .iter()
            .map(|shape| shape.iter().product::<usize>())
            .sum())
    }

    // ----- training ----------------------------------------------------------------------

    /// Whether the layer accepts an input mask (Keras' `supports_masking`). A layer that does
    /// not and receives one is an error (tf_keras 2 drops the mask silently: a deliberate
    /// difference). Default: `false`.
    fn supports_masking(&self) -> bool {
        false
    }

    /// The forward pass of `fit` and `evaluate`: like [`Layer::call`], but the layer may
    /// remember what [`Layer::backward`] needs, and with `training` it may behave differently
    /// (a `Dropout` drops units only when `training`).
    ///
    /// # Errors
    /// Those of [`Layer::call`].
    fn forward(&mut self, inputs: &Tensor, training: bool) -> Result<Tensor> {
        let _ = training;
        self.call(inputs)
    }

    /// Gives back a tensor this layer's [`Layer::forward`] returned, once the model that
    /// asked for it no longer needs it (after a training step's metrics): a layer may keep
    /// its buffer for its next forward pass instead of allocating a fresh one. The default
    /// drops it.
    fn recycle(&mut self, output: Tensor) {
        drop(output);
    }

    /// Frees the buffers kept by [`Layer::recycle`] (the model calls it when training
    /// ends). The default keeps none.
    fn release_buffers(&mut self) {}

    /// The backward pass: from the gradient of the loss with respect to this layer's output
    /// (for the `inputs` of the last [`Layer::forward`]), the gradient with respect to its
    /// input and to each trainable weight, keyed by the weight's id.
    ///
    /// # Errors
    /// [`Error::NotBuilt`] for a layer without a backward pass (the default) or not built,
    /// and shape errors when `output_gradient` does not match the output.
    fn backward(&mut self, inputs: &Tensor, output_gradient: ArrayD<f32>) -> Result<Backward> {
        let _ = (inputs, output_gradient);
        Err(Error::NotBuilt {
            context: format!("layer \"{}\" ({})", self.name(), self.class_name()),
            what: "a backward pass".into(),
            hint: "this layer cannot be trained".into(),
        })
    }

    /// The activation the layer applied last and the values before it (logits), from the
    /// last [`Layer::forward`]. Keras computes a cross-entropy after a sigmoid or
    /// softmax from these logits (numerically stable); layers without an activation return
    /// `None`.
    fn output_logits(&self) -> Option<(Activation, &ArrayD<f32>)> {
        None
    }

    /// [`Layer::backward`] from the gradient with respect to the logits of
    /// [`Layer::output_logits`].
    ///
    /// # Errors
    /// [`Error::NotBuilt`] for layers without logits (the default).
    fn backward_from_logits(
        &mut self,
        inputs: &Tensor,
        logits_gradient: ArrayD<f32>,
    ) -> Result<Backward> {
        let _ = (inputs, logits_gradient);
        Err(Error::NotBuilt {
            context: format!("layer \"{}\" ({})", self.name(), self.class_name()),
            what: "logits".into(),
            hint: "only layers with an activation expose logits".into(),
        })
    }

    /// For each trainable weight that a forward pass reads only in part (an embedding
    /// table), the distinct rows it reads for `inputs`, sorted. Training uses it to bring
    /// those rows up to date before the forward pass; a trainable weight not listed is read
    /// whole.
    ///
    /// # Errors
    /// The input errors of [`Layer::check_input`].
    fn rows_read(&self, inputs: &Tensor) -> Result<Vec<(WeightId, Vec<usize>)>> {
        let _ = inputs;
        Ok(Vec::new())
    }

    // ----- several inputs (merge layers) ---------------------------------------------------
    //
    // Keras passes a merge layer (`Add`, `Concatenate`, `Dot`, ...) a list of inputs. These
    // methods take a list; the defaults accept exactly one input and use the single-input
    // methods above, and merge layers override them (their single-input methods refuse).

    /// [`Layer::compute_output_shape`] for a list of inputs.
    ///
    /// # Errors
    /// [`Error::IncompatibleShape`]; for the default, a list of other than one input.
    fn compute_output_shape_of(&self, input_shapes: &[Shape]) -> Result<Shape> {
        match input_shapes {
            [one] => self.compute_output_shape(one),
            _ => Err(input_count_error(self, input_shapes.len())),
        }
    }

    /// Stage 4 of the lifecycle ([`call_with_mask`]) for a list of inputs: the output with
    /// its mask attached.
    ///
    /// # Errors
    /// Those of [`Layer::call`]; for the default, a list of other than one input.
    fn call_of(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        match inputs {
            [one] => call_with_mask(self, one),
            _ => Err(input_count_error(self, inputs.len())),
        }
    }

    /// [`Layer::forward`] for a list of inputs, with the output mask attached.
    ///
    /// # Errors
    /// Those of [`Layer::forward`]; for the default, a list of other than one input.
    fn forward_of(&mut self, inputs: &[&Tensor], training: bool) -> Result<Tensor> {
        match inputs {
            [one] => {
                check_mask_support(self, one)?;
                let output = self.forward(one, training)?;
                attach_output_mask(self, one, output)
            }
            _ => Err(input_count_error(self, inputs.len())),
        }
    }

    /// [`Layer::backward`] (or [`Layer::backward_from_logits`] with `from_logits`) for a list
    /// of inputs: one gradient per input (`None` for integer inputs) and the weights'.
    ///
    /// # Errors
    /// Those of [`Layer::backward`]; for the default, a list of other than one input.
    fn backward_of(
        &mut self,
        inputs: &[&Tensor],
        output_gradient: ArrayD<f32>,
        from_logits: bool,
    ) -> Result<BackwardOf> {
        let [one] = inputs else {
            return Err(input_count_error(self, inputs.len()));
        };
        let backward = if from_logits {
            self.backward_from_logits(one, output_gradient)?
        } else {
            self.backward(one, output_gradient)?
        };
        Ok(BackwardOf {
            input_gradients: vec![backward.input_gradient],
            weight_gradients: backward.weight_gradients,
        })
    }

    // ----- call arguments (Keras' `layer(x, reverse=True)`) -------------------------------
    //
    // A call in a graph may carry Keras' keyword arguments ([`CallArgs`]). The defaults take
    // the plain call only and refuse any argument, naming the layer; a layer with call
    // arguments (a reversible embedding) overrides them.

    /// [`Layer::compute_output_shape_of`] for a call with `args`.
    ///
    /// # Errors
    /// Those of [`Layer::compute_output_shape_of`]; for the default, any argument.
    fn compute_output_shape_with(&self, input_shapes: &[Shape], args: CallArgs) -> Result<Shape> {
        refuse_args(self, args)?;
        self.compute_output_shape_of(input_shapes)
    }

    /// [`Layer::call_of`] for a call with `args`.
    ///
    /// # Errors
    /// Those of [`Layer::call_of`]; for the default, any argument.
    fn call_with(&self, inputs: &[&Tensor], args: CallArgs) -> Result<Tensor> {
        refuse_args(self, args)?;
        self.call_of(inputs)
    }

    /// [`Layer::forward_of`] for a call with `args`.
    ///
    /// # Errors
    /// Those of [`Layer::forward_of`]; for the default, any argument.
    fn forward_with(
        &mut self,
        inputs: &[&Tensor],
        training: bool,
        args: CallArgs,
    ) -> Result<Tensor> {
        refuse_args(self, args)?;
        self.forward_of(inputs, training)
    }

    /// [`Layer::backward_of`] for a call with `args`.
    ///
    /// # Errors
    /// Those of [`Layer::backward_of`]; for the default, any argument.
    fn backward_with(
        &mut self,
        inputs: &[&Tensor],
        output_gradient: ArrayD<f32>,
        from_logits: bool,
        args: CallArgs,
    ) -> Result<BackwardOf> {
        refuse_args(self, args)?;
        self.backward_of(inputs, output_gradient, from_logits)
    }

    // ----- the lifecycle: Keras' `Layer.__call__` ------------------------------------------

    /// Calls the layer as Keras' `layer(inputs)` does: checks the input, builds the layer on
    /// its first call and applies the initial `weights`, then computes the output and
    /// attaches the output mask.
    ///
    /// # Errors
    /// Any error of [`Layer::check_input`], [`Layer::build`] (the initial weights
    /// included) and [`Layer::call`]. A failed call changes nothing.
    fn apply(&mut self, inputs: &Tensor) -> Result<Tensor> {
        if needs_build(self) {
            // Everything `call` could reject is checked before building, so that a failed
            // first call leaves the layer unbuilt, with its initial weights still pending.
            self.validate()?;
            self.check_input(inputs)?;
            self.build(&inputs.keras_shape())?;
        }
        call_with_mask(self, inputs)
    }
}

/// Arrays with their names: what a layer saves in a weights file
/// ([`Layer::saved_weights`]).
pub type NamedArrays = Vec<(String, ArrayD<f32>)>;

/// Keras' keyword arguments of one call of a layer in a graph: `layer(x, reverse=True)` is
/// `graph.call_with(layer, &[x], CallArgs::default().reverse(true))`. The plain call has
/// none (the default); a layer refuses an argument it does not take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct CallArgs {
    /// Keras 3's `reverse=True` of a reversible embedding: the output projection onto the
    /// vocabulary (logits) instead of the lookup.
    pub reverse: bool,
}

impl CallArgs {
    /// The same arguments with `reverse` set.
    pub fn reverse(mut self, reverse: bool) -> CallArgs {
        self.reverse = reverse;
        self
    }

    /// Whether this is the plain call (no argument set).
    pub fn is_plain(&self) -> bool {
        *self == CallArgs::default()
    }
}

/// [`Error::InvalidArgument`] naming the layer when `args` is not the plain call.
fn refuse_args<L: Layer + ?Sized>(layer: &L, args: CallArgs) -> Result<()> {
    if args.is_plain() {
        return Ok(());
    }
    Err(Error::invalid_argument(
        format!("layer \"{}\" ({})", layer.name(), layer.class_name()),
        "call arguments",
        format!("{args:?}"),
        "none: this layer takes no call argument",
    ))
}

/// Stage 4 of the lifecycle on a built layer: `call`, then `compute_mask`, and the mask
/// attached to the output (Keras' `_keras_mask`).
///
/// # Errors
/// The errors of [`Layer::call`] and [`Layer::compute_mask`].
pub fn call_with_mask<L: Layer + ?Sized>(layer: &L, inputs: &Tensor) -> Result<Tensor> {
    check_mask_support(layer, inputs)?;
    let output = layer.call(inputs)?;
    attach_output_mask(layer, inputs, output)
}

/// Attaches the layer's output mask (from its input and incoming mask) to `output`.
///
/// # Errors
/// The errors of [`Layer::compute_mask`].
pub(crate) fn attach_output_mask<L: Layer + ?Sized>(
    layer: &L,
    inputs: &Tensor,
    output: Tensor,
) -> Result<Tensor> {
    let mask = layer.compute_mask(inputs, inputs.mask())?;
    output.with_mask(mask)
}

/// Keras 2's masking rule: a layer that does not support masking refuses a masked input.
///
/// # Errors
/// [`Error::MaskNotSupported`] naming the layer.
pub fn check_mask_support<L: Layer + ?Sized>(layer: &L, inputs: &Tensor) -> Result<()> {
    if inputs.mask().is_some() && !layer.supports_masking() {
        return Err(Error::MaskNotSupported {
            layer: layer.name().to_string(),
            class_name: layer.class_name(),
        });
    }
    Ok(())
}

/// What [`Layer::backward`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Backward {
    /// Gradient of the loss with respect to the layer's input (`None` for integer inputs,
    /// which have no gradient).
    pub input_gradient: Option<ArrayD<f32>>,
    /// Gradient of the loss with respect to each trainable weight, by the weight's id.
    pub weight_gradients: Vec<(WeightId, Gradient)>,
}

/// What [`Layer::backward_of`] returns: [`Backward`] for a list of inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct BackwardOf {
    /// Gradient of the loss with respect to each input, in order (`None` for integer inputs).
    pub input_gradients: Vec<Option<ArrayD<f32>>>,
    /// Gradient of the loss with respect to each trainable weight, by the weight's id.
    pub weight_gradients: Vec<(WeightId, Gradient)>,
}

/// The error of a layer given a list of inputs of a length it does not take.
pub fn input_count_error<L: Layer + ?Sized>(layer: &L, got: usize) -> Error {
    Error::invalid_argument(
        format!("layer \"{}\" ({})", layer.name(), layer.class_name()),
        "inputs",
        format!("a list of {got}"),
        "one input",
    )
}

/// The gradient of one weight.
#[derive(Debug, Clone, PartialEq)]
pub enum Gradient {
    /// A gradient for every element, of the weight's shape.
    Dense(ArrayD<f32>),
    /// A row-sparse gradient (Keras' `IndexedSlices`) of a 2-D weight: `rows` are distinct
    /// (in any order), `values` holds one gradient row for each (the sum over repeated ids).
    Rows {
        /// The rows that received a gradient.
        rows: Vec<usize>,
        /// `(rows.len(), columns)` gradient values.
        values: Array2<f32>,
    },
}

/// Whether stages 2 and 3 are still to run: not built, or initial weights still pending.
pub(crate) fn needs_build<L: Layer + ?Sized>(layer: &L) -> bool {
    !layer.is_built() || layer.initial_weights().is_some()
}

/// Checks the pending initial `weights` of a layer, if any, against the weights it would
/// build for `input_shape` ([`Layer::weight_shapes_for`]), as [`check_weights`] does. Needs
/// only the configuration: a model checks every layer with it before building any.
///
/// A layer's [`Layer::build`] runs this check itself; a layer that was built by hand
/// (`layer.build(..)`) takes its pending initial weights there. (Keras applies them only
/// inside `__call__`'s own build, so there a manual `build` silently drops them; we do not.)
///
/// # Errors
/// [`Error::IncompatibleShape`] from [`Layer::weight_shapes_for`], and the errors of
/// [`check_weights`].
pub fn check_initial_weights<L: Layer + ?Sized>(
    layer: &L,
    input_shape: &[Option<usize>],
) -> Result<()> {
    if let Some(weights) = layer.initial_weights() {
        let expected = layer.weight_shapes_for(input_shape)?;
        check_weights(layer.name(), &expected, weights)?;
    }
    Ok(())
}

/// The fallible half of [`Layer::set_weights`], which changes nothing: `weights` checked
/// against the layer's weights ([`check_weights`], then [`Layer::check_weight_values`]) and
/// the copies their layout needs made. A model runs it for every layer before it assigns
/// any, so that loading is all or nothing.
///
/// # Errors
/// Those of [`check_weights`] and [`Layer::check_weight_values`], and [`Error::Allocation`].
pub fn prepare_weights<L: Layer + ?Sized>(
    layer: &L,
    weights: &[ArrayD<f32>],
) -> Result<Vec<Prepared>> {
    check_weights(layer.name(), &layer.weight_shapes(), weights)?;
    layer.check_weight_values(weights)?;
    weights
        .iter()
        .map(|array| Weight::prepare(array, || format!("layer \"{}\": set_weights", layer.name())))
        .collect()
}

/// The second half of [`Layer::set_weights`]: assigns `weights`, checked and prepared by
/// [`prepare_weights`], keeping every weight's id.
///
/// # Errors
/// Only an internal error (the checks ruled everything else out).
pub fn assign_weights<L: Layer + ?Sized>(
    layer: &mut L,
    weights: Vec<ArrayD<f32>>,
    prepared: Vec<Prepared>,
) -> Result<()> {
    for ((weight, array), prepared) in layer.variables_mut().into_iter().zip(weights).zip(prepared)
    {
        weight.assign(array, prepared)?;
    }
    Ok(())
}

/// For a built layer given new `weights` (the builder used after the build): assigns them as
/// one [`Layer::set_weights`], taking them out of `pending` only when that succeeds.
pub(crate) fn assign_pending<L: Layer + ?Sized>(
    layer: &mut L,
    pending: &mut Option<Vec<ArrayD<f32>>>,
) -> Result<()> {
    let Some(weights) = pending.as_deref() else {
        return Ok(());
    };
    let prepared = prepare_weights(layer, weights)?;
    let weights = pending.take().unwrap_or_default();
    assign_weights(layer, weights, prepared)
}

/// Checks a weight list against the expected shapes, as Keras' `set_weights` does (first
/// the count, then each shape), and then every value: a table holds finite values only (a
/// NaN row would silently poison every lookup of its id; Keras accepts it).
///
/// # Errors
/// [`Error::WeightCount`] and [`Error::WeightShape`], naming `layer`;
/// [`Error::InvalidArgument`] naming the first non-finite value, its weight and position.
pub fn check_weights(layer: &str, expected: &[Vec<usize>], weights: &[ArrayD<f32>]) -> Result<()> {
    if expected.len() != weights.len() {
        return Err(Error::WeightCount {
            layer: layer.to_string(),
            expected: expected.len(),
            got: weights.len(),
        });
    }
    for (index, (shape, weight)) in expected.iter().zip(weights).enumerate() {
        if weight.shape() != shape.as_slice() {
            return Err(Error::WeightShape {
                layer: layer.to_string(),
                index,
                expected: shape.clone(),
                got: weight.shape().to_vec(),
            });
        }
    }
    for (index, weight) in weights.iter().enumerate() {
        // A flat scan (vectorised over a contiguous array); the position only on failure.
        let found = match weight.as_slice_memory_order() {
            Some(values) if weight.is_standard_layout() => {
                values.iter().position(|v| !v.is_finite())
            }
            _ => weight.iter().position(|v| !v.is_finite()),
        };
        if let Some(flat) = found {
            let position = crate::tensor::unravel(flat, weight.shape());
            let bad = weight.iter().nth(flat).copied().unwrap_or(f32::NAN);
            return Err(Error::invalid_argument(
                format!("layer \"{layer}\""),
                "weights",
                format!("{bad} at position {position:?} of weight {index}"),
                "finite values",
            ));
        }
    }
    Ok(())
}

/// Turns a `f64` weight array into the `f32` a layer holds (Keras casts float64 weights to the
/// float32 variable the same way: round to nearest).
pub fn weights_from_f64(weights: ArrayD<f64>) -> ArrayD<f32> {
    weights.mapv(|v| v as f32)
}

thread_local! {
    /// Set while [`with_explicit_name`] makes an object that is named explicitly.
    static EXPLICIT_NAME: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `make` (a constructor followed by `with_name`) so that the automatic name it asks for
/// is not counted: in Keras an explicit name (`Embedding(name="words")`, a name from a
/// config) does not advance the counter of automatic names (`Layer._init_set_name` only
/// observes it).
#[cfg_attr(not(feature = "serde"), allow(dead_code))] // only config names explicitly
pub(crate) fn with_explicit_name<T>(make: impl FnOnce() -> T) -> T {
    let before = EXPLICIT_NAME.with(|flag| flag.replace(true));
    let made = make();
    EXPLICIT_NAME.with(|flag| flag.set(before));
    made
}

/// Gives layers Keras-style default names: `embedding`, `embedding_1`, `embedding_2`, ...
/// per class, for the whole process, as Keras' `backend.unique_object_name` does
/// (`zero_based`). Explicit names neither advance nor are avoided by the counter, as in
/// Keras: inside [`with_explicit_name`] nothing is counted.
pub(crate) fn unique_name(base: &str) -> String {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    if EXPLICIT_NAME.with(std::cell::Cell::get) {
        // Replaced by the explicit name at once.
        return base.to_string();
    }

    static COUNTS: OnceLock<Mutex<HashMap<String, usize>>> = OnceLock::new();
    let counts = COUNTS.get_or_init(|| Mutex::new(HashMap::new()));
    // A poisoned lock only means another thread panicked while counting; the map is intact.
    let mut counts = counts
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let count = counts.entry(base.to_string()).or_insert(0);
    let name = if *count == 0 {
        base.to_string()
    } else {
        format!("{base}_{count}")
    };
    *count += 1;
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ArrayD;

    #[test]
    fn check_weights_checks_count_then_shapes() {
        let w = ArrayD::<f32>::zeros(vec![3, 2]);
        assert!(check_weights("e", &[vec![3, 2]], std::slice::from_ref(&w)).is_ok());
        assert!(matches!(
            check_weights("e", &[vec![3, 2]], &[w.clone(), w.clone()]),
            Err(Error::WeightCount {
                expected: 1,
                got: 2,
                ..
            })
        ));
        let err = check_weights("e", &[vec![2, 3]], &[w]).unwrap_err();
        assert!(
            err.to_string().contains("(2, 3)") && err.to_string().contains("(3, 2)"),
            "{err}"
        );
    }

    #[test]
    fn unique_names_count_per_base() {
        let first = unique_name("test_unique_base");
        let second = unique_name("test_unique_base");
        assert_eq!(first, "test_unique_base");
        assert_eq!(second, "test_unique_base_1");
    }
}
