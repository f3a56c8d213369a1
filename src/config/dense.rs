//! `Dense` as Keras JSON: Keras 2's `Dense.get_config()` field by field.

use serde_json::{Value, json};

use crate::activations::Activation;
use crate::config::{
    KerasConfig, bool_or, common, common_config, constraint_config, constraint_from_config,
    initializer_config, initializer_from_config, named, no_activity_regularizer,
    regularizer_config, regularizer_from_config, usize_field,
};
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::layers::Dense;

impl Dense {
    /// A dense layer from its Keras config.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming a missing or invalid field; [`Error::UnknownName`]
    /// for an unknown activation, initializer, regularizer or constraint.
    pub fn from_config(config: &Value) -> Result<Self> {
        let owner = "Dense";
        let (name, trainable) = common(config, owner)?;
        let activation = match config.get("activation") {
            None | Some(Value::Null) => Activation::Linear,
            Some(v) => v
                .as_str()
                .ok_or_else(|| {
                    Error::invalid_argument("Dense config", "activation", v, "an activation name")
                })?
                .parse()?,
        };
        let units = usize_field(config, "units", owner)?;
        let mut layer = named(name, || Dense::new(units), Dense::with_name)
            .activation(activation)
            .use_bias(bool_or(config, "use_bias", owner, true)?)
            .trainable(trainable);
        if let Some(init) = config.get("kernel_initializer").filter(|v| !v.is_null()) {
            layer = layer.kernel_initializer(initializer_from_config(init)?);
        }
        if let Some(init) = config.get("bias_initializer").filter(|v| !v.is_null()) {
            layer = layer.bias_initializer(initializer_from_config(init)?);
        }
        let field = |name: &str| config.get(name).unwrap_or(&Value::Null);
        if let Some(r) = regularizer_from_config(field("kernel_regularizer"))? {
            layer = layer.kernel_regularizer(r);
        }
        if let Some(r) = regularizer_from_config(field("bias_regularizer"))? {
            layer = layer.bias_regularizer(r);
        }
        if let Some(c) = constraint_from_config(field("kernel_constraint"))? {
            layer = layer.kernel_constraint(c);
        }
        if let Some(c) = constraint_from_config(field("bias_constraint"))? {
            layer = layer.bias_constraint(c);
        }
        no_activity_regularizer(config, owner)?;
        layer.validate()?;
        Ok(layer)
    }
}

impl KerasConfig for Dense {
    /// Keras 2's fields: `name`, `trainable`, `dtype`, `units`, `activation`, `use_bias`, the
    /// initializer, regularizer and constraint of `kernel` and `bias`, and
    /// `activity_regularizer` (always `null`).
    fn get_config(&self) -> Value {
        let c = self.config();
        let mut map = common_config(self.name(), c.trainable);
        map.insert("units".into(), json!(c.units));
        map.insert("activation".into(), json!(c.activation.keras_name()));
        map.insert("use_bias".into(), json!(c.use_bias));
        map.insert(
            "kernel_initializer".into(),
            initializer_config(&c.kernel_initializer),
        );
        map.insert(
            "bias_initializer".into(),
            initializer_config(&c.bias_initializer),
        );
        map.insert(
            "kernel_regularizer".into(),
            regularizer_config(c.kernel_regularizer),
        );
        map.insert(
            "bias_regularizer".into(),
            regularizer_config(c.bias_regularizer),
        );
        map.insert("activity_regularizer".into(), Value::Null);
        map.insert(
            "kernel_constraint".into(),
            constraint_config(c.kernel_constraint),
        );
        map.insert(
            "bias_constraint".into(),
            constraint_config(c.bias_constraint),
        );
        Value::Object(map)
    }
}
