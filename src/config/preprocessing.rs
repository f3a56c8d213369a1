//! The preprocessing layers as Keras JSON, with the keys tf_keras 2.21 writes:
//! `StringLookup`, `IntegerLookup`, `Hashing`, `TextVectorization`.
//!
//! What is written and read:
//! - A vocabulary given to the layer (Keras' `vocabulary=` argument) is written inline, as
//!   tf_keras writes it, with its `idf_weights` in `"tf_idf"` mode. An *adapted* vocabulary
//!   is not part of the config (`"vocabulary": null`): tf_keras keeps it as an asset
//!   (`assets/vocabulary.txt` in a `.keras` file, `save_assets`); after `from_json`, give it
//!   back with `load_vocabulary` (or `set_vocabulary`).
//! - `standardize` and `split` are Keras' names (or `null` for no standardization). A Rust
//!   closure has no JSON form: `get_config` writes the name `"ndkeras>rust_closure"` in its
//!   place, and reading any name ndkeras does not know (that one, or a Keras registered
//!   function) is an error that says to rebuild the layer in Rust.
//! - `dtype` is Keras' (`"string"` for `TextVectorization`, `"int64"` for ids, `"float32"`
//!   for the vector modes); `batch_input_shape`, `vocabulary_size` and `build_config` are
//!   accepted and not needed. `sparse`, `ragged`, a `split` of `null`, an `encoding` other
//!   than `"utf-8"` and the vector modes of `Hashing` are refused, naming the field.

use serde_json::{Map, Value, json};

use crate::config::{KerasConfig, bool_or, missing, named, wrong};
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::preprocessing::{
    Hashing, IntegerLookup, LookupBuilder, LookupKey, MaskValue, Ngrams, OutputMode, Split,
    Standardize, StringLookup, TextVectorization,
};

/// What `get_config` writes for a `standardize` or `split` closure.
const CLOSURE_NAME: &str = "ndkeras>rust_closure";

/// `name` (if any) and `trainable`; no check of `dtype` (the output type is the layer's).
fn name_and_trainable(config: &Value, owner: &str) -> Result<(Option<String>, bool)> {
    if !config.is_object() {
        return Err(wrong(owner, "config", config, "a JSON object"));
    }
    let name = match config.get("name") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_str()
                .ok_or_else(|| wrong(owner, "name", v, "a string"))?
                .to_string(),
        ),
    };
    Ok((name, bool_or(config, "trainable", owner, true)?))
}

/// Refuses `sparse: true`, `ragged: true` and an `encoding` other than UTF-8.
fn dense_utf8_only(config: &Value, owner: &str) -> Result<()> {
    for flag in ["sparse", "ragged"] {
        if bool_or(config, flag, owner, false)? {
            return Err(wrong(
                owner,
                flag,
                &json!(true),
                "false (ndkeras makes dense outputs only)",
            ));
        }
    }
    match config.get("encoding") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(e)) if e.eq_ignore_ascii_case("utf-8") || e == "utf8" => Ok(()),
        Some(other) => Err(wrong(owner, "encoding", other, "\"utf-8\"")),
    }
}

fn optional_usize(config: &Value, field: &str, owner: &str) -> Result<Option<usize>> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| wrong(owner, field, v, "a non-negative integer or null")),
    }
}

fn output_mode_of(config: &Value, owner: &str) -> Result<OutputMode> {
    match config.get("output_mode") {
        None | Some(Value::Null) => Ok(OutputMode::Int),
        Some(Value::String(mode)) => mode.parse(),
        Some(other) => Err(wrong(owner, "output_mode", other, "an output mode name")),
    }
}

fn idf_weights_of(config: &Value, owner: &str) -> Result<Option<Vec<f32>>> {
    match config.get("idf_weights") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(k, v)| {
                v.as_f64()
                    .map(|w| w as f32)
                    .filter(|w| w.is_finite())
                    .ok_or_else(|| {
                        wrong(
                            owner,
                            "idf_weights",
                            v,
                            &format!("finite float32 numbers (entry {k})"),
                        )
                    })
            })
            .collect::<Result<Vec<f32>>>()
            .map(Some),
        Some(other) => Err(wrong(
            owner,
            "idf_weights",
            other,
            "a list of numbers or null",
        )),
    }
}

