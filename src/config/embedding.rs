//! `Embedding` as Keras JSON: Keras 2's `Embedding.get_config()` field by field, plus, for a
//! quantized or half-precision table, Keras 3's `dtype` policy and `quantization_config` as
//! Keras 3.15.1 writes them (`int8_from_float32`, `int4/128_from_float32`, `float16`, ...).
//!
//! PyTorch's `nn.Embedding` options, which Keras lacks, are written only when set, under
//! PyTorch's names: `padding_idx` (counted from the start, as PyTorch stores it),
//! `max_norm`, `norm_type` (with `max_norm`, or when not 2; `"inf"` for infinity) and
//! `scale_grad_by_freq` (when true). Keras would refuse a config holding them; ndkeras reads
//! them back.
//!
//! LoRA (Keras 3): `lora_rank` and `lora_alpha` are written when the layer has LoRA enabled or
//! asked for ([`Embedding::with_lora`]). Reading a config with `lora_rank` gives a layer that
//! enables LoRA at its build with `lora_alpha = lora_rank`, as Keras 3.15.1's `build` does
//! (it calls `enable_lora(lora_rank)`, leaving the configured `lora_alpha` unused).

use serde_json::{Map, Value, json};

use crate::config::{
    KerasConfig, bool_or, common, common_config, constraint_config, constraint_from_config,
    initializer_config, initializer_from_config, named, no_activity_regularizer,
    regularizer_config, regularizer_from_config, shape_from, usize_field,
};
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::layers::Embedding;
use crate::quantization::{QuantizationMode, TableDType};

impl Embedding {
    /// An embedding from its Keras config (Keras 2 or 3 `get_config()` output).
    ///
    /// Keras 2's `input_length` (a length, a list or `null`) is taken as written; when it is
    /// `null`, a `batch_input_shape` with known lengths gives them (Keras 2 writes the length
    /// in both places).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming a missing or invalid field;
    /// [`Error::UnknownName`] for an unknown initializer, regularizer or constraint.
    ///
    /// A Keras 3 dtype policy of a quantized layer (`QuantizedDTypePolicy` `int8`,
    /// `Int4DTypePolicy` `int4/<block_size>`, or the strings `int8_from_float32`,
    /// `int4_from_float32`, `int4/64_from_float32`) gives a layer that builds quantized
    /// variables ([`Embedding::quantization`]); as in Keras, an `Int4QuantizationConfig` in
    /// `quantization_config` decides the block size over the policy. `float16` and
    /// `bfloat16` policies give a half-precision table ([`Embedding::dtype`]).
    pub fn from_config(config: &Value) -> Result<Self> {
        let owner = "Embedding";
        let (dtype, quantization) = storage_from_config(config)?;
        let mut plain = config.clone();
        if let Some(map) = plain.as_object_mut() {
            map.insert("dtype".into(), json!("float32"));
        }
        let config = &plain;
        let (name, trainable) = common(config, owner)?;
        let (input_dim, output_dim) = (
            usize_field(config, "input_dim", owner)?,
            usize_field(config, "output_dim", owner)?,
        );
        let mut layer = named(
            name,
            || Embedding::new(input_dim, output_dim),
            Embedding::with_name,
        )
        .mask_zero(bool_or(config, "mask_zero", owner, false)?)
        .trainable(trainable);
        if let Some(init) = config
            .get("embeddings_initializer")
            .filter(|v| !v.is_null())
        {
            layer = layer.embeddings_initializer(initializer_from_config(init)?);
        }
        if let Some(r) =
            regularizer_from_config(config.get("embeddings_regularizer").unwrap_or(&Value::Null))?
        {
            layer = layer.embeddings_regularizer(r);
        }
        if let Some(c) =
            constraint_from_config(config.get("embeddings_constraint").unwrap_or(&Value::Null))?
        {
            layer = layer.embeddings_constraint(c);
        }
        no_activity_regularizer(config, owner)?;
        match config.get("input_length") {
            None | Some(Value::Null) => {
                // Keras 2 writes the input length into batch_input_shape as well.
                if let Some(shape) = config.get("batch_input_shape").filter(|v| !v.is_null()) {
                    let shape = shape_from(shape, "batch_input_shape", owner)?;
                    if let Some(lengths) = shape.get(1..).filter(|l| l.iter().any(Option::is_some))
                    {
                        layer = layer.input_length_per_axis(lengths.to_vec());
                    }
                }
            }
            Some(lengths @ Value::Array(_)) => {
                layer = layer.input_length_per_axis(shape_from(lengths, "input_length", owner)?);
            }
            Some(v) => {
                layer = layer.input_length(
                    v.as_u64()
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(|| {
                            Error::invalid_argument(
                                "Embedding config",
                                "input_length",
                                v,
                                "a length, a list, or null",
                            )
                        })?,
                )
            }
        }
        layer = torch_options_from_config(layer, config)?;
        if let Some(v) = config.get("lora_rank").filter(|v| !v.is_null()) {
            let rank = v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    Error::invalid_argument(
                        "Embedding config",
                        "lora_rank",
                        v,
                        "a positive integer, or null",
                    )
                })?;
            // Keras' `build` runs `enable_lora(lora_rank)` without `lora_alpha`, so the
            // layer it builds scales by `lora_rank / lora_rank`: `lora_alpha` is not used.
            if rank > 0 {
                layer = layer.with_lora(rank, None);
            }
        }
        layer = layer.dtype(dtype);
        if let Some(mode) = quantization {
            mode.validate()?;
            layer = layer.quantization(mode);
        }
        layer.validate()?;
        Ok(layer)
    }
}

