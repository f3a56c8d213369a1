//! The `Embedding` layer: a table of learned vectors looked up by integer id.
//!
//! # Speed
//! The allocating call ([`Layer::apply`], [`Layer::call`], and thereby
//! [`Sequential::predict`](crate::model::Sequential::predict)) makes one pass over the ids
//! that checks each id and copies its row into a fresh output written once (never
//! zero-filled first; 32 MB and more with huge-page advice). For ids of up to 3 axes it
//! allocates nothing but the output (and, with `mask_zero`, the mask).
//! [`Embedding::lookup_into`] writes into a buffer the caller keeps and allocates nothing: one
//! vectorised pass checks the ids, then the rows are copied, so that on error the buffer is
//! untouched. Both split outputs of 128 Ki values (512 KB) and more across threads (the
//! `rayon` feature, on by default).
//!
//! # PyTorch's `nn.Embedding` options
//! Beside Keras' settings the layer takes PyTorch's: [`Embedding::padding_idx`] (zero row at
//! init, no gradient), [`Embedding::max_norm`] / [`Embedding::norm_type`] (rows renormalised
//! at lookup, in the table by `apply` and `forward`, in the output only by `call`),
//! [`Embedding::scale_grad_by_freq`] and [`Embedding::from_pretrained`]. Their values are
//! checked against reference vectors from a PyTorch 2.15 run
//! (`tests/data/pytorch_embedding_options.py`).
//!
//! # LoRA
//! [`Embedding::enable_lora`] (Keras 3's `enable_lora`) freezes the table `E` and appends
//! `lora_embeddings_a` `(input_dim, rank)` and `lora_embeddings_b` `(rank, output_dim)`;
//! every lookup path reads `E + (lora_alpha / rank) · A · B`, computing only the gathered
//! rows. Training gives `A` a row-sparse gradient and `B` a dense one.
//! [`Embedding::save_own_variables`] gives the merged table (Keras' `save_own_variables`)
//! and [`Embedding::load_own_variables`] loads one, zeroing `A` and `B`. The outputs, the
//! gradients, two SGD steps and the saved table are checked against Keras 3.15.1
//! (`tests/data/keras3_lora.py`). LoRA works on an int8/int4 table (the frozen base is the
//! dequantized rows; saving re-quantizes the merged table, as Keras does) and on a
//! float16/bfloat16 table (the effective rows are rounded to the table's type, as Keras'
//! compute dtype rounds them), checked against Keras 3.15.1 too
//! (`tests/data/keras3_quantized_lora.py`); with `max_norm` it is refused.
//! [`Embedding::with_lora`] (Keras' `lora_rank`/`lora_alpha` arguments) enables it at the
//! build.

use std::fmt;

use ndarray::{Array2, ArrayD, ArrayView2, Dimension, Ix2, IxDyn};

use crate::constraints::Constraint;
use crate::error::{Error, OptDims, Result, Shape};
use crate::initializers::Initializer;
use crate::layer::{
    Backward, Gradient, Layer, assign_pending, assign_weights, check_initial_weights,
    prepare_weights, unique_name,
};
use crate::quantization::{
    QuantizationMode, QuantizedRows, QuantizedTable, TableDType, f32_to_half, group_index,
    quantize_table, round_to_half, try_filled,
};
use crate::regularizers::Regularizer;
use crate::storage::aligned_zeros;
use crate::tensor::{Tensor, checked_size};
use crate::weight::{Weight, WeightId, WeightValues};

/// The settings of an [`Embedding`], with Keras' names.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingConfig {
    /// Size of the vocabulary: ids are `0..input_dim`.
    pub input_dim: usize,
    /// Length of each vector.
    pub output_dim: usize,
    /// Keras 2's `input_length`: the known lengths of the non-batch input axes, `None` where
    /// any length is accepted. `None` (the default) accepts inputs of any rank.
    pub input_length: Option<Vec<Option<usize>>>,
    /// Whether id 0 is padding, masked out for the layers that follow (Keras' `mask_zero`).
    pub mask_zero: bool,
    /// How the table is filled at build (Keras' `embeddings_initializer`).
    pub embeddings_initializer: Initializer,
    /// Whether training updates the table (Keras' `trainable`).
    pub trainable: bool,
    /// Penalty on the table added to the loss (Keras' `embeddings_regularizer`).
    pub embeddings_regularizer: Option<Regularizer>,
    /// Projection applied to the table after each step (Keras' `embeddings_constraint`).
    pub embeddings_constraint: Option<Constraint>,
    /// How the table is quantized, if it is (Keras' `quantization_config` and
    /// `int8_from_float32`-style dtype policy): see [`Embedding::quantize`].
    pub quantization: Option<QuantizationMode>,
    /// The type an unquantized table is stored in (Keras' layer `dtype`). Default: float32.
    pub dtype: TableDType,
    /// PyTorch's `padding_idx` as given (a negative value counts from the end): see
    /// [`Embedding::padding_idx`]. Default: none.
    pub padding_idx: Option<isize>,
    /// PyTorch's `max_norm`: see [`Embedding::max_norm`]. Default: none.
    pub max_norm: Option<f32>,
    /// PyTorch's `norm_type`, the `p` of the p-norm `max_norm` bounds. Default: 2.
    pub norm_type: f32,
    /// PyTorch's `scale_grad_by_freq`: see [`Embedding::scale_grad_by_freq`]. Default: false.
    pub scale_grad_by_freq: bool,
}

/// Turns integer ids into dense vectors: `output[..., :] = embeddings[id, :]`
/// (Keras' `Embedding`).
///
/// The table `(input_dim, output_dim)` is created lazily, when the layer is built (on its first
/// call, or when added to a [`Sequential`](crate::model::Sequential) whose input shape is
/// known), by the `embeddings_initializer` (default: `RandomUniform(-0.05, 0.05)`). `weights`
/// given at construction become the table at the build and override the initializer (which
/// then does not run),
/// exactly as in Keras.
///
/// # Shapes
/// - input: ids of any rank `(d0, ..., dn)`, as `i8`, `i16`, `i32`, `i64`, `u8`, `u16`,
///   `u32`, `u64`, `usize`, or `f32` holding whole numbers;
/// - output: `(d0, ..., dn, output_dim)`, `f32`;
/// - mask (with `mask_zero`): `(d0, ..., dn)`, `ids != 0`.
///
/// # Errors
/// Every id is checked, and a bad one means no output at all (no partial result, no zero
/// row, no wrap-around): an id `< 0` or `>= input_dim` is an
/// [`Error::IndexOutOfRange`] naming the layer, the id, its position and the valid range (where
/// TensorFlow on a GPU would return zeros and JAX a NaN row or a wrapped index), and a float id
/// that is not a whole number is an [`Error::NonIntegerIndex`] (where Keras would truncate it).
///
/// # Example
/// ```
/// use ndarray::array;
/// use ndkeras::prelude::*;
///
/// let table = array![[0.0f32, 1.0], [2.0, 3.0], [4.0, 5.0]].into_dyn();
/// let mut layer = Embedding::new(3, 2).mask_zero(true).weights(vec![table]);
/// let out = layer.apply(&Tensor::from(array![[1i64, 2, 0]]))?;
/// assert_eq!(out.shape(), &[1, 3, 2]);
/// assert_eq!(out.mask(), Some(&array![[true, true, false]].into_dyn()));
///
/// let err = layer.apply(&Tensor::from(array![[1i64, 3]])).unwrap_err();
/// assert!(matches!(err, Error::IndexOutOfRange { index: 3, .. }));
/// # Ok::<(), ndkeras::Error>(())
/// ```
#[derive(Clone)]
pub struct Embedding {
    name: String,
    config: EmbeddingConfig,
    initial_weights: Option<Vec<ArrayD<f32>>>,
    embeddings: Option<Weight>,
    /// The other variables of a quantized table (with `embeddings` holding the codes).
    quantized: Option<QuantizedWeights>,
    /// Whether the table was made from `initial_weights` (which `unbuild` gives back).
    built_from_weights: bool,
    /// LoRA's low-rank adapters, once [`Embedding::enable_lora`] ran.
    lora: Option<Lora>,
    /// LoRA to enable at the build (Keras' `lora_rank` and `lora_alpha` arguments).
    lora_at_build: Option<(usize, Option<f32>)>,
    /// Scratch for summing the gradient rows of repeated ids.
    row_slots: RowSlots,
    /// An output buffer given back by the model ([`Layer::recycle`]), reused by the next
    /// forward pass.
    spare_output: Option<Vec<f32>>,
}

/// The variables of a quantized table besides its codes, in Keras' order.
#[derive(Debug, Clone)]
struct QuantizedWeights {
    /// `embeddings_scale`: `(input_dim,)`, or `(input_dim, groups)` for grouped int4.
    scale: Weight,
    /// `embeddings_zero` (grouped int4 only): `(input_dim, groups)` int8.
    zero: Option<Weight>,
    /// `g_idx` (grouped int4 only): `(output_dim,)`, the group of each column.
    g_idx: Option<Weight>,
}

impl Embedding {
    /// An embedding of `input_dim` ids into vectors of `output_dim`, with Keras' defaults:
    /// no `input_length`, `mask_zero` off, `RandomUniform(-0.05, 0.05)`, trainable, name
    /// `embedding`, `embedding_1`, ...
    ///
    /// A zero `input_dim` or `output_dim` is reported when the layer is added to a model or
    /// first called; [`Embedding::try_new`] reports it here.
    pub fn new(input_dim: usize, output_dim: usize) -> Self {
        Embedding {
            name: unique_name("embedding"),
            config: EmbeddingConfig {
                input_dim,
                output_dim,
                input_length: None,
                mask_zero: false,
                embeddings_initializer: Initializer::default(),
                trainable: true,
                embeddings_regularizer: None,
                embeddings_constraint: None,
                quantization: None,
                dtype: TableDType::Float32,
                padding_idx: None,
                max_norm: None,
                norm_type: 2.0,
                scale_grad_by_freq: false,
            },
            initial_weights: None,
            embeddings: None,
            quantized: None,
            built_from_weights: false,
            lora: None,
            lora_at_build: None,
            row_slots: RowSlots::default(),
            spare_output: None,
        }
    }

    /// Like [`Embedding::new`], but checks the dimensions at once.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a zero dimension, [`Error::ShapeOverflow`] when the
    /// table `input_dim * output_dim` cannot exist.
    pub fn try_new(input_dim: usize, output_dim: usize) -> Result<Self> {
        let layer = Embedding::new(input_dim, output_dim);
        layer.validate()?;
        Ok(layer)
    }

    /// An embedding whose dimensions and starting table come from `table`
    /// `(input_dim, output_dim)`, e.g. one read with [`crate::io::npy::read_npy`]: the same as
    /// `Embedding::new(rows, cols).weights(vec![table])`.
    ///
    /// ```
    /// use ndarray::array;
    /// use ndkeras::prelude::*;
    ///
    /// let mut layer = Embedding::from_table(array![[0.0f32, 1.0], [2.0, 3.0]]);
    /// assert_eq!((layer.input_dim(), layer.output_dim()), (2, 2));
    /// let out = layer.apply(&Tensor::from(vec![1i64]))?;
    /// assert_eq!(out.as_float().unwrap(), &array![[2.0f32, 3.0]].into_dyn());
    /// # Ok::<(), ndkeras::Error>(())
    /// ```
    pub fn from_table(table: Array2<f32>) -> Self {
        let (rows, cols) = table.dim();
        Embedding::new(rows, cols).weights(vec![table.into_dyn()])
    }

    /// PyTorch's `Embedding.from_pretrained(embeddings, freeze)`: a layer built at once on
    /// `table` `(input_dim, output_dim)`, trainable unless `freeze` (PyTorch's default is
    /// `freeze=True`). The table is kept as given: a [`Embedding::padding_idx`] set afterwards
    /// does not zero its row (as PyTorch's `from_pretrained(..., padding_idx=p)` keeps it),
    /// but that row then receives no gradient.
    ///
    /// ```
    /// use ndarray::array;
    /// use ndkeras::prelude::*;
    ///
    /// let layer = Embedding::from_pretrained(array![[1.0f32, 1.0], [2.0, 3.0]], true)?
    ///     .padding_idx(0);
    /// assert!(layer.is_built() && !layer.is_trainable());
    /// let out = layer.call(&Tensor::from(vec![0i64, 1]))?;
    /// assert_eq!(out.as_float().unwrap(), &array![[1.0f32, 1.0], [2.0, 3.0]].into_dyn());
    /// # Ok::<(), ndkeras::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a table with no rows or no columns, or holding a value
    /// that is not finite (naming its position); [`Error::Allocation`].
    pub fn from_pretrained(table: Array2<f32>, freeze: bool) -> Result<Self> {
        let mut layer = Embedding::from_table(table).trainable(!freeze);
        layer.validate()?;
        layer.build(&[None])?;
        Ok(layer)
    }

    /// PyTorch's `padding_idx`: the id whose row is padding. Default: none.
    ///
    /// - `-input_dim <= padding_idx < input_dim`; a negative value counts from the end
    ///   (`-1` is `input_dim - 1`), as PyTorch; anything else is reported when the layer is
    ///   added to a model or first called ([`Layer::validate`]).
    /// - The row is zero when the initializer fills the table at the build; a table given as
    ///   `weights`, by [`Embedding::from_table`] or [`Embedding::from_pretrained`] keeps the
    ///   row it has (as PyTorch's `_weight` and `from_pretrained`).
    /// - The output at that id is still its row (no mask: combine with `mask_zero` for one).
    /// - Training never changes the row: positions holding the id give no gradient, so the
    ///   row is absent from the row-sparse gradient. (A regularizer or constraint, which reach
    ///   the whole table, still act on it, as PyTorch's weight decay does; they leave a zero
    ///   row zero.)
    pub fn padding_idx(mut self, padding_idx: isize) -> Self {
        self.config.padding_idx = Some(padding_idx);
        self
    }