fn strings_of(value: &Value, field: &str, owner: &str) -> Result<Vec<String>> {
    let items = value
        .as_array()
        .ok_or_else(|| wrong(owner, field, value, "a list of strings or null"))?;
    items
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| wrong(owner, field, v, "a string"))
        })
        .collect()
}

fn integers_of(value: &Value, field: &str, owner: &str) -> Result<Vec<i64>> {
    let items = value
        .as_array()
        .ok_or_else(|| wrong(owner, field, value, "a list of integers or null"))?;
    items
        .iter()
        .map(|v| {
            v.as_i64()
                .ok_or_else(|| wrong(owner, field, v, "a 64-bit integer"))
        })
        .collect()
}

/// A JSON form of a lookup key, and back.
trait KeyJson: LookupKey {
    fn to_json(&self) -> Value;
    fn from_json(value: &Value, field: &str, owner: &str) -> Result<Self>;
    fn list_from_json(value: &Value, field: &str, owner: &str) -> Result<Vec<Self>>;
}

impl KeyJson for String {
    fn to_json(&self) -> Value {
        json!(self)
    }

    fn from_json(value: &Value, field: &str, owner: &str) -> Result<Self> {
        value
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| wrong(owner, field, value, "a string"))
    }

    fn list_from_json(value: &Value, field: &str, owner: &str) -> Result<Vec<Self>> {
        strings_of(value, field, owner)
    }
}

impl KeyJson for i64 {
    fn to_json(&self) -> Value {
        json!(self)
    }

    fn from_json(value: &Value, field: &str, owner: &str) -> Result<Self> {
        value
            .as_i64()
            .ok_or_else(|| wrong(owner, field, value, "a 64-bit integer"))
    }

    fn list_from_json(value: &Value, field: &str, owner: &str) -> Result<Vec<Self>> {
        integers_of(value, field, owner)
    }
}

/// An `IndexLookup` from its Keras config, starting from `builder` (the key type's defaults).
fn lookup_from_config<K: KeyJson>(
    config: &Value,
    mut builder: LookupBuilder<K>,
) -> Result<crate::preprocessing::IndexLookup<K>> {
    let owner = K::CLASS_NAME;
    let (name, trainable) = name_and_trainable(config, owner)?;
    dense_utf8_only(config, owner)?;
    if let Some(name) = name {
        builder = builder.name(name);
    }
    if let Some(max) = optional_usize(config, "max_tokens", owner)? {
        builder = builder.max_tokens(max);
    }
    if let Some(n) = optional_usize(config, "num_oov_indices", owner)? {
        builder = builder.num_oov_indices(n);
    }
    match config.get("mask_token") {
        None | Some(Value::Null) => {}
        Some(v) => builder = builder.mask_token(K::from_json(v, "mask_token", owner)?),
    }
    match config.get("oov_token") {
        None | Some(Value::Null) => {}
        Some(v) => builder = builder.oov_token(K::from_json(v, "oov_token", owner)?),
    }
    builder = builder
        .invert(bool_or(config, "invert", owner, false)?)
        .output_mode(output_mode_of(config, owner)?)
        .pad_to_max_tokens(bool_or(config, "pad_to_max_tokens", owner, false)?);
    match config.get("vocabulary") {
        None | Some(Value::Null) => {}
        Some(Value::String(path)) => {
            return Err(wrong(
                owner,
                "vocabulary",
                &json!(path),
                "an inline list of tokens (a vocabulary file path is not read from a config: build the layer and call load_vocabulary)",
            ));
        }
        Some(v) => builder = builder.vocabulary(K::list_from_json(v, "vocabulary", owner)?),
    }
    if let Some(weights) = idf_weights_of(config, owner)? {
        builder = builder.idf_weights(weights);
    }
    let mut layer = builder.build()?;
    layer.set_trainable(trainable);
    Ok(layer)
}

