//! KerasHub's position layers as Keras JSON: the keys of KerasHub 0.32.0's `get_config()`
//! for `PositionEmbedding`, `SinePositionEncoding`, `RotaryEmbedding` and
//! `TokenAndPositionEmbedding`.
//!
//! Written like every ndkeras config: `name`, `trainable`, `dtype` as the string
//! `"float32"` (Keras 3 writes a `DTypePolicy` dict there; both are read), then KerasHub's
//! own keys with KerasHub's values. Read back, each gives the same JSON. `RotaryEmbedding`'s
//! YaRN settings (`beta_fast`, `beta_slow`, `original_max_position_embeddings`, `truncate`)
//! are written with KerasHub's defaults and ignored when read, since ndkeras implements only
//! the `"linear"` and `"dynamic"` rope types (`"yarn"` is refused).
//! `TokenAndPositionEmbedding`'s `tie_weights` is read and written as KerasHub's (default
//! `true`).

use serde_json::{Value, json};

use crate::config::{
    KerasConfig, bool_or, common, common_config, f64_field, initializer_config,
    initializer_from_config, named, usize_field,
};
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::layers::{
    PositionEmbedding, RopeType, RotaryEmbedding, SinePositionEncoding, TokenAndPositionEmbedding,
};

/// A float as KerasHub's config holds it: a whole number as an integer (KerasHub keeps
/// `max_wavelength=10000` the `int` it was given).
fn whole_as_integer(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        json!(value as i64)
    } else {
        json!(value)
    }
}

/// An optional number with a default.
fn f64_or(config: &Value, field: &str, owner: &str, default: f64) -> Result<f64> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(_) => f64_field(config, field, owner),
    }
}

/// An optional (possibly negative) axis with a default.
fn axis_or(config: &Value, field: &str, owner: &str, default: isize) -> Result<isize> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_i64()
            .and_then(|a| isize::try_from(a).ok())
            .ok_or_else(|| {
                Error::invalid_argument(format!("{owner} config"), field, v, "an integer axis")
            }),
    }
}

impl PositionEmbedding {
    /// A position embedding from its KerasHub config.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming a missing or invalid field (`sequence_length` is
    /// required, as in KerasHub); [`Error::UnknownName`] for an unknown initializer.
    pub fn from_config(config: &Value) -> Result<Self> {
        let owner = "PositionEmbedding";
        let (name, trainable) = common(config, owner)?;
        let sequence_length = usize_field(config, "sequence_length", owner)?;
        let mut layer = named(
            name,
            || PositionEmbedding::new(sequence_length),
            PositionEmbedding::with_name,
        )
        .trainable(trainable);
        if let Some(init) = config.get("initializer").filter(|v| !v.is_null()) {
            layer = layer.initializer(initializer_from_config(init)?);
        }
        layer.validate()?;
        Ok(layer)
    }
}

impl KerasConfig for PositionEmbedding {
    /// `name`, `trainable`, `dtype`, `sequence_length`, `initializer`.
    fn get_config(&self) -> Value {
        let c = self.config();
        let mut map = common_config(self.name(), c.trainable);
        map.insert("sequence_length".into(), json!(c.sequence_length));
        map.insert("initializer".into(), initializer_config(&c.initializer));
        Value::Object(map)
    }
}

impl SinePositionEncoding {
    /// A sine position encoding from its KerasHub config (`max_wavelength` defaults to
    /// 10000).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming an invalid field.
    pub fn from_config(config: &Value) -> Result<Self> {
        let owner = "SinePositionEncoding";
        let (name, _) = common(config, owner)?;
        let max_wavelength = f64_or(config, "max_wavelength", owner, 10000.0)?;
        let layer = named(
            name,
            SinePositionEncoding::new,
            SinePositionEncoding::with_name,
        )
        .max_wavelength(max_wavelength);
        layer.validate()?;
        Ok(layer)
    }
}

impl KerasConfig for SinePositionEncoding {
    /// `name`, `trainable`, `dtype`, `max_wavelength`.
    fn get_config(&self) -> Value {
        let mut map = common_config(self.name(), true);
        map.insert(
            "max_wavelength".into(),
            whole_as_integer(self.config().max_wavelength),
        );
        Value::Object(map)
    }
}