    /// The padding row, `padding_idx` counted from the end when negative; `None` when there
    /// is none or it is out of range (which [`Layer::validate`] reports).
    pub fn padding_index(&self) -> Option<usize> {
        let p = self.config.padding_idx?;
        let rows = self.config.input_dim;
        if p >= 0 {
            usize::try_from(p).ok().filter(|&p| p < rows)
        } else {
            rows.checked_sub(p.unsigned_abs())
        }
    }

    /// PyTorch's `max_norm`: each row a lookup reads whose `norm_type`-norm is **greater**
    /// than `max_norm` is scaled by `max_norm / (norm + 1e-7)` before it is read
    /// (`torch.embedding_renorm_`: each distinct row once per lookup, rows not read untouched).
    /// Default: none. Must be positive and finite.
    ///
    /// As in PyTorch this changes the table: [`Layer::apply`], [`Layer::forward`] (so `fit`
    /// and `evaluate`) and [`Embedding::renormalize`] store the scaled rows in an owned
    /// float32 table. [`Layer::call`], [`Embedding::lookup_into`] and the model `predict`
    /// paths take `&self`: they output the rows PyTorch would output, scaled the same way,
    /// without storing them (so do `apply` and `forward` on a memory-mapped, quantized or
    /// half-precision table, which they cannot write).
    ///
    /// The norm is computed in float64 from the float32 row and rounded to float32 (PyTorch
    /// accumulates in float32: the two can differ in the last bits), then compared and the
    /// scale computed in float64 as PyTorch does, and the scale rounded to float32 for the
    /// product.
    pub fn max_norm(mut self, max_norm: f32) -> Self {
        self.config.max_norm = Some(max_norm);
        self
    }

    /// PyTorch's `norm_type`, the `p` of the norm [`Embedding::max_norm`] bounds:
    /// `(sum |x|^p)^(1/p)`, `f32::INFINITY` for the largest `|x|`. Default: 2. Must be
    /// positive (PyTorch's `0` "norm", a count of non-zero values, is refused).
    pub fn norm_type(mut self, norm_type: f32) -> Self {
        self.config.norm_type = norm_type;
        self
    }

    /// PyTorch's `scale_grad_by_freq`: in training, the gradient of each position is divided
    /// by the number of times its id occurs in the batch (the whole input of the step).
    /// Default: `false`.
    pub fn scale_grad_by_freq(mut self, scale_grad_by_freq: bool) -> Self {
        self.config.scale_grad_by_freq = scale_grad_by_freq;
        self
    }

    /// Applies [`Embedding::max_norm`] to the table rows `ids` read, in place, as PyTorch's
    /// `embedding_renorm_` (each distinct row once; a no-op without `max_norm`). Returns
    /// whether the table could store them: `false` for a memory-mapped, quantized or
    /// half-precision table, which is left as it is.
    ///
    /// # Errors
    /// [`Error::NotBuilt`] before the build; the id errors of [`Layer::call`] (then nothing
    /// changes).
    pub fn renormalize(&mut self, ids: &Tensor) -> Result<bool> {
        self.table()?;
        let Some(max_norm) = self.config.max_norm else {
            return Ok(true);
        };
        let mut rows = ids.row_indices(self.config.input_dim, &self.name)?;
        rows.sort_unstable();
        rows.dedup();
        let (dim, norm_type) = (self.config.output_dim, self.config.norm_type);
        let Some(values) = self.embeddings.as_mut().and_then(Weight::as_slice_mut) else {
            return Ok(false);
        };
        for row in rows {
            if let Some(values) = values.get_mut(row * dim..(row + 1) * dim) {
                renormalize_row(values, max_norm, norm_type);
            }
        }
        Ok(true)
    }

    /// The options PyTorch has and Keras lacks, checked.
    fn validate_torch_options(&self) -> Result<()> {
        let c = &self.config;
        if let Some(p) = c.padding_idx
            && self.padding_index().is_none()
        {
            return Err(Error::invalid_argument(
                self.context(),
                "padding_idx",
                p,
                format!(
                    "an id within num_embeddings: -{rows} <= padding_idx < {rows} (input_dim = {rows})",
                    rows = c.input_dim
                ),
            ));
        }
        if let Some(m) = c.max_norm
            && !(m > 0.0 && m.is_finite())
        {
            return Err(Error::invalid_argument(
                self.context(),
                "max_norm",
                m,
                "a positive, finite norm",
            ));
        }
        if c.norm_type.is_nan() || c.norm_type <= 0.0 {
            return Err(Error::invalid_argument(
                self.context(),
                "norm_type",
                c.norm_type,
                "a positive p (2 for the Euclidean norm, inf for the largest absolute value)",
            ));
        }
        Ok(())
    }

    /// Keras 2's `input_length` for 2-D inputs `(batch, input_length)`. Default: none.
    ///
    /// A [`Sequential`](crate::model::Sequential) starting with this layer takes inputs of
    /// shape `(None, input_length)` and is built when the layer is added.
    pub fn input_length(mut self, input_length: usize) -> Self {
        self.config.input_length = Some(vec![Some(input_length)]);
        self
    }

    /// Keras 2's `input_length` as a per-axis list for inputs of rank `lengths.len() + 1`;
    /// `None` accepts any length on that axis.
    pub fn input_length_per_axis(mut self, lengths: Vec<Option<usize>>) -> Self {
        self.config.input_length = Some(lengths);
        self
    }

    /// Whether id 0 is padding: the layer then outputs the mask `ids != 0`. Default: `false`.
    ///
    /// The output at a masked position still holds row 0, as in Keras; the mask tells the
    /// layers that follow to ignore it.
    pub fn mask_zero(mut self, mask_zero: bool) -> Self {
        self.config.mask_zero = mask_zero;
        self
    }

    /// The table to start from, as Keras' `weights=[table]`: a list with one array of shape
    /// `(input_dim, output_dim)`. It becomes the table when the layer is built (once; the
    /// initializer does not run), and is given back if a model's build is undone. Default:
    /// none.
    ///
    /// A list of the wrong length or an array of the wrong shape is reported when the layer is
    /// built, naming both shapes. Any array type will do (`Array2`, or `ArrayD` as Keras lists
    /// hold them).
    pub fn weights<D: ndarray::Dimension>(mut self, weights: Vec<ndarray::Array<f32, D>>) -> Self {
        self.initial_weights = Some(weights.into_iter().map(|w| w.into_dyn()).collect());
        self
    }

    /// How the table is filled at build (Keras' `embeddings_initializer`). Default:
    /// `RandomUniform(minval=-0.05, maxval=0.05)`.
    pub fn embeddings_initializer(mut self, initializer: Initializer) -> Self {
        self.config.embeddings_initializer = initializer;
        self
    }

    /// The layer's name. Default: `embedding`, then `embedding_1`, ... in creation order.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Whether training updates the table. Default: `true`.
    pub fn trainable(mut self, trainable: bool) -> Self {
        self.set_trainable(trainable);
        self
    }

    /// A penalty on the table added to the training loss (Keras' `embeddings_regularizer`).
    /// Default: none. It reaches every row, so each training step updates the whole table,
    /// as in Keras.
    pub fn embeddings_regularizer(mut self, regularizer: Regularizer) -> Self {
        self.config.embeddings_regularizer = Some(regularizer);
        if let Some(table) = &mut self.embeddings {
            table.set_regularizer(Some(regularizer));
        }
        self
    }

    /// A projection applied to the table after each training step (Keras'
    /// `embeddings_constraint`). Default: none. Keras' `axis=0` constrains columns; use
    /// `axis: 1` to constrain each embedding vector. It reaches every row, so each step updates
    /// the whole table, as in Keras.
    pub fn embeddings_constraint(mut self, constraint: Constraint) -> Self {
        self.config.embeddings_constraint = Some(constraint);
        if let Some(table) = &mut self.embeddings {
            table.set_constraint(Some(constraint));
        }
        self
    }

    /// The settings.
    pub fn config(&self) -> &EmbeddingConfig {
        &self.config
    }

    /// Size of the vocabulary.
    pub fn input_dim(&self) -> usize {
        self.config.input_dim
    }

    /// Length of each vector.
    pub fn output_dim(&self) -> usize {
        self.config.output_dim
    }

    /// The table `(input_dim, output_dim)`, or `None` until the layer is built (Keras'
    /// `K.get_value(layer.embeddings)`).
    ///
    /// A memory-mapped table is not an owned array: use [`Embedding::table_view`], which
    /// works for both.
    pub fn embeddings(&self) -> Option<&Array2<f32>> {
        self.embeddings.as_ref().and_then(Weight::as_matrix)
    }

    fn context(&self) -> String {
        format!("layer \"{}\" (Embedding)", self.name)
    }

    /// Keras 2's `input_length` check: where the input's rank matches `input_length`, every
    /// known length must equal the input's. (Keras 2 does not check a direct call whose rank
    /// differs, e.g. a rank-1 input to `input_length=1`; neither do we.)
    fn check_input_length(&self, shape: &[usize]) -> Result<()> {
        let Some(lengths) = &self.config.input_length else {
            return Ok(());
        };
        if shape.len() != lengths.len() + 1 {
            return Ok(());
        }
        let conflict = lengths
            .iter()
            .zip(&shape[1..])
            .any(|(expected, &got)| expected.is_some_and(|e| e != got));
        if conflict {
            return Err(
                self.input_length_error(&shape.iter().map(|&d| Some(d)).collect::<Vec<_>>())
            );
        }
        Ok(())
    }

    fn input_length_error(&self, input_shape: &[Option<usize>]) -> Error {
        let mut expected: Shape = vec![input_shape.first().copied().flatten()];
        if let Some(lengths) = &self.config.input_length {
            expected.extend(lengths.iter().copied());
        }
        Error::IncompatibleShape {
            context: format!(
                "{}: \"input_length\" is {}, but received input has shape {}",
                self.context(),
                InputLength(self.config.input_length.as_deref().unwrap_or(&[])),
                OptDims(input_shape)
            ),
            expected,
            got: input_shape.to_vec(),
        }
    }

    /// The output shape `ids.shape + (output_dim,)`, checked against `usize` (no allocation
    /// up to 4 axes: `IxDyn` keeps them inline).
    fn output_shape_for(&self, ids: &Tensor) -> Result<IxDyn> {
        let mut shape = IxDyn::zeros(ids.ndim() + 1);
        let axes = shape.slice_mut();
        for (axis, &len) in axes.iter_mut().zip(ids.shape()) {
            *axis = len;
        }
        if let Some(last) = axes.last_mut() {
            *last = self.config.output_dim;
        }
        checked_size(shape.slice(), || format!("{}: output", self.context()))?;
        Ok(shape)
    }

