//! Quantized embedding tables with Keras 3's exact arithmetic (`Embedding.quantize`).
//!
//! [`Embedding::quantize`](crate::layers::Embedding::quantize) replaces a float32 table with
//! integer codes and scales computed exactly as Keras 3.15.1 computes them on the host
//! (`keras.quantizers.abs_max_quantize(..., to_numpy=True)` and
//! `abs_max_quantize_grouped_with_zero_point(..., to_numpy=True)`): every operation is the
//! same float32 operation in the same order, and rounding is NumPy's (half to even), so the
//! codes and scales are bit-identical to Keras' (`tests/quantized.rs` checks them against the
//! real Keras 3.15.1 on JAX).
//!
//! | mode | variables (Keras' order) | per vocabulary row `r` | lookup of row `r` |
//! |---|---|---|---|
//! | `int8` | `embeddings` int8 `(V, D)`, `embeddings_scale` `(V,)` | `s = 127 / (max\|E[r]\| + 1e-7)`, `q = clip(round(E[r]·s), -127, 127)` | `q / s` |
//! | `int4`, per-channel (`block_size` none) | `embeddings` int8 `(V, ceil(D/2))` (two codes per byte, the first in the low nibble), `embeddings_scale` `(V,)` | `s = 7 / (max\|E[r]\| + 1e-7)`, `q = clip(round(E[r]·s), -8, 7)` | `q / s` |
//! | `int4`, grouped (`block_size` B, Keras' default 128) | `embeddings` packed as above, `embeddings_scale` `(V, G)`, `embeddings_zero` int8 `(V, G)`, `g_idx` `(D,)` = `floor(arange(D) / B)` | per group of B columns (the last one padded with zeros): `s = (max - min + 1e-7) / 15`, `z = clip(round(-min / s) - 8, -8, 7)`, `q = clip(round(x / s) + z, -8, 7)` | `(q - z) · s` |
//!
//! with `G = ceil(D / B)`. Per-channel modes divide by the scale, the grouped mode multiplies,
//! as Keras does; the division is computed as XLA computes Keras' `q / s` on the JAX backend,
//! `q · (1 / s)`, so lookups are bit-identical to Keras 3.15.1 on JAX (a true division can
//! differ in the last bit). A lookup dequantises only the rows it gathers, whether the codes
//! are in memory or memory-mapped from an `.npy` file (`Embedding::from_mapped_quantized`,
//! int8, with the `mmap` feature): the same rows give the same bits.
//!
//! Half-precision tables ([`TableDType::Float16`], [`TableDType::BFloat16`], Keras'
//! `dtype="float16"` / `"bfloat16"`) hold each value rounded to nearest (ties to even), and a
//! lookup widens the gathered rows back to float32 exactly.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// The block size Keras 3.15.1 uses for `quantize("int4")` (`Int4QuantizationConfig()`).
pub const DEFAULT_INT4_BLOCK_SIZE: usize = 128;

/// Keras' `backend.epsilon()`, added to the range before dividing, as a float32.
const EPSILON: f32 = 1e-7;

/// How [`Embedding::quantize`](crate::layers::Embedding::quantize) stores a table (Keras 3's
/// quantization modes for `Embedding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuantizationMode {
    /// One int8 code per value and one abs-max scale per vocabulary row (Keras' `"int8"`).
    Int8,
    /// Two int4 codes per byte. `block_size: None` is Keras' per-channel int4 (one abs-max
    /// scale per row, `Int4QuantizationConfig(block_size=None)` or the `int4_from_float32`
    /// policy); `Some(b)` is Keras' grouped int4 (a scale and a zero point per group of `b`
    /// columns of each row). `"int4"` parses as Keras 3.15.1 resolves it: grouped with
    /// `block_size` 128.
    Int4 {
        /// The group size, or `None` for one scale per row.
        block_size: Option<usize>,
    },
}

