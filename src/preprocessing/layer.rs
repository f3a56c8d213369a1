//! The preprocessing layers as model layers ([`Layer`]): `StringLookup`, `IntegerLookup`,
//! `Hashing` and `TextVectorization` at the front of a `Sequential` or a functional model.
//!
//! What Keras (tf_keras 2.21) does and ndkeras follows: the layers are always built, have no
//! trainable weights and count no parameters; their output is `int64` ids (or `float32`
//! vectors in the vector output modes); no gradient flows through them (their
//! [`Layer::backward`] gives no input gradient, and training never asks for one: the layer
//! after them, an `Embedding`, gives none for its integer input).
//!
//! One deliberate difference: tf_keras lists the vocabulary of an *adapted* lookup (not of
//! one given a `vocabulary`) among `layer.weights` (a `VocabWeightHandler`), so that
//! `get_weights()` returns it as a string array first. ndkeras' weights are `float32`
//! arrays: the vocabulary is not among them (save it with `save_vocabulary`, or give it
//! inline in the config), so `model.get_weights()` lists the `Embedding` and `Dense` weights
//! only.
//!
//! Input checks name the layer and what it takes: a numeric tensor into a
//! `TextVectorization` or `StringLookup`, a string tensor into an `IntegerLookup`, a
//! `TextVectorization` input of shape `(batch, k)` with `k != 1` (Keras' rule) are errors.

use std::borrow::Cow;

use ndarray::{ArrayD, Axis, IxDyn};

use super::hashing::Hashing;
use super::index_lookup::IndexLookup;
use super::key::{AsQuery, LookupKey};
use super::output_mode::OutputMode;
use super::text_vectorization::TextVectorization;
use crate::error::{Error, Result, Shape};
use crate::layer::{Backward, Layer};
use crate::tensor::{DType, Tensor, TensorData, unravel};

/// The [`Layer`] methods shared by the preprocessing layers: a name and Keras' `trainable`
/// flag, always built, no weights, no gradient.
macro_rules! preprocessing_layer {
    ($ty:ty, $class:expr) => {
        fn name(&self) -> &str {
            <$ty>::name(self)
        }

        fn class_name(&self) -> &'static str {
            $class
        }

        fn is_trainable(&self) -> bool {
            <$ty>::trainable(self)
        }

        fn set_trainable(&mut self, trainable: bool) {
            <$ty>::set_trainable(self, trainable);
        }

        fn is_built(&self) -> bool {
            true
        }

        fn weight_shapes_for(&self, _input_shape: &[Option<usize>]) -> Result<Vec<Vec<usize>>> {
            Ok(Vec::new())
        }

        fn build(&mut self, _input_shape: &[Option<usize>]) -> Result<()> {
            Ok(())
        }

        fn unbuild(&mut self) {}

        fn initial_weights(&self) -> Option<&[ArrayD<f32>]> {
            None
        }

        fn variables(&self) -> Vec<&crate::weight::Weight> {
            Vec::new()
        }

        fn variables_mut(&mut self) -> Vec<&mut crate::weight::Weight> {
            Vec::new()
        }

        /// No gradient flows back through a preprocessing layer (its input is not a number
        /// to differentiate), and it has no weights.
        fn backward(
            &mut self,
            _inputs: &Tensor,
            _output_gradient: ArrayD<f32>,
        ) -> Result<Backward> {
            Ok(Backward {
                input_gradient: None,
                weight_gradients: Vec::new(),
            })
        }
    };
}

/// `layer "name" (Class)`, how errors name a layer.
fn owner(name: &str, class: &str) -> String {
    format!("layer \"{name}\" ({class})")
}

/// The error of an input of the wrong element type.
fn dtype_error(name: &str, class: &str, expected: &str, got: DType) -> Error {
    Error::IncompatibleDtype {
        context: owner(name, class),
        expected: expected.into(),
        got: got.name().into(),
    }
}

/// The strings of a string tensor, or the error naming the layer.
fn strings_of<'a>(inputs: &'a Tensor, name: &str, class: &str) -> Result<&'a ArrayD<String>> {
    inputs.as_strings().ok_or_else(|| {
        dtype_error(
            name,
            class,
            "string (a tensor of texts, e.g. Tensor::from(vec![\"a b\", \"c\"]))",
            inputs.dtype(),
        )
    })
}