    /// A view of the float32 table, owned or memory-mapped, or `None` until the layer is
    /// built (and for a quantized or half-precision table, whose rows are decoded as they are
    /// looked up: see [`Embedding::quantize`]).
    pub fn table_view(&self) -> Option<ArrayView2<'_, f32>> {
        self.embeddings
            .as_ref()
            .filter(|table| table.as_slice().is_some())
            .and_then(|table| table.view().into_dimensionality::<Ix2>().ok())
    }

    /// Whether the table is a read-only memory map (see [`Embedding::from_mapped`]).
    pub fn is_mapped(&self) -> bool {
        self.embeddings.as_ref().is_some_and(Weight::is_mapped)
    }

    /// An embedding over a memory-mapped table (from [`crate::io::npy::map_npy`]): built at
    /// once, `input_dim` and `output_dim` taken from the table, no copy made. Lookups read
    /// straight from the map. The table is read-only: training it is an error until
    /// [`Embedding::make_owned`] copies it into memory (or use `trainable(false)`).
    ///
    /// The values are not read (opening stays O(1)), so they are not checked: a NaN in the
    /// file comes out of lookups, and [`Sequential::save_weights`](crate::model::Sequential::save_weights)
    /// refuses to write it.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a table with no rows or no columns, as
    /// [`Embedding::try_new`] for the same dimensions.
    #[cfg(feature = "mmap")]
    pub fn from_mapped(table: crate::storage::MappedTable) -> Result<Self> {
        let mut layer = Embedding::try_new(table.rows(), table.cols())?;
        layer.embeddings = Some(layer.table_weight(Weight::mapped("embeddings", table)));
        Ok(layer)
    }

    /// An int8-quantized embedding over memory-mapped codes (from
    /// [`crate::io::npy::map_npy_codes`]) and their per-row scales (from
    /// [`crate::io::npy::read_npy_scales`], or any `(input_dim,)` array): built at once,
    /// `input_dim` and `output_dim` taken from the codes, no copy of them made. Every lookup
    /// (`call`, `apply`, `predict`, [`Embedding::lookup_into`]) decodes only the rows it
    /// gathers, straight from the map, bit for bit as the same table quantized in memory by
    /// [`Embedding::quantize`] (`q · (1 / s)`, see [`crate::quantization`]).
    ///
    /// The layer is the quantized layer Keras 3 would have (`embeddings` int8 codes,
    /// `embeddings_scale`; dtype policy `int8_from_float32`): its variables are not trainable,
    /// and training it without LoRA is an error naming the layer. The codes are read-only:
    /// [`Embedding::make_owned`] copies them into memory (still int8); `set_weights` replaces
    /// them with owned codes. Opening reads no code (O(1)); the scales are checked once here.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a mode other than [`QuantizationMode::Int8`], for codes
    /// with no rows or no columns, for a number of scales that is not the number of rows of
    /// the codes, and for the first scale that is not finite and positive (or whose
    /// dequantised codes overflow), naming the codes' file and the scale's position;
    /// [`Error::Allocation`].
    #[cfg(feature = "mmap")]
    pub fn from_mapped_quantized(
        codes: crate::storage::MappedTable<i8>,
        scales: ndarray::Array1<f32>,
        mode: QuantizationMode,
    ) -> Result<Self> {
        let file = codes.path().display().to_string();
        // No layer is made before `from_mapped_quantized_with` (which makes it): the errors
        // here name the class and the codes' file.
        let owner = format!("Embedding over the codes in {file}");
        if mode != QuantizationMode::Int8 {
            return Err(Error::invalid_argument(
                owner,
                "mode",
                mode.policy_mode(),
                format!(
                    "int8: memory-mapped codes ({file}) are read here as int8 codes with one scale per row (map int4 codes with `Embedding::from_mapped_quantized_with`, which takes the output_dim the packed codes cannot tell)"
                ),
            ));
        }
        if scales.len() != codes.rows() {
            return Err(Error::invalid_argument(
                owner,
                "embeddings_scale",
                format!("{} scales", scales.len()),
                format!(
                    "one scale per row of the codes in {file}: {} scales",
                    codes.rows()
                ),
            ));
        }
        let output_dim = codes.cols();
        Embedding::from_mapped_quantized_with(codes, output_dim, mode, vec![scales.into_dyn()])
    }

    /// A quantized embedding over memory-mapped codes in any of Keras 3's modes: int8, or
    /// packed int4 (two codes a byte, per-channel or grouped), with the table's other
    /// variables given as arrays. Built at once, no copy of the codes made; every lookup
    /// decodes only the rows it gathers, straight from the map, bit for bit as the same
    /// table quantized in memory by [`Embedding::quantize_with`].
    ///
    /// `output_dim` is the width of a decoded row (packed int4 codes of `c` bytes a row hold
    /// `2c` or `2c - 1` values, so the codes alone cannot tell). `others` are the table's
    /// variables after the codes, in Keras' order and shapes
    /// ([`QuantizationMode::variable_names`], [`QuantizationMode::variable_shapes`]):
    /// `embeddings_scale` `(input_dim,)` for int8 and per-channel int4, or
    /// `(input_dim, groups)` then `embeddings_zero` `(input_dim, groups)` and `g_idx`
    /// `(output_dim,)` for grouped int4; what `get_weights()[1..]` of the quantized layer
    /// gives. Write the codes with [`crate::io::npy::write_quantized_npy`] (int8, with their
    /// scales) or [`crate::io::npy::write_npy_typed`] (any mode, as below), and open them
    /// with [`crate::io::npy::map_npy_codes`].
    ///
    /// Like [`Embedding::from_mapped_quantized`], the layer is frozen (its variables are not
    /// trainable; LoRA adapts it) and read-only until [`Embedding::make_owned`].
    ///
    /// ```
    /// use ndkeras::io::npy::{self, NpyView};
    /// use ndkeras::prelude::*;
    /// use ndkeras::quantization::QuantizationMode;
    /// use ndkeras::weight::WeightValues;
    ///
    /// # fn main() -> ndkeras::Result<()> {
    /// # let dir = std::env::temp_dir().join(format!("ndkeras-int4-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// # let path = dir.join("codes.npy");
    /// let mut layer = Embedding::new(1000, 64);
    /// layer.apply(&Tensor::from(vec![0i64]))?;
    /// layer.quantize("int4")?; // grouped int4, block size 128, as Keras 3.15.1
    /// // The codes as int8 bytes, in a file that can be mapped; the rest as arrays.
    /// if let WeightValues::Int8(codes) = layer.variables()[0].values() {
    ///     npy::write_npy_typed(&path, &NpyView::Int8(codes))?;
    /// }
    /// let others = layer.get_weights()[1..].to_vec();
    ///
    /// let codes = npy::map_npy_codes(&path)?;
    /// let mut mapped = Embedding::from_mapped_quantized_with(
    ///     codes,
    ///     64,
    ///     QuantizationMode::Int4 { block_size: Some(128) },
    ///     others,
    /// )?;
    /// let ids = Tensor::from(vec![3i64, 1]);
    /// assert_eq!(mapped.apply(&ids)?, layer.apply(&ids)?);
    /// # drop(mapped);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the layer and the codes' file for: a block size of 0;
    /// codes with no rows or an `output_dim` of 0; codes whose shape is not the mode's for
    /// `output_dim`; a number of `others` other than the mode's; an array of the wrong shape
    /// (naming the variable); a value that is not finite; a scale whose dequantised values
    /// would not be finite (for int8, one that is not positive); a zero point that is not a
    /// whole number in -8..=7; a `g_idx` that does not name groups. [`Error::Allocation`].
    #[cfg(feature = "mmap")]
    pub fn from_mapped_quantized_with(
        codes: crate::storage::MappedTable<i8>,
        output_dim: usize,
        mode: QuantizationMode,
        others: Vec<ArrayD<f32>>,
    ) -> Result<Self> {
        mode.validate()?;
        let file = codes.path().display().to_string();
        // Errors name the codes' file after the layer.
        let over_file = |owner: &str| format!("{owner} over the codes in {file}");
        let refile = |e: Error| match e {
            Error::InvalidArgument {
                owner,
                parameter,
                value,
                expected,
            } => Error::invalid_argument(over_file(&owner), parameter, value, expected),
            other => other,
        };
        let shapes = mode.variable_shapes(codes.rows(), output_dim);
        let names = mode.variable_names();
        let shape_error = |owner: &str, name: &str, given: &[usize], expected: &[usize]| {
            Error::invalid_argument(
                owner,
                name,
                format!("an array of shape {given:?}"),
                format!(
                    "shape {expected:?} for {} codes of {} rows and output_dim {output_dim}",
                    mode.policy_mode(),
                    codes.rows()
                ),
            )
        };
        // The codes' shape first: a wrong `output_dim` is named before a layer is made.
        if let Some(code_shape) = shapes.first()
            && codes.shape() != code_shape.as_slice()
        {
            let owner = over_file("Embedding");
            return Err(shape_error(&owner, "embeddings", codes.shape(), code_shape));
        }
        let mut layer = Embedding::try_new(codes.rows(), output_dim).map_err(refile)?;
        let owner = over_file(&layer.context());
        let (Some(other_shapes), Some(other_names)) = (shapes.get(1..), names.get(1..)) else {
            return Err(layer.layout_error());
        };
        if others.len() != other_shapes.len() {
            return Err(Error::invalid_argument(
                owner,
                "others",
                format!("{} arrays", others.len()),
                format!(
                    "{} arrays for {}, in Keras' order: {}",
                    other_shapes.len(),
                    mode.policy_mode(),
                    other_names.join(", ")
                ),
            ));
        }
        for ((array, shape), name) in others.iter().zip(other_shapes).zip(other_names) {
            if array.shape() != shape.as_slice() {
                return Err(shape_error(&owner, name, array.shape(), shape));
            }
        }
        layer
            .check_quantized_values(mode, &others)
            .map_err(refile)?;
        for (array, name) in others.iter().zip(other_names) {
            if let Some((flat, value)) = array.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(Error::invalid_argument(
                    owner,
                    *name,
                    format!(
                        "{value:?} at position {:?}",
                        crate::tensor::unravel(flat, array.shape())
                    ),
                    "finite values",
                ));
            }
        }
        let context = || format!("{owner}: quantized variables");
        let mut others = others.into_iter();
        let mut next = || others.next().ok_or_else(|| layer.layout_error());
        let scales = next()?;
        let prepared = Weight::prepare(&scales, context)?;
        let scale = Weight::from_prepared("embeddings_scale", scales, prepared)?;
        let (zero, g_idx) = match mode.block_size() {
            Some(_) => {
                // Whole numbers in -8..=7, checked above: the cast is exact.
                let given = next()?;
                let mut values = try_filled(given.len(), 0i8, context)?;
                for (code, &z) in values.iter_mut().zip(given.iter()) {
                    *code = z as i8;
                }
                let zeros =
                    ArrayD::from_shape_vec(given.shape().to_vec(), values).map_err(|_| {
                        Error::ShapeOverflow {
                            context: context(),
                            shape: given.shape().to_vec(),
                        }
                    })?;
                let groups = next()?;
                let prepared = Weight::prepare(&groups, context)?;
                (
                    Some(Weight::int8("embeddings_zero", zeros)),
                    Some(Weight::from_prepared("g_idx", groups, prepared)?),
                )
            }
            None => (None, None),
        };
        layer.set_quantized(
            Weight::mapped_int8("embeddings", codes),
            QuantizedWeights { scale, zero, g_idx },
        );
        layer.config.quantization = Some(mode);
        Ok(layer)
    }

    /// A float16 embedding over a memory-mapped table (from
    /// [`crate::io::npy::map_npy_half`]): built at once, no copy made; lookups widen only the
    /// rows they gather to float32, exactly, as for a table stored with
    /// `dtype(TableDType::Float16)`. Read-only and, as every half-precision table, not
    /// trainable by ndkeras (freeze it with `trainable(false)`); the values are not read
    /// (opening stays O(1)), so they are not checked.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a table with no rows or no columns.
    #[cfg(feature = "mmap")]
    pub fn from_mapped_half(table: crate::storage::MappedTable<u16>) -> Result<Self> {
        let mut layer = Embedding::try_new(table.rows(), table.cols())?.dtype(TableDType::Float16);
        let weight = Weight::mapped_half("embeddings", table, TableDType::Float16);
        // Not trainable, so that training reports the half-precision table (which a copy in
        // memory would not fix) rather than the read-only map.
        layer.embeddings = Some(layer.table_weight(weight).with_trainable(false));
        Ok(layer)
    }

    /// Copies a memory-mapped table into owned memory, in the type it is stored in (a no-op
    /// for owned tables): a float32 table becomes trainable; int8 codes and float16 values
    /// stay in their type.
    ///
    /// # Errors
    /// [`Error::Allocation`] when the copy does not fit in memory.
    pub fn make_owned(&mut self) -> Result<()> {
        let context = self.table_context();
        match &mut self.embeddings {
            Some(table) => table.make_owned(|| context.clone()),
            None => Ok(()),
        }
    }

    /// The table, or [`Error::NotBuilt`].
    fn table(&self) -> Result<&Weight> {
        self.embeddings.as_ref().ok_or_else(|| Error::NotBuilt {
            context: self.context(),
            what: "the embeddings table".into(),
            hint: "use `apply` (which builds the layer on its first call) or `build` first".into(),
        })
    }

    /// Looks up `ids` into a buffer the caller owns: `out[..., :] = embeddings[id, :]`.
    ///
    /// The same lookup as [`Layer::call`], without allocating the output: reusing one buffer
    /// across calls avoids the page faults of a fresh large allocation. All ids are checked
    /// before anything is written, so on error `out` is untouched. Large lookups are split
    /// across threads (the `rayon` feature, on by default). With [`Embedding::max_norm`] the
    /// rows written are renormalised as in [`Layer::call`] (the table is not changed).
    ///
    /// # Errors
    /// [`Error::NotBuilt`] before the table exists; [`Error::IncompatibleShape`] when `out`
    /// is not `ids.shape + (output_dim,)` in standard layout; the id errors of
    /// [`Layer::call`].
    ///
    /// ```
    /// use ndarray::{array, Array3};
    /// use ndkeras::prelude::*;
    ///
    /// let mut layer = Embedding::from_table(array![[0.0f32, 1.0], [2.0, 3.0]]);
    /// layer.apply(&Tensor::from(vec![0i64]))?; // builds it and sets the table
    /// let mut out = Array3::<f32>::zeros((1, 2, 2));
    /// layer.lookup_into(&Tensor::from(array![[1i64, 0]]), out.view_mut().into_dyn())?;
    /// assert_eq!(out, array![[[2.0f32, 3.0], [0.0, 1.0]]]);
    /// # Ok::<(), ndkeras::Error>(())
    /// ```
    pub fn lookup_into(
        &self,
        ids: &Tensor,
        mut out: ndarray::ArrayViewMutD<'_, f32>,
    ) -> Result<()> {
        let table = self.table()?;
        self.check_input_length(ids.shape())?;
        let shape = self.output_shape_for(ids)?;
        if out.shape() != shape.slice() || !out.is_standard_layout() {
            return Err(Error::IncompatibleShape {
                context: format!(
                    "{}: lookup_into needs an output buffer in standard layout",
                    self.context()
                ),
                expected: shape.slice().iter().map(|&d| Some(d)).collect(),
                got: out.shape().iter().map(|&d| Some(d)).collect(),
            });
        }
        // With LoRA the ids are read before anything is written: on error `out` is untouched.
        let lora_rows = match self.lora {
            Some(_) => Some(ids.row_indices(self.config.input_dim, &self.name)?),
            None => None,
        };
        let flat_out = out.as_slice_mut().ok_or_else(|| self.layout_error())?;
        match table.as_slice() {
            Some(flat_table) => {
                ids.gather_rows(flat_table, self.config.output_dim, flat_out, &self.name)
            }
            None => {
                let mut groups = Vec::new();
                let rows = self.encoded_rows(&mut groups)?;
                ids.gather_decoded_rows(&rows, flat_out, &self.name)
            }
        }?;
        if let Some(rows) = lora_rows {
            self.add_lora_delta(&rows, flat_out)?;
        }
        self.renormalize_output(flat_out);
        Ok(())
    }

    /// The output gradient summed per distinct id ([`coalesce_rows`], in the gradient's own
    /// buffer), with PyTorch's `padding_idx` and `scale_grad_by_freq`.
    fn summed_rows(
        &mut self,
        inputs: &Tensor,
        output_gradient: ArrayD<f32>,
    ) -> Result<(Vec<usize>, Array2<f32>)> {
        let ids = inputs.row_indices(self.config.input_dim, &self.name)?;
        let context = || format!("{}: gradient", self.context());
        let gradient = into_standard_vec(output_gradient, context)?;
        let how = RowSum {
            skip: self.padding_index(),
            scale_by_count: self.config.scale_grad_by_freq,
        };
        let dim = self.config.output_dim;
        let context = format!("{}: rows of the gradient", self.context());
        let slots = self.row_slots.ready(self.config.input_dim, || context)?;
        Ok(coalesce_rows(&ids, gradient, dim, how, slots))
    }

    /// Scales each gathered row of `output` as [`Embedding::max_norm`] would scale its table
    /// row (the rows of one id are equal, so each is scaled as its table row once is).
    fn renormalize_output(&self, output: &mut [f32]) {
        if let Some(max_norm) = self.config.max_norm {
            for row in output.chunks_exact_mut(self.config.output_dim.max(1)) {
                renormalize_row(row, max_norm, self.config.norm_type);
            }
        }
    }

    fn table_context(&self) -> String {
        format!("{}: embeddings table", self.context())
    }

    fn layout_error(&self) -> Error {
        Error::NotBuilt {
            context: self.context(),
            what: "a contiguous table".into(),
            hint: "set the weights again".into(),
        }
    }

    /// Rows of the table for every id, in a fresh output written once: one pass over the
    /// ids checks each and copies its row (a bad id stops it and no output is returned).
    fn lookup(&self, ids: &Tensor, renormalize: bool) -> Result<ArrayD<f32>> {
        let shape = self.output_shape_for(ids)?;
        let table = self.table()?;
        let context = || format!("{}: output", self.context());
        let mut values = match table.as_slice() {
            Some(flat_table) => {
                ids.gather_rows_new(flat_table, self.config.output_dim, &self.name, context)?
            }
            None => {
                let mut groups = Vec::new();
                let rows = self.encoded_rows(&mut groups)?;
                ids.gather_decoded_rows_new(&rows, &self.name, context)?
            }
        };
        if self.lora.is_some() {
            let rows = ids.row_indices(self.config.input_dim, &self.name)?;
            self.add_lora_delta(&rows, &mut values)?;
        }
        if renormalize {
            self.renormalize_output(&mut values);
        }
        ArrayD::from_shape_vec(shape.clone(), values).map_err(|_| Error::ShapeOverflow {
            context: format!("{}: output", self.context()),
            shape: shape.slice().to_vec(),
        })
    }
}

