//! What flows between layers: integer ids, `f32` values or strings, plus an optional mask.
//!
//! A [`Tensor`] keeps the element type it was made from (`i8`, `i16`, `i32`, `i64`, `u8`,
//! `u16`, `u32`, `u64`, `usize` or `f32`: the integer types Keras takes as ids), so an index
//! lookup sees the ids exactly as the caller wrote them: nothing is rounded through `f32` on
//! the way (Keras 2 does round ids above 2^24 when a `Sequential`'s
//! input layer is float32; ndkeras does not).
//!
//! A tensor of strings (Keras' `tf.string`, [`DType::String`]) is what the preprocessing
//! layers ([`TextVectorization`](crate::preprocessing::TextVectorization),
//! [`StringLookup`](crate::preprocessing::StringLookup),
//! [`Hashing`](crate::preprocessing::Hashing)) take at the front of a model. Strings are not
//! numbers: every id lookup ([`Tensor::row_indices`], an `Embedding`) refuses them with
//! [`Error::IncompatibleDtype`] naming the layer, and [`Tensor::as_float`] is `None` for
//! them, as for ids. Masks, batching and shuffling treat them as any other element.
//!
//! ```
//! use ndkeras::prelude::*;
//!
//! let texts = Tensor::from(vec!["the cat sat", "東京 😀"]);
//! assert_eq!((texts.dtype(), texts.shape()), (DType::String, &[2][..]));
//! let err = texts.row_indices(10, "embedding").unwrap_err();
//! assert!(err.to_string().contains("received string"));
//! ```
//!
//! ```
//! use ndarray::array;
//! use ndkeras::prelude::*;
//!
//! let ids = Tensor::from(array![[1i64, 2, 0]]);
//! assert_eq!(ids.shape(), &[1, 3]);
//! assert_eq!(ids.dtype(), DType::Int64);
//! assert!(ids.as_float().is_none());
//! ```

use std::fmt;

use ndarray::{Array, ArrayD, Axis, Dimension, Slice};

use crate::error::{Error, Result};
use crate::quantization::QuantizedRows;
use crate::storage::try_filled_in_parts;

/// The element type of a [`Tensor`], named as NumPy names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DType {
    /// `i8` ids.
    Int8,
    /// `i16` ids.
    Int16,
    /// `i32` ids.
    Int32,
    /// `i64` ids.
    Int64,
    /// `u8` ids.
    UInt8,
    /// `u16` ids.
    UInt16,
    /// `u32` ids.
    UInt32,
    /// `u64` ids.
    UInt64,
    /// `usize` ids.
    Usize,
    /// `f32` values (or ids written as whole numbers).
    Float32,
    /// UTF-8 strings (Keras' `tf.string`): the input of the preprocessing layers.
    String,
}

impl DType {
    /// Every element type, in the order of the enum.
    pub const ALL: [DType; 11] = [
        DType::Int8,
        DType::Int16,
        DType::Int32,
        DType::Int64,
        DType::UInt8,
        DType::UInt16,
        DType::UInt32,
        DType::UInt64,
        DType::Usize,
        DType::Float32,
        DType::String,
    ];

    /// The type named `name` ([`DType::name`]: `"int32"`, `"float32"`, ...), if any.
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }

    /// NumPy's name for the type (`"int32"`, `"float32"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::Int8 => "int8",
            DType::Int16 => "int16",
            DType::Int32 => "int32",
            DType::Int64 => "int64",
            DType::UInt8 => "uint8",
            DType::UInt16 => "uint16",
            DType::UInt32 => "uint32",
            DType::UInt64 => "uint64",
            DType::Usize => "usize",
            DType::Float32 => "float32",
            DType::String => "string",
        }
    }

    /// Whether the type holds integers.
    pub fn is_integer(self) -> bool {
        !matches!(self, DType::Float32 | DType::String)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The values of a [`Tensor`], one variant per element type.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TensorData {
    /// `i8` ids.
    Int8(ArrayD<i8>),
    /// `i16` ids.
    Int16(ArrayD<i16>),
    /// `i32` ids.
    Int32(ArrayD<i32>),
    /// `i64` ids.
    Int64(ArrayD<i64>),
    /// `u8` ids.
    UInt8(ArrayD<u8>),
    /// `u16` ids.
    UInt16(ArrayD<u16>),
    /// `u32` ids.
    UInt32(ArrayD<u32>),
    /// `u64` ids.
    UInt64(ArrayD<u64>),
    /// `usize` ids.
    Usize(ArrayD<usize>),
    /// `f32` values.
    Float32(ArrayD<f32>),
    /// UTF-8 strings (raw text for the preprocessing layers).
    String(ArrayD<String>),
}

/// Applies the same expression to the array inside any variant, giving one result type.
macro_rules! with_array {
    ($data:expr, $array:ident => $body:expr) => {
        match $data {
            TensorData::Int8($array) => $body,
            TensorData::Int16($array) => $body,
            TensorData::Int32($array) => $body,
            TensorData::Int64($array) => $body,
            TensorData::UInt8($array) => $body,
            TensorData::UInt16($array) => $body,
            TensorData::UInt32($array) => $body,
            TensorData::UInt64($array) => $body,
            TensorData::Usize($array) => $body,
            TensorData::Float32($array) => $body,
            TensorData::String($array) => $body,
        }
    };
}

/// Applies the same expression to the array inside a numeric variant (ids or values); a
/// string tensor gives the error [`string_ids_error`] names for `$layer`.
macro_rules! with_ids {
    ($data:expr, $layer:expr, $array:ident => $body:expr) => {
        match $data {
            TensorData::Int8($array) => $body,
            TensorData::Int16($array) => $body,
            TensorData::Int32($array) => $body,
            TensorData::Int64($array) => $body,
            TensorData::UInt8($array) => $body,
            TensorData::UInt16($array) => $body,
            TensorData::UInt32($array) => $body,
            TensorData::UInt64($array) => $body,
            TensorData::Usize($array) => $body,
            TensorData::Float32($array) => $body,
            TensorData::String(_) => Err(string_ids_error($layer)),
        }
    };
}

/// The error of an id lookup given strings: which layer, what it takes, and where strings
/// become ids.
pub(crate) fn string_ids_error(layer: &str) -> Error {
    Error::IncompatibleDtype {
        context: format!("layer \"{layer}\""),
        expected: "integer ids (an integer tensor, or float32 whole numbers; turn strings into ids with a StringLookup, Hashing or TextVectorization layer first)".into(),
        got: DType::String.name().into(),
    }
}

/// Transforms the array inside any variant, keeping the variant.
macro_rules! map_array {
    ($data:expr, $array:ident => $body:expr) => {
        match $data {
            TensorData::Int8($array) => TensorData::Int8($body),
            TensorData::Int16($array) => TensorData::Int16($body),
            TensorData::Int32($array) => TensorData::Int32($body),
            TensorData::Int64($array) => TensorData::Int64($body),
            TensorData::UInt8($array) => TensorData::UInt8($body),
            TensorData::UInt16($array) => TensorData::UInt16($body),
            TensorData::UInt32($array) => TensorData::UInt32($body),
            TensorData::UInt64($array) => TensorData::UInt64($body),
            TensorData::Usize($array) => TensorData::Usize($body),
            TensorData::Float32($array) => TensorData::Float32($body),
            TensorData::String($array) => TensorData::String($body),
        }
    };
}

/// An n-dimensional input or output of a layer, with the Keras mask that travels with it.
///
/// Built with `From` from any owned `ndarray` array or `Vec` of a supported element type.
/// The mask (Keras' `_keras_mask`) is set by [`Layer::apply`](crate::layer::Layer::apply)
/// when the layer computes one, e.g. an `Embedding` with `mask_zero(true)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    data: TensorData,
    mask: Option<ArrayD<bool>>,
}