/// The integers of an integer tensor as `i64` (float32 whole numbers accepted), or the
/// error naming the layer, the value and its position.
pub(crate) fn integers_of<'a>(
    inputs: &'a Tensor,
    name: &str,
    class: &str,
) -> Result<Cow<'a, ArrayD<i64>>> {
    fn widen<T: Copy + Into<i64>>(a: &ArrayD<T>) -> ArrayD<i64> {
        a.mapv(Into::into)
    }
    fn checked<T: Copy + TryInto<i64> + std::fmt::Display>(
        a: &ArrayD<T>,
        name: &str,
        class: &str,
    ) -> Result<ArrayD<i64>> {
        let mut out = Vec::with_capacity(a.len());
        for (flat, &v) in a.iter().enumerate() {
            match v.try_into() {
                Ok(v) => out.push(v),
                Err(_) => {
                    return Err(Error::invalid_argument(
                        owner(name, class),
                        "inputs",
                        format!("{v} at position {:?}", unravel(flat, a.shape())),
                        "integers that fit in int64 (Keras' key type)",
                    ));
                }
            }
        }
        ArrayD::from_shape_vec(IxDyn(a.shape()), out)
            .map_err(|e| Error::invalid_argument(owner(name, class), "inputs", e, "an array"))
    }
    Ok(match inputs.data() {
        TensorData::Int64(a) => Cow::Borrowed(a),
        TensorData::Int8(a) => Cow::Owned(widen(a)),
        TensorData::Int16(a) => Cow::Owned(widen(a)),
        TensorData::Int32(a) => Cow::Owned(widen(a)),
        TensorData::UInt8(a) => Cow::Owned(widen(a)),
        TensorData::UInt16(a) => Cow::Owned(widen(a)),
        TensorData::UInt32(a) => Cow::Owned(widen(a)),
        TensorData::UInt64(a) => Cow::Owned(checked(a, name, class)?),
        TensorData::Usize(a) => Cow::Owned(checked(a, name, class)?),
        TensorData::Float32(a) => {
            let mut out = Vec::with_capacity(a.len());
            for (flat, &v) in a.iter().enumerate() {
                // Whole numbers within int64 only: Keras would truncate 1.5 to 1.
                if !v.is_finite() || v.fract() != 0.0 || v.abs() >= 9.223_372e18 {
                    return Err(Error::NonIntegerIndex {
                        layer: name.to_string(),
                        value: v,
                        position: unravel(flat, a.shape()),
                    });
                }
                out.push(v as i64);
            }
            Cow::Owned(ArrayD::from_shape_vec(IxDyn(a.shape()), out).map_err(|e| {
                Error::invalid_argument(owner(name, class), "inputs", e, "an array")
            })?)
        }
        TensorData::String(_) => {
            return Err(dtype_error(
                name,
                class,
                "integer (an integer tensor, or float32 whole numbers)",
                DType::String,
            ));
        }
        #[allow(unreachable_patterns)]
        _ => {
            return Err(dtype_error(name, class, "integer", inputs.dtype()));
        }
    })
}

/// Checks the shape of the input of a vector output mode: rank 1 is one element per
/// sample (Keras would count a whole rank-1 batch as one sample, and give no batch axis),
/// rank 2 one row per sample; `"one_hot"` takes one element per sample.
fn check_samples(shape: &[usize], mode: OutputMode, name: &str, class: &str) -> Result<()> {
    let fits = match shape {
        [_] => true,
        [_, width] => mode != OutputMode::OneHot || *width == 1,
        _ => false,
    };
    if fits {
        return Ok(());
    }
    Err(Error::IncompatibleShape {
        context: format!(
            "{}: output_mode=\"{mode}\" takes (batch,) or (batch, {}) inputs",
            owner(name, class),
            if mode == OutputMode::OneHot {
                "1"
            } else {
                "tokens"
            }
        ),
        expected: vec![None, (mode == OutputMode::OneHot).then_some(1)],
        got: shape.iter().map(|&d| Some(d)).collect(),
    })
}

/// The samples of a vector output mode (see [`check_samples`]), one row each.
fn sample_rows<T: Clone>(
    values: &ArrayD<T>,
    mode: OutputMode,
    name: &str,
    class: &str,
) -> Result<Vec<Vec<T>>> {
    check_samples(values.shape(), mode, name, class)?;
    Ok(if values.ndim() == 1 {
        values.iter().map(|v| vec![v.clone()]).collect()
    } else {
        values
            .outer_iter()
            .map(|row| row.iter().cloned().collect())
            .collect()
    })
}