/// PyTorch's `embedding_renorm_` on one row: scaled by `max_norm / (norm + 1e-7)` when its
/// `norm_type`-norm is greater than `max_norm` (strictly).
fn renormalize_row(row: &mut [f32], max_norm: f32, norm_type: f32) {
    let norm = f64::from(row_norm(row, norm_type));
    if norm > f64::from(max_norm) {
        // PyTorch computes the scale in double and multiplies the float row by it as float.
        let scale = (f64::from(max_norm) / (norm + 1e-7)) as f32;
        row.iter_mut().for_each(|v| *v *= scale);
    }
}

/// The `p`-norm of `row`, accumulated in float64 and rounded to float32 (PyTorch's
/// `row.norm(p)` on a float32 row is a float32).
fn row_norm(row: &[f32], p: f32) -> f32 {
    let abs = row.iter().map(|&v| f64::from(v).abs());
    let norm = if p == f32::INFINITY {
        abs.fold(0.0, f64::max)
    } else if p == 1.0 {
        abs.sum()
    } else if p == 2.0 {
        abs.map(|v| v * v).sum::<f64>().sqrt()
    } else {
        let p = f64::from(p);
        abs.map(|v| v.powf(p)).sum::<f64>().powf(1.0 / p)
    };
    norm as f32
}

/// How [`coalesce_rows`] treats the positions (PyTorch's `padding_idx` and `scale_grad_by_freq`).
#[derive(Debug, Clone, Copy, Default)]
struct RowSum {
    /// Positions holding this id give no gradient.
    skip: Option<usize>,
    /// Each position's gradient is divided by the count of its id in the batch.
    scale_by_count: bool,
}

/// For each vocabulary row, its place among the distinct ids of the gradient being summed
/// ([`coalesce_rows`]): a scratch map the layer keeps between training steps, so that
/// summing repeated ids costs what the batch holds, not a sort, whatever the vocabulary.
#[derive(Debug, Clone, Default)]
struct RowSlots {
    /// `NO_SLOT` for every row between two calls; allocated at the first backward.
    slot: Vec<usize>,
}

/// A row without a place among the distinct ids.
const NO_SLOT: usize = usize::MAX;

impl RowSlots {
    /// The map for a table of `rows` rows, allocated (fallibly) the first time.
    fn ready(&mut self, rows: usize, context: impl FnOnce() -> String) -> Result<&mut [usize]> {
        if self.slot.len() != rows {
            self.slot = Vec::new();
            self.slot
                .try_reserve_exact(rows)
                .map_err(|_| Error::Allocation {
                    context: context(),
                    bytes: rows.saturating_mul(std::mem::size_of::<usize>()),
                })?;
            self.slot.resize(rows, NO_SLOT);
        }
        Ok(&mut self.slot)
    }
}

/// Sums the gradient rows of repeated ids in place (TensorFlow's `unsorted_segment_sum` of
/// an `IndexedSlices`): returns the distinct ids in the order of their first position, and
/// one summed row each, stored at the front of `gradient` itself (no copy of the rows of ids
/// that occur once, no sort). The positions of one id are added in their order (as
/// PyTorch's `embedding_dense_backward`), starting from the first one's row.
///
/// In place is safe because the `j`-th distinct id first occurs at a position `k >= j`, whose
/// row has been read by the time row `j` is written. `slots` is a map of `NO_SLOT` for the
/// whole vocabulary (every id is below its length, checked by the caller) and is left so.
fn coalesce_rows(
    ids: &[usize],
    mut gradient: Vec<f32>,
    dim: usize,
    how: RowSum,
    slots: &mut [usize],
) -> (Vec<usize>, Array2<f32>) {
    let positions = ids.len();
    let mut rows: Vec<usize> = Vec::new();
    // With `scale_by_count`, a first pass counts each id's positions.
    let mut counts: Vec<usize> = Vec::new();
    if how.scale_by_count {
        for &id in ids {
            if how.skip == Some(id) {
                continue;
            }
            if slots[id] == NO_SLOT {
                slots[id] = counts.len();
                counts.push(0);
            }
            counts[slots[id]] += 1;
        }
    }
    for (k, &id) in ids.iter().enumerate() {
        // The map is as long as the vocabulary: ask for a later id's entry early.
        if let Some(&ahead) = ids.get(k + 16) {
            crate::kernels::prefetch(&slots[ahead..=ahead]);
        }
        if how.skip == Some(id) {
            continue;
        }
        let mut slot = slots[id];
        if slot == NO_SLOT {
            slot = rows.len();
            slots[id] = slot;
        }
        let scale = counts.get(slot).map(|&c| (1.0 / c as f64) as f32);
        if slot == rows.len() {
            // The id's first position: its row moves to the slot.
            rows.push(id);
            if slot != k {
                gradient.copy_within(k * dim..(k + 1) * dim, slot * dim);
            }
            if let Some(scale) = scale {
                gradient[slot * dim..(slot + 1) * dim]
                    .iter_mut()
                    .for_each(|g| *g *= scale);
            }
        } else {
            let (front, rest) = gradient.split_at_mut(k * dim);
            let sum = &mut front[slot * dim..(slot + 1) * dim];
            let row = &rest[..dim];
            match scale {
                Some(scale) => sum.iter_mut().zip(row).for_each(|(a, g)| *a += scale * g),
                None => sum.iter_mut().zip(row).for_each(|(a, g)| *a += g),
            }
        }
    }
    for &row in &rows {
        slots[row] = NO_SLOT;
    }
    // The summed rows are the front of the buffer; the array keeps the whole buffer (its
    // capacity is reused by the next step) and shows the front.
    let distinct = rows.len();
    let values = Array2::from_shape_vec((positions, dim), gradient)
        .map(|all| all.slice_move(ndarray::s![..distinct, ..]))
        .unwrap_or_else(|_| Array2::zeros((0, dim)));
    (rows, values)
}

/// The values of `array` in standard (row-major) order, taking its buffer when it is already
/// laid out so (the usual case: a gradient a layer or a loss just computed).
///
/// # Errors
/// [`Error::Allocation`] when another layout must be copied and the copy does not fit.
fn into_standard_vec(array: ArrayD<f32>, context: impl FnOnce() -> String) -> Result<Vec<f32>> {
    let len = array.len();
    if !array.is_standard_layout() {
        let mut values = Vec::new();
        values
            .try_reserve_exact(len)
            .map_err(|_| Error::Allocation {
                context: context(),
                bytes: len.saturating_mul(std::mem::size_of::<f32>()),
            })?;
        values.extend(array.iter().copied());
        return Ok(values);
    }
    let (mut values, offset) = array.into_raw_vec_and_offset();
    let offset = offset.unwrap_or(0).min(values.len());
    if offset != 0 || values.len() != len {
        values.drain(..offset);
        values.truncate(len);
    }
    Ok(values)
}

/// Writes an `input_length` as Keras does: `4` for one axis, `(2, None)` for several.
struct InputLength<'a>(&'a [Option<usize>]);

impl fmt::Display for InputLength<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [Some(n)] => write!(f, "{n}"),
            lengths => write!(f, "{}", OptDims(lengths)),
        }
    }
}

impl fmt::Debug for Embedding {
    /// The settings and the table's shape (never the whole table).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Embedding")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("built", &self.embeddings.is_some())
            .field(
                "initial_weights",
                &self
                    .initial_weights
                    .as_ref()
                    .map(|w| w.iter().map(|a| a.shape().to_vec()).collect::<Vec<_>>()),
            )
            .finish()
    }
}

impl Layer for Embedding {
    /// With LoRA, Keras 3's saved form ([`Embedding::save_own_variables`]): the merged table
    /// `E + (alpha / rank) · A · B` under `embeddings` (re-quantized, with its new
    /// `embeddings_scale` and `embeddings_zero`, for a quantized table), without `A` and `B`.
    fn saved_weights(&self) -> Result<Option<crate::layer::NamedArrays>> {
        if self.lora.is_none() || !self.is_built() {
            return Ok(None);
        }
        let arrays = self.save_own_variables()?;
        let names = match self.config.quantization {
            Some(mode) => mode.variable_names(),
            None => &["embeddings"],
        };
        Ok(Some(
            names
                .iter()
                .map(|name| (*name).to_string())
                .zip(arrays)
                .collect(),
        ))
    }

    /// With LoRA and a file holding the saved form (the variables without `A` and `B`),
    /// those variables and zeros for `A` and `B`, as Keras 3's `load_own_variables`;
    /// otherwise the arrays. Arrays of the variables' shapes are checked here as
    /// `set_weights` checks them (int8 codes and zero points that fit, finite dequantised
    /// values, a valid `g_idx`), so that `load_weights` refuses a bad file before any layer
    /// changes.
    fn weights_from_saved(&self, arrays: Vec<ArrayD<f32>>) -> Result<Vec<ArrayD<f32>>> {
        let arrays = if self.lora.is_some() && arrays.len() + 2 == self.variables().len() {
            self.with_zero_adapters(arrays, "load_weights")?
        } else {
            arrays
        };
        // Their values are checked by `prepare_weights` (`check_weight_values`), as for
        // `set_weights`.
        Ok(arrays)
    }

    /// For a quantized or half-precision table (whose `set_weights` arrays are the variables
    /// in Keras' order, as `f32`): values that fit their type (int8 codes: whole numbers in
    /// -128..=127) and scales that dequantise to finite values; see [`Layer::set_weights`].
    fn check_weight_values(&self, weights: &[ArrayD<f32>]) -> Result<()> {
        self.check_stored_values(weights)
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn class_name(&self) -> &'static str {
        "Embedding"
    }

    fn is_trainable(&self) -> bool {
        self.config.trainable
    }

    /// A quantized layer keeps its variables non-trainable whatever its own `trainable`
    /// (as Keras); training a quantized layer left trainable is refused.
    fn set_trainable(&mut self, trainable: bool) {
        self.config.trainable = trainable;
        if let Some(lora) = &mut self.lora {
            // The base table stays frozen under LoRA; the adapters follow the layer.
            lora.a.set_trainable(trainable);
            lora.b.set_trainable(trainable);
        } else if self.config.quantization.is_none()
            && let Some(table) = &mut self.embeddings
        {
            table.set_trainable(trainable);
        }
    }

