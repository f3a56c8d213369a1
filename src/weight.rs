//! A [`Weight`]: one variable of a layer (Keras' `tf.Variable`), as a value.
//!
//! A weight carries everything training needs to know about it: its Keras name
//! (`embeddings`, `kernel`, `bias`), where its values live (an owned array, or a read-only
//! memory map of float32 values, int8 codes or float16 bits), whether training updates it, its regularizer and constraint, and a stable
//! [`WeightId`]. Layers hold their weights and hand them out through
//! [`Layer::variables`](crate::layer::Layer::variables); `get_weights`, `set_weights`,
//! `count_params` and the trainable lists all derive from that one method, and an optimizer
//! keys its slots by the id, so adding a layer, freezing one or using one weight in two places
//! never misaligns another weight's slots.
//!
//! ```
//! use ndarray::array;
//! use ndkeras::prelude::*;
//!
//! let mut layer = Embedding::new(3, 2).weights(vec![array![[0.0f32, 1.0], [2.0, 3.0], [4.0, 5.0]].into_dyn()]);
//! layer.apply(&Tensor::from(vec![0i64]))?;
//! let weights = layer.variables();
//! assert_eq!(weights.len(), 1);
//! assert_eq!(weights[0].name(), "embeddings");
//! assert_eq!(weights[0].shape(), &[3, 2]);
//! assert!(weights[0].is_trainable());
//! # Ok::<(), ndkeras::Error>(())
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::OnceLock;

use ndarray::{Array2, ArrayD, ArrayViewD, ArrayViewMutD, Ix2};

use crate::constraints::Constraint;
use crate::error::{Error, Result};
use crate::quantization::{TableDType, f32_to_half, half_to_f32};
use crate::regularizers::Regularizer;
use crate::storage::{aligned_copy, is_aligned, try_to_owned};

/// The identity of one [`Weight`], unique in the process: what an optimizer keys its slots by.
/// A cloned weight (a cloned layer) gets a new id: it is a new variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WeightId(u64);

impl WeightId {
    fn fresh() -> WeightId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        WeightId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for WeightId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Where a weight's values live.
#[derive(Clone)]
enum Values {
    /// Owned int8 values: the codes of a quantized table (packed int4 pairs included) and
    /// zero points.
    Int8(Typed<i8>),
    /// Owned half-precision values (their bits) of a float16 or bfloat16 table.
    Half(Typed<u16>, TableDType),
    /// An owned 2-D array (embedding tables and kernels), in standard layout; embedding
    /// tables are 64-byte aligned.
    Matrix(Array2<f32>),
    /// An owned array of another rank (a bias), in standard layout.
    Array(ArrayD<f32>),
    /// A read-only memory map of a float32 `.npy` file.
    #[cfg(feature = "mmap")]
    Mapped(crate::storage::MappedTable),
    /// A read-only memory map of the int8 codes of a quantized table.
    #[cfg(feature = "mmap")]
    MappedInt8(MappedTyped<i8>),
    /// A read-only memory map of the bits of a float16 table.
    #[cfg(feature = "mmap")]
    MappedHalf(MappedTyped<u16>, TableDType),
}

/// A memory map of values stored in another type than `f32`, and their `f32` widening, made
/// on the first [`Weight::view`] only (as [`Typed`]).
#[cfg(feature = "mmap")]
#[derive(Clone)]
struct MappedTyped<T: crate::storage::MappedElement> {
    table: crate::storage::MappedTable<T>,
    widened: OnceLock<ArrayD<f32>>,
}

#[cfg(feature = "mmap")]
impl<T: crate::storage::MappedElement> MappedTyped<T> {
    fn new(table: crate::storage::MappedTable<T>) -> Self {
        MappedTyped {
            table,
            widened: OnceLock::new(),
        }
    }

    fn view(&self) -> ArrayViewD<'_, T> {
        self.table.view().into_dyn()
    }
}

/// Values stored in a type other than `f32`, and their `f32` widening, made on the first
/// [`Weight::view`] only (for the callers that need a float view, such as
/// `save_weights`).
#[derive(Clone)]
struct Typed<T> {
    values: ArrayD<T>,
    widened: OnceLock<ArrayD<f32>>,
}