impl RotaryEmbedding {
    /// A rotary embedding from its KerasHub config, with KerasHub's defaults for missing
    /// fields.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming an invalid field (`rope_type = "yarn"` is not
    /// implemented); [`Error::UnknownName`] for an unknown `rope_type`.
    pub fn from_config(config: &Value) -> Result<Self> {
        let owner = "RotaryEmbedding";
        let (name, _) = common(config, owner)?;
        let rope_type = match config.get("rope_type") {
            None | Some(Value::Null) => RopeType::Linear,
            Some(v) => v
                .as_str()
                .ok_or_else(|| {
                    Error::invalid_argument("RotaryEmbedding config", "rope_type", v, "a string")
                })?
                .parse()?,
        };
        let denominator_dim = match config.get("denominator_dim") {
            None | Some(Value::Null) => None,
            Some(_) => Some(usize_field(config, "denominator_dim", owner)?),
        };
        let layer = named(name, RotaryEmbedding::new, RotaryEmbedding::with_name)
            .max_wavelength(f64_or(config, "max_wavelength", owner, 10000.0)?)
            .scaling_factor(f64_or(config, "scaling_factor", owner, 1.0)?)
            .rope_type(rope_type)
            .sequence_axis(axis_or(config, "sequence_axis", owner, 1)?)
            .feature_axis(axis_or(config, "feature_axis", owner, -1)?)
            .denominator_dim(denominator_dim);
        layer.validate()?;
        Ok(layer)
    }
}

impl KerasConfig for RotaryEmbedding {
    /// `name`, `trainable`, `dtype`, then KerasHub 0.32.0's keys: `max_wavelength`,
    /// `scaling_factor`, `rope_type`, the YaRN settings at their defaults (`beta_fast`
    /// 32.0, `beta_slow` 1.0, `original_max_position_embeddings` 4096, `truncate` true),
    /// `sequence_axis`, `feature_axis`, `denominator_dim`.
    fn get_config(&self) -> Value {
        let c = self.config();
        let mut map = common_config(self.name(), true);
        map.insert("max_wavelength".into(), whole_as_integer(c.max_wavelength));
        map.insert("scaling_factor".into(), json!(c.scaling_factor));
        map.insert("rope_type".into(), json!(c.rope_type.name()));
        map.insert("beta_fast".into(), json!(32.0));
        map.insert("beta_slow".into(), json!(1.0));
        map.insert("original_max_position_embeddings".into(), json!(4096));
        map.insert("truncate".into(), json!(true));
        map.insert("sequence_axis".into(), json!(c.sequence_axis));
        map.insert("feature_axis".into(), json!(c.feature_axis));
        map.insert("denominator_dim".into(), json!(c.denominator_dim));
        Value::Object(map)
    }
}

impl TokenAndPositionEmbedding {
    /// Token and position embeddings from their KerasHub config.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming a missing or invalid field; [`Error::UnknownName`]
    /// for an unknown initializer.
    pub fn from_config(config: &Value) -> Result<Self> {
        let owner = "TokenAndPositionEmbedding";
        let (name, trainable) = common(config, owner)?;
        let vocabulary_size = usize_field(config, "vocabulary_size", owner)?;
        let sequence_length = usize_field(config, "sequence_length", owner)?;
        let embedding_dim = usize_field(config, "embedding_dim", owner)?;
        let mut layer = named(
            name,
            || TokenAndPositionEmbedding::new(vocabulary_size, sequence_length, embedding_dim),
            TokenAndPositionEmbedding::with_name,
        )
        .tie_weights(bool_or(config, "tie_weights", owner, true)?)
        .mask_zero(bool_or(config, "mask_zero", owner, false)?)
        .trainable(trainable);
        if let Some(init) = config
            .get("embeddings_initializer")
            .filter(|v| !v.is_null())
        {
            layer = layer.embeddings_initializer(initializer_from_config(init)?);
        }
        layer.validate()?;
        Ok(layer)
    }
}

impl KerasConfig for TokenAndPositionEmbedding {
    /// `name`, `trainable`, `dtype`, `vocabulary_size`, `sequence_length`, `embedding_dim`,
    /// `embeddings_initializer`, `tie_weights`, `mask_zero`.
    fn get_config(&self) -> Value {
        let c = self.config();
        let mut map = common_config(self.name(), c.trainable);
        map.insert("vocabulary_size".into(), json!(c.vocabulary_size));
        map.insert("sequence_length".into(), json!(c.sequence_length));
        map.insert("embedding_dim".into(), json!(c.embedding_dim));
        map.insert(
            "embeddings_initializer".into(),
            initializer_config(&c.embeddings_initializer),
        );
        map.insert("tie_weights".into(), json!(c.tie_weights));
        map.insert("mask_zero".into(), json!(c.mask_zero));
        Value::Object(map)
    }
}