impl Tensor {
    /// A tensor without a mask.
    pub fn new(data: TensorData) -> Self {
        Tensor { data, mask: None }
    }

    /// `parts` joined along their batch axis (Keras' concatenation of predict batches): the
    /// same dtype and rank, the masks joined when every part has one. Parts whose other
    /// lengths differ (a `TextVectorization` without `output_sequence_length` pads each batch
    /// to its own longest text) are padded at the end of each axis to the longest: with 0
    /// (`""` for strings) and a `false` mask, what Keras' ragged result gives with
    /// `.to_tensor()`.
    ///
    /// # Errors
    /// [`Error::Model`] for parts of different dtypes or ranks (or none);
    /// [`Error::ShapeOverflow`] or [`Error::Allocation`] for a joined shape too large.
    pub(crate) fn concatenate_batches(parts: &[Tensor], context: &str) -> Result<Tensor> {
        let mismatch = || Error::Model {
            model: context.to_string(),
            message: "the batches' outputs have different dtypes or ranks and cannot be joined"
                .into(),
        };
        let first = parts.first().ok_or_else(mismatch)?;
        if parts
            .iter()
            .any(|t| t.dtype() != first.dtype() || t.ndim() != first.ndim())
        {
            return Err(mismatch());
        }
        macro_rules! join {
            ($($variant:ident),*) => {
                match &first.data {
                    $(TensorData::$variant(_) => TensorData::$variant(join_padded(
                        &parts
                            .iter()
                            .filter_map(|t| match &t.data {
                                TensorData::$variant(a) => Some(a.view()),
                                _ => None,
                            })
                            .collect::<Vec<_>>(),
                        context,
                    )?),)*
                }
            };
        }
        let data = join!(
            Int8, Int16, Int32, Int64, UInt8, UInt16, UInt32, UInt64, Usize, Float32, String
        );
        let masks: Option<Vec<_>> = parts
            .iter()
            .map(|t| t.mask.as_ref().map(|m| m.view()))
            .collect();
        let mask = match masks {
            Some(masks) => Some(join_padded(&masks, context)?),
            None => None,
        };
        Ok(Tensor { data, mask })
    }

    /// The values.
    pub fn data(&self) -> &TensorData {
        &self.data
    }

    /// The values, consuming the tensor.
    pub fn into_data(self) -> TensorData {
        self.data
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        match &self.data {
            TensorData::Int8(_) => DType::Int8,
            TensorData::Int16(_) => DType::Int16,
            TensorData::Int32(_) => DType::Int32,
            TensorData::Int64(_) => DType::Int64,
            TensorData::UInt8(_) => DType::UInt8,
            TensorData::UInt16(_) => DType::UInt16,
            TensorData::UInt32(_) => DType::UInt32,
            TensorData::UInt64(_) => DType::UInt64,
            TensorData::Usize(_) => DType::Usize,
            TensorData::Float32(_) => DType::Float32,
            TensorData::String(_) => DType::String,
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        with_array!(&self.data, a => a.shape())
    }

    /// The shape as a Keras shape (every dimension known).
    pub fn keras_shape(&self) -> Vec<Option<usize>> {
        self.shape().iter().map(|&d| Some(d)).collect()
    }

    /// The number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape().len()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        with_array!(&self.data, a => a.len())
    }

    /// Whether the tensor has no elements (an empty batch).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `f32` values, or `None` for integer ids and strings.
    pub fn as_float(&self) -> Option<&ArrayD<f32>> {
        match &self.data {
            TensorData::Float32(a) => Some(a),
            _ => None,
        }
    }

    /// The strings, or `None` for numbers.
    pub fn as_strings(&self) -> Option<&ArrayD<String>> {
        match &self.data {
            TensorData::String(a) => Some(a),
            _ => None,
        }
    }

    /// The `f32` values, consuming the tensor.
    ///
    /// # Errors
    /// [`Error::IncompatibleDtype`] when the tensor holds integers or strings.
    pub fn into_float(self) -> Result<ArrayD<f32>> {
        let dtype = self.dtype();
        match self.data {
            TensorData::Float32(a) => Ok(a),
            _ => Err(Error::IncompatibleDtype {
                context: "Tensor::into_float".into(),
                expected: "float32".into(),
                got: dtype.to_string(),
            }),
        }
    }

    /// The Keras mask carried by the tensor (`true` = keep the position).
    pub fn mask(&self) -> Option<&ArrayD<bool>> {
        self.mask.as_ref()
    }

    /// The same tensor with `mask` attached (or removed with `None`).
    ///
    /// # Errors
    /// [`Error::IncompatibleShape`] when the mask's shape is not a prefix of the tensor's
    /// shape (a mask covers the ids, or the positions of an embedded sequence).
    pub fn with_mask(mut self, mask: Option<ArrayD<bool>>) -> Result<Self> {
        if let Some(m) = &mask
            && !self.shape().starts_with(m.shape())
        {
            return Err(Error::IncompatibleShape {
                context: "Tensor::with_mask".into(),
                expected: self.keras_shape(),
                got: m.shape().iter().map(|&d| Some(d)).collect(),
            });
        }
        self.mask = mask;
        Ok(self)
    }