impl QuantizationMode {
    /// Keras' mode name: `"int8"` or `"int4"`.
    pub fn name(self) -> &'static str {
        match self {
            QuantizationMode::Int8 => "int8",
            QuantizationMode::Int4 { .. } => "int4",
        }
    }

    /// The mode part of Keras' dtype policy name: `"int8"`, `"int4/128"`, `"int4/-1"`.
    pub fn policy_mode(self) -> String {
        match self {
            QuantizationMode::Int8 => "int8".into(),
            QuantizationMode::Int4 {
                block_size: Some(b),
            } => format!("int4/{b}"),
            QuantizationMode::Int4 { block_size: None } => "int4/-1".into(),
        }
    }

    /// Keras' dtype policy name for a float32 layer: `"int8_from_float32"`,
    /// `"int4/128_from_float32"`.
    pub fn policy_name(self) -> String {
        format!("{}_from_float32", self.policy_mode())
    }

    /// The group size of grouped int4, `None` otherwise.
    pub fn block_size(self) -> Option<usize> {
        match self {
            QuantizationMode::Int4 { block_size } => block_size,
            QuantizationMode::Int8 => None,
        }
    }

    /// Checks the block size as Keras' `Int4QuantizationConfig` does.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a block size of 0.
    pub fn validate(self) -> Result<()> {
        if self.block_size() == Some(0) {
            return Err(Error::invalid_argument(
                "QuantizationMode::Int4",
                "block_size",
                0,
                "None (per-channel) or a positive integer (block_size must be None, -1, or a positive integer)",
            ));
        }
        Ok(())
    }

    /// The names of the variables of a quantized `Embedding`, in Keras' order
    /// (`variable_serialization_spec`, without the variables this mode does not have).
    pub fn variable_names(self) -> &'static [&'static str] {
        match self {
            QuantizationMode::Int8 | QuantizationMode::Int4 { block_size: None } => {
                &["embeddings", "embeddings_scale"]
            }
            QuantizationMode::Int4 {
                block_size: Some(_),
            } => &["embeddings", "embeddings_scale", "embeddings_zero", "g_idx"],
        }
    }

    /// The shapes of those variables for a `(input_dim, output_dim)` table.
    pub fn variable_shapes(self, input_dim: usize, output_dim: usize) -> Vec<Vec<usize>> {
        match self {
            QuantizationMode::Int8 => vec![vec![input_dim, output_dim], vec![input_dim]],
            QuantizationMode::Int4 { block_size: None } => {
                vec![vec![input_dim, packed_len(output_dim)], vec![input_dim]]
            }
            QuantizationMode::Int4 {
                block_size: Some(b),
            } => {
                let groups = output_dim.div_ceil(b.max(1));
                vec![
                    vec![input_dim, packed_len(output_dim)],
                    vec![input_dim, groups],
                    vec![input_dim, groups],
                    vec![output_dim],
                ]
            }
        }
    }
}

impl fmt::Display for QuantizationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.policy_mode())
    }
}

/// Keras' quantization modes (`dtype_policies.QUANTIZATION_MODES`), for error messages.
const KERAS_MODES: &str = "('int8', 'float8', 'int4', 'gptq', 'awq')";

impl FromStr for QuantizationMode {
    type Err = Error;

    /// `"int8"`, or `"int4"` (grouped with block size 128, as Keras 3.15.1 resolves a bare
    /// `quantize("int4")`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for Keras' other modes (`float8`, `gptq`, `awq`: not
    /// implemented for `Embedding`, as in Keras) and for any other name, with Keras' words
    /// ("Invalid quantization mode").
    fn from_str(mode: &str) -> Result<Self> {
        match mode {
            "int8" => Ok(QuantizationMode::Int8),
            "int4" => Ok(QuantizationMode::Int4 {
                block_size: Some(DEFAULT_INT4_BLOCK_SIZE),
            }),
            "float8" | "gptq" | "awq" => Err(Error::invalid_argument(
                "Embedding.quantize",
                "mode",
                format!("'{mode}'"),
                "one of ('int8', 'int4'): Invalid quantization mode for an Embedding (Keras raises NotImplementedError for it too)",
            )),
            _ => Err(Error::invalid_argument(
                "Embedding.quantize",
                "mode",
                format!("'{mode}'"),
                format!(
                    "one of ('int8', 'int4'): Invalid quantization mode (Keras' modes are {KERAS_MODES})"
                ),
            )),
        }
    }
}

/// How the values of an embedding table are stored when it is not quantized (Keras' layer
/// `dtype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TableDType {
    /// 4 bytes a value (the default).
    #[default]
    Float32,
    /// IEEE half precision, 2 bytes a value (Keras' `dtype="float16"`).
    Float16,
    /// bfloat16, 2 bytes a value (Keras' `dtype="bfloat16"`).
    BFloat16,
}

impl TableDType {
    /// Keras' name: `"float32"`, `"float16"`, `"bfloat16"`.
    pub fn name(self) -> &'static str {
        match self {
            TableDType::Float32 => "float32",
            TableDType::Float16 => "float16",
            TableDType::BFloat16 => "bfloat16",
        }
    }
}

impl fmt::Display for TableDType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TableDType {
    type Err = Error;

    /// Keras' names `"float32"`, `"float16"`, `"bfloat16"`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for any other name.
    fn from_str(name: &str) -> Result<Self> {
        match name {
            "float32" => Ok(TableDType::Float32),
            "float16" => Ok(TableDType::Float16),
            "bfloat16" => Ok(TableDType::BFloat16),
            _ => Err(Error::invalid_argument(
                "Embedding",
                "dtype",
                format!("'{name}'"),
                "one of 'float32', 'float16', 'bfloat16'",
            )),
        }
    }
}