/// How an [`IndexLookup`]'s keys come out of and go into tensors.
pub trait TensorKey: LookupKey + AsQuery<<Self as LookupKey>::Query> {
    /// What the layer takes, for messages.
    const INPUT: &'static str;

    /// The keys of a tensor, or the error naming the layer.
    ///
    /// # Errors
    /// [`Error::IncompatibleDtype`] for a tensor of the other kind.
    fn keys_of<'a>(inputs: &'a Tensor, name: &str) -> Result<Cow<'a, ArrayD<Self>>>;

    /// A tensor of keys (the output of an inverting layer).
    fn into_tensor(keys: ArrayD<Self>) -> Tensor;
}

impl TensorKey for String {
    const INPUT: &'static str = "string";

    fn keys_of<'a>(inputs: &'a Tensor, name: &str) -> Result<Cow<'a, ArrayD<String>>> {
        strings_of(inputs, name, Self::CLASS_NAME).map(Cow::Borrowed)
    }

    fn into_tensor(keys: ArrayD<String>) -> Tensor {
        Tensor::from(keys)
    }
}

impl TensorKey for i64 {
    const INPUT: &'static str = "integer";

    fn keys_of<'a>(inputs: &'a Tensor, name: &str) -> Result<Cow<'a, ArrayD<i64>>> {
        integers_of(inputs, name, Self::CLASS_NAME)
    }

    fn into_tensor(keys: ArrayD<i64>) -> Tensor {
        Tensor::from(keys)
    }
}

impl<K: TensorKey> Layer for IndexLookup<K> {
    preprocessing_layer!(IndexLookup<K>, K::CLASS_NAME);

    fn check_input(&self, inputs: &Tensor) -> Result<()> {
        if self.invert() {
            return integers_of(inputs, self.name(), K::CLASS_NAME).map(|_| ());
        }
        let keys = K::keys_of(inputs, self.name())?;
        if self.output_mode() != OutputMode::Int {
            check_samples(keys.shape(), self.output_mode(), self.name(), K::CLASS_NAME)?;
        }
        Ok(())
    }

    /// Tokens to `int64` ids of the input's shape (`"int"`), ids to tokens (`invert`), or one
    /// `float32` vector per sample (the vector modes).
    fn call(&self, inputs: &Tensor) -> Result<Tensor> {
        let name = self.name();
        if self.invert() {
            let ids = integers_of(inputs, name, K::CLASS_NAME)?;
            return Ok(K::into_tensor(self.call_inverted(ids.as_ref())?));
        }
        let keys = K::keys_of(inputs, name)?;
        if self.output_mode() == OutputMode::Int {
            return Ok(Tensor::from(self.call_array(keys.as_ref())?));
        }
        let rows = sample_rows(keys.as_ref(), self.output_mode(), name, K::CLASS_NAME)?;
        Ok(Tensor::from(self.call_encoded(&rows)?))
    }

    /// Keras' `IndexLookup.compute_output_shape`: the input's shape in `"int"` mode,
    /// `(batch, depth)` in the vector modes (`depth` unknown before a vocabulary).
    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        if self.output_mode() == OutputMode::Int {
            return Ok(input_shape.to_vec());
        }
        let batch = input_shape.first().copied().flatten();
        Ok(vec![batch, self.depth()])
    }
}

impl Layer for Hashing {
    preprocessing_layer!(Hashing, "Hashing");

    fn check_input(&self, inputs: &Tensor) -> Result<()> {
        if inputs.as_strings().is_none() {
            integers_of(inputs, self.name(), "Hashing")?;
        }
        Ok(())
    }

    /// Strings or integers to `int64` bins, in the input's shape.
    fn call(&self, inputs: &Tensor) -> Result<Tensor> {
        let bins = match inputs.as_strings() {
            Some(strings) => self.call_array(strings)?,
            None => {
                let values = integers_of(inputs, self.name(), "Hashing")?;
                let mut first_error = None;
                let bins = values.map(|&v| match self.bin_of_integer(v) {
                    Ok(bin) => bin,
                    Err(e) => {
                        first_error.get_or_insert(e);
                        0
                    }
                });
                if let Some(e) = first_error {
                    return Err(e);
                }
                bins
            }
        };
        Ok(Tensor::from(bins))
    }

    /// The input's shape (Keras' `Hashing` in `"int"` mode).
    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        Ok(input_shape.to_vec())
    }
}