    /// The values as `f32` (integer ids are converted; exact below 2^24). Strings are not
    /// numbers: each becomes NaN (so a string that reaches arithmetic poisons it visibly
    /// rather than passing for a number; layers check the dtype before they get here).
    pub fn to_f32(&self) -> ArrayD<f32> {
        match &self.data {
            TensorData::Int8(a) => a.mapv(f32::from),
            TensorData::Int16(a) => a.mapv(f32::from),
            TensorData::Int32(a) => a.mapv(|v| v as f32),
            TensorData::Int64(a) => a.mapv(|v| v as f32),
            TensorData::UInt8(a) => a.mapv(f32::from),
            TensorData::UInt16(a) => a.mapv(f32::from),
            TensorData::UInt32(a) => a.mapv(|v| v as f32),
            TensorData::UInt64(a) => a.mapv(|v| v as f32),
            TensorData::Usize(a) => a.mapv(|v| v as f32),
            TensorData::Float32(a) => a.clone(),
            TensorData::String(a) => a.map(|_| f32::NAN),
        }
    }

    /// The values as `f32`, consuming the tensor: `f32` values are moved, integer ids
    /// converted (exact below 2^24).
    pub fn into_f32(self) -> ArrayD<f32> {
        match self.data {
            TensorData::Float32(a) => a,
            _ => self.to_f32(),
        }
    }

    /// The samples at `indices` along axis 0, in that order, with their mask.
    pub(crate) fn select_batch(&self, indices: &[usize]) -> Tensor {
        Tensor {
            data: map_array!(&self.data, a => a.select(Axis(0), indices)),
            mask: self.mask.as_ref().map(|m| m.select(Axis(0), indices)),
        }
    }

    /// Rows `start..end` of axis 0 (a batch), with the matching part of the mask.
    pub(crate) fn slice_batch(&self, start: usize, end: usize) -> Tensor {
        let slice = Slice::from(start..end);
        Tensor {
            data: map_array!(&self.data, a => a.slice_axis(Axis(0), slice).to_owned()),
            mask: self
                .mask
                .as_ref()
                .map(|m| m.slice_axis(Axis(0), slice).to_owned()),
        }
    }

    /// Adds a trailing axis of length 1: `(n,)` -> `(n, 1)`.
    pub(crate) fn expand_last_axis(self) -> Tensor {
        let axis = Axis(self.ndim());
        Tensor {
            data: map_array!(self.data, a => a.insert_axis(axis)),
            mask: self.mask,
        }
    }

    /// Removes a trailing axis of length 1: `(n, 1)` -> `(n,)`. The caller checks the length.
    pub(crate) fn squeeze_last_axis(self) -> Tensor {
        let axis = Axis(self.ndim().saturating_sub(1));
        Tensor {
            data: map_array!(self.data, a => a.index_axis_move(axis, 0)),
            mask: self.mask.map(|m| {
                if m.ndim() > axis.index() {
                    m.index_axis_move(axis, 0)
                } else {
                    m
                }
            }),
        }
    }

    /// `ids != 0` for every element (Keras' `mask_zero`).
    pub(crate) fn nonzero_mask(&self) -> ArrayD<bool> {
        match &self.data {
            TensorData::Int8(a) => a.mapv(|v| v != 0),
            TensorData::Int16(a) => a.mapv(|v| v != 0),
            TensorData::Int32(a) => a.mapv(|v| v != 0),
            TensorData::Int64(a) => a.mapv(|v| v != 0),
            TensorData::UInt8(a) => a.mapv(|v| v != 0),
            TensorData::UInt16(a) => a.mapv(|v| v != 0),
            TensorData::UInt32(a) => a.mapv(|v| v != 0),
            TensorData::UInt64(a) => a.mapv(|v| v != 0),
            TensorData::Usize(a) => a.mapv(|v| v != 0),
            TensorData::Float32(a) => a.mapv(|v| v != 0.0),
            // Keras' mask for text: the empty string is padding.
            TensorData::String(a) => a.map(|v| !v.is_empty()),
        }
    }

    /// Checks every id against `0..input_dim` and returns them as row numbers, in logical
    /// (row-major) order.
    ///
    /// All ids are validated before anything is looked up, so a bad id anywhere means no
    /// output at all (no partial result, no zero row, no wrap-around).
    ///
    /// # Errors
    /// [`Error::IndexOutOfRange`] for an id `< 0` or `>= input_dim`, and
    /// [`Error::NonIntegerIndex`] for a float id that is not a whole number; both name
    /// `layer`, the value and its position. [`Error::IncompatibleDtype`] naming `layer` for
    /// strings.
    pub fn row_indices(&self, input_dim: usize, layer: &str) -> Result<Vec<usize>> {
        with_ids!(&self.data, layer, a => rows_of(a, input_dim, layer))
    }

    /// Checks every id against `0..input_dim` without storing anything.
    ///
    /// # Errors
    /// Those of [`Tensor::row_indices`].
    pub fn check_row_indices(&self, input_dim: usize, layer: &str) -> Result<()> {
        with_ids!(&self.data, layer, a => check_rows(a, input_dim, layer))
    }

    /// Copies the table row of every id into `out` (`len() * dim` floats, row-major), after
    /// checking all ids: on error `out` is untouched. Large lookups are split across threads
    /// (the `rayon` feature).
    pub(crate) fn gather_rows(
        &self,
        table: &[f32],
        dim: usize,
        out: &mut [f32],
        layer: &str,
    ) -> Result<()> {
        let input_dim = table.len() / dim.max(1);
        with_ids!(&self.data, layer, a => {
            let ids = a.as_standard_layout();
            let flat = ids.as_slice().unwrap_or_default();
            // One branch-free pass that vectorises (a fraction of the copy's time); the exact
            // error, with its position, only when it finds a bad id.
            if !all_rows(flat, input_dim) {
                check_rows(a, input_dim, layer)?;
            }
            gather_checked(flat, table, dim, out);
            Ok(())
        })
    }