impl<T> Typed<T> {
    fn new(values: ArrayD<T>) -> Self {
        Typed {
            values,
            widened: OnceLock::new(),
        }
    }
}

/// The element type a weight's values are stored in (Keras' variable `dtype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WeightDType {
    /// `float32`.
    Float32,
    /// `int8` (quantized codes, packed int4 pairs, zero points).
    Int8,
    /// `float16`.
    Float16,
    /// `bfloat16`.
    BFloat16,
}

impl WeightDType {
    /// Keras' (NumPy's) name: `"float32"`, `"int8"`, `"float16"`, `"bfloat16"`.
    pub fn name(self) -> &'static str {
        match self {
            WeightDType::Float32 => "float32",
            WeightDType::Int8 => "int8",
            WeightDType::Float16 => "float16",
            WeightDType::BFloat16 => "bfloat16",
        }
    }
}

/// A read-only view of a weight's values in the type they are stored in.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum WeightValues<'a> {
    /// `float32` values.
    Float32(ArrayViewD<'a, f32>),
    /// `int8` values.
    Int8(ArrayViewD<'a, i8>),
    /// The bits of half-precision values of the given type.
    Half(ArrayViewD<'a, u16>, TableDType),
}

/// One variable of a layer: name, values, trainability, regularizer, constraint and id.
pub struct Weight {
    id: WeightId,
    name: String,
    values: Values,
    trainable: bool,
    regularizer: Option<Regularizer>,
    constraint: Option<Constraint>,
}

impl Clone for Weight {
    /// A copy of the values under a new [`WeightId`] (a new variable).
    fn clone(&self) -> Self {
        Weight {
            id: WeightId::fresh(),
            name: self.name.clone(),
            values: self.values.clone(),
            trainable: self.trainable,
            regularizer: self.regularizer,
            constraint: self.constraint,
        }
    }
}

impl fmt::Debug for Weight {
    /// The name, id and shape, not the values (a table can hold millions).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Weight")
            .field("name", &self.name)
            .field("id", &self.id)
            .field("shape", &self.shape())
            .field("trainable", &self.trainable)
            .field("mapped", &self.is_mapped())
            .finish()
    }
}

impl Weight {
    /// A trainable weight without regularizer or constraint, holding `values` as they are
    /// (in standard layout, which initializers give): what a layer of your own creates in
    /// its `build` and returns from [`Layer::variables`](crate::layer::Layer::variables).
    ///
    /// # Errors
    /// Only an internal [`Error::Model`] if a 2-D array cannot be seen as one.
    pub fn new(name: impl Into<String>, values: ArrayD<f32>) -> Result<Weight> {
        Ok(Weight::with_values(
            name.into(),
            values_of(values, Prepared(None))?,
        ))
    }

    /// A trainable weight over an owned 2-D array.
    pub fn matrix(name: impl Into<String>, values: Array2<f32>) -> Weight {
        Weight::with_values(name.into(), Values::Matrix(values))
    }

    /// A weight over a memory-mapped table: read-only, so training it is an error until
    /// [`Weight::make_owned`].
    #[cfg(feature = "mmap")]
    pub(crate) fn mapped(name: impl Into<String>, table: crate::storage::MappedTable) -> Weight {
        Weight::with_values(name.into(), Values::Mapped(table))
    }

    /// A non-trainable weight over the memory-mapped int8 codes of a quantized table.
    #[cfg(feature = "mmap")]
    pub(crate) fn mapped_int8(
        name: impl Into<String>,
        table: crate::storage::MappedTable<i8>,
    ) -> Weight {
        Weight::with_values(name.into(), Values::MappedInt8(MappedTyped::new(table)))
            .with_trainable(false)
    }

    /// A weight over the memory-mapped bits of a half-precision table of `dtype`.
    #[cfg(feature = "mmap")]
    pub(crate) fn mapped_half(
        name: impl Into<String>,
        table: crate::storage::MappedTable<u16>,
        dtype: TableDType,
    ) -> Weight {
        Weight::with_values(
            name.into(),
            Values::MappedHalf(MappedTyped::new(table), dtype),
        )
    }

    fn with_values(name: String, values: Values) -> Weight {
        Weight {
            id: WeightId::fresh(),
            name,
            values,
            trainable: true,
            regularizer: None,
            constraint: None,
        }
    }

    /// Sets whether training updates it (the layer's `trainable`). Default: `true`.
    pub fn with_trainable(mut self, trainable: bool) -> Weight {
        self.trainable = trainable;
        self
    }

    /// Sets its regularizer (its penalty is added to the loss). Default: none.
    pub fn with_regularizer(mut self, regularizer: Option<Regularizer>) -> Weight {
        self.regularizer = regularizer;
        self
    }

    /// Sets its constraint (applied after each update). Default: none.
    pub fn with_constraint(mut self, constraint: Option<Constraint>) -> Weight {
        self.constraint = constraint;
        self
    }

    /// Its identity, stable for the weight's life (what optimizer slots are keyed by).
    pub fn id(&self) -> WeightId {
        self.id
    }

    /// Its Keras variable name within its layer: `embeddings`, `kernel`, `bias`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its shape.
    pub fn shape(&self) -> &[usize] {
        match &self.values {
            Values::Matrix(m) => m.shape(),
            Values::Array(a) => a.shape(),
            Values::Int8(t) => t.values.shape(),
            Values::Half(t, _) => t.values.shape(),
            #[cfg(feature = "mmap")]
            Values::Mapped(m) => m.shape(),
            #[cfg(feature = "mmap")]
            Values::MappedInt8(m) => m.table.shape(),
            #[cfg(feature = "mmap")]
            Values::MappedHalf(m, _) => m.table.shape(),
        }
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    /// Whether it holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A read-only view of the values as `f32`, wherever they live: no copy for `f32`
    /// values. Values stored in another type ([`Weight::dtype`]: the int8 codes of a
    /// quantized table, a half-precision table) are widened to `f32` on the first call and
    /// the widened copy is kept with the weight (4 bytes per value, until the values are
    /// replaced); like any Rust copy, one that does not fit in memory aborts. Read such a
    /// weight with [`Weight::values`] (no copy) or [`Weight::try_to_f32`] instead.
    pub fn view(&self) -> ArrayViewD<'_, f32> {
        match &self.values {
            Values::Matrix(m) => m.view().into_dyn(),
            Values::Array(a) => a.view(),
            Values::Int8(t) => t.widened.get_or_init(|| t.values.mapv(f32::from)).view(),
            Values::Half(t, dtype) => t
                .widened
                .get_or_init(|| t.values.mapv(|b| half_to_f32(b, *dtype)))
                .view(),
            #[cfg(feature = "mmap")]
            Values::Mapped(m) => m.view().into_dyn(),
            #[cfg(feature = "mmap")]
            Values::MappedInt8(m) => m.widened.get_or_init(|| m.view().mapv(f32::from)).view(),
            #[cfg(feature = "mmap")]
            Values::MappedHalf(m, dtype) => m
                .widened
                .get_or_init(|| m.view().mapv(|b| half_to_f32(b, *dtype)))
                .view(),
        }
    }

    /// The values in the type they are stored in, without a copy (memory-mapped values
    /// included).
    pub fn values(&self) -> WeightValues<'_> {
        match &self.values {
            Values::Int8(t) => WeightValues::Int8(t.values.view()),
            Values::Half(t, dtype) => WeightValues::Half(t.values.view(), *dtype),
            #[cfg(feature = "mmap")]
            Values::MappedInt8(m) => WeightValues::Int8(m.view()),
            #[cfg(feature = "mmap")]
            Values::MappedHalf(m, dtype) => WeightValues::Half(m.view(), *dtype),
            _ => WeightValues::Float32(self.view()),
        }
    }

    /// The type the values are stored in (Keras' variable `dtype`).
    pub fn dtype(&self) -> WeightDType {
        match self.values() {
            WeightValues::Int8(_) => WeightDType::Int8,
            WeightValues::Half(_, TableDType::BFloat16) => WeightDType::BFloat16,
            WeightValues::Half(..) => WeightDType::Float16,
            WeightValues::Float32(_) => WeightDType::Float32,
        }
    }

    /// A fresh `f32` copy of the values (integers and half-precision values are exact in
    /// `f32`), allocated fallibly and not kept.
    ///
    /// # Errors
    /// [`Error::Allocation`] naming `context`.
    pub fn try_to_f32(&self, context: impl Fn() -> String) -> Result<ArrayD<f32>> {
        match self.values() {
            WeightValues::Int8(v) => widen(v, &context, f32::from),
            WeightValues::Half(v, dtype) => widen(v, &context, |b| half_to_f32(b, dtype)),
            WeightValues::Float32(v) => try_to_owned(v, context),
        }
    }

    /// The `f32` values, row-major (owned values are kept in standard layout); `None` for
    /// values stored in another type.
    pub fn as_slice(&self) -> Option<&[f32]> {
        match &self.values {
            Values::Matrix(m) => m.as_slice(),
            Values::Array(a) => a.as_slice(),
            Values::Int8(_) | Values::Half(..) => None,
            #[cfg(feature = "mmap")]
            Values::Mapped(m) => Some(m.as_slice()),
            #[cfg(feature = "mmap")]
            Values::MappedInt8(_) | Values::MappedHalf(..) => None,
        }
    }

    /// The int8 values (owned or memory-mapped), row-major; `None` for values of another
    /// type.
    pub(crate) fn as_i8_slice(&self) -> Option<&[i8]> {
        match &self.values {
            Values::Int8(t) => t.values.as_slice(),
            #[cfg(feature = "mmap")]
            Values::MappedInt8(m) => Some(m.table.as_slice()),
            _ => None,
        }
    }

    /// The half-precision bits (owned or memory-mapped), row-major, and their type; `None`
    /// for values of another type.
    pub(crate) fn as_half_slice(&self) -> Option<(&[u16], TableDType)> {
        match &self.values {
            Values::Half(t, dtype) => t.values.as_slice().map(|s| (s, *dtype)),
            #[cfg(feature = "mmap")]
            Values::MappedHalf(m, dtype) => Some((m.table.as_slice(), *dtype)),
            _ => None,
        }
    }

    /// A non-trainable weight over owned int8 values (standard layout).
    pub(crate) fn int8(name: impl Into<String>, values: ArrayD<i8>) -> Weight {
        Weight::with_values(
            name.into(),
            Values::Int8(Typed::new(values.as_standard_layout().into_owned())),
        )
        .with_trainable(false)
    }

    /// A weight over owned half-precision bits of `dtype` (standard layout).
    pub(crate) fn half(name: impl Into<String>, bits: ArrayD<u16>, dtype: TableDType) -> Weight {
        Weight::with_values(
            name.into(),
            Values::Half(Typed::new(bits.as_standard_layout().into_owned()), dtype),
        )
    }

    /// The owned 2-D array, if the values are one (not a memory map).
    pub fn as_matrix(&self) -> Option<&Array2<f32>> {
        match &self.values {
            Values::Matrix(m) => Some(m),
            _ => None,
        }
    }

    /// Whether training updates it.
    pub fn is_trainable(&self) -> bool {
        self.trainable
    }

    /// Its regularizer (Keras' `*_regularizer`).
    pub fn regularizer(&self) -> Option<Regularizer> {
        self.regularizer
    }

    /// Its constraint (Keras' `*_constraint`).
    pub fn constraint(&self) -> Option<Constraint> {
        self.constraint
    }

    /// Whether the values are a read-only memory map.
    pub fn is_mapped(&self) -> bool {
        match &self.values {
            Values::Matrix(_) | Values::Array(_) | Values::Int8(_) | Values::Half(..) => false,
            #[cfg(feature = "mmap")]
            Values::Mapped(_) | Values::MappedInt8(_) | Values::MappedHalf(..) => true,
        }
    }

    /// A mutable view of owned `f32` values; `None` for a memory map or values of another
    /// type.
    pub(crate) fn view_mut(&mut self) -> Option<ArrayViewMutD<'_, f32>> {
        match &mut self.values {
            Values::Matrix(m) => Some(m.view_mut().into_dyn()),
            Values::Array(a) => Some(a.view_mut()),
            Values::Int8(_) | Values::Half(..) => None,
            #[cfg(feature = "mmap")]
            Values::Mapped(_) | Values::MappedInt8(_) | Values::MappedHalf(..) => None,
        }
    }

    /// The owned `f32` values, row-major and mutable; `None` for a memory map or values of
    /// another type.
    pub(crate) fn as_slice_mut(&mut self) -> Option<&mut [f32]> {
        match &mut self.values {
            Values::Matrix(m) => m.as_slice_mut(),
            Values::Array(a) => a.as_slice_mut(),
            Values::Int8(_) | Values::Half(..) => None,
            #[cfg(feature = "mmap")]
            Values::Mapped(_) | Values::MappedInt8(_) | Values::MappedHalf(..) => None,
        }
    }

    pub(crate) fn set_trainable(&mut self, trainable: bool) {
        self.trainable = trainable;
    }

    pub(crate) fn set_regularizer(&mut self, regularizer: Option<Regularizer>) {
        self.regularizer = regularizer;
    }

    pub(crate) fn set_constraint(&mut self, constraint: Option<Constraint>) {
        self.constraint = constraint;
    }

    /// The fallible half of [`Weight::assign`]: the copy `array` needs before it can become
    /// the values (standard layout; 2-D arrays 64-byte aligned, as lookups read whole rows),
    /// made from a borrow so that the caller keeps `array` if it fails.
    ///
    /// # Errors
    /// [`Error::Allocation`] naming `context`.
    pub(crate) fn prepare(array: &ArrayD<f32>, context: impl Fn() -> String) -> Result<Prepared> {
        let copy = match array.view().into_dimensionality::<Ix2>() {
            Ok(matrix) if matrix.is_standard_layout() && is_aligned(&matrix) => None,
            Ok(matrix) => Some(Values::Matrix(aligned_copy(matrix, context)?)),
            Err(_) if array.is_standard_layout() => None,
            Err(_) => Some(Values::Array(try_to_owned(array.view(), context)?)),
        };
        Ok(Prepared(copy))
    }

    /// Replaces the values with `array` (of the weight's shape, checked by the caller) as
    /// [`Weight::prepare`] laid it out, keeping the id, as Keras' `assign`. A weight stored in
    /// another type keeps its type: the values are converted as [`Weight::check_convertible`]
    /// says.
    ///
    /// # Errors
    /// Those of [`Weight::check_convertible`] (nothing changes then); an internal
    /// [`Error::Model`] if a 2-D array cannot be seen as one.
    pub(crate) fn assign(&mut self, array: ArrayD<f32>, prepared: Prepared) -> Result<()> {
        match self.stored_type() {
            Some(None) => {
                self.check_convertible(&array, "")?;
                self.values =
                    Values::Int8(Typed::new(array.as_standard_layout().mapv(|v| v as i8)));
            }
            Some(Some(dtype)) => {
                self.check_convertible(&array, "")?;
                let bits = array
                    .as_standard_layout()
                    .mapv(|v| f32_to_half(v, dtype).unwrap_or(0));
                self.values = Values::Half(Typed::new(bits), dtype);
            }
            None => self.values = values_of(array, prepared)?,
        }
        Ok(())
    }

    /// `None` for `f32` values, `Some(None)` for int8 ones, `Some(Some(dtype))` for
    /// half-precision ones (owned or memory-mapped).
    fn stored_type(&self) -> Option<Option<TableDType>> {
        match self.values() {
            WeightValues::Float32(_) => None,
            WeightValues::Int8(_) => Some(None),
            WeightValues::Half(_, dtype) => Some(Some(dtype)),
        }
    }

    /// Checks that `array` can be stored in this weight's type: whole numbers in
    /// `-128..=127` for an int8 weight (Keras' variable casts anything; we refuse what would
    /// not survive the cast), values that stay finite in half precision for a float16 or
    /// bfloat16 one. Every `f32` array passes for an `f32` weight.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the layer (`layer`, when not empty), the weight, the
    /// first bad value and its position.
    pub(crate) fn check_convertible(&self, array: &ArrayD<f32>, layer: &str) -> Result<()> {
        let (bad, expected): (Box<dyn Fn(f32) -> bool>, String) = match self.stored_type() {
            Some(None) => (
                Box::new(|v: f32| v.fract() != 0.0 || !(-128.0..=127.0).contains(&v)),
                "whole numbers in -128..=127 (an int8 variable)".into(),
            ),
            Some(Some(dtype)) => (
                Box::new(move |v: f32| f32_to_half(v, dtype).is_none()),
                format!("values that are finite in {dtype}"),
            ),
            None => return Ok(()),
        };
        if let Some((flat, &value)) = array.iter().enumerate().find(|(_, v)| bad(**v)) {
            let position = crate::tensor::unravel(flat, array.shape());
            let owner = if layer.is_empty() {
                format!("weight '{}'", self.name)
            } else {
                format!("layer \"{layer}\": weight '{}'", self.name)
            };
            return Err(Error::invalid_argument(
                owner,
                "values",
                format!("{value} at position {position:?}"),
                expected,
            ));
        }
        Ok(())
    }

    /// A new weight from `array` as [`Weight::prepare`] laid it out.
    ///
    /// # Errors
    /// Only an internal [`Error::Model`] if a 2-D array cannot be seen as one.
    pub(crate) fn from_prepared(
        name: impl Into<String>,
        array: ArrayD<f32>,
        prepared: Prepared,
    ) -> Result<Weight> {
        Ok(Weight::with_values(
            name.into(),
            values_of(array, prepared)?,
        ))
    }

    /// Copies memory-mapped values into owned memory (aligned for `f32` tables), in the type
    /// they are stored in (a no-op for owned values).
    ///
    /// # Errors
    /// [`Error::Allocation`] naming `context`.
    pub(crate) fn make_owned(&mut self, context: impl Fn() -> String) -> Result<()> {
        #[cfg(feature = "mmap")]
        match &self.values {
            Values::Mapped(table) => {
                self.values = Values::Matrix(aligned_copy(table.view(), &context)?);
            }
            Values::MappedInt8(m) => {
                self.values = Values::Int8(Typed::new(owned_copy(m.view(), &context)?));
            }
            Values::MappedHalf(m, dtype) => {
                let dtype = *dtype;
                self.values = Values::Half(Typed::new(owned_copy(m.view(), &context)?), dtype);
            }
            _ => {}
        }
        #[cfg(not(feature = "mmap"))]
        let _ = context;
        Ok(())
    }

    /// Takes the owned values out (for a layer that gives its built weights back as pending
    /// initial weights); `None` for a memory map or values of another type.
    pub(crate) fn into_array(self) -> Option<ArrayD<f32>> {
        match self.values {
            Values::Matrix(m) => Some(m.into_dyn()),
            Values::Array(a) => Some(a),
            Values::Int8(_) | Values::Half(..) => None,
            #[cfg(feature = "mmap")]
            Values::Mapped(_) | Values::MappedInt8(_) | Values::MappedHalf(..) => None,
        }
    }
}