    /// Both dimensions positive, the table addressable, `input_length` non-empty, the
    /// initializer's parameters valid.
    fn validate(&self) -> Result<()> {
        let EmbeddingConfig {
            input_dim,
            output_dim,
            ..
        } = self.config;
        if input_dim == 0 || output_dim == 0 {
            let (parameter, value) = if input_dim == 0 {
                ("input_dim", input_dim)
            } else {
                ("output_dim", output_dim)
            };
            return Err(Error::invalid_argument(
                self.context(),
                parameter,
                value,
                format!(
                    "both `input_dim` and `output_dim` positive (received input_dim = {input_dim} and output_dim = {output_dim})"
                ),
            ));
        }
        checked_size(&[input_dim, output_dim], || {
            format!("{}: embeddings table", self.context())
        })?;
        if self.config.input_length.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::invalid_argument(
                self.context(),
                "input_length",
                "[]",
                "a length, or one entry (a length or None) per non-batch axis",
            ));
        }
        if let Some(regularizer) = self.config.embeddings_regularizer {
            regularizer.validate()?;
        }
        if let Some(constraint) = self.config.embeddings_constraint {
            constraint.validate()?;
        }
        self.validate_torch_options()?;
        if let Some((rank, alpha)) = self.lora_at_build {
            if rank == 0 {
                return Err(Error::invalid_argument(
                    self.context(),
                    "lora_rank",
                    0,
                    "a positive LoRA rank",
                ));
            }
            self.check_lora_compatible(alpha)?;
        }
        self.config.embeddings_initializer.validate()
    }

    fn batch_input_shape(&self) -> Option<Shape> {
        let mut shape = vec![None];
        match &self.config.input_length {
            Some(lengths) => shape.extend(lengths.iter().copied()),
            // Keras 2 gives an Embedding without input_length the input shape (None,).
            None => shape.push(None),
        }
        Some(shape)
    }

    fn is_built(&self) -> bool {
        self.embeddings.is_some()
    }

    fn weight_shapes_for(&self, _input_shape: &[Option<usize>]) -> Result<Vec<Vec<usize>>> {
        let (input_dim, output_dim) = (self.config.input_dim, self.config.output_dim);
        Ok(match self.config.quantization {
            Some(mode) => mode.variable_shapes(input_dim, output_dim),
            None => vec![vec![input_dim, output_dim]],
        })
    }

    /// The table comes from the initial `weights` when there are any (checked, then copied
    /// once into aligned memory, or moved when it is aligned already; the initializer does
    /// not run), otherwise from the initializer.
    fn build(&mut self, input_shape: &[Option<usize>]) -> Result<()> {
        if self.is_built() {
            // Weights given after the build replace the values, as `set_weights` would.
            let mut pending = self.initial_weights.take();
            let assigned = assign_pending(self, &mut pending);
            self.initial_weights = pending;
            return assigned;
        }
        self.validate()?;
        if let Some(mode) = self.config.quantization {
            self.build_quantized_with_weights(mode, input_shape)?;
            return self.finish_build();
        }
        let dtype = self.config.dtype;
        if dtype != TableDType::Float32
            && let Some(first) = self.initial_weights.as_deref().and_then(<[_]>::first)
        {
            // The half-precision copy cannot fail after the pending weights are taken.
            Weight::half("embeddings", ArrayD::zeros(IxDyn(&[0])), dtype)
                .check_convertible(first, &self.name)?;
        }
        let table = match self.initial_weights.as_deref() {
            Some(weights) => {
                check_initial_weights(self, input_shape)?;
                // Keras would run the initializer first: report what it would raise.
                self.config
                    .embeddings_initializer
                    .validate_for(&[self.config.input_dim, self.config.output_dim])?;
                let context = self.table_context();
                let prepared = Weight::prepare(&weights[0], || context.clone())?;
                let taken = self.initial_weights.take().unwrap_or_default();
                let array = taken.into_iter().next().ok_or_else(|| Error::WeightCount {
                    layer: self.name.clone(),
                    expected: 1,
                    got: 0,
                })?;
                self.built_from_weights = true;
                Weight::from_prepared("embeddings", array, prepared)?
            }
            None => {
                let shape = [self.config.input_dim, self.config.output_dim];
                // What the initializer would refuse, before a table is allocated for it.
                self.config.embeddings_initializer.validate_for(&shape)?;
                let mut table = aligned_zeros(shape[0], shape[1], || self.table_context())?;
                let values = table.as_slice_mut().ok_or_else(|| self.layout_error())?;
                self.config
                    .embeddings_initializer
                    .initialize_into(&shape, values)?;
                // PyTorch's `_fill_padding_idx_with_zero` after the initializer.
                if let Some(row) = self.padding_index()
                    && let Some(padding) = values.get_mut(row * shape[1]..(row + 1) * shape[1])
                {
                    padding.fill(0.0);
                }
                self.built_from_weights = false;
                Weight::matrix("embeddings", table)
            }
        };
        let table = match dtype {
            TableDType::Float32 => table,
            _ => {
                let values = table.into_array().ok_or_else(|| self.layout_error())?;
                self.stored_table(values, dtype)?
            }
        };
        self.embeddings = Some(self.table_weight(table));
        self.finish_build()
    }

    fn unbuild(&mut self) {
        // The adapters belong to the built table: a rebuilt layer starts without LoRA.
        self.lora = None;
        let from_weights = std::mem::take(&mut self.built_from_weights);
        if from_weights && (self.quantized.is_some() || self.config.dtype != TableDType::Float32) {
            let arrays = self.get_weights();
            self.embeddings = None;
            self.quantized = None;
            self.initial_weights = Some(arrays);
            return;
        }
        self.quantized = None;
        let table = self.embeddings.take();
        if from_weights && let Some(array) = table.and_then(Weight::into_array) {
            self.initial_weights = Some(vec![array]);
        }
    }

    fn initial_weights(&self) -> Option<&[ArrayD<f32>]> {
        self.initial_weights.as_deref()
    }

    fn check_input(&self, inputs: &Tensor) -> Result<()> {
        self.check_input_length(inputs.shape())?;
        inputs.check_row_indices(self.config.input_dim, &self.name)
    }

    /// With [`Embedding::max_norm`], the output rows are scaled as PyTorch would scale the
    /// table rows, but the table is not changed (`call` takes `&self`).
    fn call(&self, inputs: &Tensor) -> Result<Tensor> {
        self.table()?;
        self.check_input_length(inputs.shape())?;
        Ok(Tensor::from(self.lookup(inputs, true)?))
    }

    /// With [`Embedding::max_norm`], renormalises the rows read in the table first, as
    /// PyTorch's forward does.
    fn forward(&mut self, inputs: &Tensor, training: bool) -> Result<Tensor> {
        let _ = training;
        self.table()?;
        self.check_input_length(inputs.shape())?;
        if self.config.max_norm.is_none()
            && let Some(spare) = self.spare_output.take()
        {
            // Into the buffer of an earlier output: written in place, no fresh memory.
            let shape = self.output_shape_for(inputs)?;
            let len = shape.size();
            if spare.capacity() >= len {
                let mut values = spare;
                values.truncate(len);
                values.resize(len, 0.0);
                let mut output =
                    ArrayD::from_shape_vec(shape, values).map_err(|_| Error::ShapeOverflow {
                        context: format!("{}: output", self.context()),
                        shape: inputs.shape().to_vec(),
                    })?;
                self.lookup_into(inputs, output.view_mut())?;
                return Ok(Tensor::from(output));
            }
        }
        let stored = self.renormalize(inputs)?;
        Ok(Tensor::from(self.lookup(inputs, !stored)?))
    }

    fn release_buffers(&mut self) {
        self.spare_output = None;
    }

    /// Keeps the buffer of a float32 output for the next [`Layer::forward`].
    fn recycle(&mut self, output: Tensor) {
        if let Ok(values) = output.into_float() {
            let (values, offset) = values.into_raw_vec_and_offset();
            if offset == Some(0) {
                self.spare_output = Some(values);
            }
        }
    }

    /// The lifecycle of [`Layer::apply`] (check, build, call, mask); with
    /// [`Embedding::max_norm`], the rows read are renormalised in the table before the
    /// lookup, as PyTorch's forward does.
    fn apply(&mut self, inputs: &Tensor) -> Result<Tensor> {
        if crate::layer::needs_build(self) {
            self.validate()?;
            self.check_input(inputs)?;
            self.build(&inputs.keras_shape())?;
        }
        if self.config.max_norm.is_none() {
            return crate::layer::call_with_mask(self, inputs);
        }
        let output = self.forward(inputs, false)?;
        crate::layer::attach_output_mask(self, inputs, output)
    }

    /// Keras 2's `Embedding.compute_output_shape`: `input_shape + (output_dim,)`, with
    /// `input_length` filling unknown lengths and contradicting known ones as an error.
    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        let mut output = input_shape.to_vec();
        if let Some(lengths) = &self.config.input_length {
            if input_shape.len() != lengths.len() + 1 {
                return Err(self.input_length_error(input_shape));
            }
            for (dim, expected) in output[1..].iter_mut().zip(lengths) {
                match (*dim, *expected) {
                    (Some(got), Some(expected)) if got != expected => {
                        return Err(self.input_length_error(input_shape));
                    }
                    (None, Some(expected)) => *dim = Some(expected),
                    _ => {}
                }
            }
        }
        output.push(Some(self.config.output_dim));
        Ok(output)
    }

    /// `ids != 0` with `mask_zero`, else `None`; an incoming mask is ignored, as in Keras.
    fn compute_mask(
        &self,
        inputs: &Tensor,
        _mask: Option<&ArrayD<bool>>,
    ) -> Result<Option<ArrayD<bool>>> {
        Ok(self.config.mask_zero.then(|| inputs.nonzero_mask()))
    }

    /// Always `true`: an incoming mask is ignored, as in Keras.
    fn supports_masking(&self) -> bool {
        true
    }

    /// The table's gradient is row-sparse: one row per distinct id, the sum of the output
    /// gradients of that id's positions (Keras' `IndexedSlices`), so its cost does not grow
    /// with `input_dim`.
    fn backward(&mut self, inputs: &Tensor, output_gradient: ArrayD<f32>) -> Result<Backward> {
        let dim = self.config.output_dim;
        let mut expected = inputs.shape().to_vec();
        expected.push(dim);
        if output_gradient.shape() != expected.as_slice() {
            return Err(Error::IncompatibleShape {
                context: format!("{}: output gradient", self.context()),
                expected: expected.iter().map(|&d| Some(d)).collect(),
                got: output_gradient.shape().iter().map(|&d| Some(d)).collect(),
            });
        }
        if self.lora.is_some() {
            if !self.config.trainable {
                return Ok(Backward {
                    input_gradient: None,
                    weight_gradients: Vec::new(),
                });
            }
            let (rows, summed) = self.summed_rows(inputs, output_gradient)?;
            return Ok(Backward {
                input_gradient: None,
                weight_gradients: self.lora_gradients(&rows, &summed)?,
            });
        }
        if self.config.trainable && self.table()?.as_slice().is_none() {
            return Err(self.untrainable_error());
        }
        let Some(id) = self
            .embeddings
            .as_ref()
            .filter(|t| t.is_trainable())
            .map(Weight::id)
        else {
            return Ok(Backward {
                input_gradient: None,
                weight_gradients: Vec::new(),
            });
        };
        let (rows, values) = self.summed_rows(inputs, output_gradient)?;
        Ok(Backward {
            input_gradient: None,
            weight_gradients: vec![(id, Gradient::Rows { rows, values })],
        })
    }

    fn rows_read(&self, inputs: &Tensor) -> Result<Vec<(WeightId, Vec<usize>)>> {
        if let Some(lora) = self.lora.as_ref().filter(|l| l.a.is_trainable()) {
            let mut rows = inputs.row_indices(self.config.input_dim, &self.name)?;
            rows.sort_unstable();
            rows.dedup();
            return Ok(vec![(lora.a.id(), rows)]);
        }
        let Some(table) = self
            .embeddings
            .as_ref()
            .filter(|t| t.is_trainable() && t.as_slice().is_some())
        else {
            return Ok(Vec::new());
        };
        let mut rows = inputs.row_indices(self.config.input_dim, &self.name)?;
        rows.sort_unstable();
        rows.dedup();
        Ok(vec![(table.id(), rows)])
    }

    /// `embeddings`, then for a quantized table `embeddings_scale`, `embeddings_zero` and
    /// `g_idx` (the last two for grouped int4 only): Keras 3's order.
    ///
    /// With LoRA, Keras 3's `layer.weights` order: `embeddings`, `lora_embeddings_a`,
    /// `lora_embeddings_b` for a float table (created trainable, frozen later), but the
    /// adapters first for a quantized one (its variables are created non-trainable, and
    /// Keras lists trainable variables before non-trainable ones).
    fn variables(&self) -> Vec<&Weight> {
        let mut variables: Vec<&Weight> = Vec::with_capacity(6);
        let adapters = self.lora.iter().flat_map(|l| [&l.a, &l.b]);
        let adapters_first = self.quantized.is_some();
        if adapters_first {
            variables.extend(adapters.clone());
        }
        variables.extend(self.embeddings.iter());
        if let Some(q) = &self.quantized {
            variables.push(&q.scale);
            variables.extend(q.zero.iter());
            variables.extend(q.g_idx.iter());
        }
        if !adapters_first {
            variables.extend(adapters);
        }
        variables
    }

    /// In the order of [`Layer::variables`].
    fn variables_mut(&mut self) -> Vec<&mut Weight> {
        let mut variables: Vec<&mut Weight> = Vec::with_capacity(6);
        let adapters_first = self.quantized.is_some();
        let (mut first, mut last) = (Vec::new(), Vec::new());
        if let Some(lora) = &mut self.lora {
            let adapters = if adapters_first {
                &mut first
            } else {
                &mut last
            };
            adapters.push(&mut lora.a);
            adapters.push(&mut lora.b);
        }
        variables.append(&mut first);
        variables.extend(self.embeddings.iter_mut());
        if let Some(q) = &mut self.quantized {
            variables.push(&mut q.scale);
            variables.extend(q.zero.iter_mut());
            variables.extend(q.g_idx.iter_mut());
        }
        variables.append(&mut last);
        variables
    }

    /// Copies as `f32`: the int8 codes (packed int4 bytes, zero points) and half-precision
    /// values exactly, without keeping a widened copy.
    fn get_weights(&self) -> Vec<ArrayD<f32>> {
        self.variables()
            .into_iter()
            .map(|w| match w.values() {
                WeightValues::Int8(v) => v.mapv(f32::from),
                WeightValues::Half(v, dtype) => {
                    v.mapv(|b| crate::quantization::half_to_f32(b, dtype))
                }
                WeightValues::Float32(v) => v.to_owned(),
            })
            .collect()
    }

    fn try_get_weights(&self) -> Result<Vec<ArrayD<f32>>> {
        let context = format!("layer \"{}\": get_weights", self.name);
        self.variables()
            .into_iter()
            .map(|w| w.try_to_f32(|| context.clone()))
            .collect()
    }
}

/// LoRA's adapters on a frozen table (Keras 3's `Embedding.enable_lora`).
#[derive(Clone)]
struct Lora {
    /// `lora_embeddings_a`, `(input_dim, rank)`.
    a: Weight,
    /// `lora_embeddings_b`, `(rank, output_dim)`.
    b: Weight,
    rank: usize,
    alpha: f32,
}

impl Lora {
    /// `alpha / rank`, the factor of the low-rank delta.
    fn scale(&self) -> f32 {
        self.alpha / self.rank as f32
    }
}

/// LoRA (low-rank adaptation), as Keras 3's `Embedding.enable_lora`.
impl Embedding {
    /// Enables LoRA with Keras' defaults: `lora_alpha = rank`, `A` by `"he_uniform"`, `B`
    /// zeros. See [`Embedding::enable_lora_with`].
    ///
    /// # Errors
    /// Those of [`Embedding::enable_lora_with`].
    pub fn enable_lora(&mut self, rank: usize) -> Result<()> {
        self.enable_lora_with(
            rank,
            None,
            Initializer::HeUniform { seed: None },
            Initializer::Zeros,
        )
    }