    /// The table row of every id, in a fresh buffer of `len() * dim` floats (row-major) that
    /// is written once, in one pass over the ids that checks each one before copying its row.
    /// Large lookups are split across threads (the `rayon` feature); outputs of 32 MB and more
    /// get huge-page advice.
    ///
    /// # Errors
    /// Those of [`Tensor::row_indices`] (for the first bad id in row-major order);
    /// [`Error::Allocation`] naming `context` when the output does not fit in memory.
    pub(crate) fn gather_rows_new(
        &self,
        table: &[f32],
        dim: usize,
        layer: &str,
        context: impl Fn() -> String,
    ) -> Result<Vec<f32>> {
        with_ids!(&self.data, layer, a => gather_new(a, table, dim, layer, context))
    }

    /// [`Tensor::gather_rows`] from a table stored in another type (quantized or half
    /// precision): each gathered row is decoded to `f32` into `out`; the rest of the table is
    /// never read. All ids are checked first: on error `out` is untouched.
    pub(crate) fn gather_decoded_rows(
        &self,
        table: &QuantizedRows<'_>,
        out: &mut [f32],
        layer: &str,
    ) -> Result<()> {
        let input_dim = table.rows();
        with_ids!(&self.data, layer, a => {
            let ids = a.as_standard_layout();
            let flat = ids.as_slice().unwrap_or_default();
            if !all_rows(flat, input_dim) {
                check_rows(a, input_dim, layer)?;
            }
            decode_checked(flat, table, out);
            Ok(())
        })
    }

    /// [`Tensor::gather_rows_new`] from a table stored in another type: a fresh buffer of
    /// `len() * dim` floats holding each gathered row decoded to `f32`.
    ///
    /// # Errors
    /// Those of [`Tensor::row_indices`]; [`Error::Allocation`] naming `context`.
    pub(crate) fn gather_decoded_rows_new(
        &self,
        table: &QuantizedRows<'_>,
        layer: &str,
        context: impl Fn() -> String,
    ) -> Result<Vec<f32>> {
        let len = checked_size(&[self.len(), table.dim()], &context)?;
        // Zeroed pages come free from the allocator (`calloc`); the ids are checked before
        // anything is decoded into them.
        let mut out = crate::storage::try_zeroed(len, context)?;
        self.gather_decoded_rows(table, &mut out, layer)?;
        Ok(out)
    }
}

/// An element type that can be used as an embedding id.
trait IndexValue: Copy + Send + Sync {
    /// The row this id selects, or the error that describes it (position filled in later).
    fn to_row(self, input_dim: usize) -> std::result::Result<usize, BadIndex>;

    /// Whether the id selects a row of a table of `input_dim` rows: exactly `to_row(..).is_ok()`,
    /// without branches, so that a check of many ids vectorises.
    fn is_row(self, input_dim: usize) -> bool;

    /// The row of an id that [`IndexValue::is_row`] accepted (anything for another id).
    fn row(self) -> usize;
}

enum BadIndex {
    OutOfRange(i128),
    NotWhole(f32),
}

macro_rules! integer_index_value {
    ($($t:ty => $wide:ty),*) => {$(
        impl IndexValue for $t {
            #[inline]
            fn to_row(self, input_dim: usize) -> std::result::Result<usize, BadIndex> {
                match usize::try_from(self) {
                    Ok(row) if row < input_dim => Ok(row),
                    _ => Err(BadIndex::OutOfRange(self as i128)),
                }
            }

            #[inline]
            fn is_row(self, input_dim: usize) -> bool {
                // Signed ids are widened with their sign, so a negative id becomes a number
                // of at least 2^63, above any `input_dim` (tables are at most isize::MAX).
                (self as $wide as u64) < input_dim as u64
            }

            #[inline]
            fn row(self) -> usize {
                self as usize
            }
        }
    )*};
}
// `as i128` is exact for all of them, `u64` and `usize` above `i64::MAX` included, so an
// error reports the id as given.
integer_index_value!(
    i8 => i64, i16 => i64, i32 => i64, i64 => i64,
    u8 => u64, u16 => u64, u32 => u64, u64 => u64, usize => u64
);

impl IndexValue for f32 {
    #[inline]
    fn to_row(self, input_dim: usize) -> std::result::Result<usize, BadIndex> {
        if !self.is_finite() || self.fract() != 0.0 {
            return Err(BadIndex::NotWhole(self));
        }
        // A whole f32 is exactly representable as i128 (|v| < 2^128).
        let whole = self as i128;
        match usize::try_from(whole) {
            Ok(row) if row < input_dim => Ok(row),
            _ => Err(BadIndex::OutOfRange(whole)),
        }
    }

    #[inline]
    fn is_row(self, input_dim: usize) -> bool {
        self.to_row(input_dim).is_ok()
    }

    #[inline]
    fn row(self) -> usize {
        self as usize
    }
}

fn rows_of<T: IndexValue>(ids: &ArrayD<T>, input_dim: usize, layer: &str) -> Result<Vec<usize>> {
    let mut rows = Vec::new();
    rows.try_reserve_exact(ids.len())
        .map_err(|_| Error::Allocation {
            context: format!("layer \"{layer}\": row numbers for {} ids", ids.len()),
            bytes: ids.len().saturating_mul(std::mem::size_of::<usize>()),
        })?;
    visit_rows(ids, input_dim, layer, |row| rows.push(row))?;
    Ok(rows)
}

/// Checks every id: the fast pass of [`all_rows`], and the exact error of [`visit_rows`]
/// when it finds a bad one.
fn check_rows<T: IndexValue>(ids: &ArrayD<T>, input_dim: usize, layer: &str) -> Result<()> {
    if let Some(flat) = ids.as_slice()
        && all_rows(flat, input_dim)
    {
        return Ok(());
    }
    visit_rows(ids, input_dim, layer, |_| {})
}

/// Whether every id selects a row: branch-free within blocks of ids, so it vectorises
/// (a few hundred microseconds for 262,144 ids), stopping at the first block with a bad id.
fn all_rows<T: IndexValue>(ids: &[T], input_dim: usize) -> bool {
    ids.chunks(1024).all(|block| {
        block
            .iter()
            .fold(true, |valid, &id| valid & id.is_row(input_dim))
    })
}