/// The first per-row int8 scale (of a table read from a file or given by a user) that a
/// lookup cannot use, with its index: a scale must be finite and positive, and every code
/// divided by it (`q · (1 / s)`, `|q| <= 128`) finite. `quantize("int8")` refuses a table
/// whose scales would break this rule (a row within 1/128 of `f32::MAX`), so every scale it
/// makes passes.
pub(crate) fn first_bad_int8_scale<'a>(
    scales: impl IntoIterator<Item = &'a f32>,
) -> Option<(usize, f32)> {
    scales
        .into_iter()
        .copied()
        .enumerate()
        .find(|&(_, s)| !int8_scale_ok(s))
}

/// The first scale of a table quantized in `mode` that a lookup cannot use, with its index
/// (flat, in the order given): for int8 the rule of [`first_bad_int8_scale`]; for int4 every
/// dequantised value must be finite: `8 / |s|` per channel (`|code| <= 8`), `15 · |s|`
/// grouped (`|code - zero| <= 15`, both in -8..=7). A NaN scale never passes.
pub(crate) fn first_bad_scale(
    mode: QuantizationMode,
    scales: impl IntoIterator<Item = f32>,
) -> Option<(usize, f32)> {
    let mut scales = scales.into_iter().enumerate();
    match mode {
        QuantizationMode::Int8 => scales.find(|&(_, s)| !int8_scale_ok(s)),
        QuantizationMode::Int4 { block_size: None } => {
            scales.find(|&(_, s)| !(8.0 / s.abs()).is_finite())
        }
        QuantizationMode::Int4 {
            block_size: Some(_),
        } => scales.find(|&(_, s)| !(15.0 * s.abs()).is_finite()),
    }
}

/// What [`first_bad_scale`] expects in `mode`, for messages.
pub(crate) fn scales_expected(mode: QuantizationMode) -> &'static str {
    match mode {
        QuantizationMode::Int8 => INT8_SCALES_EXPECTED,
        QuantizationMode::Int4 { block_size: None } => {
            "scales whose dequantised values (code / scale, |code| <= 8) are finite: not 0 and not below 8 / f32::MAX in magnitude"
        }
        QuantizationMode::Int4 {
            block_size: Some(_),
        } => {
            "finite scales whose dequantised values ((code - zero) * scale, |code - zero| <= 15) are finite"
        }
    }
}

/// Whether an int8 scale passes [`first_bad_int8_scale`].
fn int8_scale_ok(s: f32) -> bool {
    s.is_finite() && s > 0.0 && (128.0 * (1.0 / s)).is_finite()
}

/// What [`first_bad_int8_scale`] expects, for messages.
pub(crate) const INT8_SCALES_EXPECTED: &str = "finite, positive int8 scales (one per row, as `quantize(\"int8\")` computes them) whose dequantised values (code / scale) are finite";

/// Bytes of one packed int4 row of `dim` codes.
pub(crate) fn packed_len(dim: usize) -> usize {
    dim.div_ceil(2)
}

/// A `Vec` of `len` copies of `value`, allocated fallibly.
pub(crate) fn try_filled<T: Clone>(
    len: usize,
    value: T,
    context: impl FnOnce() -> String,
) -> Result<Vec<T>> {
    let mut values = Vec::new();
    values
        .try_reserve_exact(len)
        .map_err(|_| Error::Allocation {
            context: context(),
            bytes: len.saturating_mul(std::mem::size_of::<T>()),
        })?;
    values.resize(len, value);
    Ok(values)
}

/// Keras' `abs_max_quantize(row, axis=-1, value_range=(lo, hi), to_numpy=True)` of every row
/// of `table` (rows of `dim` values): the codes (row-major) and one scale per row.
///
/// NumPy computes in float32 throughout (Python scalars are weak): `max|row| + 1e-7`, then
/// `hi / that`, then `row * scale`, rounded half to even and clipped.
pub(crate) fn abs_max_rows(
    table: &[f32],
    dim: usize,
    (lo, hi): (i8, i8),
    context: impl Fn() -> String,
) -> Result<(Vec<i8>, Vec<f32>)> {
    let rows = table.len() / dim.max(1);
    let mut codes = try_filled(table.len(), 0i8, &context)?;
    let mut scales = try_filled(rows, 0.0f32, &context)?;
    for ((row, out), scale) in table
        .chunks_exact(dim.max(1))
        .zip(codes.chunks_exact_mut(dim.max(1)))
        .zip(scales.iter_mut())
    {
        let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        *scale = f32::from(hi) / (max + EPSILON);
        for (code, &value) in out.iter_mut().zip(row) {
            *code = clip_round(value * *scale, lo, hi);
        }
    }
    Ok((codes, scales))
}

/// NumPy's `clip(round(x), lo, hi).astype(int8)`: half to even, then clipped.
#[inline]
fn clip_round(x: f32, lo: i8, hi: i8) -> i8 {
    clip(x.round_ties_even(), lo, hi)
}