    /// Enables LoRA (Keras 3's `enable_lora(rank, lora_alpha, a_initializer,
    /// b_initializer)`): the table `E` is frozen, and two trainable float32 variables are
    /// appended after it, `lora_embeddings_a` `(input_dim, rank)` filled by `a_initializer`
    /// and `lora_embeddings_b` `(rank, output_dim)` filled by `b_initializer` (both with the
    /// layer's `embeddings_regularizer`, as Keras). Every lookup (`call`, `apply`,
    /// `forward`, `predict`, [`Embedding::lookup_into`]) then reads the effective table
    /// `E + (lora_alpha / rank) · A · B`, computing only the rows it gathers
    /// (`A[ids] · B`), never the full product. `lora_alpha` defaults to `rank`.
    ///
    /// Training gives `A` a row-sparse gradient (only the rows of the ids looked up),
    /// `B` a dense one, `E` none. [`Layer::get_weights`] returns the variables in Keras'
    /// `layer.get_weights()` order; [`Embedding::save_own_variables`] gives the merged table,
    /// as Keras' `save_own_variables` writes it, and so does a model's `save_weights`: its
    /// file loads into a twin with or without LoRA.
    ///
    /// The table may be quantized (int8, int4) or half precision: it is the frozen base
    /// (quantized tables are trainable only through LoRA). Over an int8/int4 table the
    /// lookups add the delta to the dequantized rows, the variables are listed as Keras
    /// lists them (`lora_embeddings_a`, `lora_embeddings_b`, then the quantized ones), and
    /// saving dequantizes the table, adds the delta and quantizes the sum again in the same
    /// mode. Over a float16/bfloat16 table each effective row is rounded to the table's
    /// type, as Keras casts it to the layer's compute dtype (gradients stay float32).
    ///
    /// # Errors
    /// In Keras' order: [`Error::InvalidArgument`] when an `embeddings_constraint` is set
    /// ("Lora is incompatible with embedding constraints"); [`Error::NotBuilt`] before the
    /// table exists; [`Error::InvalidArgument`] when LoRA is already enabled. Beyond Keras:
    /// [`Error::InvalidArgument`] for a zero `rank` (Keras would divide by zero at the first
    /// call), a non-finite `lora_alpha` or PyTorch's `max_norm`; the initializers' errors;
    /// [`Error::Allocation`].
    ///
    /// ```
    /// use ndarray::array;
    /// use ndkeras::prelude::*;
    ///
    /// let mut layer = Embedding::from_table(array![[0.0f32, 1.0], [2.0, 3.0], [4.0, 5.0]]);
    /// layer.apply(&Tensor::from(vec![0i64]))?; // builds it
    /// layer.enable_lora(2)?;
    /// assert_eq!(layer.weight_names(), ["embeddings", "lora_embeddings_a", "lora_embeddings_b"]);
    /// // B starts at zero: the effective table is the base table.
    /// let out = layer.apply(&Tensor::from(vec![2i64]))?;
    /// assert_eq!(out.to_f32(), array![[4.0f32, 5.0]].into_dyn());
    /// # Ok::<(), ndkeras::Error>(())
    /// ```
    pub fn enable_lora_with(
        &mut self,
        rank: usize,
        lora_alpha: Option<f32>,
        a_initializer: Initializer,
        b_initializer: Initializer,
    ) -> Result<()> {
        self.check_lora_compatible(lora_alpha)?;
        if self.embeddings.is_none() {
            return Err(Error::NotBuilt {
                context: self.context(),
                what: "the table to adapt with LoRA".into(),
                hint: "Cannot enable lora on a layer that isn't yet built: call it once or `build` it first".into(),
            });
        }
        if let Some(lora) = &self.lora {
            return Err(Error::invalid_argument(
                self.context(),
                "enable_lora",
                format!("a second call (rank {} enabled)", lora.rank),
                "one call: lora is already enabled. This can only be done once per layer",
            ));
        }
        if rank == 0 {
            return Err(Error::invalid_argument(
                self.context(),
                "rank",
                rank,
                "a positive LoRA rank",
            ));
        }
        let alpha = lora_alpha.unwrap_or(rank as f32);
        let (input_dim, output_dim) = (self.config.input_dim, self.config.output_dim);
        let a = self.lora_matrix("lora_embeddings_a", input_dim, rank, &a_initializer)?;
        let b = self.lora_matrix("lora_embeddings_b", rank, output_dim, &b_initializer)?;
        if let Some(table) = &mut self.embeddings {
            table.set_trainable(false);
        }
        self.lora = Some(Lora { a, b, rank, alpha });
        Ok(())
    }

    /// What LoRA cannot be combined with, checked before anything changes: an
    /// `embeddings_constraint` (Keras' first check), `max_norm`, a non-finite `lora_alpha`.
    fn check_lora_compatible(&self, lora_alpha: Option<f32>) -> Result<()> {
        if self.config.embeddings_constraint.is_some() {
            return Err(Error::invalid_argument(
                self.context(),
                "embeddings_constraint",
                "set",
                "no constraint: Lora is incompatible with embedding constraints. In order to enable lora on this layer, remove the `embeddings_constraint` argument",
            ));
        }
        if self.config.max_norm.is_some() {
            return Err(Error::invalid_argument(
                self.context(),
                "max_norm",
                "set",
                format!(
                    "no max_norm: LoRA on layer '{}' is not combined with PyTorch's renormalisation",
                    self.name
                ),
            ));
        }
        if let Some(alpha) = lora_alpha.filter(|a| !a.is_finite()) {
            return Err(Error::invalid_argument(
                self.context(),
                "lora_alpha",
                alpha,
                "a finite number",
            ));
        }
        Ok(())
    }

    /// One LoRA variable, filled by `initializer`, fallibly.
    fn lora_matrix(
        &self,
        name: &str,
        rows: usize,
        cols: usize,
        initializer: &Initializer,
    ) -> Result<Weight> {
        let shape = [rows, cols];
        initializer.validate_for(&shape)?;
        let context = || format!("{}: {name}", self.context());
        let mut values = aligned_zeros(rows, cols, context)?;
        let flat = values.as_slice_mut().ok_or_else(|| self.layout_error())?;
        initializer.initialize_into(&shape, flat)?;
        Ok(Weight::matrix(name, values)
            .with_trainable(self.config.trainable)
            .with_regularizer(self.config.embeddings_regularizer))
    }

    /// LoRA enabled at the build, with Keras' default initializers (Keras' `lora_rank` and
    /// `lora_alpha` constructor arguments): the layer runs
    /// [`Embedding::enable_lora_with`]`(rank, lora_alpha, "he_uniform", "zeros")` right after
    /// its table is built, and again after every rebuild. `lora_alpha` `None` means `rank`.
    ///
    /// Keras' own `build` calls `enable_lora(lora_rank)` without `lora_alpha`, so a Keras
    /// layer built from `lora_rank` and `lora_alpha` runs with `lora_alpha = lora_rank`;
    /// this builder keeps the `lora_alpha` given (`from_config` reproduces Keras).
    ///
    /// A zero rank is an [`Error::InvalidArgument`] at validation; the other errors of
    /// [`Embedding::enable_lora_with`] come from the build.
    pub fn with_lora(mut self, rank: usize, lora_alpha: Option<f32>) -> Self {
        self.lora_at_build = Some((rank, lora_alpha));
        self
    }

    /// The last step of `build`: the LoRA of [`Embedding::with_lora`]; when it fails the
    /// layer is unbuilt again (initial weights kept), so a failed build changes nothing.
    fn finish_build(&mut self) -> Result<()> {
        let enabled = self.enable_lora_at_build();
        if enabled.is_err() {
            self.unbuild();
        }
        enabled
    }

    /// Runs the LoRA requested by [`Embedding::with_lora`], once the table exists.
    fn enable_lora_at_build(&mut self) -> Result<()> {
        match self.lora_at_build {
            Some((rank, alpha)) if self.lora.is_none() => self.enable_lora_with(
                rank,
                alpha,
                Initializer::HeUniform { seed: None },
                Initializer::Zeros,
            ),
            _ => Ok(()),
        }
    }

    /// Whether [`Embedding::enable_lora`] ran (Keras' `lora_enabled`).
    pub fn lora_enabled(&self) -> bool {
        self.lora.is_some()
    }

    /// LoRA's rank once enabled, or the one [`Embedding::with_lora`] asked for (Keras'
    /// `lora_rank`); `None` without LoRA.
    pub fn lora_rank(&self) -> Option<usize> {
        match &self.lora {
            Some(lora) => Some(lora.rank),
            None => self.lora_at_build.map(|(rank, _)| rank),
        }
    }

    /// LoRA's `lora_alpha` once enabled, or the one [`Embedding::with_lora`] asked for
    /// (`rank` by default); the delta is scaled by `lora_alpha / rank`.
    pub fn lora_alpha(&self) -> Option<f32> {
        match &self.lora {
            Some(lora) => Some(lora.alpha),
            None => self
                .lora_at_build
                .map(|(rank, alpha)| alpha.unwrap_or(rank as f32)),
        }
    }

    /// Adds `(alpha / rank) · A[id] · B` to each gathered row of `output` (Keras'
    /// `take(A, ids) @ B` scaled and added), one row at a time: the full product is never
    /// formed. Over a float16 or bfloat16 table the sums are rounded to that type, as Keras
    /// casts the effective table to the layer's compute dtype.
    fn add_lora_delta(&self, ids: &[usize], output: &mut [f32]) -> Result<()> {
        let Some(lora) = &self.lora else {
            return Ok(());
        };
        let dim = self.config.output_dim;
        let (a, b) = (
            lora.a.as_slice().ok_or_else(|| self.layout_error())?,
            lora.b.as_slice().ok_or_else(|| self.layout_error())?,
        );
        let scale = lora.scale();
        let half = self
            .embeddings
            .as_ref()
            .and_then(Weight::as_half_slice)
            .map(|(_, dtype)| dtype);
        let mut delta = try_filled(dim, 0.0f32, || format!("{}: LoRA row", self.context()))?;
        for (&id, row) in ids.iter().zip(output.chunks_exact_mut(dim.max(1))) {
            delta.fill(0.0);
            let a_row = a
                .get(id * lora.rank..(id + 1) * lora.rank)
                .unwrap_or_default();
            for (&weight, b_row) in a_row.iter().zip(b.chunks_exact(dim.max(1))) {
                for (d, &v) in delta.iter_mut().zip(b_row) {
                    *d += weight * v;
                }
            }
            for (out, &d) in row.iter_mut().zip(&delta) {
                *out += scale * d;
            }
            if let Some(dtype) = half {
                // Keras casts `E + delta` to the compute dtype, which is the table's.
                for out in row.iter_mut() {
                    *out = round_to_half(*out, dtype);
                }
            }
        }
        Ok(())
    }

    /// The gradients of `A` (row-sparse: `(alpha / rank) · g · Bᵀ` for the rows looked up)
    /// and `B` (dense: `(alpha / rank) · Σ A[id]ᵀ · g`), from the output gradient summed per
    /// distinct id.
    fn lora_gradients(
        &self,
        rows: &[usize],
        summed: &Array2<f32>,
    ) -> Result<Vec<(WeightId, Gradient)>> {
        let Some(lora) = &self.lora else {
            return Ok(Vec::new());
        };
        if !lora.a.is_trainable() {
            return Ok(Vec::new());
        }
        let a = lora
            .a
            .view()
            .into_dimensionality::<Ix2>()
            .map_err(|_| self.layout_error())?;
        let b = lora
            .b
            .view()
            .into_dimensionality::<Ix2>()
            .map_err(|_| self.layout_error())?;
        let scale = lora.scale();
        let grad_a = summed.dot(&b.t()) * scale;
        let gathered = a.select(ndarray::Axis(0), rows);
        let grad_b = gathered.t().dot(summed) * scale;
        Ok(vec![
            (
                lora.a.id(),
                Gradient::Rows {
                    rows: rows.to_vec(),
                    values: grad_a,
                },
            ),
            (lora.b.id(), Gradient::Dense(grad_b.into_dyn())),
        ])
    }

    /// What Keras 3's `save_own_variables` writes for this layer, in its order
    /// (`variable_serialization_spec`): the table, then for a quantized table its other
    /// variables, all as float32 (codes exactly). With LoRA the table is merged with LoRA's
    /// delta (Keras' `_get_embeddings_with_merged_lora`); `A` and `B` are not written:
    /// - float32 table: `E + (alpha / rank) · A · B`;
    /// - float16 / bfloat16 table: that sum rounded to the table's type (Keras casts it to the
    ///   layer's compute dtype);
    /// - int8 / int4 table: the dequantized table plus the delta, quantized again in the same
    ///   mode (new codes, scales and zero points; `g_idx` unchanged).
    ///
    /// # Errors
    /// [`Error::NotBuilt`] before the build; [`Error::Allocation`].
    pub fn save_own_variables(&self) -> Result<Vec<ArrayD<f32>>> {
        self.table()?;
        let context = || format!("{}: save_own_variables", self.context());
        let (Some(_), Some(mode)) = (&self.lora, self.config.quantization) else {
            let mut arrays = Vec::new();
            for weight in self.variables() {
                if self
                    .lora
                    .as_ref()
                    .is_none_or(|l| l.a.id() != weight.id() && l.b.id() != weight.id())
                {
                    arrays.push(weight.try_to_f32(context)?);
                }
            }
            if self.lora.is_some()
                && let Some(merged) = arrays.first_mut()
            {
                let rows: Vec<usize> = (0..self.config.input_dim).collect();
                let flat = merged.as_slice_mut().ok_or_else(|| self.layout_error())?;
                self.add_lora_delta(&rows, flat)?;
            }
            return Ok(arrays);
        };
        // Dequantize the whole table, add the delta, quantize again: Keras'
        // `_get_embeddings_with_merged_lora`.
        let (input_dim, dim) = (self.config.input_dim, self.config.output_dim);
        let len = checked_size(&[input_dim, dim], context)?;
        let mut merged = try_filled(len, 0.0f32, context)?;
        let mut groups = Vec::new();
        let rows = self.encoded_rows(&mut groups)?;
        if rows.rows() != input_dim {
            return Err(self.layout_error());
        }
        for (row, out) in merged.chunks_exact_mut(dim.max(1)).enumerate() {
            rows.write_row(row, out);
        }
        let ids: Vec<usize> = (0..input_dim).collect();
        self.add_lora_delta(&ids, &mut merged)?;
        let requantized = quantize_table(&merged, dim, mode, context)?;
        drop(merged);
        let shapes = mode.variable_shapes(input_dim, dim);
        let widened = |codes: Vec<i8>| codes.into_iter().map(f32::from).collect::<Vec<f32>>();
        let mut arrays = vec![widened(requantized.codes), requantized.scales];
        if let Some((zeros, g_idx)) = requantized.zeros_and_groups {
            arrays.push(widened(zeros));
            arrays.push(g_idx);
        }
        arrays
            .into_iter()
            .zip(shapes)
            .map(|(values, shape)| shaped_as(values, shape, context))
            .collect()
    }

