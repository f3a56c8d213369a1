//! Keras JSON: what Keras 2's `get_config()` and `model.to_json()` write, field by field, so
//! that a config written by Keras loads here and a config written here loads in Keras.
//!
//! This module knows the layers; the layers do not know it. Each layer family has a file:
//! `embedding`, `bag` (`EmbeddingBag`, `EmbedReduce`), `dense`, `weightless` (pooling, flatten, dropout), `merge` (the merge layers
//! and `Reshape`), `position` (KerasHub's position layers, with KerasHub's keys), `reversible` (Keras 3's
//! `ReversibleEmbedding`), `preprocessing` (`TextVectorization`, `StringLookup`,
//! `IntegerLookup`, `Hashing`, with tf_keras 2.21's keys; an adapted vocabulary is not in a
//! config, as in tf_keras), `model`
//! ([`Sequential::to_json`](crate::model::Sequential::to_json) and
//! [`Sequential::from_json`](crate::model::Sequential::from_json)) and `functional`
//! ([`Model::to_json`](crate::model::Model::to_json) and
//! [`Model::from_json`](crate::model::Model::from_json), Keras 2's `Functional` format). Each file gives its layers
//! an inherent `from_config(&Value)` (such as [`Embedding::from_config`]) and an
//! implementation of [`KerasConfig`], whose [`get_config`](KerasConfig::get_config) is
//! also implemented for `dyn Layer` (it looks at the concrete type), so
//! `layer.get_config()` works on a concrete layer, a `&dyn Layer` and a `Box<dyn Layer>`
//! alike once [`KerasConfig`] is in scope (it is in the [`prelude`](crate::prelude)).
//! [`layer_from_config`] dispatches on Keras' `class_name`.
//!
//! What is guaranteed: every layer's `get_config` read back by [`layer_from_config`] gives a
//! layer whose `get_config` is the same JSON value; a Keras 2 `Embedding` config is written
//! back identically; Keras 3 spellings (a `DTypePolicy` dict for `dtype`, extra keys such as
//! `quantization_config`) are accepted when reading. Keys ndkeras does not know are ignored
//! when reading and not written back.
//!
//! ```
//! use ndkeras::prelude::*;
//!
//! let layer = Embedding::new(100, 8).mask_zero(true).with_name("words");
//! let config = layer.get_config();
//! assert_eq!(config["mask_zero"], true);
//! let back = Embedding::from_config(&config)?;
//! assert_eq!(back.get_config(), config);
//! # Ok::<(), ndkeras::Error>(())
//! ```

use std::any::Any;

use serde_json::{Map, Value, json};

use crate::constraints::{Axes, Constraint};
use crate::error::{Error, Result};
use crate::initializers::{Distribution, FanMode, Initializer};
use crate::layer::Layer;
use crate::layers::{
    Add, Average, Concatenate, Dense, Dot, Dropout, EmbedReduce, Embedding, EmbeddingBag, Flatten,
    GlobalAveragePooling1D, Maximum, Minimum, Multiply, PositionEmbedding, Reshape,
    ReversibleEmbedding, RotaryEmbedding, SinePositionEncoding, Subtract,
    TokenAndPositionEmbedding,
};
use crate::preprocessing::{Hashing, IntegerLookup, StringLookup, TextVectorization};
use crate::regularizers::Regularizer;

mod bag;
mod dense;
mod embedding;
mod functional;
mod merge;
mod model;
mod position;
mod preprocessing;
mod reversible;
mod weightless;

/// A layer's settings as Keras 2's `get_config()` writes them (weights are not part of it).
///
/// Implemented for every layer of [`crate::layers`] and for `dyn Layer`, which looks at the
/// concrete type. In the [`prelude`](crate::prelude), so `layer.get_config()` needs no
/// import of its own.
pub trait KerasConfig {
    /// The config as a JSON object, with Keras 2's field names and forms.
    fn get_config(&self) -> Value;
}