impl TextVectorization {
    /// The texts of an input of shape `(batch,)` or `(batch, 1)`, flattened to `(batch,)`.
    fn texts_of<'a>(&self, inputs: &'a Tensor) -> Result<Cow<'a, ArrayD<String>>> {
        let texts = strings_of(inputs, self.name(), "TextVectorization")?;
        match texts.shape() {
            [_] => Ok(Cow::Borrowed(texts)),
            [_, 1] => Ok(Cow::Owned(texts.index_axis(Axis(1), 0).to_owned())),
            _ => Err(self.rank_error(&inputs.keras_shape())),
        }
    }

    fn rank_error(&self, got: &[Option<usize>]) -> Error {
        Error::IncompatibleShape {
            context: format!(
                "{}: when tokenizing strings, the input rank must be 1 or the last dimension must be 1 (Keras' rule)",
                owner(self.name(), "TextVectorization")
            ),
            expected: vec![None, Some(1)],
            got: got.to_vec(),
        }
    }
}

impl Layer for TextVectorization {
    preprocessing_layer!(TextVectorization, "TextVectorization");

    fn check_input(&self, inputs: &Tensor) -> Result<()> {
        self.texts_of(inputs).map(|_| ())
    }

    /// Texts to `int64` ids `(batch, length)`, or `float32` vectors `(batch, depth)`.
    fn call(&self, inputs: &Tensor) -> Result<Tensor> {
        let texts = self.texts_of(inputs)?;
        self.call_texts(texts.as_ref())
    }

    /// Keras' `TextVectorization.compute_output_shape`: `(batch, output_sequence_length)`
    /// in `"int"` mode (unknown length without it), `(batch, depth)` in the vector modes.
    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        match input_shape {
            [_] | [_, Some(1) | None] => {}
            _ => return Err(self.rank_error(input_shape)),
        }
        let batch = input_shape.first().copied().flatten();
        Ok(if self.output_mode() == OutputMode::Int {
            vec![batch, self.output_sequence_length()]
        } else {
            vec![batch, self.lookup().depth()]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocessing::{IntegerLookup, StringLookup};
    use ndarray::array;

    #[test]
    fn lookups_take_their_own_dtype_only() {
        let lookup = StringLookup::builder()
            .vocabulary(["a", "b"])
            .name("words")
            .build()
            .unwrap();
        let ids = Layer::call(&lookup, &Tensor::from(vec!["b", "z", "a"])).unwrap();
        assert_eq!(ids, Tensor::from(array![2i64, 0, 1]));
        let err = Layer::call(&lookup, &Tensor::from(vec![1i64])).unwrap_err();
        assert!(err.to_string().contains("\"words\"") && err.to_string().contains("string"));

        let integers = IntegerLookup::builder().vocabulary([7, 9]).build().unwrap();
        let ids = Layer::call(&integers, &Tensor::from(vec![9u8, 1, 7])).unwrap();
        assert_eq!(ids, Tensor::from(array![2i64, 0, 1]));
        let err = Layer::call(&integers, &Tensor::from(vec!["9"])).unwrap_err();
        assert!(matches!(err, Error::IncompatibleDtype { .. }));
        let err = Layer::call(&integers, &Tensor::from(vec![1.5f32])).unwrap_err();
        assert!(matches!(err, Error::NonIntegerIndex { .. }));
        let err = Layer::call(&integers, &Tensor::from(vec![u64::MAX])).unwrap_err();
        assert!(err.to_string().contains("int64"), "{err}");
    }

    #[test]
    fn hashing_takes_strings_and_integers() {
        let hashing = Hashing::new(3).unwrap();
        let bins = Layer::call(&hashing, &Tensor::from(vec!["A", "B"])).unwrap();
        assert_eq!(bins, Tensor::from(array![1i64, 0]));
        let from_ints = Layer::call(&hashing, &Tensor::from(array![[1i32, 2]])).unwrap();
        assert_eq!(from_ints.shape(), &[1, 2]);
        assert_eq!(
            hashing.compute_output_shape(&[None, Some(2)]).unwrap(),
            vec![None, Some(2)]
        );
    }

    #[test]
    fn backward_gives_no_gradient() {
        let mut layer = TextVectorization::builder().build().unwrap();
        let back = layer
            .backward(&Tensor::from(vec!["a"]), ArrayD::zeros(IxDyn(&[1, 1])))
            .unwrap();
        assert!(back.input_gradient.is_none() && back.weight_gradients.is_empty());
        assert_eq!(layer.count_params().unwrap(), 0);
        assert!(layer.get_weights().is_empty());
    }
}
