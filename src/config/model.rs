//! `Sequential::to_json` / `from_json`: the model's architecture as tf_keras 2.21's
//! `model.to_json()` writes it.

use serde_json::{Value, json};

use crate::config::{
    KerasConfig, bool_or, layer_from_config, missing, named, shape_from, str_field, wrap,
};
use crate::error::{Error, Result};
use crate::model::{InputSpec, Sequential};

/// The `keras_version` tf_keras 2.21 writes, which ndkeras follows.
pub const KERAS_VERSION: &str = "2.21.0";

impl Sequential {
    /// The architecture as tf_keras 2.21's `model.to_json()` writes it: `{"class_name":
    /// "Sequential", "config": {"name", "layers": [...]}, "keras_version": "2.21.0",
    /// "backend": "tensorflow"}`. When the model's input shape is known, the first entry is
    /// the `InputLayer` Keras adds for it (`batch_input_shape`, `dtype` `float32`, named after
    /// the first layer: `embedding_input`) and every layer carries the `build_config` Keras
    /// writes for a built layer (`{"input_shape": ...}`, the shape it was built for). Weights
    /// are not included (see [`Sequential::save_weights`]).
    pub fn to_json(&self) -> String {
        let built_for = self.layer_input_shapes();
        let mut layers = Vec::with_capacity(self.layers().len() + 1);
        if let Some(input) = self.input() {
            layers.push(input_layer(input));
        } else if let Some(shape) = self.input_shape() {
            // The InputLayer Keras' Sequential.add makes for a first layer with an input shape.
            layers.push(input_layer(&InputSpec {
                batch_shape: shape.to_vec(),
                dtype: "float32".into(),
                name: format!(
                    "{}_input",
                    self.layers().first().map_or("input", |l| l.name())
                ),
                sparse: false,
                ragged: false,
            }));
        }
        for (index, layer) in self.layers().iter().enumerate() {
            let mut entry = wrap(layer.class_name(), layer.get_config());
            if let (Some(shape), Some(entry)) = (
                built_for.as_ref().and_then(|s| s.get(index)),
                entry.as_object_mut(),
            ) {
                entry.insert("build_config".into(), json!({"input_shape": shape}));
            }
            layers.push(entry);
        }
        let model = json!({
            "class_name": "Sequential",
            "config": {"name": self.name(), "layers": layers},
            "keras_version": KERAS_VERSION,
            "backend": "tensorflow",
        });
        model.to_string()
    }

    /// The shape each layer is built for (Keras' `build_config["input_shape"]`), when the
    /// model's input shape is known.
    fn layer_input_shapes(&self) -> Option<Vec<Vec<Option<usize>>>> {
        let input = self.input_shape()?.to_vec();
        let outputs = self.layer_output_shapes().ok()??;
        let mut shapes = Vec::with_capacity(outputs.len());
        shapes.push(input);
        shapes.extend(
            outputs
                .into_iter()
                .take(self.layers().len().saturating_sub(1)),
        );
        Some(shapes)
    }

    /// A model from JSON written by [`Sequential::to_json`] or by Keras 2's
    /// `model.to_json()` (Keras 3 layer configs are accepted too). Layers are built as
    /// [`Sequential::add`] builds them; the weights come from their initializers. An
    /// `InputLayer` gives its `batch_input_shape` to a first layer that declares none;
    /// `build_config` entries are not needed (the shapes follow from the input shape) and
    /// are ignored.
    ///
    /// # Errors
    /// [`Error::InvalidFile`] for text that is not JSON; [`Error::UnknownName`] for a model
    /// or layer class ndkeras does not have (the known ones are listed);
    /// [`Error::InvalidArgument`] naming a missing or invalid field; the errors of
    /// [`Sequential::add`].
    pub fn from_json(text: &str) -> Result<Sequential> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Error::invalid_file("model JSON", format!("not valid JSON: {e}")))?;
        let class = str_field(&value, "class_name", "model")?;
        if class != "Sequential" {
            return Err(Error::UnknownName {
                kind: "model class",
                name: class.to_string(),
                valid: vec!["Sequential"],
            });
        }
        let config = value
            .get("config")
            .ok_or_else(|| missing("Sequential", "config"))?;
        let name = str_field(config, "name", "Sequential")?;
        let entries = config
            .get("layers")
            .and_then(Value::as_array)
            .ok_or_else(|| missing("Sequential", "layers"))?;
        let mut model = named(
            Some(name.to_string()),
            Sequential::new,
            Sequential::with_name,
        );
        for (index, entry) in entries.iter().enumerate() {
            if entry.get("class_name").and_then(Value::as_str) == Some("InputLayer") {
                if index != 0 {
                    return Err(Error::invalid_argument(
                        "Sequential config",
                        "layers",
                        format!("an InputLayer at position {index}"),
                        "the InputLayer first, if there is one",
                    ));
                }
                model = model.with_input(input_from_config(entry)?)?;
                continue;
            }
            model.add_boxed(layer_from_config(entry)?)?;
        }
        Ok(model)
    }
}

/// `{"class_name": "InputLayer", ...}` as tf_keras 2.21 writes it (a functional model's
/// entry adds its name and empty `inbound_nodes`).
pub(super) fn input_layer(input: &InputSpec) -> Value {
    wrap(
        "InputLayer",
        json!({
            "batch_input_shape": input.batch_shape,
            "dtype": input.dtype,
            "sparse": input.sparse,
            "ragged": input.ragged,
            "name": input.name,
            "optional": false,
        }),
    )
}

/// The declared input from an `InputLayer` entry (Keras 2's `batch_input_shape` or Keras
/// 3's `batch_shape`; `dtype` defaults to `float32`).
fn input_from_config(entry: &Value) -> Result<InputSpec> {
    let owner = "InputLayer";
    let config = entry
        .get("config")
        .ok_or_else(|| missing(owner, "config"))?;
    let shape = config
        .get("batch_input_shape")
        .or_else(|| config.get("batch_shape"))
        .ok_or_else(|| missing(owner, "batch_input_shape"))?;
    let dtype = match config.get("dtype") {
        None | Some(Value::Null) => "float32",
        Some(v) => v.as_str().ok_or_else(|| {
            Error::invalid_argument("InputLayer config", "dtype", v, "a dtype name")
        })?,
    };
    Ok(InputSpec {
        batch_shape: shape_from(shape, "batch_input_shape", owner)?,
        dtype: dtype.to_string(),
        name: str_field(config, "name", owner)?.to_string(),
        sparse: bool_or(config, "sparse", owner, false)?,
        ragged: bool_or(config, "ragged", owner, false)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    #[test]
    fn keras_version_is_tf_keras_2_21() {
        let model: Map<String, Value> = serde_json::from_str(&Sequential::new().to_json()).unwrap();
        assert_eq!(model["keras_version"], KERAS_VERSION);
    }
}