impl KerasConfig for dyn Layer {
    /// The concrete layer's [`KerasConfig::get_config`]. A layer type this module does not
    /// know (one defined outside ndkeras) gets the fields every Keras layer has: `name`,
    /// `trainable` and `dtype`, as Keras' base `Layer.get_config()` writes them.
    fn get_config(&self) -> Value {
        let any: &dyn Any = self;
        if let Some(layer) = any.downcast_ref::<Embedding>() {
            layer.get_config()
        } else if let Some(layer) = any.downcast_ref::<Dense>() {
            layer.get_config()
        } else if let Some(layer) = any.downcast_ref::<GlobalAveragePooling1D>() {
            layer.get_config()
        } else if let Some(layer) = any.downcast_ref::<Flatten>() {
            layer.get_config()
        } else if let Some(layer) = any.downcast_ref::<Dropout>() {
            layer.get_config()
        } else if let Some(layer) = any.downcast_ref::<Add>() {
            layer.get_config()
        } else if let Some(layer) = any.downcast_ref::<Subtract>() {
            layer.get_config()
        } else if let Some(layer) = any.downcast_ref::<Multiply>() {
            layer.get_config()
        } else if let Some(layer) = any.downcast_ref::<Average>() {
            layer.get_config()
        } else if let Some(layer) = any.downcast_ref::<Maximum>() {
            layer.get_config()
        } else if let Some(layer) = any.downcast_ref::<Minimum>() {
            layer.get_config()
        } else if let Some(layer) = any.downcast_ref::<Concatenate>() {
            layer.get_config()
        } else if let Some(layer) = any.downcast_ref::<Dot>() {
            layer.get_config()
        } else if let Some(layer) = any.downcast_ref::<Reshape>() {
            layer.get_config()
        } else if let Some(layer) = any.downcast_ref::<PositionEmbedding>() {
            layer.get_config()
        } else if let Some(layer) = any.downcast_ref::<SinePositionEncoding>() {
            layer.get_config()
        } else if let Some(layer) = any.downcast_ref::<RotaryEmbedding>() {
            layer.get_config()
        } else if let Some(layer) = any.downcast_ref::<TokenAndPositionEmbedding>() {
            layer.get_config()
        } else if let Some(layer) = any.downcast_ref::<EmbeddingBag>() {
            layer.get_config()
        } else if let Some(layer) = any.downcast_ref::<EmbedReduce>() {
            layer.get_config()
        } else if let Some(layer) = any.downcast_ref::<ReversibleEmbedding>() {
            layer.get_config()
        } else if let Some(layer) = any.downcast_ref::<TextVectorization>() {
            layer.get_config()
        } else if let Some(layer) = any.downcast_ref::<StringLookup>() {
            layer.get_config()
        } else if let Some(layer) = any.downcast_ref::<IntegerLookup>() {
            layer.get_config()
        } else if let Some(layer) = any.downcast_ref::<Hashing>() {
            layer.get_config()
        } else {
            Value::Object(common_config(self.name(), self.is_trainable()))
        }
    }
}

/// The layer classes [`layer_from_config`] knows.
pub const LAYER_CLASSES: &[&str] = &[
    "Embedding",
    "Dense",
    "GlobalAveragePooling1D",
    "Flatten",
    "Dropout",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Concatenate",
    "Dot",
    "Reshape",
    "PositionEmbedding",
    "SinePositionEncoding",
    "RotaryEmbedding",
    "TokenAndPositionEmbedding",
    "EmbeddingBag",
    "EmbedReduce",
    "ReversibleEmbedding",
    "TextVectorization",
    "StringLookup",
    "IntegerLookup",
    "Hashing",
];

/// Builds a layer from `{"class_name": ..., "config": {...}}`.
///
/// # Errors
/// [`Error::InvalidArgument`] for an unknown class (listing the known ones), a missing or
/// ill-typed field (named), or an invalid value.
pub fn layer_from_config(value: &Value) -> Result<Box<dyn Layer>> {
    /// Boxes the layer.
    struct Boxed;
    impl LayerSink for Boxed {
        type Output = Box<dyn Layer>;
        fn take<L: Layer>(self, layer: L) -> Result<Box<dyn Layer>> {
            Ok(Box::new(layer))
        }
    }
    dispatch_layer_config(value, Boxed)
}