/// PyTorch's options, which Keras does not have, under PyTorch's names: `padding_idx` (an
/// integer), `max_norm` (a number), `norm_type` (a number, or `"inf"`), `scale_grad_by_freq`
/// (a boolean); absent or `null` means the default.
fn torch_options_from_config(mut layer: Embedding, config: &Value) -> Result<Embedding> {
    let wrong = |field: &str, value: &Value, expected: &str| {
        Error::invalid_argument("Embedding config", field, value, expected)
    };
    let field = |name: &str| config.get(name).filter(|v| !v.is_null());
    if let Some(v) = field("padding_idx") {
        let p = v
            .as_i64()
            .and_then(|p| isize::try_from(p).ok())
            .ok_or_else(|| wrong("padding_idx", v, "an integer id, or null"))?;
        layer = layer.padding_idx(p);
    }
    if let Some(v) = field("max_norm") {
        let m = v
            .as_f64()
            .ok_or_else(|| wrong("max_norm", v, "a positive number, or null"))?;
        layer = layer.max_norm(m as f32);
    }
    if let Some(v) = field("norm_type") {
        let p = match v {
            Value::String(s) if matches!(s.as_str(), "inf" | "Infinity") => f32::INFINITY,
            _ => v
                .as_f64()
                .ok_or_else(|| wrong("norm_type", v, "a positive number, \"inf\", or null"))?
                as f32,
        };
        layer = layer.norm_type(p);
    }
    if let Some(v) = field("scale_grad_by_freq") {
        let scale = v
            .as_bool()
            .ok_or_else(|| wrong("scale_grad_by_freq", v, "true or false"))?;
        layer = layer.scale_grad_by_freq(scale);
    }
    Ok(layer)
}