/// Calls `visit` with the row of every id, in row-major order, stopping at the first id
/// outside `0..input_dim` with the error that names it and its position.
fn visit_rows<T: IndexValue>(
    ids: &ArrayD<T>,
    input_dim: usize,
    layer: &str,
    mut visit: impl FnMut(usize),
) -> Result<()> {
    for (flat, &id) in ids.iter().enumerate() {
        match id.to_row(input_dim) {
            Ok(row) => visit(row),
            Err(bad) => {
                let position = unravel(flat, ids.shape());
                let layer = layer.to_string();
                return Err(match bad {
                    BadIndex::OutOfRange(index) => Error::IndexOutOfRange {
                        layer,
                        index,
                        position,
                        input_dim,
                    },
                    BadIndex::NotWhole(value) => Error::NonIntegerIndex {
                        layer,
                        value,
                        position,
                    },
                });
            }
        }
    }
    Ok(())
}

/// Output elements from which a gather is split across threads (with the `rayon` feature):
/// 512 KB of output, about 50 us of copying, against the few microseconds it costs to wake
/// a second thread.
#[cfg(feature = "rayon")]
const PARALLEL_GATHER_ELEMENTS: usize = 1 << 17;

/// Output elements per task of a parallel gather (256 KB): enough tasks for the threads to
/// share the work evenly, few enough that scheduling them costs nothing measurable.
const GATHER_TASK_ELEMENTS: usize = 1 << 16;

/// How many ids ahead a gather prefetches its rows.
const GATHER_PREFETCH_AHEAD: usize = 4;

/// Whether a gather of `out_len` values is worth splitting across threads.
fn gather_in_parallel(out_len: usize) -> bool {
    #[cfg(feature = "rayon")]
    return out_len >= PARALLEL_GATHER_ELEMENTS && rayon::current_num_threads() > 1;
    #[cfg(not(feature = "rayon"))]
    {
        let _ = out_len;
        false
    }
}

/// The ids per task of a gather of rows of `dim` values.
fn ids_per_task(dim: usize) -> usize {
    (GATHER_TASK_ELEMENTS / dim.max(1)).max(1)
}

/// Copies row `id` of `table` (rows of `dim` floats) into each `dim`-chunk of `out`. The ids
/// must have been checked: an unchecked id cannot panic, its chunk of `out` is left as it was.
fn gather_checked<T: IndexValue>(ids: &[T], table: &[f32], dim: usize, out: &mut [f32]) {
    if dim == 0 {
        return;
    }
    let copy = |ids: &[T], out: &mut [f32]| {
        for (k, (target, &id)) in out.chunks_exact_mut(dim).zip(ids).enumerate() {
            // Rows are scattered over the table: ask for a later one's lines early.
            if let Some(ahead) = ids.get(k + GATHER_PREFETCH_AHEAD)
                && let Some(row) = table_row(table, ahead.row(), dim)
            {
                crate::kernels::prefetch(row);
            }
            if let Some(source) = table_row(table, id.row(), dim) {
                target.copy_from_slice(source);
            }
        }
    };
    #[cfg(feature = "rayon")]
    if gather_in_parallel(out.len()) {
        use rayon::prelude::*;
        let per_task = ids_per_task(dim);
        out.par_chunks_mut(per_task * dim)
            .zip(ids.par_chunks(per_task))
            .for_each(|(out, ids)| copy(ids, out));
        return;
    }
    copy(ids, out);
}

/// Decodes row `id` of `table` into each `dim`-chunk of `out`, for checked ids (an
/// unchecked id cannot panic: its chunk is left as it was). Split across threads as
/// [`gather_checked`].
fn decode_checked<T: IndexValue>(ids: &[T], table: &QuantizedRows<'_>, out: &mut [f32]) {
    let dim = table.dim();
    if dim == 0 {
        return;
    }
    let decode = |ids: &[T], out: &mut [f32]| {
        for (k, (target, &id)) in out.chunks_exact_mut(dim).zip(ids).enumerate() {
            // As in `gather_checked`: a later row's codes are on their way while this one is
            // decoded.
            if let Some(ahead) = ids.get(k + GATHER_PREFETCH_AHEAD) {
                table.prefetch_row(ahead.row());
            }
            table.write_row(id.row(), target);
        }
    };
    #[cfg(feature = "rayon")]
    if gather_in_parallel(out.len()) {
        use rayon::prelude::*;
        let per_task = ids_per_task(dim);
        out.par_chunks_mut(per_task * dim)
            .zip(ids.par_chunks(per_task))
            .for_each(|(out, ids)| decode(ids, out));
        return;
    }
    decode(ids, out);
}

/// Row `row` of a table of rows of `dim` values, or `None` past its end.
#[inline]
fn table_row(table: &[f32], row: usize, dim: usize) -> Option<&[f32]> {
    let start = row.checked_mul(dim)?;
    table.get(start..start.checked_add(dim)?)
}

/// The allocating gather: one pass over the ids that checks each one and copies its row into
/// a buffer written once (see [`Tensor::gather_rows_new`]).
fn gather_new<T: IndexValue>(
    ids: &ArrayD<T>,
    table: &[f32],
    dim: usize,
    layer: &str,
    context: impl Fn() -> String,
) -> Result<Vec<f32>> {
    let input_dim = table.len() / dim.max(1);
    let standard = ids.as_standard_layout();
    let flat = standard.as_slice().unwrap_or_default();
    let len = checked_size(&[flat.len(), dim], &context)?;
    if len == 0 {
        // No row to copy, but the ids (if any) are still checked.
        check_rows(ids, input_dim, layer)?;
        return Ok(Vec::new());
    }
    let per_task = ids_per_task(dim);
    let filled = try_filled_in_parts(
        len,
        per_task * dim,
        gather_in_parallel(len),
        &context,
        |task, part| {
            let start = task * per_task;
            let ids = flat
                .get(start..flat.len().min(start + per_task))
                .unwrap_or_default();
            ids.iter().enumerate().all(|(k, &id)| {
                if let Some(ahead) = ids.get(k + GATHER_PREFETCH_AHEAD)
                    && let Ok(row) = ahead.to_row(input_dim)
                    && let Some(row) = table_row(table, row, dim)
                {
                    crate::kernels::prefetch(row);
                }
                id.to_row(input_dim)
                    .ok()
                    .and_then(|row| table_row(table, row, dim))
                    .is_some_and(|source| part.push(source))
            })
        },
    )?;
    match filled {
        Some(values) => Ok(values),
        // A part stopped at a bad id: report the first one in row-major order.
        None => Err(match visit_rows(ids, input_dim, layer, |_| {}) {
            Err(bad_id) => bad_id,
            Ok(()) => Error::invalid_argument(
                format!("layer \"{layer}\""),
                "embeddings table",
                format!("{} values", table.len()),
                format!("{input_dim} rows of {dim} values"),
            ),
        }),
    }
}