/// Receives the concrete layer [`dispatch_layer_config`] makes (so that a caller that needs
/// the concrete type, such as `Graph::add`, gets it without a second dispatch on the class).
pub(crate) trait LayerSink {
    /// What the sink makes of the layer.
    type Output;
    /// Takes the layer.
    fn take<L: Layer>(self, layer: L) -> Result<Self::Output>;
}

/// Builds the layer `{"class_name": ..., "config": {...}}` describes and hands it to `sink`.
/// The one place that maps Keras' class names to layer types.
pub(crate) fn dispatch_layer_config<S: LayerSink>(value: &Value, sink: S) -> Result<S::Output> {
    let class = str_field(value, "class_name", "layer")?;
    let config = value
        .get("config")
        .ok_or_else(|| missing("layer", "config"))?;
    match class {
        "Embedding" => sink.take(Embedding::from_config(config)?),
        "Dense" => sink.take(Dense::from_config(config)?),
        "GlobalAveragePooling1D" => sink.take(GlobalAveragePooling1D::from_config(config)?),
        "Flatten" => sink.take(Flatten::from_config(config)?),
        "Dropout" => sink.take(Dropout::from_config(config)?),
        "Add" => sink.take(Add::from_config(config)?),
        "Subtract" => sink.take(Subtract::from_config(config)?),
        "Multiply" => sink.take(Multiply::from_config(config)?),
        "Average" => sink.take(Average::from_config(config)?),
        "Maximum" => sink.take(Maximum::from_config(config)?),
        "Minimum" => sink.take(Minimum::from_config(config)?),
        "Concatenate" => sink.take(Concatenate::from_config(config)?),
        "Dot" => sink.take(Dot::from_config(config)?),
        "Reshape" => sink.take(Reshape::from_config(config)?),
        "PositionEmbedding" => sink.take(PositionEmbedding::from_config(config)?),
        "SinePositionEncoding" => sink.take(SinePositionEncoding::from_config(config)?),
        "RotaryEmbedding" => sink.take(RotaryEmbedding::from_config(config)?),
        "TokenAndPositionEmbedding" => sink.take(TokenAndPositionEmbedding::from_config(config)?),
        "EmbeddingBag" => sink.take(EmbeddingBag::from_config(config)?),
        "EmbedReduce" => sink.take(EmbedReduce::from_config(config)?),
        "ReversibleEmbedding" => sink.take(ReversibleEmbedding::from_config(config)?),
        "TextVectorization" => sink.take(TextVectorization::from_config(config)?),
        "StringLookup" => sink.take(StringLookup::from_config(config)?),
        "IntegerLookup" => sink.take(IntegerLookup::from_config(config)?),
        "Hashing" => sink.take(Hashing::from_config(config)?),
        other => Err(Error::UnknownName {
            kind: "layer class",
            name: other.to_string(),
            valid: LAYER_CLASSES.to_vec(),
        }),
    }
}

/// `{"class_name": ..., "config": ...}` as Keras nests a layer in a model config.
fn wrap(class_name: &str, config: Value) -> Value {
    // KerasHub's layers are registered objects of their own modules (Keras 3's
    // `serialize_keras_object`); Keras' own layers live in `keras.layers`.
    let hub_module = match class_name {
        "PositionEmbedding" => Some("position_embedding"),
        "SinePositionEncoding" => Some("sine_position_encoding"),
        "RotaryEmbedding" => Some("rotary_embedding"),
        "TokenAndPositionEmbedding" => Some("token_and_position_embedding"),
        _ => None,
    };
    // keras-rs' EmbedReduce is registered the same way; PyTorch's EmbeddingBag has no Keras
    // class, so it is named as ndkeras' own.
    let registered = match class_name {
        "EmbedReduce" => Some(("keras_rs.src.layers.embedding.embed_reduce", "keras_rs")),
        "EmbeddingBag" => Some(("ndkeras.layers", "ndkeras")),
        _ => None,
    };
    if let Some((module, package)) = registered {
        return json!({
            "module": module,
            "class_name": class_name,
            "config": config,
            "registered_name": format!("{package}>{class_name}"),
        });
    }
    match hub_module {
        Some(module) => json!({
            "module": format!("keras_hub.src.layers.modeling.{module}"),
            "class_name": class_name,
            "config": config,
            "registered_name": format!("keras_hub>{class_name}"),
        }),
        None => {
            json!({"module": "keras.layers", "class_name": class_name, "config": config, "registered_name": null})
        }
    }
}