/// The table type and quantization mode of a config's `dtype` and `quantization_config`.
fn storage_from_config(config: &Value) -> Result<(TableDType, Option<QuantizationMode>)> {
    let wrong = |field: &str, value: &Value, expected: &str| {
        Error::invalid_argument("Embedding config", field, value, expected)
    };
    let policy_expected = "a float32, float16 or bfloat16 policy, or a quantized one from float32 (int8_from_float32, int4/<block_size>_from_float32)";
    // The policy as (name, quantization mode) strings: "float16", or ("int4/128", source).
    let (name, source): (String, Option<String>) = match config.get("dtype") {
        None | Some(Value::Null) => ("float32".into(), None),
        Some(Value::String(s)) => match s.split_once("_from_") {
            Some((mode, source)) => (mode.to_string(), Some(source.to_string())),
            None => (s.clone(), None),
        },
        Some(policy) => {
            let inner = policy.get("config").unwrap_or(&Value::Null);
            match (
                inner.get("mode").and_then(Value::as_str),
                inner.get("name").and_then(Value::as_str),
            ) {
                (Some(mode), _) => (
                    mode.to_string(),
                    Some(
                        inner
                            .get("source_name")
                            .and_then(Value::as_str)
                            .unwrap_or("float32")
                            .to_string(),
                    ),
                ),
                (None, Some(name)) => match name.split_once("_from_") {
                    Some((mode, source)) => (mode.to_string(), Some(source.to_string())),
                    None => (name.to_string(), None),
                },
                (None, None) => return Err(wrong("dtype", policy, policy_expected)),
            }
        }
    };
    let dtype_value = || config.get("dtype").cloned().unwrap_or(Value::Null);
    let Some(source) = source else {
        let dtype = name
            .parse::<TableDType>()
            .map_err(|_| wrong("dtype", &dtype_value(), policy_expected))?;
        return Ok((dtype, None));
    };
    if source != "float32" {
        return Err(wrong(
            "dtype",
            &dtype_value(),
            "a quantized policy from float32 (ndkeras quantizes float32 tables only)",
        ));
    }
    let policy_block = |text: &str| -> Result<Option<usize>> {
        match text.parse::<i64>() {
            Ok(-1) => Ok(None),
            Ok(b) if b > 0 => Ok(usize::try_from(b).ok()),
            _ => Err(wrong(
                "dtype",
                &dtype_value(),
                "int4/<block_size> with block_size -1 (per-channel) or a positive integer",
            )),
        }
    };
    let mut mode = match name.split_once('/') {
        None if name == "int8" => QuantizationMode::Int8,
        // Keras' legacy `int4_from_float32` (a `QuantizedDTypePolicy`) is per-channel.
        None if name == "int4" => QuantizationMode::Int4 { block_size: None },
        Some(("int4", block)) => QuantizationMode::Int4 {
            block_size: policy_block(block)?,
        },
        _ => return Err(wrong("dtype", &dtype_value(), policy_expected)),
    };
    // Keras' `get_block_size_for_layer`: an Int4QuantizationConfig's block size wins.
    if let (QuantizationMode::Int4 { block_size }, Some(q)) = (
        &mut mode,
        config.get("quantization_config").filter(|q| {
            q.get("class_name").and_then(Value::as_str) == Some("Int4QuantizationConfig")
        }),
    ) {
        *block_size = match q.pointer("/config/block_size") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_i64() {
                Some(-1) => None,
                Some(b) if b > 0 => usize::try_from(b).ok(),
                _ => {
                    return Err(wrong(
                        "quantization_config.block_size",
                        v,
                        "null, -1, or a positive integer",
                    ));
                }
            },
        };
    }
    Ok((TableDType::Float32, Some(mode)))
}

/// Keras 3's dtype policy of a quantized or half-precision layer, as `get_config` writes it.
fn dtype_policy_config(dtype: TableDType, quantization: Option<QuantizationMode>) -> Value {
    match quantization {
        Some(QuantizationMode::Int8) => json!({
            "module": "keras.dtype_policies",
            "class_name": "QuantizedDTypePolicy",
            "config": {"mode": "int8", "source_name": "float32"},
            "registered_name": null
        }),
        Some(mode) => json!({
            "module": "keras.dtype_policies",
            "class_name": "Int4DTypePolicy",
            "config": {"mode": mode.policy_mode(), "source_name": "float32"},
            "registered_name": null
        }),
        None => json!({
            "module": "keras",
            "class_name": "DTypePolicy",
            "config": {"name": dtype.name()},
            "registered_name": null
        }),
    }
}