#[inline]
fn clip(x: f32, lo: i8, hi: i8) -> i8 {
    // `x` is whole (or NaN, which a finite table never gives); the clip makes the cast exact.
    x.clamp(f32::from(lo), f32::from(hi)) as i8
}

/// The codes, scales and zero points of grouped int4.
pub(crate) struct Grouped {
    /// `(rows, dim)` codes in `-8..=7`, row-major.
    pub(crate) codes: Vec<i8>,
    /// `(rows, groups)` scales.
    pub(crate) scales: Vec<f32>,
    /// `(rows, groups)` zero points.
    pub(crate) zeros: Vec<i8>,
}

/// Keras' grouped int4 of an Embedding table: `abs_max_quantize_grouped_with_zero_point` of
/// the transposed table with `value_range=(-8, 7)`, `to_numpy=True`, transposed back. For each
/// row, groups of `block_size` consecutive columns; the last group of a row whose length is
/// not a multiple of `block_size` is padded with zeros (which count in its min and max), as
/// Keras pads.
pub(crate) fn grouped_rows(
    table: &[f32],
    dim: usize,
    block_size: usize,
    context: impl Fn() -> String,
) -> Result<Grouped> {
    let dim = dim.max(1);
    let block_size = block_size.max(1);
    let rows = table.len() / dim;
    let groups = dim.div_ceil(block_size);
    let mut codes = try_filled(table.len(), 0i8, &context)?;
    let mut scales = try_filled(rows.saturating_mul(groups), 0.0f32, &context)?;
    let mut zeros = try_filled(rows.saturating_mul(groups), 0i8, &context)?;
    let (lo, hi) = (-8i8, 7i8);
    for (r, (row, out)) in table
        .chunks_exact(dim)
        .zip(codes.chunks_exact_mut(dim))
        .enumerate()
    {
        for (g, (values, out)) in row
            .chunks(block_size)
            .zip(out.chunks_mut(block_size))
            .enumerate()
        {
            let padded = values.len() < block_size;
            let (mut min, mut max) = if padded {
                (0.0f32, 0.0f32)
            } else {
                (f32::INFINITY, f32::NEG_INFINITY)
            };
            for &v in values {
                min = min.min(v);
                max = max.max(v);
            }
            let scale = ((max - min) + EPSILON) / f32::from(hi - lo);
            let zero = (-min / scale).round_ties_even() + f32::from(lo);
            let zero = zero.clamp(f32::from(lo), f32::from(hi));
            for (code, &v) in out.iter_mut().zip(values) {
                *code = clip((v / scale).round_ties_even() + zero, lo, hi);
            }
            let k = r * groups + g;
            if let (Some(s), Some(z)) = (scales.get_mut(k), zeros.get_mut(k)) {
                *s = scale;
                *z = zero as i8;
            }
        }
    }
    Ok(Grouped {
        codes,
        scales,
        zeros,
    })
}

/// The variables of a quantized table, in Keras' order, as flat row-major values with their
/// shapes (`QuantizationMode::variable_shapes`).
pub(crate) struct QuantizedTable {
    /// `embeddings`: int8 codes `(V, D)`, or packed int4 codes `(V, ceil(D/2))`.
    pub(crate) codes: Vec<i8>,
    /// `embeddings_scale`: `(V,)`, or `(V, G)` for grouped int4.
    pub(crate) scales: Vec<f32>,
    /// `embeddings_zero` and `g_idx` of grouped int4.
    pub(crate) zeros_and_groups: Option<(Vec<i8>, Vec<f32>)>,
}

/// Quantizes a float32 table of rows of `dim` values as Keras 3.15.1's `Embedding.quantize`
/// does in `mode` (and as its `_get_embeddings_with_merged_lora` re-quantizes a merged table).
pub(crate) fn quantize_table(
    table: &[f32],
    dim: usize,
    mode: QuantizationMode,
    context: impl Fn() -> String,
) -> Result<QuantizedTable> {
    Ok(match mode {
        QuantizationMode::Int8 => {
            let (codes, scales) = abs_max_rows(table, dim, (-127, 127), &context)?;
            refuse_bad_scales(table, dim, mode, &scales, 1, &context)?;
            QuantizedTable {
                codes,
                scales,
                zeros_and_groups: None,
            }
        }
        QuantizationMode::Int4 { block_size: None } => {
            let (codes, scales) = abs_max_rows(table, dim, (-8, 7), &context)?;
            refuse_bad_scales(table, dim, mode, &scales, 1, &context)?;
            QuantizedTable {
                codes: pack_int4(&codes, dim, &context)?,
                scales,
                zeros_and_groups: None,
            }
        }
        QuantizationMode::Int4 {
            block_size: Some(block_size),
        } => {
            let grouped = grouped_rows(table, dim, block_size, &context)?;
            let groups = dim.max(1).div_ceil(block_size.max(1));
            refuse_bad_scales(table, dim, mode, &grouped.scales, groups, &context)?;
            QuantizedTable {
                codes: pack_int4(&grouped.codes, dim, &context)?,
                scales: grouped.scales,
                zeros_and_groups: Some((grouped.zeros, group_index(dim, block_size))),
            }
        }
    })
}