/// The multi-dimensional position of the `flat`-th element in row-major order.
pub(crate) fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut position = vec![0; shape.len()];
    for (axis, &len) in shape.iter().enumerate().rev() {
        if len > 0 {
            position[axis] = flat % len;
            flat /= len;
        }
    }
    position
}

/// The product of `dims`, or [`Error::ShapeOverflow`].
pub(crate) fn checked_size(dims: &[usize], context: impl FnOnce() -> String) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= isize::MAX as usize)
        .ok_or_else(|| Error::ShapeOverflow {
            context: context(),
            shape: dims.to_vec(),
        })
}

macro_rules! tensor_from {
    ($($t:ty => $variant:ident),*) => {$(
        impl<D: Dimension> From<Array<$t, D>> for Tensor {
            fn from(array: Array<$t, D>) -> Self {
                Tensor::new(TensorData::$variant(array.into_dyn()))
            }
        }

        impl From<Vec<$t>> for Tensor {
            /// A rank-1 tensor, like a Python list given to Keras.
            fn from(values: Vec<$t>) -> Self {
                Tensor::new(TensorData::$variant(Array::from(values).into_dyn()))
            }
        }

        impl From<&[$t]> for Tensor {
            /// A rank-1 tensor holding a copy of the slice.
            fn from(values: &[$t]) -> Self {
                Tensor::from(values.to_vec())
            }
        }

        impl<D: Dimension> From<ndarray::ArrayView<'_, $t, D>> for Tensor {
            /// A tensor holding a copy of the view (`predict(x.view())`).
            fn from(view: ndarray::ArrayView<'_, $t, D>) -> Self {
                Tensor::from(view.to_owned())
            }
        }

        impl<D: Dimension> From<&Array<$t, D>> for Tensor {
            /// A tensor holding a copy of the array (`predict(&x)`).
            fn from(array: &Array<$t, D>) -> Self {
                Tensor::from(array.to_owned())
            }
        }

        impl<const N: usize> From<Vec<[$t; N]>> for Tensor {
            /// A rank-2 tensor of `rows.len()` rows of `N` (`vec![[1, 2], [3, 4]]`).
            fn from(rows: Vec<[$t; N]>) -> Self {
                let count = rows.len();
                let flat: Vec<$t> = rows.into_iter().flatten().collect();
                match Array::from_shape_vec((count, N), flat) {
                    Ok(array) => Tensor::from(array),
                    // `count * N` values in `count` rows of `N`: the shape always fits.
                    Err(_) => Tensor::from(Array::<$t, _>::from_elem((0, N), <$t>::default())),
                }
            }
        }

        impl<const N: usize, const M: usize> From<[[$t; N]; M]> for Tensor {
            /// A rank-2 tensor of `M` rows of `N` (`[[1, 2], [3, 4]]`).
            fn from(rows: [[$t; N]; M]) -> Self {
                Tensor::from(rows.to_vec())
            }
        }

        impl TryFrom<Vec<Vec<$t>>> for Tensor {
            type Error = Error;

            /// A rank-2 tensor from a list of rows (a Python list of lists given to Keras):
            /// `Tensor::try_from(rows)?`.
            ///
            /// # Errors
            /// [`Error::InvalidArgument`] naming the first row whose length differs from the
            /// first row's (NumPy refuses such a list too); [`Error::Allocation`].
            fn try_from(rows: Vec<Vec<$t>>) -> Result<Self> {
                let width = rows.first().map_or(0, Vec::len);
                if let Some((index, row)) = rows.iter().enumerate().find(|(_, r)| r.len() != width) {
                    return Err(Error::invalid_argument(
                        "Tensor::try_from(Vec<Vec<_>>)",
                        format!("row {index}"),
                        format!("{} values", row.len()),
                        format!("{width} values, as row 0 has: every row the same length (pad the ragged rows first)"),
                    ));
                }
                let total = rows.len().saturating_mul(width);
                let mut flat: Vec<$t> = Vec::new();
                flat.try_reserve_exact(total).map_err(|_| Error::Allocation {
                    context: "Tensor::try_from(Vec<Vec<_>>)".into(),
                    bytes: total.saturating_mul(std::mem::size_of::<$t>()),
                })?;
                let count = rows.len();
                for row in rows {
                    flat.extend(row);
                }
                Array::from_shape_vec((count, width), flat)
                    .map(Tensor::from)
                    .map_err(|_| Error::ShapeOverflow {
                        context: "Tensor::try_from(Vec<Vec<_>>)".into(),
                        shape: vec![count, width],
                    })
            }
        }
    )*};
}
tensor_from!(
    i8 => Int8, i16 => Int16, i32 => Int32, i64 => Int64,
    u8 => UInt8, u16 => UInt16, u32 => UInt32, u64 => UInt64,
    usize => Usize, f32 => Float32
);

impl<D: Dimension> From<Array<f64, D>> for Tensor {
    /// `float32` values rounded from `f64`, as Keras casts a float64 array to its float32
    /// input. Whole numbers stay exact up to 2^24 only: give ids of larger tables as an
    /// integer array, which ndkeras keeps exact.
    fn from(array: Array<f64, D>) -> Self {
        Tensor::from(array.mapv(|v| v as f32))
    }
}

impl From<Vec<f64>> for Tensor {
    /// A rank-1 `float32` tensor rounded from `f64`.
    fn from(values: Vec<f64>) -> Self {
        Tensor::from(Array::from(values))
    }
}

impl From<TensorData> for Tensor {
    fn from(data: TensorData) -> Self {
        Tensor::new(data)
    }
}

impl<D: Dimension> From<Array<String, D>> for Tensor {
    /// A tensor of strings (Keras' `tf.string`).
    fn from(array: Array<String, D>) -> Self {
        Tensor::new(TensorData::String(array.into_dyn()))
    }
}

impl<D: Dimension> From<Array<&str, D>> for Tensor {
    /// A tensor holding a copy of each string.
    fn from(array: Array<&str, D>) -> Self {
        Tensor::from(array.map(|s| (*s).to_string()))
    }
}