    /// Keras 3's `load_own_variables`: `arrays` are what [`Embedding::save_own_variables`]
    /// gives (the table, then a quantized table's other variables, in Keras' serialization
    /// order). With LoRA enabled they are assigned and `A` and `B` are set to zeros, so the
    /// effective table is the one loaded; otherwise this is [`Layer::set_weights`].
    ///
    /// # Errors
    /// Those of [`Layer::set_weights`] for the table.
    pub fn load_own_variables(&mut self, arrays: Vec<ArrayD<f32>>) -> Result<()> {
        if self.lora.is_none() {
            return self.set_weights(arrays);
        }
        let all = self.with_zero_adapters(arrays, "load_own_variables")?;
        self.set_weights(all)
    }

    /// `arrays` (the variables without LoRA's, in Keras' serialization order) with zeros for
    /// `A` and `B` where [`Layer::variables`] has them: after them for a float table, before
    /// them for a quantized one.
    fn with_zero_adapters(
        &self,
        arrays: Vec<ArrayD<f32>>,
        doing: &str,
    ) -> Result<Vec<ArrayD<f32>>> {
        let Some(lora) = &self.lora else {
            return Ok(arrays);
        };
        let context = || format!("{}: {doing}", self.context());
        let (input_dim, output_dim) = (self.config.input_dim, self.config.output_dim);
        let zeros = [
            aligned_zeros(input_dim, lora.rank, context)?.into_dyn(),
            aligned_zeros(lora.rank, output_dim, context)?.into_dyn(),
        ];
        let mut all = Vec::new();
        all.try_reserve_exact(arrays.len() + 2)
            .map_err(|_| Error::Allocation {
                context: context(),
                bytes: (arrays.len() + 2) * std::mem::size_of::<ArrayD<f32>>(),
            })?;
        if self.quantized.is_some() {
            all.extend(zeros);
            all.extend(arrays);
        } else {
            all.extend(arrays);
            all.extend(zeros);
        }
        Ok(all)
    }
}

impl Embedding {
    /// `table` with the layer's trainability, regularizer and constraint.
    fn table_weight(&self, table: Weight) -> Weight {
        table
            .with_trainable(self.config.trainable)
            .with_regularizer(self.config.embeddings_regularizer)
            .with_constraint(self.config.embeddings_constraint)
    }
}

/// Quantized and half-precision tables (Keras 3's `Embedding.quantize` and layer `dtype`).
impl Embedding {
    /// Quantizes the built float32 table as Keras 3.15.1's `layer.quantize(mode)`:
    /// `"int8"` (one abs-max scale per vocabulary row) or `"int4"` (grouped, block size 128,
    /// as Keras resolves a bare `"int4"`). See [`Embedding::quantize_with`] for per-channel
    /// int4 and other block sizes, and [`crate::quantization`] for the formulas.
    ///
    /// ```
    /// use ndarray::array;
    /// use ndkeras::prelude::*;
    ///
    /// let mut layer = Embedding::from_table(array![[0.5f32, -1.0], [0.25, 0.0]]);
    /// layer.apply(&Tensor::from(vec![0i64]))?; // builds it
    /// layer.quantize("int8")?;
    /// assert_eq!(layer.weight_names(), ["embeddings", "embeddings_scale"]);
    /// // 0.5 * 127 / (1 + 1e-7) = 63.49999: the epsilon decides, as in Keras.
    /// assert_eq!(layer.get_weights()[0], array![[63.0f32, -127.0], [127.0, 0.0]].into_dyn());
    /// let out = layer.apply(&Tensor::from(vec![0i64]))?;
    /// assert!((out.as_float().unwrap()[[0, 0]] - 0.5).abs() < 0.01);
    /// # Ok::<(), ndkeras::Error>(())
    /// ```
    ///
    /// # Errors
    /// As Keras, in Keras' order: [`Error::InvalidArgument`] for an unknown mode ("Invalid
    /// quantization mode", also for Keras' `float8`, `gptq` and `awq`, which Keras does not
    /// implement for `Embedding` either); [`Error::NotBuilt`] for a layer that is not built
    /// ("Cannot quantize a layer that isn't yet built"); [`Error::InvalidArgument`] for a
    /// layer that is already quantized; and (ndkeras only) for a half-precision table;
    /// [`Error::Allocation`].
    pub fn quantize(&mut self, mode: &str) -> Result<()> {
        self.quantize_with(mode.parse()?)
    }

    /// [`Embedding::quantize`] with a typed mode: `QuantizationMode::Int4 { block_size: None }`
    /// is Keras' `quantize("int4", config=Int4QuantizationConfig(block_size=None))`
    /// (per-channel), `Some(b)` its grouped int4 with block size `b`.
    ///
    /// The quantized variables replace the table (its float32 memory is freed) and are not
    /// trainable, as in Keras: a quantized layer left trainable refuses to train (freeze it
    /// with `trainable(false)` to train the rest of a model). Lookups decode only the rows
    /// they gather.
    ///
    /// # Errors
    /// Those of [`Embedding::quantize`]; [`Error::InvalidArgument`] for a block size of 0.
    pub fn quantize_with(&mut self, mode: QuantizationMode) -> Result<()> {
        mode.validate()?;
        if self.embeddings.is_none() {
            return Err(Error::NotBuilt {
                context: self.context(),
                what: "the table to quantize".into(),
                hint: format!(
                    "Cannot quantize a layer that isn't yet built. Layer '{}' (of type 'Embedding') is not built yet: call it once or `build` it first",
                    self.name
                ),
            });
        }
        if self.lora.is_some() {
            return Err(Error::invalid_argument(
                self.context(),
                "mode",
                mode.policy_mode(),
                format!(
                    "an Embedding without LoRA: quantizing layer '{}' with LoRA enabled is not supported by ndkeras",
                    self.name
                ),
            ));
        }
        if let Some(current) = self.config.quantization {
            return Err(Error::invalid_argument(
                self.context(),
                "mode",
                mode.name(),
                format!(
                    "a layer that is not quantized yet: layer '{}' is already quantized with dtype_policy='{}'",
                    self.name,
                    current.policy_name()
                ),
            ));
        }
        let table = self.table()?;
        let Some(flat) = table.as_slice() else {
            return Err(Error::invalid_argument(
                self.context(),
                "dtype",
                self.config.dtype,
                "a float32 table to quantize (cast it back with `cast_table(TableDType::Float32)` first)",
            ));
        };
        let context = || format!("{}: quantized table", self.context());
        let table = quantize_table(flat, self.config.output_dim, mode, context)?;
        let (codes, quantized) = self.quantized_weights(table, mode)?;
        self.set_quantized(Weight::int8("embeddings", codes), quantized);
        self.config.quantization = Some(mode);
        // The codes are not the initial weights any more: an undone build drops them.
        self.built_from_weights = false;
        Ok(())
    }

    /// The variables of `table` (quantized in `mode`) as weights: the codes and the others.
    fn quantized_weights(
        &self,
        table: QuantizedTable,
        mode: QuantizationMode,
    ) -> Result<(ArrayD<i8>, QuantizedWeights)> {
        let context = || format!("{}: quantized table", self.context());
        let mut shapes = mode
            .variable_shapes(self.config.input_dim, self.config.output_dim)
            .into_iter();
        let mut next_shape = || shapes.next().ok_or_else(|| self.layout_error());
        let codes = shaped_as(table.codes, next_shape()?, context)?;
        let scale = Weight::new(
            "embeddings_scale",
            shaped_as(table.scales, next_shape()?, context)?,
        )?;
        let (zero, g_idx) = match table.zeros_and_groups {
            Some((zeros, groups)) => (
                Some(Weight::int8(
                    "embeddings_zero",
                    shaped_as(zeros, next_shape()?, context)?,
                )),
                Some(Weight::new(
                    "g_idx",
                    shaped_as(groups, next_shape()?, context)?,
                )?),
            ),
            None => (None, None),
        };
        Ok((codes, QuantizedWeights { scale, zero, g_idx }))
    }

    /// Installs quantized variables, all non-trainable (Keras' `trainable=False`).
    fn set_quantized(&mut self, codes: Weight, quantized: QuantizedWeights) {
        let QuantizedWeights { scale, zero, g_idx } = quantized;
        self.embeddings = Some(codes.with_trainable(false));
        self.quantized = Some(QuantizedWeights {
            scale: scale.with_trainable(false),
            zero: zero.map(|z| z.with_trainable(false)),
            g_idx: g_idx.map(|g| g.with_trainable(false)),
        });
    }

    /// A layer whose table is built quantized, as Keras builds a layer whose dtype policy is
    /// `int8_from_float32` / `int4/<block_size>_from_float32` (a layer read back from a
    /// quantized config): the build creates zero codes and unit scales (Keras' initializers
    /// for them), to be replaced by `set_weights` or `load_weights` with the quantized
    /// variables in Keras' order. Initial `weights` are those variables too. Default: not
    /// quantized.
    pub fn quantization(mut self, mode: QuantizationMode) -> Self {
        self.config.quantization = Some(mode);
        self
    }

    /// The type the table is stored in when it is not quantized (Keras' layer `dtype`):
    /// float16 and bfloat16 halve the memory; values are rounded to nearest (ties to even) when
    /// they are stored, and lookups widen the gathered rows back to float32 exactly. Applied
    /// at the build; use [`Embedding::cast_table`] on a built layer. Default: float32.
    ///
    /// A half-precision table cannot be trained by ndkeras (freeze it with `trainable(false)`).
    pub fn dtype(mut self, dtype: TableDType) -> Self {
        self.config.dtype = dtype;
        self
    }

    /// Stores the built, unquantized table in `dtype` (see [`Embedding::dtype`]).
    ///
    /// # Errors
    /// [`Error::NotBuilt`] before the build; [`Error::InvalidArgument`] for a quantized table
    /// and for a value that overflows the half-precision type (naming its position);
    /// [`Error::Allocation`].
    pub fn cast_table(&mut self, dtype: TableDType) -> Result<()> {
        let context = self.table_context();
        let table = self.table()?;
        if self.config.quantization.is_some() {
            return Err(Error::invalid_argument(
                self.context(),
                "dtype",
                dtype,
                "an unquantized table (a quantized table cannot change its type)",
            ));
        }
        let values = table.try_to_f32(|| context.clone())?;
        let weight = self.stored_table(values, dtype)?;
        // Under LoRA the base table stays frozen whatever its storage.
        let frozen = self.lora.is_some();
        self.embeddings = Some(
            self.table_weight(weight)
                .with_trainable(!frozen && self.config.trainable),
        );
        self.config.dtype = dtype;
        self.built_from_weights = false;
        Ok(())
    }

    /// `values` as a table weight of `dtype`.
    fn stored_table(&self, values: ArrayD<f32>, dtype: TableDType) -> Result<Weight> {
        if dtype == TableDType::Float32 {
            let context = self.table_context();
            let prepared = Weight::prepare(&values, || context.clone())?;
            return Weight::from_prepared("embeddings", values, prepared);
        }
        let mut bits: Vec<u16> = try_filled(values.len(), 0u16, || self.table_context())?;
        for (flat, (bit, &value)) in bits.iter_mut().zip(values.iter()).enumerate() {
            *bit = f32_to_half(value, dtype).ok_or_else(|| {
                Error::invalid_argument(
                    self.context(),
                    "embeddings",
                    format!(
                        "{value} at position {:?}",
                        crate::tensor::unravel(flat, values.shape())
                    ),
                    format!("values that are finite in {dtype}"),
                )
            })?;
        }
        let bits =
            ArrayD::from_shape_vec(values.raw_dim(), bits).map_err(|_| Error::ShapeOverflow {
                context: self.table_context(),
                shape: values.shape().to_vec(),
            })?;
        Ok(Weight::half("embeddings", bits, dtype))
    }

    /// How the table is quantized, if it is.
    pub fn quantization_mode(&self) -> Option<QuantizationMode> {
        self.config.quantization
    }

    /// The type an unquantized table is stored in.
    pub fn table_dtype(&self) -> TableDType {
        self.config.dtype
    }

    /// The bytes the table's variables hold (codes, scales, zero points and `g_idx` of a
    /// quantized table), 0 before the build.
    pub fn table_bytes(&self) -> usize {
        self.variables()
            .iter()
            .map(|w| {
                let size = match w.values() {
                    WeightValues::Int8(_) => 1,
                    WeightValues::Half(..) => 2,
                    _ => 4,
                };
                w.len().saturating_mul(size)
            })
            .sum()
    }

    /// The rows of a table stored in another type than float32, for a lookup. `groups`
    /// receives the checked group of each column of grouped int4 (from `g_idx`).
    fn encoded_rows<'a>(&'a self, groups: &'a mut Vec<usize>) -> Result<QuantizedRows<'a>> {
        let table = self.table()?;
        let dim = self.config.output_dim;
        if let Some((bits, dtype)) = table.as_half_slice() {
            return Ok(QuantizedRows::Half { bits, dtype, dim });
        }
        let (Some(codes), Some(quantized), Some(mode)) = (
            table.as_i8_slice(),
            self.quantized.as_ref(),
            self.config.quantization,
        ) else {
            return Err(self.layout_error());
        };
        let scales = quantized
            .scale
            .as_slice()
            .ok_or_else(|| self.layout_error())?;
        Ok(match mode {
            QuantizationMode::Int8 => QuantizedRows::Int8 { codes, scales, dim },
            QuantizationMode::Int4 { block_size: None } => QuantizedRows::Int4 {
                packed: codes,
                scales,
                dim,
            },
            QuantizationMode::Int4 {
                block_size: Some(block_size),
            } => {
                let count = dim.div_ceil(block_size.max(1));
                let zeros = quantized
                    .zero
                    .as_ref()
                    .and_then(Weight::as_i8_slice)
                    .ok_or_else(|| self.layout_error())?;
                let g_idx = quantized
                    .g_idx
                    .as_ref()
                    .and_then(Weight::as_slice)
                    .ok_or_else(|| self.layout_error())?;
                *groups = column_groups(g_idx.iter().copied(), count, &self.context())?;
                // Keras' g_idx (`floor(column / block_size)`) lets a row decode a group at a
                // time; a g_idx set to anything else is decoded column by column.
                let block = Some(block_size.max(1)).filter(|&b| {
                    groups
                        .iter()
                        .enumerate()
                        .all(|(column, &g)| g == column / b)
                });
                QuantizedRows::Int4Grouped {
                    packed: codes,
                    scales,
                    zeros,
                    groups: count,
                    column_groups: groups,
                    block,
                }
            }
        })
    }