/// Refuses a table whose quantized scales (`per_row` a row) a lookup could not use (see
/// [`first_bad_scale`]): rows of values near `f32::MAX`, whose codes would dequantise past
/// it, or (grouped int4) groups whose range overflows. The error names the row.
fn refuse_bad_scales(
    table: &[f32],
    dim: usize,
    mode: QuantizationMode,
    scales: &[f32],
    per_row: usize,
    context: impl Fn() -> String,
) -> Result<()> {
    let Some((k, _)) = first_bad_scale(mode, scales.iter().copied()) else {
        return Ok(());
    };
    let row = k / per_row.max(1);
    let (mut low, mut high) = (0.0f32, 0.0f32);
    if let Some(values) = table.chunks_exact(dim.max(1)).nth(row) {
        for &v in values {
            low = low.min(v);
            high = high.max(v);
        }
    }
    let expected = match mode {
        QuantizationMode::Int8 => {
            "rows whose largest |value| is below 127/128 of f32::MAX (about 3.37e38) to quantize to int8: the codes of larger values dequantise past f32::MAX"
        }
        QuantizationMode::Int4 { block_size: None } => {
            "rows whose largest |value| is below 7/8 of f32::MAX (about 2.98e38) to quantize to per-channel int4: the codes of larger values dequantise past f32::MAX"
        }
        QuantizationMode::Int4 {
            block_size: Some(_),
        } => {
            "groups of columns whose range (largest - smallest value) is below f32::MAX to quantize to grouped int4: a wider range overflows its scale"
        }
    };
    Err(Error::invalid_argument(
        context(),
        "embeddings",
        format!("row {row}, whose values span {low:e} to {high:e}"),
        expected,
    ))
}

/// Keras' `pack_int4(codes, axis=-1)`: two codes per byte along each row, the first in the
/// low nibble; a row of odd length is padded with a zero code.
pub(crate) fn pack_int4(codes: &[i8], dim: usize, context: impl Fn() -> String) -> Result<Vec<i8>> {
    let dim = dim.max(1);
    let rows = codes.len() / dim;
    let width = packed_len(dim);
    let mut packed = try_filled(rows.saturating_mul(width), 0i8, context)?;
    for (row, out) in codes.chunks_exact(dim).zip(packed.chunks_exact_mut(width)) {
        for (pair, byte) in row.chunks(2).zip(out.iter_mut()) {
            let low = pair.first().copied().unwrap_or(0) as u8 & 0x0F;
            let high = pair.get(1).copied().unwrap_or(0) as u8 & 0x0F;
            *byte = (low | (high << 4)) as i8;
        }
    }
    Ok(packed)
}

/// Keras' `unpack_int4`: code `column` of a packed row (the low nibble holds even columns),
/// sign-extended from 4 bits.
#[inline]
pub(crate) fn unpack_int4_at(packed_row: &[i8], column: usize) -> i8 {
    let byte = packed_row.get(column / 2).copied().unwrap_or(0) as u8;
    let nibble = if column.is_multiple_of(2) {
        byte & 0x0F
    } else {
        byte >> 4
    };
    ((nibble ^ 8) as i8) - 8
}

/// Keras' `g_idx` for grouped int4: `floor(arange(dim) / block_size)` as float32.
pub(crate) fn group_index(dim: usize, block_size: usize) -> Vec<f32> {
    (0..dim).map(|c| (c / block_size.max(1)) as f32).collect()
}

/// Where a lookup reads its rows from: a table stored in another type than float32, each
/// row decoded to float32 as it is gathered.
#[derive(Debug, Clone, Copy)]
pub(crate) enum QuantizedRows<'a> {
    /// int8 codes `(rows, dim)` and a scale per row: `q / s`.
    Int8 {
        codes: &'a [i8],
        scales: &'a [f32],
        dim: usize,
    },
    /// Packed int4 codes `(rows, ceil(dim/2))` and a scale per row: `q / s`.
    Int4 {
        packed: &'a [i8],
        scales: &'a [f32],
        dim: usize,
    },
    /// Packed int4 codes, `(rows, groups)` scales and zero points, and the group of each
    /// column (checked against `groups`): `(q - z) · s`. `block` is `Some(b)` when
    /// `column_groups` is Keras' `floor(column / b)` with an even `b` (always, for a table
    /// ndkeras quantized): each group then covers whole bytes, decoded a group at a time.
    Int4Grouped {
        packed: &'a [i8],
        scales: &'a [f32],
        zeros: &'a [i8],
        groups: usize,
        column_groups: &'a [usize],
        block: Option<usize>,
    },
    /// Half-precision bits `(rows, dim)`.
    Half {
        bits: &'a [u16],
        dtype: TableDType,
        dim: usize,
    },
}