/// An error for a weight training cannot update because it is read-only.
pub(crate) fn read_only_error(layer: &str, weight: &Weight) -> Error {
    let fix = if weight.dtype() == WeightDType::Float32 {
        "call `make_owned()` to train a copy in memory, or set `trainable(false)`".to_string()
    } else {
        format!(
            "it is stored in {} and cannot be trained (adapt it with LoRA, `enable_lora`), or set `trainable(false)`",
            weight.dtype().name()
        )
    };
    Error::invalid_argument(
        format!("layer \"{layer}\""),
        "trainable",
        true,
        format!(
            "false for the memory-mapped (read-only) weight '{}': {fix}",
            weight.name()
        ),
    )
}

/// A fallible standard-layout copy of `values`.
#[cfg(feature = "mmap")]
fn owned_copy<T: Copy>(
    values: ArrayViewD<'_, T>,
    context: impl Fn() -> String,
) -> Result<ArrayD<T>> {
    let mut flat: Vec<T> = Vec::new();
    flat.try_reserve_exact(values.len())
        .map_err(|_| Error::Allocation {
            context: context(),
            bytes: values.len().saturating_mul(std::mem::size_of::<T>()),
        })?;
    flat.extend(values.iter().copied());
    ArrayD::from_shape_vec(values.raw_dim(), flat).map_err(|_| Error::ShapeOverflow {
        context: context(),
        shape: values.shape().to_vec(),
    })
}