    /// Builds the zero-filled quantized variables of `mode` (Keras' `_int8_build` /
    /// `_int4_build`: codes and zero points 0, scales 1, `g_idx` computed).
    fn build_quantized(&mut self, mode: QuantizationMode) -> Result<()> {
        let (input_dim, dim) = (self.config.input_dim, self.config.output_dim);
        let shapes = mode.variable_shapes(input_dim, dim);
        let context = self.table_context();
        let zeros_i8 = |shape: &Vec<usize>| -> Result<ArrayD<i8>> {
            let len = checked_size(shape, || context.clone())?;
            let values = try_filled(len, 0i8, || context.clone())?;
            ArrayD::from_shape_vec(shape.clone(), values).map_err(|_| Error::ShapeOverflow {
                context: context.clone(),
                shape: shape.clone(),
            })
        };
        let ones = |shape: &Vec<usize>| -> Result<ArrayD<f32>> {
            let len = checked_size(shape, || context.clone())?;
            let values = try_filled(len, 1.0f32, || context.clone())?;
            ArrayD::from_shape_vec(shape.clone(), values).map_err(|_| Error::ShapeOverflow {
                context: context.clone(),
                shape: shape.clone(),
            })
        };
        let codes = Weight::int8("embeddings", zeros_i8(&shapes[0])?);
        let scale = Weight::new("embeddings_scale", ones(&shapes[1])?)?;
        let (zero, g_idx) = match mode.block_size() {
            Some(block_size) => (
                Some(Weight::int8("embeddings_zero", zeros_i8(&shapes[2])?)),
                Some(Weight::new(
                    "g_idx",
                    ArrayD::from_shape_vec(vec![dim], group_index(dim, block_size)).map_err(
                        |_| Error::ShapeOverflow {
                            context: context.clone(),
                            shape: vec![dim],
                        },
                    )?,
                )?),
            ),
            None => (None, None),
        };
        self.set_quantized(codes, QuantizedWeights { scale, zero, g_idx });
        Ok(())
    }

    /// The checks `set_weights` makes beyond shapes and finiteness for a quantized or
    /// half-precision table: codes that fit their int8 variable, values that stay finite in
    /// half precision, scales whose dequantised values stay finite, grouped int4 zero points
    /// in -8..=7, a `g_idx` that names groups.
    fn check_stored_values(&self, weights: &[ArrayD<f32>]) -> Result<()> {
        for (weight, array) in self.variables().into_iter().zip(weights) {
            weight.check_convertible(array, &self.name)?;
        }
        let Some(mode) = self.config.quantization else {
            return Ok(());
        };
        // LoRA's adapters come first in a quantized layer's list (Keras' order); the codes
        // are checked by `check_convertible` above.
        let others = weights
            .get(if self.lora.is_some() { 3 } else { 1 }..)
            .unwrap_or_default();
        self.check_quantized_values(mode, others)
    }

    /// The checks of the variables of a table quantized in `mode` other than its codes
    /// (`others`: `embeddings_scale`, then `embeddings_zero` and `g_idx` for grouped int4, in
    /// Keras' order): scales whose dequantised values stay finite, grouped int4 zero points
    /// in -8..=7, a `g_idx` that names groups.
    fn check_quantized_values(&self, mode: QuantizationMode, others: &[ArrayD<f32>]) -> Result<()> {
        // int8: the rule of the scales files (`read_npy_scales`, `from_mapped_quantized`), so
        // that whatever `set_weights` accepts can be saved and mapped again; int4: every
        // dequantised value finite. `quantize_with` makes only scales that pass.
        if let Some(scales) = others.first()
            && let Some((flat, scale)) =
                crate::quantization::first_bad_scale(mode, scales.iter().copied())
        {
            return Err(Error::invalid_argument(
                self.context(),
                "embeddings_scale",
                format!(
                    "{scale:?} at position {:?}",
                    crate::tensor::unravel(flat, scales.shape())
                ),
                crate::quantization::scales_expected(mode),
            ));
        }
        // Grouped int4 zero points are int4 values (Keras clips them to -8..=7).
        if let (Some(_), Some(zeros)) = (mode.block_size(), others.get(1))
            && let Some((flat, &zero)) = zeros
                .iter()
                .enumerate()
                .find(|&(_, &z)| z.fract() != 0.0 || !(-8.0..=7.0).contains(&z))
        {
            return Err(Error::invalid_argument(
                self.context(),
                "embeddings_zero",
                format!(
                    "{zero} at position {:?}",
                    crate::tensor::unravel(flat, zeros.shape())
                ),
                "int4 zero points: whole numbers in -8..=7",
            ));
        }
        if let (Some(block_size), Some(g_idx)) = (mode.block_size(), others.get(2)) {
            let count = self.config.output_dim.div_ceil(block_size.max(1));
            column_groups(g_idx.iter().copied(), count, &self.context())?;
        }
        Ok(())
    }

    /// [`Layer::build`] of a layer configured quantized: the zero variables, then the pending
    /// initial weights (checked first), all or nothing.
    fn build_quantized_with_weights(
        &mut self,
        mode: QuantizationMode,
        input_shape: &[Option<usize>],
    ) -> Result<()> {
        mode.validate()?;
        check_initial_weights(self, input_shape)?;
        self.build_quantized(mode)?;
        let Some(pending) = self.initial_weights.as_deref() else {
            self.built_from_weights = false;
            return Ok(());
        };
        let checked = prepare_weights(self, pending);
        let prepared = match checked {
            Ok(prepared) => prepared,
            Err(error) => {
                self.embeddings = None;
                self.quantized = None;
                return Err(error);
            }
        };
        let weights = self.initial_weights.take().unwrap_or_default();
        assign_weights(self, weights, prepared)?;
        self.built_from_weights = true;
        Ok(())
    }

    /// The refusal to train a table stored quantized or in half precision.
    fn untrainable_error(&self) -> Error {
        let storage = match self.config.quantization {
            Some(mode) => format!("{}-quantized", mode.policy_mode()),
            None => self.config.dtype.to_string(),
        };
        Error::invalid_argument(
            self.context(),
            "trainable",
            true,
            format!(
                "false: the {storage} table of layer '{}' cannot be trained (quantized variables are not trainable, as in Keras); adapt it with LoRA (`enable_lora`), or freeze it with `trainable(false)` to train the rest of the model",
                self.name
            ),
        )
    }
}

/// `values` as an array of `shape`.
fn shaped_as<T>(
    values: Vec<T>,
    shape: Vec<usize>,
    context: impl Fn() -> String,
) -> Result<ArrayD<T>> {
    ArrayD::from_shape_vec(shape.clone(), values).map_err(|_| Error::ShapeOverflow {
        context: context(),
        shape,
    })
}

/// The group of each column from Keras' `g_idx` (float32 whole numbers below `groups`).
///
/// # Errors
/// [`Error::InvalidArgument`] naming the first bad entry.
fn column_groups<I>(g_idx: I, groups: usize, context: &str) -> Result<Vec<usize>>
where
    I: IntoIterator<Item = f32>,
    I::IntoIter: ExactSizeIterator,
{
    let g_idx = g_idx.into_iter();
    let mut columns = try_filled(g_idx.len(), 0usize, || format!("{context}: g_idx"))?;
    for (k, (column, g)) in columns.iter_mut().zip(g_idx).enumerate() {
        if g.fract() != 0.0 || !(0.0..groups as f32).contains(&g) {
            return Err(Error::invalid_argument(
                context,
                "g_idx",
                format!("{g} at position [{k}]"),
                format!("the group of each column: whole numbers in 0..{groups}"),
            ));
        }
        *column = g as usize;
    }
    Ok(columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::is_aligned;
    use ndarray::array;

    /// The sum per id the slow way: for each distinct id (in the order of its first
    /// position), its positions' rows added in order, starting from the first one's.
    fn naive_sums(
        ids: &[usize],
        gradient: &[f32],
        dim: usize,
        how: RowSum,
    ) -> Vec<(usize, Vec<f32>)> {
        let mut sums: Vec<(usize, Vec<f32>)> = Vec::new();
        for (k, &id) in ids.iter().enumerate() {
            if how.skip == Some(id) {
                continue;
            }
            let count = ids.iter().filter(|&&i| i == id).count();
            let scale = (1.0 / count as f64) as f32;
            let row = gradient[k * dim..(k + 1) * dim]
                .iter()
                .map(|&g| if how.scale_by_count { scale * g } else { g });
            match sums.iter_mut().find(|(i, _)| *i == id) {
                Some((_, sum)) => sum.iter_mut().zip(row).for_each(|(a, g)| *a += g),
                None => sums.push((id, row.collect())),
            }
        }
        sums
    }

    #[test]
    fn repeated_ids_are_summed_in_place_in_position_order() {
        let dim = 3;
        let mut slots = vec![NO_SLOT; 10];
        // Ids with repeats, a padding id, and values whose sums depend on the order.
        let batches: [&[usize]; 3] = [&[4, 1, 4, 9, 1, 4, 0], &[2, 2, 2], &[7, 3, 5, 6, 3]];
        for how in [
            RowSum::default(),
            RowSum {
                skip: Some(4),
                scale_by_count: false,
            },
            RowSum {
                skip: Some(2),
                scale_by_count: true,
            },
            RowSum {
                skip: None,
                scale_by_count: true,
            },
        ] {
            for ids in batches {
                let gradient: Vec<f32> = (0..ids.len() * dim)
                    .map(|i| 1.0 / (i as f32 + 1.0) + if i % 2 == 0 { 1e8 } else { -1e-3 })
                    .collect();
                let (rows, values) = coalesce_rows(ids, gradient.clone(), dim, how, &mut slots);
                let expected = naive_sums(ids, &gradient, dim, how);
                assert_eq!(rows, expected.iter().map(|(id, _)| *id).collect::<Vec<_>>());
                assert_eq!(values.dim(), (rows.len(), dim));
                for (got, (_, want)) in values.rows().into_iter().zip(&expected) {
                    assert_eq!(got.to_vec(), *want, "bit-identical sums ({how:?}, {ids:?})");
                }
                assert!(slots.iter().all(|&s| s == NO_SLOT), "the map is left clean");
            }
        }
    }

    #[test]
    fn gradients_in_another_layout_are_taken_in_row_major_order() {
        let transposed = array![[1.0f32, 3.0], [2.0, 4.0]].reversed_axes().into_dyn();
        let values = into_standard_vec(transposed, String::new).unwrap();
        assert_eq!(values, [1.0, 2.0, 3.0, 4.0]);
        let window = array![[9.0f32, 9.0], [5.0, 6.0]]
            .slice_move(ndarray::s![1.., ..])
            .into_dyn();
        assert_eq!(into_standard_vec(window, String::new).unwrap(), [5.0, 6.0]);
    }

    fn table() -> ArrayD<f32> {
        array![[0.0f32, 1.0], [2.0, 3.0], [4.0, 5.0]].into_dyn()
    }

    #[test]
    fn lookup_copies_rows_for_any_rank() {
        let mut layer = Embedding::new(3, 2).weights(vec![table()]);
        let out = layer.apply(&Tensor::from(array![[[2i32], [0]]])).unwrap();
        assert_eq!(
            out.as_float().unwrap(),
            &array![[[[4.0f32, 5.0]], [[0.0, 1.0]]]].into_dyn()
        );
        let scalar = layer.apply(&Tensor::from(ndarray::arr0(1u32))).unwrap();
        assert_eq!(scalar.as_float().unwrap(), &array![2.0f32, 3.0].into_dyn());
    }

    #[test]
    fn transposed_tables_are_stored_in_standard_layout() {
        let mut layer = Embedding::new(2, 3);
        layer.build(&[None]).unwrap();
        layer.set_weights(vec![table().reversed_axes()]).unwrap();
        assert!(layer.embeddings().unwrap().is_standard_layout());
        let out = layer.call(&Tensor::from(vec![1i64])).unwrap();
        assert_eq!(
            out.as_float().unwrap(),
            &array![[1.0f32, 3.0, 5.0]].into_dyn()
        );
    }

    #[test]
    fn non_finite_weights_are_refused_with_their_position() {
        let mut layer = Embedding::new(3, 2);
        layer.build(&[None]).unwrap();
        let before = layer.get_weights();
        let mut bad = table();
        bad[[2, 1]] = f32::NAN;
        let err = layer.set_weights(vec![bad]).unwrap_err();
        assert!(err.to_string().contains("[2, 1]"), "{err}");
        assert_eq!(layer.get_weights(), before);
    }

    #[test]
    fn tables_are_cache_line_aligned() {
        let mut built = Embedding::new(7, 3);
        built.build(&[None]).unwrap();
        assert!(is_aligned(built.embeddings().unwrap()));
        let mut set = Embedding::new(3, 2).weights(vec![table()]);
        set.apply(&Tensor::from(vec![0i64])).unwrap();
        assert!(is_aligned(set.embeddings().unwrap()));
        assert_eq!(set.get_weights(), vec![table()]);
    }

    #[test]
    fn debug_shows_the_shape_not_the_table() {
        let layer = Embedding::new(3, 2).with_name("e").weights(vec![table()]);
        let text = format!("{layer:?}");
        assert!(text.contains("[3, 2]") && !text.contains("5.0"), "{text}");
    }
}