impl QuantizedRows<'_> {
    /// Values per row.
    pub(crate) fn dim(&self) -> usize {
        match self {
            QuantizedRows::Int8 { dim, .. }
            | QuantizedRows::Int4 { dim, .. }
            | QuantizedRows::Half { dim, .. } => *dim,
            QuantizedRows::Int4Grouped { column_groups, .. } => column_groups.len(),
        }
    }

    /// Rows the table holds.
    pub(crate) fn rows(&self) -> usize {
        let dim = self.dim().max(1);
        match self {
            QuantizedRows::Int8 { codes, scales, .. } => (codes.len() / dim).min(scales.len()),
            QuantizedRows::Int4 { packed, scales, .. } => {
                (packed.len() / packed_len(dim)).min(scales.len())
            }
            QuantizedRows::Int4Grouped {
                packed,
                scales,
                zeros,
                groups,
                ..
            } => (packed.len() / packed_len(dim))
                .min(scales.len() / (*groups).max(1))
                .min(zeros.len() / (*groups).max(1)),
            QuantizedRows::Half { bits, .. } => bits.len() / dim,
        }
    }

    /// Asks the CPU to bring the encoded values of row `row` into its caches (a hint, see
    /// `kernels::prefetch`; nothing for a row past the end): a gather calls it for a row it
    /// will decode a few ids later.
    #[inline]
    pub(crate) fn prefetch_row(&self, row: usize) {
        fn row_of<T>(values: &[T], row: usize, width: usize) -> Option<&[T]> {
            let start = row.checked_mul(width)?;
            values.get(start..start.checked_add(width)?)
        }
        match *self {
            QuantizedRows::Int8 { codes, dim, .. } => {
                if let Some(codes) = row_of(codes, row, dim) {
                    crate::kernels::prefetch(codes);
                }
            }
            QuantizedRows::Int4 { packed, dim, .. } => {
                if let Some(bytes) = row_of(packed, row, packed_len(dim)) {
                    crate::kernels::prefetch(bytes);
                }
            }
            QuantizedRows::Int4Grouped {
                packed,
                column_groups,
                ..
            } => {
                if let Some(bytes) = row_of(packed, row, packed_len(column_groups.len())) {
                    crate::kernels::prefetch(bytes);
                }
            }
            QuantizedRows::Half { bits, dim, .. } => {
                if let Some(bits) = row_of(bits, row, dim) {
                    crate::kernels::prefetch(bits);
                }
            }
        }
    }

    /// Writes row `row` (below [`QuantizedRows::rows`]) decoded into `out` (`dim` values).
    /// A row past the end, or an `out` shorter than a row, leaves `out` as it is.
    ///
    /// A whole row is decoded at a time with loops the compiler vectorises: int4 bytes through
    /// a 256-entry table of code pairs, float16 through the `half` crate's slice conversion
    /// (F16C instructions where the CPU has them), bfloat16 by a shift. Every value is the
    /// one the per-value formulas of the module docs give, bit for bit.
    #[inline]
    pub(crate) fn write_row(&self, row: usize, out: &mut [f32]) {
        match *self {
            QuantizedRows::Int8 { codes, scales, dim } => {
                let (Some(codes), Some(&scale), Some(out)) = (
                    codes.get(row * dim..(row + 1) * dim),
                    scales.get(row),
                    out.get_mut(..dim),
                ) else {
                    return;
                };
                // XLA computes Keras' `q / s` as `q * (1 / s)`.
                let inverse = 1.0 / scale;
                for (o, &q) in out.iter_mut().zip(codes) {
                    *o = f32::from(q) * inverse;
                }
            }
            QuantizedRows::Int4 {
                packed,
                scales,
                dim,
            } => {
                let width = packed_len(dim);
                let (Some(bytes), Some(&scale), Some(out)) = (
                    packed.get(row * width..(row + 1) * width),
                    scales.get(row),
                    out.get_mut(..dim),
                ) else {
                    return;
                };
                decode_int4(bytes, out, 0.0, 1.0 / scale);
            }
            QuantizedRows::Int4Grouped {
                packed,
                scales,
                zeros,
                groups,
                column_groups,
                block,
            } => {
                let dim = column_groups.len();
                let width = packed_len(dim);
                let (Some(bytes), Some(scales), Some(zeros), Some(out)) = (
                    packed.get(row * width..(row + 1) * width),
                    scales.get(row * groups..(row + 1) * groups),
                    zeros.get(row * groups..(row + 1) * groups),
                    out.get_mut(..dim),
                ) else {
                    return;
                };
                match block {
                    Some(block) if block % 2 == 0 => {
                        for ((out, bytes), (&s, &z)) in out
                            .chunks_mut(block)
                            .zip(bytes.chunks(block / 2))
                            .zip(scales.iter().zip(zeros))
                        {
                            decode_int4(bytes, out, f32::from(z), s);
                        }
                    }
                    _ => {
                        for (c, (o, &g)) in out.iter_mut().zip(column_groups).enumerate() {
                            let (Some(&s), Some(&z)) = (scales.get(g), zeros.get(g)) else {
                                return;
                            };
                            *o = (f32::from(unpack_int4_at(bytes, c)) - f32::from(z)) * s;
                        }
                    }
                }
            }
            QuantizedRows::Half { bits, dtype, dim } => {
                let (Some(bits), Some(out)) =
                    (bits.get(row * dim..(row + 1) * dim), out.get_mut(..dim))
                else {
                    return;
                };
                match dtype {
                    TableDType::BFloat16 => {
                        // A bfloat16 is the upper half of a float32.
                        for (o, &b) in out.iter_mut().zip(bits) {
                            *o = f32::from_bits(u32::from(b) << 16);
                        }
                    }
                    _ => {
                        use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
                        let halves: &[half::f16] = bits.reinterpret_cast();
                        halves.convert_to_f32_slice(out);
                    }
                }
            }
        }
    }
}

