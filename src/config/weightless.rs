//! The layers without weights as Keras JSON: `GlobalAveragePooling1D`, `Flatten`, `Dropout`.

use serde_json::{Value, json};

use crate::config::{KerasConfig, bool_or, common, common_config, f64_field, named};
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::layers::{Dropout, Flatten, GlobalAveragePooling1D};

/// Keras' `data_format`: only `channels_last` (the default) is supported.
fn check_channels_last(config: &Value, owner: &str) -> Result<()> {
    match config.get("data_format").and_then(Value::as_str) {
        None | Some("channels_last") => Ok(()),
        Some(other) => Err(Error::invalid_argument(
            format!("{owner} config"),
            "data_format",
            other,
            "\"channels_last\"",
        )),
    }
}

impl GlobalAveragePooling1D {
    /// A pooling layer from its Keras config (`channels_last`, `keepdims: false`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming an unsupported field value.
    pub fn from_config(config: &Value) -> Result<Self> {
        let owner = "GlobalAveragePooling1D";
        let (name, _) = common(config, owner)?;
        check_channels_last(config, owner)?;
        if bool_or(config, "keepdims", owner, false)? {
            return Err(Error::invalid_argument(
                "GlobalAveragePooling1D config",
                "keepdims",
                true,
                "false",
            ));
        }
        Ok(named(
            name,
            GlobalAveragePooling1D::new,
            GlobalAveragePooling1D::with_name,
        ))
    }
}

impl KerasConfig for GlobalAveragePooling1D {
    /// `name`, `trainable`, `dtype`, `data_format` (`channels_last`), `keepdims` (`false`).
    fn get_config(&self) -> Value {
        let mut map = common_config(self.name(), true);
        map.insert("data_format".into(), json!("channels_last"));
        map.insert("keepdims".into(), json!(false));
        Value::Object(map)
    }
}

impl Flatten {
    /// A flatten layer from its Keras config (`data_format` must be `channels_last`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming an invalid field.
    pub fn from_config(config: &Value) -> Result<Self> {
        let (name, _) = common(config, "Flatten")?;
        check_channels_last(config, "Flatten")?;
        Ok(named(name, Flatten::new, Flatten::with_name))
    }
}

impl KerasConfig for Flatten {
    /// `name`, `trainable`, `dtype`, `data_format` (`channels_last`).
    fn get_config(&self) -> Value {
        let mut map = common_config(self.name(), true);
        map.insert("data_format".into(), json!("channels_last"));
        Value::Object(map)
    }
}

impl Dropout {
    /// A dropout layer from its Keras config (`noise_shape` must be null).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming a missing or invalid field.
    pub fn from_config(config: &Value) -> Result<Self> {
        let owner = "Dropout";
        let (name, _) = common(config, owner)?;
        let rate = f64_field(config, "rate", owner)? as f32;
        let mut layer = named(name, || Dropout::new(rate), Dropout::with_name);
        if config.get("noise_shape").is_some_and(|v| !v.is_null()) {
            return Err(Error::invalid_argument(
                "Dropout config",
                "noise_shape",
                "set",
                "null",
            ));
        }
        if let Some(seed) = config.get("seed").and_then(Value::as_u64) {
            layer = layer.seed(seed);
        }
        layer.validate()?;
        Ok(layer)
    }
}

impl KerasConfig for Dropout {
    /// `name`, `trainable`, `dtype`, `rate`, `noise_shape` (`null`), `seed`.
    fn get_config(&self) -> Value {
        let mut map = common_config(self.name(), true);
        map.insert("rate".into(), json!(self.rate()));
        map.insert("noise_shape".into(), Value::Null);
        map.insert("seed".into(), json!(self.seed_value()));
        Value::Object(map)
    }
}