fn missing(owner: &str, field: &str) -> Error {
    Error::invalid_argument(
        format!("{owner} config"),
        field,
        "missing",
        "the field to be present",
    )
}

fn wrong(owner: &str, field: &str, value: &Value, expected: &str) -> Error {
    Error::invalid_argument(format!("{owner} config"), field, value, expected)
}

fn str_field<'a>(value: &'a Value, field: &str, owner: &str) -> Result<&'a str> {
    let v = value.get(field).ok_or_else(|| missing(owner, field))?;
    v.as_str().ok_or_else(|| wrong(owner, field, v, "a string"))
}

fn usize_field(value: &Value, field: &str, owner: &str) -> Result<usize> {
    let v = value.get(field).ok_or_else(|| missing(owner, field))?;
    v.as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| wrong(owner, field, v, "a non-negative integer"))
}

fn f64_field(value: &Value, field: &str, owner: &str) -> Result<f64> {
    let v = value.get(field).ok_or_else(|| missing(owner, field))?;
    v.as_f64().ok_or_else(|| wrong(owner, field, v, "a number"))
}

/// An optional boolean with a default (Keras omits some).
fn bool_or(value: &Value, field: &str, owner: &str, default: bool) -> Result<bool> {
    match value.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| wrong(owner, field, v, "true or false")),
    }
}

/// `make()`, then named `name` if the config gives one. As in Keras, an explicit name does
/// not advance the counter of automatic names (`embedding`, `embedding_1`, ...).
fn named<T>(
    name: Option<String>,
    make: impl FnOnce() -> T,
    rename: impl FnOnce(T, String) -> T,
) -> T {
    match name {
        Some(name) => crate::layer::with_explicit_name(|| rename(make(), name)),
        None => make(),
    }
}

/// Refuses a non-null `activity_regularizer` (ndkeras has none).
fn no_activity_regularizer(value: &Value, owner: &str) -> Result<()> {
    if value
        .get("activity_regularizer")
        .is_some_and(|v| !v.is_null())
    {
        return Err(Error::invalid_argument(
            format!("{owner} config"),
            "activity_regularizer",
            "set",
            "null (activity regularizers are not supported)",
        ));
    }
    Ok(())
}

/// The common fields: `name`, `trainable`, and `dtype` (which must be float32).
fn common(value: &Value, owner: &str) -> Result<(Option<String>, bool)> {
    if !value.is_object() {
        return Err(wrong(owner, "config", value, "a JSON object"));
    }
    let name = match value.get("name") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_str()
                .ok_or_else(|| wrong(owner, "name", v, "a string"))?
                .to_string(),
        ),
    };
    let trainable = bool_or(value, "trainable", owner, true)?;
    let dtype = match value.get("dtype") {
        None | Some(Value::Null) => "float32",
        Some(Value::String(s)) => s.as_str(),
        // Keras 3: {"class_name": "DTypePolicy", "config": {"name": "float32"}}
        Some(policy) => policy
            .pointer("/config/name")
            .and_then(Value::as_str)
            .unwrap_or("unknown"),
    };
    if dtype != "float32" {
        return Err(wrong(owner, "dtype", &json!(dtype), "\"float32\""));
    }
    Ok((name, trainable))
}

/// The common fields of a layer's config, as Keras 2 writes them.
fn common_config(name: &str, trainable: bool) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("name".into(), json!(name));
    map.insert("trainable".into(), json!(trainable));
    map.insert("dtype".into(), json!("float32"));
    map
}

/// A shape with `null` for unknown dimensions.
fn shape_from(value: &Value, field: &str, owner: &str) -> Result<Vec<Option<usize>>> {
    let list = value
        .as_array()
        .ok_or_else(|| wrong(owner, field, value, "a list of lengths or nulls"))?;
    list.iter()
        .map(|d| match d {
            Value::Null => Ok(None),
            v => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| wrong(owner, field, value, "a list of lengths or nulls")),
        })
        .collect()
}