/// Keras 3's `quantization_config` of a quantized layer (`Int8QuantizationConfig()` with its
/// default activation quantizer, `Int4QuantizationConfig(block_size=...)`).
fn quantization_config(mode: QuantizationMode) -> Value {
    match mode {
        QuantizationMode::Int8 => json!({
            "module": "keras.quantizers",
            "class_name": "Int8QuantizationConfig",
            "config": {
                "weight_quantizer": null,
                "activation_quantizer": {
                    "module": "keras.quantizers",
                    "class_name": "AbsMaxQuantizer",
                    "config": {"value_range": [-127, 127], "epsilon": 1e-7, "output_dtype": "int8"},
                    "registered_name": null
                }
            },
            "registered_name": null
        }),
        QuantizationMode::Int4 { block_size } => json!({
            "module": "keras.quantizers",
            "class_name": "Int4QuantizationConfig",
            "config": {
                "weight_quantizer": null,
                "activation_quantizer": null,
                "block_size": block_size
            },
            "registered_name": null
        }),
    }
}

impl KerasConfig for Embedding {
    /// Keras 2's fields: `name`, `trainable`, `dtype`, `batch_input_shape` (an Embedding
    /// always declares one), `input_dim`, `output_dim`, the initializer, regularizer and
    /// constraint of `embeddings`, `activity_regularizer` (always `null`), `mask_zero` and
    /// `input_length` (a length, a list for several axes, or `null`). A quantized or
    /// half-precision layer writes Keras 3's `dtype` policy instead of `"float32"`, and a
    /// quantized one Keras 3's `quantization_config` too. PyTorch's options follow when set
    /// (see the module docs).
    fn get_config(&self) -> Value {
        let c = self.config();
        let mut map: Map<String, Value> = common_config(self.name(), c.trainable);
        if let Some(shape) = self.batch_input_shape() {
            map.insert("batch_input_shape".into(), json!(shape));
        }
        map.insert("input_dim".into(), json!(c.input_dim));
        map.insert("output_dim".into(), json!(c.output_dim));
        map.insert(
            "embeddings_initializer".into(),
            initializer_config(&c.embeddings_initializer),
        );
        map.insert(
            "embeddings_regularizer".into(),
            regularizer_config(c.embeddings_regularizer),
        );
        map.insert("activity_regularizer".into(), Value::Null);
        map.insert(
            "embeddings_constraint".into(),
            constraint_config(c.embeddings_constraint),
        );
        map.insert("mask_zero".into(), json!(c.mask_zero));
        let input_length = match c.input_length.as_deref() {
            None => Value::Null,
            Some([Some(n)]) => json!(n),
            Some(lengths) => json!(lengths),
        };
        map.insert("input_length".into(), input_length);
        if c.quantization.is_some() || c.dtype != TableDType::Float32 {
            map.insert("dtype".into(), dtype_policy_config(c.dtype, c.quantization));
        }
        if let Some(mode) = c.quantization {
            map.insert("quantization_config".into(), quantization_config(mode));
        }
        // PyTorch's options, only when set (Keras has none of them).
        if let Some(row) = self.padding_index() {
            map.insert("padding_idx".into(), json!(row));
        }
        if let Some(max_norm) = c.max_norm {
            map.insert("max_norm".into(), json!(max_norm));
        }
        if c.max_norm.is_some() || c.norm_type != 2.0 {
            let norm_type = if c.norm_type == f32::INFINITY {
                json!("inf")
            } else {
                json!(c.norm_type)
            };
            map.insert("norm_type".into(), norm_type);
        }
        if c.scale_grad_by_freq {
            map.insert("scale_grad_by_freq".into(), json!(true));
        }
        // Keras 3 writes LoRA's settings when `lora_rank` is set.
        if let (Some(rank), Some(alpha)) = (self.lora_rank(), self.lora_alpha()) {
            map.insert("lora_rank".into(), json!(rank));
            map.insert("lora_alpha".into(), json!(alpha));
        }
        Value::Object(map)
    }
}