/// The config of an `IndexLookup`, as tf_keras 2.21 writes it.
fn lookup_config<K: KeyJson>(layer: &crate::preprocessing::IndexLookup<K>) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("name".into(), json!(layer.name()));
    map.insert("trainable".into(), json!(layer.trainable()));
    let dtype = if layer.output_mode() == OutputMode::Int {
        "int64"
    } else {
        "float32"
    };
    map.insert("dtype".into(), json!(dtype));
    map.insert("invert".into(), json!(layer.invert()));
    map.insert("max_tokens".into(), json!(layer.max_tokens()));
    map.insert("num_oov_indices".into(), json!(layer.num_oov_indices()));
    map.insert("oov_token".into(), layer.oov_token().to_json());
    map.insert(
        "mask_token".into(),
        layer.mask_token().map_or(Value::Null, KeyJson::to_json),
    );
    map.insert("output_mode".into(), json!(layer.output_mode().name()));
    map.insert("sparse".into(), json!(false));
    map.insert("pad_to_max_tokens".into(), json!(layer.pad_to_max_tokens()));
    map.insert("idf_weights".into(), json!(layer.input_idf_weights()));
    let vocabulary = match layer.input_vocabulary() {
        Some(vocabulary) => Value::Array(vocabulary.iter().map(KeyJson::to_json).collect()),
        None => Value::Null,
    };
    map.insert("vocabulary".into(), vocabulary);
    map.insert(
        "vocabulary_size".into(),
        if layer.has_vocabulary() {
            json!(layer.vocabulary_size())
        } else {
            Value::Null
        },
    );
    map
}

impl StringLookup {
    /// A `StringLookup` from its Keras config (see the
    /// [module docs](crate::config) for what an adapted vocabulary needs).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming a missing, ill-typed or unsupported field, and the
    /// errors of [`LookupBuilder::build`].
    pub fn from_config(config: &Value) -> Result<Self> {
        lookup_from_config(config, StringLookup::builder())
    }
}

impl KerasConfig for StringLookup {
    /// tf_keras 2.21's keys: `name`, `trainable`, `dtype`, `invert`, `max_tokens`,
    /// `num_oov_indices`, `oov_token`, `mask_token`, `output_mode`, `sparse`,
    /// `pad_to_max_tokens`, `idf_weights`, `vocabulary` (inline when given, `null` when
    /// adapted), `vocabulary_size`, `encoding`.
    fn get_config(&self) -> Value {
        let mut map = lookup_config(self);
        map.insert("encoding".into(), json!("utf-8"));
        Value::Object(map)
    }
}

impl IntegerLookup {
    /// An `IntegerLookup` from its Keras config.
    ///
    /// # Errors
    /// Those of [`StringLookup::from_config`]; a `vocabulary_dtype` other than `int64`.
    pub fn from_config(config: &Value) -> Result<Self> {
        match config.get("vocabulary_dtype") {
            None | Some(Value::Null) => {}
            Some(Value::String(d)) if d == "int64" => {}
            Some(other) => {
                return Err(wrong(
                    "IntegerLookup",
                    "vocabulary_dtype",
                    other,
                    "\"int64\"",
                ));
            }
        }
        lookup_from_config(config, IntegerLookup::builder())
    }
}

impl KerasConfig for IntegerLookup {
    /// The keys of [`StringLookup`]'s config, with `vocabulary_dtype` (`"int64"`) instead
    /// of `encoding`.
    fn get_config(&self) -> Value {
        let mut map = lookup_config(self);
        map.insert("vocabulary_dtype".into(), json!("int64"));
        Value::Object(map)
    }
}

impl Hashing {
    /// A `Hashing` layer from its Keras config (`output_mode` `"int"` only; `salt` an
    /// integer, a pair, or null).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming a missing or invalid field.
    pub fn from_config(config: &Value) -> Result<Self> {
        let owner = "Hashing";
        let (name, trainable) = name_and_trainable(config, owner)?;
        dense_utf8_only(config, owner)?;
        if output_mode_of(config, owner)? != OutputMode::Int {
            return Err(wrong(
                owner,
                "output_mode",
                config.get("output_mode").unwrap_or(&Value::Null),
                "\"int\" (the vector modes of Hashing are not supported)",
            ));
        }
        let bins = config
            .get("num_bins")
            .ok_or_else(|| missing(owner, "num_bins"))?;
        let num_bins = bins
            .as_u64()
            .ok_or_else(|| wrong(owner, "num_bins", bins, "a positive integer"))?;
        let mut layer = named(
            name,
            || Hashing::new(num_bins),
            |made, name| made.map(|h| h.with_name(name)),
        )?;
        layer.set_trainable(trainable);
        match config.get("salt") {
            None | Some(Value::Null) => {}
            Some(salt) => {
                let as_key = |v: &Value| v.as_u64().or_else(|| v.as_i64().map(|k| k as u64));
                let pair = match salt {
                    Value::Array(items) if items.len() == 2 => items
                        .first()
                        .and_then(as_key)
                        .zip(items.get(1).and_then(as_key)),
                    one => as_key(one).map(|k| (k, k)),
                };
                let (a, b) = pair.ok_or_else(|| {
                    wrong(owner, "salt", salt, "an integer or a list of two integers")
                })?;
                layer = layer.salt([a, b]);
            }
        }
        match config.get("mask_value") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => layer = layer.mask_value(s.as_str()),
            Some(v) => {
                let value = v
                    .as_i64()
                    .ok_or_else(|| wrong(owner, "mask_value", v, "a string or an integer"))?;
                layer = layer.mask_value(value);
            }
        }
        Ok(layer)
    }
}