/// An initializer as Keras serializes it.
pub fn initializer_config(initializer: &Initializer) -> Value {
    let seed = |s: Option<u64>| s.map_or(Value::Null, |s| json!(s));
    let config = match initializer {
        Initializer::Zeros | Initializer::Ones => json!({}),
        Initializer::Constant(value) if value.ndim() == 0 || value.len() == 1 => {
            json!({"value": value.iter().copied().next().unwrap_or_default()})
        }
        Initializer::Constant(value) => json!({"value": array_to_json(value)}),
        Initializer::RandomUniform {
            minval,
            maxval,
            seed: s,
        } => json!({"minval": minval, "maxval": maxval, "seed": seed(*s)}),
        Initializer::RandomNormal {
            mean,
            stddev,
            seed: s,
        }
        | Initializer::TruncatedNormal {
            mean,
            stddev,
            seed: s,
        } => {
            json!({"mean": mean, "stddev": stddev, "seed": seed(*s)})
        }
        Initializer::VarianceScaling {
            scale,
            mode,
            distribution,
            seed: s,
        } => json!({
            "scale": scale,
            "mode": match mode { FanMode::FanIn => "fan_in", FanMode::FanOut => "fan_out", FanMode::FanAvg => "fan_avg" },
            "distribution": match distribution {
                Distribution::TruncatedNormal => "truncated_normal",
                Distribution::UntruncatedNormal => "untruncated_normal",
                Distribution::Uniform => "uniform",
            },
            "seed": seed(*s),
        }),
        Initializer::Orthogonal { gain, seed: s } => json!({"gain": gain, "seed": seed(*s)}),
        Initializer::Identity { gain } => json!({"gain": gain}),
        other => json!({"seed": seed(other.seed())}),
    };
    json!({"module": "keras.initializers", "class_name": initializer.class_name(), "config": config, "registered_name": null})
}

fn array_to_json(array: &ndarray::ArrayD<f32>) -> Value {
    fn nest(view: ndarray::ArrayViewD<'_, f32>) -> Value {
        if view.ndim() == 0 {
            return json!(view.iter().copied().next().unwrap_or_default());
        }
        Value::Array(view.outer_iter().map(nest).collect())
    }
    nest(array.view())
}

fn array_from_json(value: &Value) -> Option<ndarray::ArrayD<f32>> {
    let mut shape = Vec::new();
    let mut probe = value;
    while let Value::Array(items) = probe {
        shape.push(items.len());
        match items.first() {
            Some(first) => probe = first,
            None => break,
        }
    }
    let mut values = Vec::new();
    fn flatten(v: &Value, out: &mut Vec<f32>) -> bool {
        match v {
            Value::Array(items) => items.iter().all(|i| flatten(i, out)),
            n => n.as_f64().map(|x| out.push(x as f32)).is_some(),
        }
    }
    if !flatten(value, &mut values) {
        return None;
    }
    ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape), values).ok()
}

/// An initializer from its Keras config (or a plain Keras name such as `"uniform"`).
///
/// # Errors
/// [`Error::UnknownName`] for an unknown class; [`Error::InvalidArgument`] for a missing field.
pub fn initializer_from_config(value: &Value) -> Result<Initializer> {
    if let Some(name) = value.as_str() {
        return name.parse();
    }
    let class = str_field(value, "class_name", "initializer")?;
    let empty = json!({});
    let config = value.get("config").unwrap_or(&empty);
    let seed = config.get("seed").and_then(Value::as_u64);
    let number =
        |field: &str, default: f64| config.get(field).and_then(Value::as_f64).unwrap_or(default);
    let mut init = match class {
        "RandomUniform" => Initializer::RandomUniform {
            minval: number("minval", -0.05),
            maxval: number("maxval", 0.05),
            seed,
        },
        "RandomNormal" => Initializer::RandomNormal {
            mean: number("mean", 0.0),
            stddev: number("stddev", 0.05),
            seed,
        },
        "TruncatedNormal" => Initializer::TruncatedNormal {
            mean: number("mean", 0.0),
            stddev: number("stddev", 0.05),
            seed,
        },
        "VarianceScaling" => Initializer::VarianceScaling {
            scale: number("scale", 1.0),
            mode: config
                .get("mode")
                .and_then(Value::as_str)
                .unwrap_or("fan_in")
                .parse()?,
            distribution: config
                .get("distribution")
                .and_then(Value::as_str)
                .unwrap_or("truncated_normal")
                .parse()?,
            seed,
        },
        "Constant" => match config.get("value") {
            None | Some(Value::Null) => Initializer::constant(0.0),
            Some(v) => match v.as_f64() {
                Some(x) => Initializer::constant(x as f32),
                None => Initializer::Constant(array_from_json(v).ok_or_else(|| {
                    wrong(
                        "Constant initializer",
                        "value",
                        v,
                        "a number or a nested list of numbers",
                    )
                })?),
            },
        },
        "Orthogonal" => Initializer::Orthogonal {
            gain: number("gain", 1.0),
            seed,
        },
        "Identity" => Initializer::Identity {
            gain: number("gain", 1.0),
        },
        other => other.parse()?,
    };
    if let Some(seed) = seed {
        init = init.with_seed(seed);
    }
    Ok(init)
}

