//! `Embedding` as Keras JSON: Keras 2's `Embedding.get_config()` field by field.

use serde_json::{Map, Value, json};

use crate::config::{
    KerasConfig, bool_or, common, common_config, constraint_config, constraint_from_config,
    initializer_config, initializer_from_config, named, no_activity_regularizer,
    regularizer_config, regularizer_from_config, shape_from, usize_field,
};
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::layers::Embedding;

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
    pub fn from_config(config: &Value) -> Result<Self> {
        let owner = "Embedding";
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
        layer.validate()?;
        Ok(layer)
    }
}

impl KerasConfig for Embedding {
    /// Keras 2's fields: `name`, `trainable`, `dtype`, `batch_input_shape` (an Embedding
    /// always declares one), `input_dim`, `output_dim`, the initializer, regularizer and
    /// constraint of `embeddings`, `activity_regularizer` (always `null`), `mask_zero` and
    /// `input_length` (a length, a list for several axes, or `null`).
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
        Value::Object(map)
    }
}
