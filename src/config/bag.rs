//! The bag layers as Keras JSON: keras-rs' `EmbedReduce.get_config()` (Keras 3's
//! `Embedding` keys plus `combiner`) and, for PyTorch's `EmbeddingBag`, which has no Keras
//! class, an ndkeras config with PyTorch's argument names.
//!
//! Written like every ndkeras config: `name`, `trainable`, `dtype` as the string
//! `"float32"` (a Keras 3 `DTypePolicy` dict is read too), then the layer's keys. Read back,
//! each gives the same JSON.
//!
//! `EmbeddingBag`: `num_embeddings`, `embedding_dim`, `mode` (`"sum"`, `"mean"`, `"max"`),
//! `padding_idx` (an integer, negative from the end, or `null`), `include_last_offset`, and
//! Keras' `embeddings_initializer`, `embeddings_regularizer`, `embeddings_constraint`. Nested
//! in a model it is `{"module": "ndkeras.layers", "class_name": "EmbeddingBag", ...}`, a
//! class Keras itself does not know.
//!
//! ```
//! use ndkeras::prelude::*;
//!
//! let bag = EmbeddingBag::new(100, 8).mode(BagMode::Max).padding_idx(-1).with_name("bags");
//! let config = bag.get_config();
//! assert_eq!(config["mode"], "max");
//! assert_eq!(config["padding_idx"], -1);
//! assert_eq!(EmbeddingBag::from_config(&config)?.get_config(), config);
//!
//! let reduce = EmbedReduce::new(100, 8).combiner(Combiner::SqrtN);
//! assert_eq!(reduce.get_config()["combiner"], "sqrtn");
//! # Ok::<(), ndkeras::Error>(())
//! ```

use serde_json::{Map, Value, json};

use crate::config::{
    KerasConfig, bool_or, common, common_config, constraint_config, constraint_from_config,
    initializer_config, initializer_from_config, named, no_activity_regularizer,
    regularizer_config, regularizer_from_config, str_field, usize_field,
};
use crate::error::{Error, Result};
use crate::initializers::Initializer;
use crate::layer::Layer;
use crate::layers::{EmbedReduce, EmbeddingBag};

/// The table's initializer, regularizer and constraint, as Keras writes them.
fn table_fields(
    map: &mut Map<String, Value>,
    initializer: &Initializer,
    regularizer: Option<crate::regularizers::Regularizer>,
    constraint: Option<crate::constraints::Constraint>,
) {
    map.insert(
        "embeddings_initializer".into(),
        initializer_config(initializer),
    );
    map.insert(
        "embeddings_regularizer".into(),
        regularizer_config(regularizer),
    );
    map.insert(
        "embeddings_constraint".into(),
        constraint_config(constraint),
    );
}

/// Reads the table's initializer, regularizer and constraint (each optional).
type TableFields = (
    Option<Initializer>,
    Option<crate::regularizers::Regularizer>,
    Option<crate::constraints::Constraint>,
);

fn read_table_fields(config: &Value) -> Result<TableFields> {
    let initializer = match config
        .get("embeddings_initializer")
        .filter(|v| !v.is_null())
    {
        Some(init) => Some(initializer_from_config(init)?),
        None => None,
    };
    let regularizer =
        regularizer_from_config(config.get("embeddings_regularizer").unwrap_or(&Value::Null))?;
    let constraint =
        constraint_from_config(config.get("embeddings_constraint").unwrap_or(&Value::Null))?;
    Ok((initializer, regularizer, constraint))
}