/// A regularizer as Keras serializes it (`None` -> `null`).
pub fn regularizer_config(regularizer: Option<Regularizer>) -> Value {
    match regularizer {
        None => Value::Null,
        Some(Regularizer::L1(l1)) => {
            json!({"module": "keras.regularizers", "class_name": "L1", "config": {"l1": l1}, "registered_name": null})
        }
        Some(Regularizer::L2(l2)) => {
            json!({"module": "keras.regularizers", "class_name": "L2", "config": {"l2": l2}, "registered_name": null})
        }
        Some(Regularizer::L1L2 { l1, l2 }) => {
            json!({"module": "keras.regularizers", "class_name": "L1L2", "config": {"l1": l1, "l2": l2}, "registered_name": null})
        }
    }
}

/// A regularizer from its Keras config (`null` -> `None`).
///
/// # Errors
/// [`Error::UnknownName`] for an unknown class.
pub fn regularizer_from_config(value: &Value) -> Result<Option<Regularizer>> {
    if value.is_null() {
        return Ok(None);
    }
    let class = match value.as_str() {
        Some(name) => name,
        None => str_field(value, "class_name", "regularizer")?,
    };
    let factor = |field: &str| {
        value
            .pointer(&format!("/config/{field}"))
            .and_then(Value::as_f64)
            .unwrap_or(0.01) as f32
    };
    Ok(Some(match class {
        "L1" | "l1" => Regularizer::L1(factor("l1")),
        "L2" | "l2" => Regularizer::L2(factor("l2")),
        "L1L2" | "l1_l2" => Regularizer::L1L2 {
            l1: factor("l1"),
            l2: factor("l2"),
        },
        other => {
            return Err(Error::UnknownName {
                kind: "regularizer",
                name: other.to_string(),
                valid: vec!["L1", "L2", "L1L2"],
            });
        }
    }))
}

/// A constraint as Keras serializes it (`None` -> `null`). `axis` keeps the form it was
/// given in: an integer, or a list (`{"axis": [0, 1]}`), as Keras' `get_config` does.
pub fn constraint_config(constraint: Option<Constraint>) -> Value {
    let (class, config) = match constraint {
        None => return Value::Null,
        Some(Constraint::MaxNorm { max_value, axis }) => {
            ("MaxNorm", json!({"max_value": max_value, "axis": axis}))
        }
        Some(Constraint::MaxNormOverAxes { max_value, axes }) => (
            "MaxNorm",
            json!({"max_value": max_value, "axis": axes_config(axes)}),
        ),
        Some(Constraint::NonNeg) => ("NonNeg", json!({})),
        Some(Constraint::UnitNorm { axis }) => ("UnitNorm", json!({"axis": axis})),
        Some(Constraint::UnitNormOverAxes { axes }) => {
            ("UnitNorm", json!({"axis": axes_config(axes)}))
        }
        Some(Constraint::MinMaxNorm {
            min_value,
            max_value,
            rate,
            axis,
        }) => (
            "MinMaxNorm",
            json!({"min_value": min_value, "max_value": max_value, "rate": rate, "axis": axis}),
        ),
        Some(Constraint::MinMaxNormOverAxes {
            min_value,
            max_value,
            rate,
            axes,
        }) => (
            "MinMaxNorm",
            json!({"min_value": min_value, "max_value": max_value, "rate": rate, "axis": axes_config(axes)}),
        ),
    };
    json!({"module": "keras.constraints", "class_name": class, "config": config, "registered_name": null})
}