impl From<Vec<String>> for Tensor {
    /// A rank-1 tensor of strings, like a Python list of texts given to Keras.
    fn from(values: Vec<String>) -> Self {
        Tensor::from(Array::from(values))
    }
}

impl From<Vec<&str>> for Tensor {
    /// A rank-1 tensor of strings: `Tensor::from(vec!["a b", "c"])`.
    fn from(values: Vec<&str>) -> Self {
        Tensor::from(values.as_slice())
    }
}

impl From<&[&str]> for Tensor {
    /// A rank-1 tensor holding a copy of each string.
    fn from(values: &[&str]) -> Self {
        Tensor::from(
            values
                .iter()
                .map(|s| (*s).to_string())
                .collect::<Vec<String>>(),
        )
    }
}

impl From<&[String]> for Tensor {
    /// A rank-1 tensor holding a copy of each string.
    fn from(values: &[String]) -> Self {
        Tensor::from(values.to_vec())
    }
}

impl<const N: usize> From<Vec<[&str; N]>> for Tensor {
    /// A rank-2 tensor of strings, `rows.len()` rows of `N` (`vec![["a", "b"], ["c", ""]]`).
    fn from(rows: Vec<[&str; N]>) -> Self {
        let count = rows.len();
        let flat: Vec<String> = rows
            .iter()
            .flat_map(|row| row.iter().map(|s| (*s).to_string()))
            .collect();
        match Array::from_shape_vec((count, N), flat) {
            Ok(array) => Tensor::from(array),
            // `count * N` strings in `count` rows of `N`: the shape always fits.
            Err(_) => Tensor::from(Array::<String, _>::from_elem((0, N), String::new())),
        }
    }
}

