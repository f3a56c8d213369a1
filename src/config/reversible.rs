//! `ReversibleEmbedding` as Keras JSON: Keras 3's `ReversibleEmbedding.get_config()`, the
//! `Embedding` fields plus `tie_weights`, `reverse_dtype` and `logit_soft_cap`
//! (`keras.layers.ReversibleEmbedding`, a Keras 3 class: no Keras 2 `input_length` or
//! `batch_input_shape`).

use serde_json::{Value, json};

use crate::config::{KerasConfig, bool_or, common, named, wrong};
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::layers::{Embedding, ReversibleEmbedding};
use crate::quantization::TableDType;

/// The keys a `ReversibleEmbedding` adds to an `Embedding` config.
const OWN_KEYS: [&str; 5] = [
    "tie_weights",
    "reverse_dtype",
    "logit_soft_cap",
    "lora_rank",
    "lora_alpha",
];

impl ReversibleEmbedding {
    /// A reversible embedding from its Keras 3 config.
    ///
    /// The `Embedding` fields are read as [`Embedding::from_config`] reads them;
    /// `tie_weights` defaults to `true`; `reverse_dtype` must be `null` (the reverse call
    /// computes in float32); `logit_soft_cap` is `null` or a positive finite number.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming a missing or invalid field (a `reverse_dtype` other
    /// than `null`, a quantized or half-precision `dtype`, a `logit_soft_cap` that is not a
    /// positive finite number, a `lora_rank`: ndkeras has no LoRA on this layer); [`Error::UnknownName`] for an unknown initializer,
    /// regularizer or constraint.
    pub fn from_config(config: &Value) -> Result<Self> {
        let owner = "ReversibleEmbedding";
        // float32 only: `common` refuses any other dtype policy, naming it.
        let (name, _) = common(config, owner)?;
        match config.get("reverse_dtype") {
            None | Some(Value::Null) => {}
            Some(v) => {
                return Err(wrong(
                    owner,
                    "reverse_dtype",
                    v,
                    "null (ndkeras computes the reverse call in float32)",
                ));
            }
        }
        // Keras 3 passes `lora_rank` on to its Embedding; ndkeras' ReversibleEmbedding has
        // no LoRA, so a rank is refused rather than lost.
        if let Some(rank) = config.get("lora_rank").filter(|v| !v.is_null()) {
            return Err(wrong(
                owner,
                "lora_rank",
                rank,
                "null: LoRA on a ReversibleEmbedding is not supported by ndkeras (use it on an Embedding)",
            ));
        }
        let tie_weights = bool_or(config, "tie_weights", owner, true)?;
        let logit_soft_cap = match config.get("logit_soft_cap") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_f64()
                    .ok_or_else(|| wrong(owner, "logit_soft_cap", v, "a number or null"))?
                    as f32,
            ),
        };
        // The Embedding fields, read by the Embedding reader (under a placeholder name, so
        // that no automatic name is counted for it).
        let mut lookup = config.clone();
        if let Some(map) = lookup.as_object_mut() {
            for key in OWN_KEYS
                .iter()
                .chain(&["input_length", "batch_input_shape"])
            {
                map.remove(*key);
            }
            map.insert("name".into(), json!("reversible_embedding_lookup"));
        }
        let inner = Embedding::from_config(&lookup)?;
        let c = inner.config();
        if c.quantization.is_some() || c.dtype != TableDType::Float32 {
            return Err(wrong(
                owner,
                "dtype",
                config.get("dtype").unwrap_or(&Value::Null),
                "float32 (ndkeras' ReversibleEmbedding has float32 tables only)",
            ));
        }
        let mut layer = named(
            name,
            || ReversibleEmbedding::new(c.input_dim, c.output_dim),
            ReversibleEmbedding::with_name,
        )
        .tie_weights(tie_weights)
        .logit_soft_cap(logit_soft_cap)
        .mask_zero(c.mask_zero)
        .embeddings_initializer(c.embeddings_initializer.clone())
        .trainable(c.trainable);
        if let Some(regularizer) = c.embeddings_regularizer {
            layer = layer.embeddings_regularizer(regularizer);
        }
        if let Some(constraint) = c.embeddings_constraint {
            layer = layer.embeddings_constraint(constraint);
        }
        layer.validate().map_err(|err| match err {
            Error::InvalidArgument {
                parameter,
                value,
                expected,
                ..
            } => Error::InvalidArgument {
                owner: format!("{owner} config"),
                parameter,
                value,
                expected,
            },
            other => other,
        })?;
        Ok(layer)
    }
}

impl KerasConfig for ReversibleEmbedding {
    /// The `Embedding` fields (`name`, `trainable`, `dtype`, `input_dim`, `output_dim`, the
    /// initializer, regularizer and constraint of `embeddings`, `activity_regularizer`,
    /// `mask_zero`), then `tie_weights`, `reverse_dtype` (always `null`) and
    /// `logit_soft_cap` (`null` or the cap, written as its shortest float32 decimal).
    fn get_config(&self) -> Value {
        let mut config = self.embedding().get_config();
        if let Some(map) = config.as_object_mut() {
            map.remove("batch_input_shape");
            map.remove("input_length");
            map.insert("tie_weights".into(), json!(self.is_tied()));
            map.insert("reverse_dtype".into(), Value::Null);
            let cap = self
                .soft_cap()
                .and_then(|cap| format!("{cap}").parse::<f64>().ok());
            map.insert("logit_soft_cap".into(), json!(cap));
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_with_its_own_keys() {
        let layer = ReversibleEmbedding::new(5, 3)
            .tie_weights(false)
            .logit_soft_cap(Some(0.3))
            .mask_zero(true)
            .with_name("tied");
        let config = layer.get_config();
        assert_eq!(config["logit_soft_cap"], json!(0.3));
        assert_eq!(config["tie_weights"], json!(false));
        assert!(config.get("input_length").is_none());
        let back = ReversibleEmbedding::from_config(&config).unwrap();
        assert_eq!(back.get_config(), config);
        assert_eq!(back.name(), "tied");
    }
}