/// `axis` as Keras writes it: a list, or one (negative) integer.
fn axes_config(axes: Axes) -> Value {
    if axes.is_list() {
        json!(axes.as_slice())
    } else {
        json!(axes.as_slice().first().copied().unwrap_or(0))
    }
}

/// Keras' constraint `axis`: absent (the default 0), an integer, or a list of integers.
enum ConfigAxis {
    /// One non-negative axis.
    Single(usize),
    /// A list, or a negative integer.
    Axes(Axes),
}

fn constraint_axis(value: &Value) -> Result<ConfigAxis> {
    let invalid = |axis: &Value| {
        Error::invalid_argument(
            "constraint config",
            "axis",
            axis,
            "an integer or a list of integers",
        )
    };
    let Some(axis) = value.pointer("/config/axis") else {
        return Ok(ConfigAxis::Single(0));
    };
    match axis {
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(a), _) => usize::try_from(a)
                .map(ConfigAxis::Single)
                .map_err(|_| invalid(axis)),
            (None, Some(a)) => isize::try_from(a)
                .map(|a| ConfigAxis::Axes(Axes::single(a)))
                .map_err(|_| invalid(axis)),
            _ => Err(invalid(axis)),
        },
        Value::Array(items) => {
            if items.len() > Axes::MAX {
                return Err(Error::invalid_argument(
                    "constraint config",
                    "axis",
                    axis,
                    format!("at most {} axes", Axes::MAX),
                ));
            }
            let mut axes = Vec::with_capacity(items.len());
            for item in items {
                let a = item
                    .as_i64()
                    .and_then(|a| isize::try_from(a).ok())
                    .ok_or_else(|| invalid(axis))?;
                axes.push(a);
            }
            Axes::list(&axes).map(ConfigAxis::Axes)
        }
        _ => Err(invalid(axis)),
    }
}

/// A constraint from its Keras config (`null` -> `None`), with Keras' defaults. `axis` may
/// be an integer (negative ones count from the end) or a list of integers, as in Keras.
///
/// # Errors
/// [`Error::UnknownName`] for an unknown class; [`Error::InvalidArgument`] for an `axis`
/// that is not an integer or a list of distinct integers (at most [`Axes::MAX`]), or a
/// bound that is not a number.
pub fn constraint_from_config(value: &Value) -> Result<Option<Constraint>> {
    if value.is_null() {
        return Ok(None);
    }
    let class = match value.as_str() {
        Some(name) => name,
        None => str_field(value, "class_name", "constraint")?,
    };
    let number = |field: &str, default: f64| match value.pointer(&format!("/config/{field}")) {
        None | Some(Value::Null) => Ok(default as f32),
        Some(v) => v
            .as_f64()
            .map(|v| v as f32)
            .ok_or_else(|| Error::invalid_argument("constraint config", field, v, "a number")),
    };
    let axis = match class {
        "NonNeg" | "non_neg" => ConfigAxis::Single(0),
        _ => constraint_axis(value)?,
    };
    let constraint = match class {
        "MaxNorm" | "max_norm" => Constraint::MaxNorm {
            max_value: number("max_value", 2.0)?,
            axis: 0,
        },
        "NonNeg" | "non_neg" => Constraint::NonNeg,
        "UnitNorm" | "unit_norm" => Constraint::UnitNorm { axis: 0 },
        "MinMaxNorm" | "min_max_norm" => Constraint::MinMaxNorm {
            min_value: number("min_value", 0.0)?,
            max_value: number("max_value", 1.0)?,
            rate: number("rate", 1.0)?,
            axis: 0,
        },
        other => {
            return Err(Error::UnknownName {
                kind: "constraint",
                name: other.to_string(),
                valid: vec!["MaxNorm", "NonNeg", "UnitNorm", "MinMaxNorm"],
            });
        }
    };
    Ok(Some(match axis {
        ConfigAxis::Single(axis) => constraint.with_axis(axis),
        ConfigAxis::Axes(axes) => constraint.with_axes(axes),
    }))
}
