//! `Sequential::to_json` / `from_json`: the model's architecture as Keras 2's
//! `model.to_json()` writes it.

use serde_json::{Value, json};

use crate::config::{layer_from_config, shape_from, str_field, wrap};
use crate::error::{Error, Result};
use crate::model::sequential::Sequential;

impl Sequential {
    /// The architecture as Keras 2's `model.to_json()` writes it: `{"class_name":
    /// "Sequential", "config": {"name", "layers": [...]}}`, the first entry an `InputLayer`
    /// with the model's `batch_input_shape` when it is known. Weights are not included (see
    /// [`Sequential::save_weights`]).
    pub fn to_json(&self) -> String {
        let mut layers = Vec::with_capacity(self.layers.len() + 1);
        if let Some(shape) = &self.input_shape {
            let input_name = format!(
                "{}_input",
                self.layers.first().map_or("input", |l| l.name())
            );
            layers.push(json!({
                "class_name": "InputLayer",
                "config": {"batch_input_shape": shape, "dtype": "float32", "sparse": false, "ragged": false, "name": input_name},
            }));
        }
        layers.extend(
            self.layers
                .iter()
                .map(|l| wrap(l.class_name(), l.get_config())),
        );
        let model = json!({
            "class_name": "Sequential",
            "config": {"name": self.name, "layers": layers},
            "keras_version": "2.15.0",
            "backend": "tensorflow",
        });
        model.to_string()
    }

    /// A model from JSON written by [`Sequential::to_json`] or by Keras 2's
    /// `model.to_json()` (Keras 3 layer configs are accepted too). Layers are built as
    /// [`Sequential::add`] builds them; the weights come from their initializers.
    ///
    /// # Errors
    /// [`Error::InvalidFile`] for text that is not JSON; [`Error::UnknownName`] for a layer
    /// class ndkeras does not have (the known ones are listed); [`Error::InvalidArgument`]
    /// naming a missing or invalid field; the errors of [`Sequential::add`].
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
            .ok_or_else(|| crate::config::missing("Sequential", "config"))?;
        let name = str_field(config, "name", "Sequential")?;
        let entries = config
            .get("layers")
            .and_then(Value::as_array)
            .ok_or_else(|| crate::config::missing("Sequential", "layers"))?;
        let mut model = Sequential::new().with_name(name);
        let mut input_shape: Option<Vec<Option<usize>>> = None;
        for entry in entries {
            if entry.get("class_name").and_then(Value::as_str) == Some("InputLayer") {
                let layer_config = entry
                    .get("config")
                    .ok_or_else(|| crate::config::missing("InputLayer", "config"))?;
                let shape = layer_config
                    .get("batch_input_shape")
                    .or_else(|| layer_config.get("batch_shape"))
                    .ok_or_else(|| crate::config::missing("InputLayer", "batch_input_shape"))?;
                input_shape = Some(shape_from(shape, "batch_input_shape", "InputLayer")?);
                continue;
            }
            let mut entry = entry.clone();
            // An InputLayer's shape reaches the first layer as Keras' batch_input_shape.
            if let (true, Some(shape)) = (model.layers.is_empty(), input_shape.take())
                && let Some(layer_config) = entry.get_mut("config").and_then(Value::as_object_mut)
                && !layer_config.contains_key("batch_input_shape")
            {
                layer_config.insert("batch_input_shape".into(), json!(shape));
            }
            model.add_boxed(layer_from_config(&entry)?)?;
        }
        Ok(model)
    }
}