impl EmbeddingBag {
    /// A bag layer from its config (the keys [`KerasConfig::get_config`] writes); missing
    /// optional keys take PyTorch's defaults.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming a missing or invalid field (`num_embeddings` and
    /// `embedding_dim` are required), [`Error::UnknownName`] for an unknown `mode`,
    /// initializer, regularizer or constraint.
    pub fn from_config(config: &Value) -> Result<Self> {
        let owner = "EmbeddingBag";
        let (name, trainable) = common(config, owner)?;
        let (rows, dim) = (
            usize_field(config, "num_embeddings", owner)?,
            usize_field(config, "embedding_dim", owner)?,
        );
        let mut layer = named(
            name,
            || EmbeddingBag::new(rows, dim),
            EmbeddingBag::with_name,
        )
        .include_last_offset(bool_or(config, "include_last_offset", owner, false)?)
        .trainable(trainable);
        if config.get("mode").is_some_and(|v| !v.is_null()) {
            layer = layer.mode(str_field(config, "mode", owner)?.parse()?);
        }
        match config.get("padding_idx") {
            None | Some(Value::Null) => {}
            Some(v) => {
                let p = v
                    .as_i64()
                    .and_then(|p| isize::try_from(p).ok())
                    .ok_or_else(|| {
                        Error::invalid_argument(
                            "EmbeddingBag config",
                            "padding_idx",
                            v,
                            "an integer or null",
                        )
                    })?;
                layer = layer.padding_idx(p);
            }
        }
        let (initializer, regularizer, constraint) = read_table_fields(config)?;
        if let Some(initializer) = initializer {
            layer = layer.embeddings_initializer(initializer);
        }
        if let Some(r) = regularizer {
            layer = layer.embeddings_regularizer(r);
        }
        if let Some(c) = constraint {
            layer = layer.embeddings_constraint(c);
        }
        layer.validate()?;
        Ok(layer)
    }
}

impl KerasConfig for EmbeddingBag {
    /// `name`, `trainable`, `dtype`, `num_embeddings`, `embedding_dim`, `mode`,
    /// `padding_idx`, `include_last_offset`, the table's initializer, regularizer and
    /// constraint.
    fn get_config(&self) -> Value {
        let c = self.config();
        let mut map = common_config(self.name(), c.trainable);
        map.insert("num_embeddings".into(), json!(c.num_embeddings));
        map.insert("embedding_dim".into(), json!(c.embedding_dim));
        map.insert("mode".into(), json!(c.mode.name()));
        map.insert("padding_idx".into(), json!(c.padding_idx));
        map.insert("include_last_offset".into(), json!(c.include_last_offset));
        table_fields(
            &mut map,
            &c.embeddings_initializer,
            c.embeddings_regularizer,
            c.embeddings_constraint,
        );
        Value::Object(map)
    }
}

impl EmbedReduce {
    /// A reducing embedding from keras-rs' config (Keras 3's `Embedding` keys plus
    /// `combiner`, default `"mean"`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming a missing or invalid field; [`Error::UnknownName`]
    /// for an unknown `combiner` (keras-rs: "Invalid `combiner`"), initializer, regularizer
    /// or constraint.
    pub fn from_config(config: &Value) -> Result<Self> {
        let owner = "EmbedReduce";
        let (name, trainable) = common(config, owner)?;
        let (input_dim, output_dim) = (
            usize_field(config, "input_dim", owner)?,
            usize_field(config, "output_dim", owner)?,
        );
        let mut layer = named(
            name,
            || EmbedReduce::new(input_dim, output_dim),
            EmbedReduce::with_name,
        )
        .mask_zero(bool_or(config, "mask_zero", owner, false)?)
        .trainable(trainable);
        if config.get("combiner").is_some_and(|v| !v.is_null()) {
            layer = layer.combiner(str_field(config, "combiner", owner)?.parse()?);
        }
        let (initializer, regularizer, constraint) = read_table_fields(config)?;
        if let Some(initializer) = initializer {
            layer = layer.embeddings_initializer(initializer);
        }
        if let Some(r) = regularizer {
            layer = layer.embeddings_regularizer(r);
        }
        if let Some(c) = constraint {
            layer = layer.embeddings_constraint(c);
        }
        no_activity_regularizer(config, owner)?;
        layer.validate()?;
        Ok(layer)
    }
}

impl KerasConfig for EmbedReduce {
    /// Keras 3's `Embedding` keys (`name`, `trainable`, `dtype`, `input_dim`, `output_dim`,
    /// the table's initializer, regularizer and constraint, `activity_regularizer` always
    /// `null`, `mask_zero`) and keras-rs' `combiner`.
    fn get_config(&self) -> Value {
        let c = self.config();
        let mut map = common_config(self.name(), c.trainable);
        map.insert("input_dim".into(), json!(c.input_dim));
        map.insert("output_dim".into(), json!(c.output_dim));
        table_fields(
            &mut map,
            &c.embeddings_initializer,
            c.embeddings_regularizer,
            c.embeddings_constraint,
        );
        map.insert("activity_regularizer".into(), Value::Null);
        map.insert("mask_zero".into(), json!(c.mask_zero));
        map.insert("combiner".into(), json!(c.combiner.name()));
        Value::Object(map)
    }
}