/// Arrays of one rank stacked along axis 0, each at the start of the other axes, which are
/// as long as the longest array's; the rest is `T::default()`. Allocated fallibly.
fn join_padded<T: Clone + Default>(
    arrays: &[ndarray::ArrayViewD<'_, T>],
    context: &str,
) -> Result<ArrayD<T>> {
    let mut shape = arrays
        .first()
        .map(|a| a.shape().to_vec())
        .unwrap_or_default();
    for array in arrays.iter().skip(1) {
        for (axis, (n, &m)) in shape.iter_mut().zip(array.shape()).enumerate() {
            *n = if axis == 0 {
                n.saturating_add(m)
            } else {
                (*n).max(m)
            };
        }
    }
    let shape = &shape[..];
    if arrays.iter().any(|a| a.ndim() != shape.len()) {
        return Err(Error::Model {
            model: context.to_string(),
            message: "the batches' outputs (or masks) have different ranks and cannot be joined"
                .into(),
        });
    }
    let elements = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| isize::try_from(n).is_ok())
        .ok_or_else(|| Error::ShapeOverflow {
            context: format!("{context}: predict output"),
            shape: shape.to_vec(),
        })?;
    let mut values: Vec<T> = Vec::new();
    values
        .try_reserve_exact(elements)
        .map_err(|_| Error::Allocation {
            context: format!("{context}: predict output of shape {shape:?}"),
            bytes: elements.saturating_mul(std::mem::size_of::<T>()),
        })?;
    values.resize(elements, T::default());
    let mut joined =
        ArrayD::from_shape_vec(ndarray::IxDyn(shape), values).map_err(|e| Error::Model {
            model: context.to_string(),
            message: format!("predict output of shape {shape:?}: {e}"),
        })?;
    let mut row = 0;
    for array in arrays {
        let rows = array.len_of(Axis(0));
        let mut target = joined.slice_each_axis_mut(|axis| {
            let index = axis.axis.index();
            if index == 0 {
                Slice::from(row..row + rows)
            } else {
                Slice::from(0..array.len_of(axis.axis))
            }
        });
        target.assign(array);
        row += rows;
    }
    Ok(joined)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn row_indices_accept_every_integer_type() {
        let expected = vec![2, 0, 1];
        assert_eq!(
            Tensor::from(vec![2i32, 0, 1]).row_indices(3, "e").ok(),
            Some(expected.clone())
        );
        assert_eq!(
            Tensor::from(vec![2i64, 0, 1]).row_indices(3, "e").ok(),
            Some(expected.clone())
        );
        assert_eq!(
            Tensor::from(vec![2u8, 0, 1]).row_indices(3, "e").ok(),
            Some(expected.clone())
        );
        assert_eq!(
            Tensor::from(vec![2u32, 0, 1]).row_indices(3, "e").ok(),
            Some(expected.clone())
        );
        assert_eq!(
            Tensor::from(vec![2usize, 0, 1]).row_indices(3, "e").ok(),
            Some(expected.clone())
        );
        assert_eq!(
            Tensor::from(vec![2.0f32, 0.0, 1.0])
                .row_indices(3, "e")
                .ok(),
            Some(expected)
        );
    }

    #[test]
    fn small_and_wide_integer_types_are_ids_too() {
        let expected = Some(vec![2, 0, 1]);
        assert_eq!(
            Tensor::from(vec![2i8, 0, 1]).row_indices(3, "e").ok(),
            expected
        );
        assert_eq!(
            Tensor::from(vec![2i16, 0, 1]).row_indices(3, "e").ok(),
            expected
        );
        assert_eq!(
            Tensor::from(vec![2u16, 0, 1]).row_indices(3, "e").ok(),
            expected
        );
        assert_eq!(
            Tensor::from(vec![2u64, 0, 1]).row_indices(3, "e").ok(),
            expected
        );
        assert_eq!(Tensor::from(vec![1i8]).dtype(), DType::Int8);
        assert_eq!(DType::UInt16.name(), "uint16");
        assert_eq!(
            Tensor::from(vec![-3i16, 0]).nonzero_mask(),
            array![false, true].into_dyn().mapv(|k| !k)
        );
        let err = Tensor::from(vec![0i8, i8::MIN])
            .row_indices(3, "e")
            .unwrap_err();
        assert!(
            matches!(err, Error::IndexOutOfRange { index: -128, ref position, .. } if position == &vec![1])
        );
        let err = Tensor::from(vec![u64::MAX])
            .row_indices(3, "e")
            .unwrap_err();
        assert!(
            matches!(err, Error::IndexOutOfRange { index, .. } if index == i128::from(u64::MAX))
        );
        assert_eq!(
            Tensor::from(vec![u16::MAX]).to_f32(),
            array![65535.0f32].into_dyn()
        );
    }

    #[test]
    fn out_of_range_reports_the_position_of_the_first_bad_id() {
        let ids = Tensor::from(array![[0i64, 1], [2, 7]]);
        match ids.row_indices(3, "emb") {
            Err(Error::IndexOutOfRange {
                index,
                position,
                input_dim,
                layer,
            }) => {
                assert_eq!((index, position, input_dim), (7, vec![1, 1], 3));
                assert_eq!(layer, "emb");
            }
            other => panic!("expected IndexOutOfRange, got {other:?}"),
        }
    }

    #[test]
    fn negative_ids_are_out_of_range_not_wrapped() {
        let err = Tensor::from(vec![0i32, -1])
            .row_indices(3, "e")
            .unwrap_err();
        assert!(matches!(err, Error::IndexOutOfRange { index: -1, .. }));
        let err = Tensor::from(vec![i64::MIN])
            .row_indices(3, "e")
            .unwrap_err();
        assert!(matches!(err, Error::IndexOutOfRange { index, .. } if index == i64::MIN as i128));
    }

    #[test]
    fn float_ids_must_be_whole_and_finite() {
        for bad in [1.5f32, -0.7, f32::NAN, f32::INFINITY] {
            let err = Tensor::from(vec![0.0f32, bad])
                .row_indices(3, "e")
                .unwrap_err();
            assert!(
                matches!(err, Error::NonIntegerIndex { ref position, .. } if position == &vec![1]),
                "{bad}: {err:?}"
            );
        }
        let err = Tensor::from(vec![-1.0f32]).row_indices(3, "e").unwrap_err();
        assert!(matches!(err, Error::IndexOutOfRange { index: -1, .. }));
        let err = Tensor::from(vec![1e30f32]).row_indices(3, "e").unwrap_err();
        assert!(matches!(err, Error::IndexOutOfRange { .. }));
    }

    #[test]
    fn views_references_and_f64_arrays_convert() {
        let ids = array![[1i64, 2], [3, 0]];
        assert_eq!(Tensor::from(ids.view()), Tensor::from(ids.clone()));
        assert_eq!(Tensor::from(&ids), Tensor::from(ids.clone()));
        let column = ids.column(1);
        assert_eq!(Tensor::from(column).shape(), &[2]);
        let values = Tensor::from(array![[0.5f64, 3.0]]);
        assert_eq!(values.dtype(), DType::Float32);
        assert_eq!(
            values.as_float().unwrap(),
            &array![[0.5f32, 3.0]].into_dyn()
        );
        assert_eq!(Tensor::from(vec![2.0f64]).dtype(), DType::Float32);
    }

    #[test]
    fn unravel_is_row_major() {
        assert_eq!(unravel(5, &[2, 3]), vec![1, 2]);
        assert_eq!(unravel(0, &[]), Vec::<usize>::new());
    }

    #[test]
    fn expand_and_squeeze_the_last_axis() {
        let t = Tensor::from(vec![1i64, 2, 3]).expand_last_axis();
        assert_eq!(t.shape(), &[3, 1]);
        assert_eq!(t.squeeze_last_axis().shape(), &[3]);
    }

    #[test]
    fn large_tables_are_aligned_zeroed_and_usable() {
        use crate::storage::{aligned_zeros, is_aligned};
        // 32 MB: large enough for the huge-page advice.
        let mut table = aligned_zeros(1 << 17, 64, String::new).unwrap();
        assert!(is_aligned(&table));
        assert!(table.iter().all(|&v| v == 0.0));
        table[[70_000, 3]] = 2.5;
        let ids = Tensor::from(vec![70_000usize, 0]);
        let mut out = vec![0.0f32; 128];
        ids.gather_rows(table.as_slice().unwrap(), 64, &mut out, "t")
            .unwrap();
        assert_eq!((out[3], out[64 + 3]), (2.5, 0.0));
        let small = aligned_zeros(3, 5, String::new).unwrap();
        assert!(is_aligned(&small) && small.dim() == (3, 5));
    }

    #[test]
    fn strings_batch_and_mask_but_are_not_ids() {
        let texts = Tensor::from(vec!["a b", "", "東京"]);
        assert_eq!(texts.dtype(), DType::String);
        assert!(!texts.dtype().is_integer());
        assert_eq!(DType::from_name("string"), Some(DType::String));
        let picked = texts.select_batch(&[2, 0]);
        assert_eq!(
            picked.as_strings().unwrap(),
            &array!["東京".to_string(), "a b".to_string()].into_dyn()
        );
        assert_eq!(texts.slice_batch(1, 2).shape(), &[1]);
        let column = texts.clone().expand_last_axis();
        assert_eq!(column.shape(), &[3, 1]);
        assert_eq!(column.squeeze_last_axis(), texts);
        assert_eq!(texts.nonzero_mask(), array![true, false, true].into_dyn());
        assert!(texts.to_f32().iter().all(|v| v.is_nan()));
        assert!(texts.as_float().is_none());
        for err in [
            texts.row_indices(3, "emb").unwrap_err(),
            texts.check_row_indices(3, "emb").unwrap_err(),
            texts
                .gather_rows_new(&[0.0; 6], 2, "emb", String::new)
                .unwrap_err(),
        ] {
            assert!(matches!(err, Error::IncompatibleDtype { .. }), "{err:?}");
            let message = err.to_string();
            assert!(
                message.contains("\"emb\"") && message.contains("integer ids"),
                "{message}"
            );
        }
        let rows = Tensor::from(vec![["a", "b"], ["c", ""]]);
        assert_eq!(rows.shape(), &[2, 2]);
        assert_eq!(Tensor::from(vec!["x".to_string()]).shape(), &[1]);
    }

    #[test]
    fn checked_size_detects_overflow() {
        assert_eq!(checked_size(&[2, 3, 4], String::new).ok(), Some(24));
        assert!(matches!(
            checked_size(&[usize::MAX, 2], || "x".into()),
            Err(Error::ShapeOverflow { .. })
        ));
    }

    #[test]
    fn a_mask_must_cover_a_prefix_of_the_shape() {
        let t = Tensor::from(array![[1i64, 0]]);
        assert!(
            t.clone()
                .with_mask(Some(array![[true, false]].into_dyn()))
                .is_ok()
        );
        assert!(
            t.with_mask(Some(array![true, false, true].into_dyn()))
                .is_err()
        );
    }
}