impl KerasConfig for Hashing {
    /// `name`, `trainable`, `dtype` (`"int64"`), `num_bins`, `salt` (the pair Keras writes,
    /// or null), `mask_value`, `output_mode` (`"int"`), `sparse`.
    fn get_config(&self) -> Value {
        let mut map = Map::new();
        map.insert("name".into(), json!(self.name()));
        map.insert("trainable".into(), json!(self.trainable()));
        map.insert("dtype".into(), json!("int64"));
        map.insert("num_bins".into(), json!(self.num_bins()));
        // Keras keeps the salt as Python ints that TensorFlow reads as int64: a key above
        // i64::MAX is written as the negative number of the same bits, which reads back
        // (here and in Keras) as the same key.
        map.insert(
            "salt".into(),
            json!(self.get_salt().map(|pair| pair.map(|k| k as i64))),
        );
        map.insert(
            "mask_value".into(),
            match self.get_mask_value() {
                None => Value::Null,
                Some(MaskValue::Text(s)) => json!(s),
                Some(MaskValue::Integer(v)) => json!(v),
            },
        );
        map.insert("output_mode".into(), json!("int"));
        map.insert("sparse".into(), json!(false));
        Value::Object(map)
    }
}

/// The error for a `standardize` or `split` that is not one of Keras' names.
fn custom_function(owner: &str, field: &str, value: &Value) -> Error {
    wrong(
        owner,
        field,
        value,
        &format!(
            "one of Keras' names ({}): a custom function (a Keras registered function or a Rust closure) cannot be rebuilt from JSON; build the layer in Rust with the closure (Standardize::Custom / Split::Custom) and load its vocabulary",
            if field == "split" {
                "\"whitespace\", \"character\""
            } else {
                "\"lower_and_strip_punctuation\", \"lower\", \"strip_punctuation\", null"
            }
        ),
    )
}