/// A fallible `f32` copy of `values`, each converted by `widen`.
fn widen<T: Copy>(
    values: ArrayViewD<'_, T>,
    context: impl Fn() -> String,
    widen: impl Fn(T) -> f32,
) -> Result<ArrayD<f32>> {
    let mut flat: Vec<f32> = Vec::new();
    flat.try_reserve_exact(values.len())
        .map_err(|_| Error::Allocation {
            context: context(),
            bytes: values.len().saturating_mul(4),
        })?;
    flat.extend(values.iter().map(|&v| widen(v)));
    ArrayD::from_shape_vec(values.raw_dim(), flat).map_err(|_| Error::ShapeOverflow {
        context: context(),
        shape: values.shape().to_vec(),
    })
}

/// What [`Layer::set_weights`](crate::layer::Layer::set_weights)' checks made of an array: a
/// copy laid out as the weight needs, or nothing when the array can be used as it is. Made by
/// [`prepare_weights`](crate::layer::prepare_weights).
pub struct Prepared(Option<Values>);

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Prepared(copy)"
        } else {
            "Prepared(as is)"
        })
    }
}

/// The values of a weight from `array` and its prepared copy.
fn values_of(array: ArrayD<f32>, prepared: Prepared) -> Result<Values> {
    if let Some(values) = prepared.0 {
        return Ok(values);
    }
    if array.ndim() != 2 {
        return Ok(Values::Array(array));
    }
    let shape = array.shape().to_vec();
    array
        .into_dimensionality::<Ix2>()
        .map(Values::Matrix)
        .map_err(|e| Error::Model {
            model: "(internal)".into(),
            message: format!("a weight of shape {shape:?} is not 2-D: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn ids_are_unique_and_clones_are_new_variables() {
        let a = Weight::new("kernel", array![[1.0f32, 2.0]].into_dyn()).unwrap();
        let b = Weight::new("kernel", array![[1.0f32, 2.0]].into_dyn()).unwrap();
        assert_ne!(a.id(), b.id());
        let c = a.clone();
        assert_ne!(a.id(), c.id());
        assert_eq!(a.view(), c.view());
    }

    #[test]
    fn assign_keeps_the_id_and_lays_out_the_values() {
        let mut w =
            Weight::new("embeddings", array![[0.0f32, 1.0], [2.0, 3.0]].into_dyn()).unwrap();
        let id = w.id();
        let transposed = array![[5.0f32, 6.0], [7.0, 8.0]].reversed_axes().into_dyn();
        let prepared = Weight::prepare(&transposed, || "t".into()).unwrap();
        assert!(prepared.0.is_some(), "a transposed array is copied");
        w.assign(transposed.clone(), prepared).unwrap();
        assert_eq!(w.id(), id);
        assert_eq!(w.view(), transposed);
        assert!(w.as_matrix().unwrap().is_standard_layout());
        assert!(is_aligned(w.as_matrix().unwrap()));
        let mut bias = Weight::new("bias", array![1.0f32, 2.0].into_dyn()).unwrap();
        assert!(bias.as_matrix().is_none());
        bias.as_slice_mut().unwrap()[1] = 5.0;
        assert_eq!(bias.as_slice(), Some(&[1.0f32, 5.0][..]));
    }
}