/// The two int4 codes of each byte value (low nibble first), as float32.
const INT4_PAIRS: [[f32; 2]; 256] = {
    let mut pairs = [[0.0f32; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [nibble(byte & 0x0F), nibble(byte >> 4)];
        byte += 1;
    }
    pairs
};

/// A 4-bit two's-complement code as float32.
const fn nibble(bits: usize) -> f32 {
    ((bits ^ 8) as i32 - 8) as f32
}

/// Decodes the packed codes `bytes` into `out` (`out.len()` codes, the last byte's high
/// nibble unused when that is odd) as `(q - zero) * factor`: per-channel int4 is
/// `zero = 0, factor = 1 / s` (`q - 0` is `q` exactly), grouped int4 `zero = z, factor = s`.
#[inline]
fn decode_int4(bytes: &[i8], out: &mut [f32], zero: f32, factor: f32) {
    let last_byte = bytes.get(out.len() / 2).copied();
    let mut pairs = out.chunks_exact_mut(2);
    for (pair, &byte) in pairs.by_ref().zip(bytes) {
        let [low, high] = INT4_PAIRS[usize::from(byte as u8)];
        if let [a, b] = pair {
            *a = (low - zero) * factor;
            *b = (high - zero) * factor;
        }
    }
    if let ([last], Some(byte)) = (pairs.into_remainder(), last_byte) {
        *last = (INT4_PAIRS[usize::from(byte as u8)][0] - zero) * factor;
    }
}

/// The float32 value of half-precision `bits` (exact).
#[inline]
pub(crate) fn half_to_f32(bits: u16, dtype: TableDType) -> f32 {
    match dtype {
        TableDType::BFloat16 => half::bf16::from_bits(bits).to_f32(),
        _ => half::f16::from_bits(bits).to_f32(),
    }
}

/// `value` rounded to the nearest value of the half-precision `dtype` (ties to even) and
/// widened back: Keras' `cast(x, "float16")` seen in float32. A value beyond the type's range
/// becomes an infinity, as in Keras.
#[inline]
pub(crate) fn round_to_half(value: f32, dtype: TableDType) -> f32 {
    match dtype {
        TableDType::BFloat16 => half::bf16::from_f32(value).to_f32(),
        TableDType::Float16 => half::f16::from_f32(value).to_f32(),
        TableDType::Float32 => value,
    }
}

/// `value` rounded to the nearest half-precision value (ties to even), as NumPy's and JAX's
/// `astype`; `None` when it overflows to an infinity (a table holds finite values).
#[inline]
pub(crate) fn f32_to_half(value: f32, dtype: TableDType) -> Option<u16> {
    let (bits, finite) = match dtype {
        TableDType::BFloat16 => {
            let h = half::bf16::from_f32(value);
            (h.to_bits(), h.is_finite())
        }
        _ => {
            let h = half::f16::from_f32(value);
            (h.to_bits(), h.is_finite())
        }
    };
    finite.then_some(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int8_codes_round_half_to_even_and_clip() {
        // max 1 -> scale 127 / (1 + 1e-7) in float32.
        let table = [1.0f32, -1.0, 0.5, 0.0];
        let (codes, scales) = abs_max_rows(&table, 4, (-127, 127), String::new).unwrap();
        assert_eq!(scales[0], 127.0f32 / (1.0f32 + 1e-7f32));
        assert_eq!(codes, vec![127, -127, 63, 0]);
        // An all-zero row: scale 127 / 1e-7, codes 0.
        let (codes, scales) = abs_max_rows(&[0.0; 3], 3, (-127, 127), String::new).unwrap();
        assert_eq!(codes, vec![0, 0, 0]);
        assert_eq!(scales[0], 127.0f32 / 1e-7f32);
    }

    #[test]
    fn int4_packs_the_first_code_in_the_low_nibble() {
        // Keras' docstring example: [[-3, 7, 2], [-8, 1, 0]] -> [[125, 2], [24, 0]].
        let packed = pack_int4(&[-3, 7, 2, -8, 1, 0], 3, String::new).unwrap();
        assert_eq!(packed, vec![125, 2, 24, 0]);
        let row = &packed[..2];
        let back: Vec<i8> = (0..3).map(|c| unpack_int4_at(row, c)).collect();
        assert_eq!(back, vec![-3, 7, 2]);
    }

    #[test]
    fn grouped_pads_the_last_group_with_zeros() {
        // One row of 3 in groups of 2: the second group [5] is padded to [5, 0].
        let g = grouped_rows(&[-1.0, 3.0, 5.0], 3, 2, String::new).unwrap();
        assert_eq!(g.scales.len(), 2);
        assert_eq!(g.scales[1], (5.0f32 + 1e-7) / 15.0);
        assert_eq!(g.zeros[1], -8);
        let rows = QuantizedRows::Int4Grouped {
            packed: &pack_int4(&g.codes, 3, String::new).unwrap(),
            scales: &g.scales,
            zeros: &g.zeros,
            groups: 2,
            column_groups: &[0, 0, 1],
            block: Some(2),
        };
        let mut out = [0.0f32; 3];
        rows.write_row(0, &mut out);
        for (got, want) in out.iter().zip([-1.0f32, 3.0, 5.0]) {
            assert!((got - want).abs() < 0.2, "{out:?}");
        }
    }

    #[test]
    fn row_decoding_equals_the_per_value_formulas_bit_for_bit() {
        // Every byte value, in rows of odd and even length.
        let bytes: Vec<i8> = (0..=255u8).map(|b| b as i8).collect();
        for dim in [511usize, 512] {
            let rows = QuantizedRows::Int4 {
                packed: &bytes,
                scales: &[0.37],
                dim,
            };
            let mut out = vec![0.0f32; dim];
            rows.write_row(0, &mut out);
            for (c, &o) in out.iter().enumerate() {
                let want = f32::from(unpack_int4_at(&bytes, c)) * (1.0 / 0.37f32);
                assert_eq!(o.to_bits(), want.to_bits(), "dim {dim}, column {c}");
            }
        }
        // Grouped: a group at a time (Keras' g_idx) and column by column (any other g_idx)
        // agree with `(q - z) * s`.
        let dim = 511;
        let block = 128;
        let canonical: Vec<usize> = (0..dim).map(|c| c / block).collect();
        let scales = [0.5f32, 0.25, 1.5, 3.0];
        let zeros = [-8i8, 0, 7, 3];
        for block in [Some(block), None] {
            let rows = QuantizedRows::Int4Grouped {
                packed: &bytes,
                scales: &scales,
                zeros: &zeros,
                groups: 4,
                column_groups: &canonical,
                block,
            };
            let mut out = vec![0.0f32; dim];
            rows.write_row(0, &mut out);
            for (c, &o) in out.iter().enumerate() {
                let g = c / 128;
                let want = (f32::from(unpack_int4_at(&bytes, c)) - f32::from(zeros[g])) * scales[g];
                assert_eq!(o.to_bits(), want.to_bits(), "{block:?}, column {c}");
            }
        }
        // Every finite half-precision value.
        for dtype in [TableDType::Float16, TableDType::BFloat16] {
            let bits: Vec<u16> = (0..=u16::MAX)
                .filter(|&b| half_to_f32(b, dtype).is_finite())
                .collect();
            let rows = QuantizedRows::Half {
                bits: &bits,
                dtype,
                dim: bits.len(),
            };
            let mut out = vec![0.0f32; bits.len()];
            rows.write_row(0, &mut out);
            for (&b, &o) in bits.iter().zip(&out) {
                assert_eq!(
                    o.to_bits(),
                    half_to_f32(b, dtype).to_bits(),
                    "{dtype} {b:#06x}"
                );
            }
        }
    }

    #[test]
    fn modes_parse_as_keras_resolves_them() {
        assert_eq!(
            "int8".parse::<QuantizationMode>().unwrap(),
            QuantizationMode::Int8
        );
        let int4: QuantizationMode = "int4".parse().unwrap();
        assert_eq!(int4.policy_name(), "int4/128_from_float32");
        let err = "int3".parse::<QuantizationMode>().unwrap_err();
        assert!(
            err.to_string().contains("Invalid quantization mode"),
            "{err}"
        );
        assert!("float8".parse::<QuantizationMode>().is_err());
        assert!(
            QuantizationMode::Int4 {
                block_size: Some(0)
            }
            .validate()
            .is_err()
        );
    }
}