impl TextVectorization {
    /// A `TextVectorization` from its Keras config. A vocabulary written inline is set; an
    /// adapted one is not in the config (load it with [`TextVectorization::load_vocabulary`]).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the field: a `standardize` or `split` that is not
    /// one of Keras' names (a custom function, see the module docs), `split: null`,
    /// `sparse`/`ragged`, an `ngrams` that is not an integer, a list of integers or null;
    /// the errors of [`TextVectorizationBuilder::build`](crate::preprocessing::TextVectorizationBuilder::build).
    pub fn from_config(config: &Value) -> Result<Self> {
        let owner = "TextVectorization";
        let (name, trainable) = name_and_trainable(config, owner)?;
        dense_utf8_only(config, owner)?;
        let mut builder = TextVectorization::builder();
        if let Some(name) = name {
            builder = builder.name(name);
        }
        builder = builder.standardize(match config.get("standardize") {
            None => Standardize::LowerAndStripPunctuation,
            Some(Value::Null) => Standardize::None,
            Some(Value::String(s)) if s == "lower_and_strip_punctuation" => {
                Standardize::LowerAndStripPunctuation
            }
            Some(Value::String(s)) if s == "lower" => Standardize::Lower,
            Some(Value::String(s)) if s == "strip_punctuation" => Standardize::StripPunctuation,
            Some(other) => return Err(custom_function(owner, "standardize", other)),
        });
        builder = builder.split(match config.get("split") {
            None => Split::Whitespace,
            Some(Value::String(s)) if s == "whitespace" => Split::Whitespace,
            Some(Value::String(s)) if s == "character" => Split::Character,
            Some(Value::Null) => {
                return Err(wrong(
                    owner,
                    "split",
                    &Value::Null,
                    "\"whitespace\" or \"character\" (split=None, each text one token, is not supported)",
                ));
            }
            Some(other) => return Err(custom_function(owner, "split", other)),
        });
        match config.get("ngrams") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                let widths = items
                    .iter()
                    .map(|v| {
                        v.as_u64()
                            .and_then(|n| usize::try_from(n).ok())
                            .ok_or_else(|| wrong(owner, "ngrams", v, "a positive integer"))
                    })
                    .collect::<Result<Vec<usize>>>()?;
                builder = builder.ngram_widths(widths);
            }
            Some(v) => {
                let n = v
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .ok_or_else(|| {
                        wrong(owner, "ngrams", v, "an integer, a list of integers or null")
                    })?;
                builder = builder.ngrams(n);
            }
        }
        if let Some(max) = optional_usize(config, "max_tokens", owner)? {
            builder = builder.max_tokens(max);
        }
        builder = builder.output_mode(output_mode_of(config, owner)?);
        if let Some(length) = optional_usize(config, "output_sequence_length", owner)? {
            builder = builder.output_sequence_length(length);
        }
        builder = builder.pad_to_max_tokens(bool_or(config, "pad_to_max_tokens", owner, false)?);
        match config.get("vocabulary") {
            None | Some(Value::Null) => {}
            Some(v) => builder = builder.vocabulary(strings_of(v, "vocabulary", owner)?),
        }
        if let Some(weights) = idf_weights_of(config, owner)? {
            builder = builder.idf_weights(weights);
        }
        let mut layer = builder.build()?;
        layer.set_trainable(trainable);
        Ok(layer)
    }
}

impl KerasConfig for TextVectorization {
    /// tf_keras 2.21's keys: `name`, `trainable`, `dtype` (`"string"`), `max_tokens`,
    /// `standardize`, `split`, `ngrams` (as given: an integer or a list), `output_mode`,
    /// `output_sequence_length`, `pad_to_max_tokens`, `sparse`, `ragged`, `vocabulary`
    /// (inline when given, `null` when adapted), `idf_weights`, `encoding`,
    /// `vocabulary_size`. A closure is written as `"ndkeras>rust_closure"`, which
    /// `from_config` refuses.
    fn get_config(&self) -> Value {
        let lookup = self.lookup();
        let mut map = Map::new();
        map.insert("name".into(), json!(Layer::name(self)));
        map.insert("trainable".into(), json!(self.trainable()));
        map.insert("dtype".into(), json!("string"));
        map.insert("max_tokens".into(), json!(self.max_tokens()));
        map.insert(
            "standardize".into(),
            match self.standardize().keras_name() {
                Ok(name) => json!(name),
                Err(()) => json!(CLOSURE_NAME),
            },
        );
        map.insert(
            "split".into(),
            json!(self.split().keras_name().unwrap_or(CLOSURE_NAME)),
        );
        map.insert(
            "ngrams".into(),
            match self.ngrams() {
                None => Value::Null,
                Some(Ngrams::UpTo(n)) => json!(n),
                Some(Ngrams::Widths(widths)) => json!(widths),
            },
        );
        map.insert("output_mode".into(), json!(self.output_mode().name()));
        map.insert(
            "output_sequence_length".into(),
            json!(self.output_sequence_length()),
        );
        map.insert(
            "pad_to_max_tokens".into(),
            json!(lookup.pad_to_max_tokens()),
        );
        map.insert("sparse".into(), json!(false));
        map.insert("ragged".into(), json!(false));
        map.insert(
            "vocabulary".into(),
            match lookup.input_vocabulary() {
                Some(vocabulary) => json!(vocabulary),
                None => Value::Null,
            },
        );
        map.insert("idf_weights".into(), json!(lookup.input_idf_weights()));
        map.insert("encoding".into(), json!("utf-8"));
        map.insert("vocabulary_size".into(), json!(self.vocabulary_size()));
        Value::Object(map)
    }
}
