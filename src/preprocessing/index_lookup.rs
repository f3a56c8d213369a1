//! `IndexLookup`: the table behind Keras' `StringLookup` and `IntegerLookup`
//! (tf_keras `layers/preprocessing/index_lookup.py`), with Keras' ids.
//!
//! # Ids
//! With a `mask_token` and `output_mode="int"`, id 0 is the mask; then come the
//! `num_oov_indices` OOV ids; then the vocabulary, in order. Without a mask token (or in the
//! other output modes) the OOV ids start at 0. An input not in the vocabulary gets the one OOV
//! id, or with several, `oov_start + bucket` where the bucket is FarmHash `Fingerprint64`
//! modulo `num_oov_indices` for strings and `floormod(value, num_oov_indices)` for integers
//! (`_lookup_dense`); with `num_oov_indices = 0` it is an error.
//!
//! # adapt
//! Counts every token, drops the mask and OOV tokens, and orders the rest by count, highest
//! first, ties broken by the token, highest first (`np.lexsort((tokens, counts))[::-1]` in
//! `finalize_state`; strings compare by their UTF-8 bytes, as `str` does in Rust), keeping the
//! first `max_tokens - specials`. Each `adapt` starts afresh; one whose data holds no token
//! (empty documents) leaves the vocabulary as it was, as Keras' `finalize_state` does. No
//! data at all, or only mask and OOV tokens, is an error (Keras fails on both).
//!
//! # tf_idf
//! With `output_mode="tf_idf"`, `adapt` also counts in how many documents each token occurs
//! and keeps Keras' weights (`_inverse_document_frequency`): `ln(1 + documents / (1 +
//! document_count))`, computed in `f64` and stored as `f32`; the OOV ids get the mean of the
//! learned weights; with `pad_to_max_tokens` the weights are padded with zeros to
//! `max_tokens`. [`adapt_documents`](IndexLookup::adapt_documents) takes one document per
//! row; [`adapt`](IndexLookup::adapt) on a flat list of tokens makes a document of every 32
//! tokens, as Keras' `adapt` does with its default `batch_size` of 32 (each batch of a 1-D
//! array is one document there). A given vocabulary needs its `idf_weights`
//! ([`LookupBuilder::idf_weights`]): without special tokens in the vocabulary, the OOV ids get
//! their mean (`np.average`), as in Keras' `set_vocabulary`.

use std::collections::HashMap;

use ndarray::{Array, Array1, Array2, ArrayBase, Data, Dimension};

use super::farmhash::FingerprintState;
use super::key::{AsQuery, LookupKey};
use super::output_mode::{OutputMode, encode_rows};
use crate::error::{Error, Result};

/// Keras' `StringLookup`: strings to ids. See [`IndexLookup`].
///
/// ```
/// use ndkeras::preprocessing::StringLookup;
///
/// let mut lookup = StringLookup::builder().mask_token("").build()?;
/// lookup.adapt(["the", "cat", "the", "mat", "cat", "the"])?;
/// assert_eq!(lookup.get_vocabulary(true)?, ["", "[UNK]", "the", "cat", "mat"]);
/// assert_eq!(lookup.call(&["the", "dog", "", "mat"])?.to_vec(), [2, 1, 0, 4]);
/// # Ok::<(), ndkeras::Error>(())
/// ```
pub type StringLookup = IndexLookup<String>;

/// Keras' `IntegerLookup`: integers to ids. See [`IndexLookup`].
///
/// ```
/// use ndkeras::preprocessing::IntegerLookup;
///
/// let lookup = IntegerLookup::builder().vocabulary([12, 36, 1138, 42]).build()?;
/// // Keras' docstring example: [[12, 1138, 42], [42, 1000, 36]] -> [[1, 3, 4], [4, 0, 2]]
/// let ids = lookup.call_batch(&[[12, 1138, 42], [42, 1000, 36]])?;
/// assert_eq!(ids, ndarray::array![[1, 3, 4], [4, 0, 2]]);
/// # Ok::<(), ndkeras::Error>(())
/// ```
pub type IntegerLookup = IndexLookup<i64>;

/// The settings of an [`IndexLookup`], checked by [`build`](LookupBuilder::build).
///
/// Defaults are Keras': `max_tokens = None`, `num_oov_indices = 1`, `mask_token = None`,
/// `oov_token = "[UNK]"` (strings) or `-1` (integers), `invert = false`,
/// `output_mode = "int"`, `pad_to_max_tokens = false`, no vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupBuilder<K: LookupKey> {
    max_tokens: Option<usize>,
    num_oov_indices: usize,
    mask_token: Option<K>,
    oov_token: K,
    invert: bool,
    output_mode: OutputMode,
    pad_to_max_tokens: bool,
    vocabulary: Option<Vec<K>>,
    idf_weights: Option<Vec<f32>>,
    name: Option<String>,
}

impl<K: LookupKey> LookupBuilder<K> {
    fn with_oov_token(oov_token: K) -> Self {
        LookupBuilder {
            max_tokens: None,
            num_oov_indices: 1,
            mask_token: None,
            oov_token,
            invert: false,
            output_mode: OutputMode::Int,
            pad_to_max_tokens: false,
            vocabulary: None,
            idf_weights: None,
            name: None,
        }
    }

    /// The largest vocabulary, special tokens included (default: none).
    pub fn max_tokens(mut self, max_tokens: usize) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// How many OOV ids (default 1). With more than one, an unknown input's id is chosen by
    /// its hash; with 0, unknown inputs are an error.
    pub fn num_oov_indices(mut self, num_oov_indices: usize) -> Self {
        self.num_oov_indices = num_oov_indices;
        self
    }

    /// The token that marks padding (default none): id 0 in `"int"` mode; dropped in the
    /// other modes.
    pub fn mask_token(mut self, mask_token: impl Into<K>) -> Self {
        self.mask_token = Some(mask_token.into());
        self
    }

    /// The token returned for OOV ids when inverting (default `"[UNK]"` or `-1`); it is also
    /// left out of what `adapt` learns.
    pub fn oov_token(mut self, oov_token: impl Into<K>) -> Self {
        self.oov_token = oov_token.into();
        self
    }

    /// Ids to tokens instead of tokens to ids (default false): use
    /// [`call_inverted`](IndexLookup::call_inverted).
    pub fn invert(mut self, invert: bool) -> Self {
        self.invert = invert;
        self
    }

    /// What calling returns (default [`OutputMode::Int`]).
    pub fn output_mode(mut self, output_mode: OutputMode) -> Self {
        self.output_mode = output_mode;
        self
    }

    /// In the vector modes, make vectors `max_tokens` long whatever the vocabulary's size
    /// (default false).
    pub fn pad_to_max_tokens(mut self, pad_to_max_tokens: bool) -> Self {
        self.pad_to_max_tokens = pad_to_max_tokens;
        self
    }

    /// A fixed vocabulary (Keras' `vocabulary=` argument): the layer cannot be adapted then.
    /// It may start with the special tokens in Keras' order (mask, then the OOV tokens), as
    /// `get_vocabulary()` returns them.
    pub fn vocabulary<T: Into<K>>(mut self, vocabulary: impl IntoIterator<Item = T>) -> Self {
        self.vocabulary = Some(vocabulary.into_iter().map(Into::into).collect());
        self
    }

    /// The inverse document frequencies of the given `vocabulary`, one per token of it, for
    /// `output_mode="tf_idf"` (Keras' `idf_weights=` argument; required there with a
    /// vocabulary, refused in the other modes).
    pub fn idf_weights(mut self, idf_weights: impl IntoIterator<Item = f32>) -> Self {
        self.idf_weights = Some(idf_weights.into_iter().collect());
        self
    }

    /// The layer's name (default `string_lookup`, `string_lookup_1`, ... or
    /// `integer_lookup`, ..., Keras' automatic names).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The checked layer.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`], with Keras' reasons: `max_tokens` of 1 or less,
    /// `pad_to_max_tokens` without `max_tokens`, `invert` with an output mode other than
    /// `"int"`, and every error of [`set_vocabulary`](IndexLookup::set_vocabulary). Also
    /// (ndkeras only) a `max_tokens` smaller than the number of special ids: Keras accepts it
    /// and then drops learned tokens from the end in `adapt`. `idf_weights` outside
    /// `"tf_idf"` mode, or a vocabulary without them in that mode, or of another length.
    pub fn build(mut self) -> Result<IndexLookup<K>> {
        let owner = K::CLASS_NAME;
        if let Some(max) = self.max_tokens
            && max <= 1
        {
            return Err(Error::invalid_argument(
                owner,
                "max_tokens",
                max,
                "a number greater than 1, if set",
            ));
        }
        if self.pad_to_max_tokens && self.max_tokens.is_none() {
            return Err(Error::invalid_argument(
                owner,
                "pad_to_max_tokens",
                true,
                "`max_tokens` to be set when `pad_to_max_tokens` is true",
            ));
        }
        if self.invert && self.output_mode != OutputMode::Int {
            return Err(Error::invalid_argument(
                owner,
                "output_mode",
                self.output_mode,
                "\"int\" when `invert` is true",
            ));
        }
        if self.idf_weights.is_some() && self.output_mode != OutputMode::TfIdf {
            return Err(Error::invalid_argument(
                owner,
                "idf_weights",
                "set",
                format!(
                    "no idf_weights unless output_mode is \"tf_idf\" (output_mode is \"{}\")",
                    self.output_mode
                ),
            ));
        }
        // Ids are int64: the mask id, every OOV id and at least one token must fit.
        let largest = ((i64::MAX - 1) as u64).min((usize::MAX - 1) as u64);
        if self.num_oov_indices as u64 > largest {
            return Err(Error::invalid_argument(
                owner,
                "num_oov_indices",
                self.num_oov_indices,
                format!("at most {largest} (ids are int64)"),
            ));
        }
        let vocabulary = self.vocabulary.take();
        let idf_weights = self.idf_weights.take();
        let mut layer = self.unchecked();
        let token_start = layer.token_start_index();
        if let Some(max) = layer.max_tokens
            && max < token_start
        {
            return Err(Error::invalid_argument(
                owner,
                "max_tokens",
                max,
                format!("at least the {token_start} special ids (mask and OOV) the layer reserves"),
            ));
        }
        if let Some(vocabulary) = vocabulary {
            let given = idf_weights.clone();
            let with_special_tokens = layer.starts_with_special_tokens(&vocabulary);
            layer.set_vocabulary_and_idf(vocabulary, idf_weights)?;
            layer.has_input_vocabulary = true;
            layer.input_with_special_tokens = with_special_tokens;
            layer.input_idf_weights = given;
        }
        Ok(layer)
    }
}

impl LookupBuilder<String> {
    fn string_defaults() -> Self {
        Self::with_oov_token(crate::io::vocabulary::OOV_TOKEN.to_string())
    }
}

impl LookupBuilder<i64> {
    fn integer_defaults() -> Self {
        Self::with_oov_token(-1)
    }
}

/// A Keras index lookup ([`StringLookup`] or [`IntegerLookup`]): a vocabulary given or
/// learned with [`adapt`](Self::adapt), and the ids Keras gives (see the
/// [module docs](crate::preprocessing::index_lookup)).
///
/// # Shapes
/// `"int"` mode: the ids have the shape of the input ([`call`](Self::call) 1-D,
/// [`call_batch`](Self::call_batch) 2-D, [`call_array`](Self::call_array) any). Vector modes
/// ([`call_encoded`](Self::call_encoded)): `(samples, depth)` with `depth` the vocabulary size
/// (or `max_tokens` with `pad_to_max_tokens`).
#[derive(Debug, Clone, PartialEq)]
pub struct IndexLookup<K: LookupKey> {
    max_tokens: Option<usize>,
    num_oov_indices: usize,
    mask_token: Option<K>,
    oov_token: K,
    invert: bool,
    output_mode: OutputMode,
    pad_to_max_tokens: bool,
    name: String,
    trainable: bool,
    /// Keras' `_has_input_vocabulary`: the vocabulary came with the layer; `adapt` refuses.
    has_input_vocabulary: bool,
    /// Whether a vocabulary was ever set or adapted (the vector modes need one).
    vocabulary_set: bool,
    /// The vocabulary without the special tokens; `tokens[i]` has id `token_start + i`.
    tokens: Vec<K>,
    ids: HashMap<K, i64, FingerprintState>,
    /// `"tf_idf"`: one weight per id (special ids included), padded with zeros to
    /// `max_tokens` with `pad_to_max_tokens` (Keras' `idf_weights` variable).
    idf_weights: Vec<f32>,
    /// The `idf_weights` given with the vocabulary (written back in the config).
    input_idf_weights: Option<Vec<f32>>,
    /// Whether the vocabulary given to the builder started with the special tokens (Keras
    /// writes it back as given).
    input_with_special_tokens: bool,
}

/// A checked vocabulary, not yet the layer's ([`IndexLookup::prepare_tokens`]).
struct PreparedTokens<K: LookupKey> {
    tokens: Vec<K>,
    ids: HashMap<K, i64, FingerprintState>,
    skipped_special_tokens: bool,
}

impl Default for IndexLookup<String> {
    /// A `StringLookup` with Keras' defaults and no vocabulary yet.
    fn default() -> Self {
        LookupBuilder::string_defaults().unchecked()
    }
}

impl Default for IndexLookup<i64> {
    /// An `IntegerLookup` with Keras' defaults and no vocabulary yet.
    fn default() -> Self {
        LookupBuilder::integer_defaults().unchecked()
    }
}

impl<K: LookupKey> LookupBuilder<K> {
    /// The layer of settings known to be valid (the defaults).
    fn unchecked(self) -> IndexLookup<K> {
        let name = match self.name {
            Some(name) => name,
            None => crate::layer::unique_name(K::BASE_NAME),
        };
        IndexLookup {
            name,
            trainable: true,
            max_tokens: self.max_tokens,
            num_oov_indices: self.num_oov_indices,
            mask_token: self.mask_token,
            oov_token: self.oov_token,
            invert: self.invert,
            output_mode: self.output_mode,
            pad_to_max_tokens: self.pad_to_max_tokens,
            has_input_vocabulary: false,
            vocabulary_set: false,
            tokens: Vec::new(),
            ids: HashMap::default(),
            idf_weights: Vec::new(),
            input_idf_weights: None,
            input_with_special_tokens: false,
        }
    }
}

impl IndexLookup<String> {
    /// The settings of a `StringLookup`, Keras' defaults to start with.
    pub fn builder() -> LookupBuilder<String> {
        LookupBuilder::string_defaults()
    }
}

impl IndexLookup<i64> {
    /// The settings of an `IntegerLookup`, Keras' defaults to start with.
    pub fn builder() -> LookupBuilder<i64> {
        LookupBuilder::integer_defaults()
    }
}

impl<K: LookupKey> IndexLookup<K> {
    /// The layer's name (Keras' `name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same layer with another name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Keras' `trainable` flag, kept for the config (the layer has nothing to train).
    pub fn trainable(&self) -> bool {
        self.trainable
    }

    /// Sets Keras' `trainable` flag (nothing changes: there are no weights).
    pub fn set_trainable(&mut self, trainable: bool) {
        self.trainable = trainable;
    }

    /// `pad_to_max_tokens`.
    pub fn pad_to_max_tokens(&self) -> bool {
        self.pad_to_max_tokens
    }

    /// Whether the vocabulary came with the layer (Keras' `vocabulary=` argument, written
    /// inline in the config) rather than from `adapt` or a vocabulary file.
    pub fn has_input_vocabulary(&self) -> bool {
        self.has_input_vocabulary
    }

    /// In `"tf_idf"` mode, the weight of every id (special ids first, zeros up to
    /// `max_tokens` with `pad_to_max_tokens`), as Keras' `idf_weights` variable; empty in
    /// other modes or before a vocabulary is set.
    pub fn idf_weights(&self) -> &[f32] {
        &self.idf_weights
    }

    /// The vocabulary given to the builder, as it was given (Keras' `input_vocabulary`,
    /// written back in the config): with the special tokens when it started with them, so
    /// that it stays one entry per `input_idf_weights` weight. `None` for a vocabulary
    /// adapted or loaded from a file.
    pub fn input_vocabulary(&self) -> Option<Vec<K>> {
        if !self.has_input_vocabulary {
            return None;
        }
        if self.input_with_special_tokens {
            // The given vocabulary held every special token, so listing them cannot fail
            // for its size; were it to, the tokens alone are the next best answer.
            if let Ok(vocabulary) = self.get_vocabulary(true) {
                return Some(vocabulary);
            }
        }
        Some(self.tokens.clone())
    }

    /// The `idf_weights` given with the vocabulary to the builder (Keras' config field).
    pub fn input_idf_weights(&self) -> Option<&[f32]> {
        self.input_idf_weights.as_deref()
    }

    /// Whether a vocabulary was set or adapted (the vector modes need one).
    pub fn has_vocabulary(&self) -> bool {
        self.vocabulary_set
    }

    /// The output width in the vector modes: `max_tokens` with `pad_to_max_tokens`, else
    /// the vocabulary size (Keras' `depth`); `None` in `"int"` mode or before a vocabulary is
    /// known.
    pub fn depth(&self) -> Option<usize> {
        if self.output_mode == OutputMode::Int {
            return None;
        }
        match (self.pad_to_max_tokens, self.max_tokens) {
            (true, Some(max)) => Some(max),
            _ => self.vocabulary_set.then(|| self.vocabulary_size()),
        }
    }

    /// `max_tokens`, if set.
    pub fn max_tokens(&self) -> Option<usize> {
        self.max_tokens
    }

    /// `num_oov_indices`.
    pub fn num_oov_indices(&self) -> usize {
        self.num_oov_indices
    }

    /// `mask_token`, if set.
    pub fn mask_token(&self) -> Option<&K> {
        self.mask_token.as_ref()
    }

    /// `oov_token`.
    pub fn oov_token(&self) -> &K {
        &self.oov_token
    }

    /// `invert`.
    pub fn invert(&self) -> bool {
        self.invert
    }

    /// `output_mode`.
    pub fn output_mode(&self) -> OutputMode {
        self.output_mode
    }

    /// The first OOV id (Keras' `_oov_start_index`): 1 with a mask token in `"int"` mode,
    /// else 0.
    pub fn oov_start_index(&self) -> usize {
        usize::from(self.mask_token.is_some() && self.output_mode == OutputMode::Int)
    }

    /// The id of the first vocabulary token (Keras' `_token_start_index`).
    pub fn token_start_index(&self) -> usize {
        self.oov_start_index().saturating_add(self.num_oov_indices)
    }

    /// The number of ids, special ones included: the `input_dim` of the `Embedding` after it.
    pub fn vocabulary_size(&self) -> usize {
        self.token_start_index().saturating_add(self.tokens.len())
    }

    /// The vocabulary by id (Keras' `get_vocabulary`): with `include_special_tokens`, the
    /// mask token (in `"int"` mode) and one `oov_token` per OOV id come first, so a token's
    /// position is its id.
    ///
    /// # Errors
    /// [`Error::Allocation`] when the list does not fit in memory (a huge `num_oov_indices`
    /// lists that many OOV tokens; Keras raises `MemoryError` there).
    pub fn get_vocabulary(&self, include_special_tokens: bool) -> Result<Vec<K>> {
        let len = if include_special_tokens {
            self.vocabulary_size()
        } else {
            self.tokens.len()
        };
        let mut vocabulary = Vec::new();
        vocabulary
            .try_reserve_exact(len)
            .map_err(|_| Error::Allocation {
                context: format!("{}: get_vocabulary of {len} tokens", K::CLASS_NAME),
                bytes: len.saturating_mul(std::mem::size_of::<K>()),
            })?;
        if include_special_tokens {
            if self.oov_start_index() == 1
                && let Some(mask) = &self.mask_token
            {
                vocabulary.push(mask.clone());
            }
            vocabulary.extend(std::iter::repeat_n(
                self.oov_token.clone(),
                self.num_oov_indices,
            ));
        }
        vocabulary.extend(self.tokens.iter().cloned());
        Ok(vocabulary)
    }

    /// Whether `vocabulary` starts with the special tokens exactly as
    /// `get_vocabulary(true)` lists them (compared in place, whatever `num_oov_indices`).
    fn starts_with_special_tokens(&self, vocabulary: &[K]) -> bool {
        let Some(specials) = vocabulary.get(..self.token_start_index()) else {
            return false;
        };
        let (mask, oovs) = specials.split_at(self.oov_start_index());
        mask.iter().all(|t| Some(t) == self.mask_token.as_ref())
            && oovs.iter().all(|t| *t == self.oov_token)
    }

    /// The special tokens as `get_vocabulary(true)` lists them, for an error message (a long
    /// run of OOV tokens is counted, not listed).
    fn describe_special_tokens(&self) -> String {
        let mask = match (self.oov_start_index(), &self.mask_token) {
            (1, Some(mask)) => format!("{mask:?}, "),
            _ => String::new(),
        };
        match self.num_oov_indices {
            0..=4 => {
                let oovs = vec![format!("{:?}", self.oov_token); self.num_oov_indices];
                format!("[{mask}{}]", oovs.join(", "))
            }
            n => format!("[{mask}{n} x {:?}]", self.oov_token),
        }
    }

    /// The vocabulary without special tokens, borrowed: `tokens()[i]` has id
    /// `token_start_index() + i`.
    pub fn tokens(&self) -> &[K] {
        &self.tokens
    }

    /// Replaces the vocabulary (Keras' `set_vocabulary`). When it starts with the special
    /// tokens exactly as `get_vocabulary(true)` lists them, they are skipped.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`], with Keras' reasons: an empty vocabulary, repeated tokens
    /// (all of them are named), the mask token elsewhere than first, the OOV token among the
    /// tokens of an inverting layer, more than `max_tokens` ids; in `"tf_idf"` mode, always
    /// (the weights are needed: use [`set_vocabulary_with_idf`](Self::set_vocabulary_with_idf)).
    pub fn set_vocabulary<T: Into<K>>(
        &mut self,
        vocabulary: impl IntoIterator<Item = T>,
    ) -> Result<()> {
        self.set_vocabulary_and_idf(vocabulary.into_iter().map(Into::into).collect(), None)
    }

    /// [`set_vocabulary`](Self::set_vocabulary) with the inverse document frequencies of
    /// `"tf_idf"` mode, one per token of `vocabulary` (Keras' `set_vocabulary(vocabulary,
    /// idf_weights)`).
    ///
    /// # Errors
    /// Those of [`set_vocabulary`](Self::set_vocabulary); [`Error::InvalidArgument`] outside
    /// `"tf_idf"` mode, for weights of another length than the vocabulary, or not finite.
    pub fn set_vocabulary_with_idf<T: Into<K>>(
        &mut self,
        vocabulary: impl IntoIterator<Item = T>,
        idf_weights: impl IntoIterator<Item = f32>,
    ) -> Result<()> {
        self.set_vocabulary_and_idf(
            vocabulary.into_iter().map(Into::into).collect(),
            Some(idf_weights.into_iter().collect()),
        )
    }

    /// The vocabulary and, in `"tf_idf"` mode, its weights, padded as Keras'
    /// `set_vocabulary` pads them. Everything is checked before anything changes.
    fn set_vocabulary_and_idf(&mut self, vocabulary: Vec<K>, idf: Option<Vec<f32>>) -> Result<()> {
        let owner = K::CLASS_NAME;
        let tf_idf = self.output_mode == OutputMode::TfIdf;
        let Some(idf) = idf else {
            if tf_idf {
                return Err(Error::invalid_argument(
                    owner,
                    "idf_weights",
                    "None",
                    "idf_weights with the vocabulary when output_mode is \"tf_idf\" (Keras: `idf_weights` must be set if output_mode is TF_IDF)",
                ));
            }
            return self.set_tokens(vocabulary).map(|_| ());
        };
        if !tf_idf {
            return Err(Error::invalid_argument(
                owner,
                "idf_weights",
                "set",
                "no idf_weights unless output_mode is \"tf_idf\"",
            ));
        }
        if idf.len() != vocabulary.len() {
            return Err(Error::invalid_argument(
                owner,
                "idf_weights",
                format!("{} weights", idf.len()),
                format!(
                    "one weight per vocabulary token: {} (Keras: `idf_weights` must be the same length as vocabulary)",
                    vocabulary.len()
                ),
            ));
        }
        if let Some((at, bad)) = idf.iter().enumerate().find(|(_, w)| !w.is_finite()) {
            return Err(Error::invalid_argument(
                owner,
                "idf_weights",
                format!("{bad} at index {at}"),
                "finite float32 values",
            ));
        }
        let given = idf.len();
        let prepared = self.prepare_tokens(vocabulary)?;
        let (front, front_value) = if prepared.skipped_special_tokens {
            (0, 0.0)
        } else {
            // np.average of the given weights, in float64.
            let mean = idf.iter().map(|&w| f64::from(w)).sum::<f64>() / given.max(1) as f64;
            (self.token_start_index(), mean as f32)
        };
        let weights = self.padded_idf_weights(front, front_value, idf)?;
        self.commit_tokens(prepared);
        self.idf_weights = weights;
        Ok(())
    }

    /// Keras' `idf_weights` variable: `front` copies of `front_value`, the weights of the
    /// tokens, then zeros up to `max_tokens` with `pad_to_max_tokens`; allocated fallibly
    /// (`max_tokens` is the user's number).
    fn padded_idf_weights(
        &self,
        front: usize,
        front_value: f32,
        idf: Vec<f32>,
    ) -> Result<Vec<f32>> {
        let filled = front.saturating_add(idf.len());
        let len = match (self.pad_to_max_tokens, self.max_tokens) {
            (true, Some(max)) => max.max(filled),
            _ => filled,
        };
        let mut weights = Vec::new();
        weights
            .try_reserve_exact(len)
            .map_err(|_| Error::Allocation {
                context: format!(
                    "{}: tf_idf weights for {len} ids (max_tokens with pad_to_max_tokens)",
                    K::CLASS_NAME
                ),
                bytes: len.saturating_mul(std::mem::size_of::<f32>()),
            })?;
        weights.extend(std::iter::repeat_n(front_value, front));
        weights.extend(idf);
        weights.resize(len, 0.0);
        Ok(weights)
    }

    /// The vocabulary alone (Keras' `set_vocabulary(vocabulary, idf_weights=False)`, what
    /// loading a vocabulary file does): returns whether it started with the special tokens.
    pub(crate) fn set_tokens(&mut self, vocabulary: Vec<K>) -> Result<bool> {
        let prepared = self.prepare_tokens(vocabulary)?;
        Ok(self.commit_tokens(prepared))
    }

    fn commit_tokens(&mut self, prepared: PreparedTokens<K>) -> bool {
        self.tokens = prepared.tokens;
        self.ids = prepared.ids;
        self.vocabulary_set = true;
        prepared.skipped_special_tokens
    }

    /// Checks a vocabulary and makes its id map without changing the layer.
    fn prepare_tokens(&self, vocabulary: Vec<K>) -> Result<PreparedTokens<K>> {
        let owner = K::CLASS_NAME;
        if vocabulary.is_empty() {
            return Err(Error::invalid_argument(
                owner,
                "vocabulary",
                "[]",
                "a non-empty vocabulary (Keras: cannot set an empty vocabulary)",
            ));
        }
        let token_start = self.token_start_index();
        let skip = if self.starts_with_special_tokens(&vocabulary) {
            token_start
        } else {
            0
        };
        let mut tokens = vocabulary;
        tokens.drain(..skip);
        if tokens.is_empty() {
            return Err(Error::invalid_argument(
                owner,
                "vocabulary",
                format!("only the special tokens {}", self.describe_special_tokens()),
                "at least one token besides the special tokens (Keras: keys and values cannot be empty tensors)",
            ));
        }
        let mut ids: HashMap<K, i64, FingerprintState> = HashMap::default();
        ids.try_reserve(tokens.len())
            .map_err(|_| Error::Allocation {
                context: format!("{owner}: vocabulary of {} tokens", tokens.len()),
                bytes: tokens.len().saturating_mul(std::mem::size_of::<(K, i64)>()),
            })?;
        let mut repeated: Vec<&K> = Vec::new();
        for (i, token) in tokens.iter().enumerate() {
            // An id past int64 is refused below, before the map could be used.
            let id = i64::try_from(token_start.saturating_add(i)).unwrap_or(i64::MAX);
            if ids.insert(token.clone(), id).is_some() && !repeated.contains(&token) {
                repeated.push(token);
            }
        }
        if !repeated.is_empty() {
            return Err(Error::invalid_argument(
                owner,
                "vocabulary",
                format!("{repeated:?}"),
                "distinct terms (Keras: the passed vocabulary has at least one repeated term; the repeated terms are listed)",
            ));
        }
        if let Some(mask) = &self.mask_token
            && let Some(at) = tokens.iter().rposition(|t| t == mask)
        {
            return Err(Error::invalid_argument(
                owner,
                "vocabulary",
                format!("mask token {mask:?} at vocabulary index {}", at + skip),
                format!(
                    "the reserved mask token only at the start, in this order: {} (or no special tokens at all)",
                    self.describe_special_tokens()
                ),
            ));
        }
        if self.invert
            && let Some(at) = tokens.iter().rposition(|t| *t == self.oov_token)
        {
            return Err(Error::invalid_argument(
                owner,
                "vocabulary",
                format!(
                    "OOV token {:?} at vocabulary index {}",
                    self.oov_token,
                    at + skip
                ),
                format!(
                    "the reserved OOV token only at the start, in this order: {} (or no special tokens at all)",
                    self.describe_special_tokens()
                ),
            ));
        }
        let last_id = token_start.saturating_add(tokens.len() - 1);
        if i64::try_from(last_id).is_err() {
            return Err(Error::invalid_argument(
                owner,
                "vocabulary",
                format!("{} tokens from id {token_start}", tokens.len()),
                "ids that fit in int64 (num_oov_indices leaves too few)",
            ));
        }
        let size = token_start.saturating_add(tokens.len());
        if let Some(max) = self.max_tokens
            && size > max
        {
            return Err(Error::invalid_argument(
                owner,
                "vocabulary",
                format!("a vocabulary of {size} ids"),
                format!("at most max_tokens = {max} ids (special ids included)"),
            ));
        }
        Ok(PreparedTokens {
            tokens,
            ids,
            skipped_special_tokens: skip > 0,
        })
    }

    /// Learns the vocabulary from `data`, every element one token (Keras' `adapt`; ordering
    /// in the [module docs](crate::preprocessing::index_lookup)). In `"tf_idf"` mode every 32
    /// tokens make one document, as in Keras (see the module docs; prefer
    /// [`adapt_documents`](Self::adapt_documents) there).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the vocabulary was given to the builder (Keras refuses
    /// to adapt a layer with an input vocabulary), for no data at all, and for data whose
    /// tokens are all mask or OOV tokens (Keras fails on both). The layer is unchanged then.
    pub fn adapt<T: AsQuery<K::Query>>(&mut self, data: impl IntoIterator<Item = T>) -> Result<()> {
        self.check_adaptable()?;
        let mut state = AdaptState::default();
        let mut data = data.into_iter().peekable();
        if data.peek().is_none() {
            return Err(empty_adapt_error(K::CLASS_NAME));
        }
        if self.output_mode == OutputMode::TfIdf {
            let mut document: Vec<T> = Vec::with_capacity(KERAS_ADAPT_BATCH);
            for item in data {
                document.push(item);
                if document.len() == KERAS_ADAPT_BATCH {
                    state.count_document(&document, true);
                    document.clear();
                }
            }
            if !document.is_empty() {
                state.count_document(&document, true);
            }
        } else {
            for item in data {
                state.count(item.as_query());
            }
        }
        self.finish_adapt(state)
    }

    /// Learns the vocabulary from documents, each row one document (Keras' `adapt` on a 2-D
    /// or ragged batch): the same vocabulary as [`adapt`](Self::adapt) on all their tokens,
    /// and in `"tf_idf"` mode the document frequencies of each row.
    ///
    /// # Errors
    /// Those of [`adapt`](Self::adapt).
    pub fn adapt_documents<T, R>(&mut self, documents: impl IntoIterator<Item = R>) -> Result<()>
    where
        T: AsQuery<K::Query>,
        R: AsRef<[T]>,
    {
        self.check_adaptable()?;
        let mut state = AdaptState::default();
        let tf_idf = self.output_mode == OutputMode::TfIdf;
        let mut documents = documents.into_iter().peekable();
        if documents.peek().is_none() {
            return Err(empty_adapt_error(K::CLASS_NAME));
        }
        for document in documents {
            state.count_document(document.as_ref(), tf_idf);
        }
        self.finish_adapt(state)
    }

    fn check_adaptable(&self) -> Result<()> {
        if self.has_input_vocabulary {
            return Err(Error::invalid_argument(
                K::CLASS_NAME,
                "adapt",
                "a layer built with a vocabulary",
                "a layer without an input vocabulary (Keras: cannot adapt after setting a static vocabulary via the init argument)",
            ));
        }
        Ok(())
    }

    /// The end of `adapt` (Keras' `finalize_state`) from the counts of every token seen.
    fn finish_adapt(&mut self, state: AdaptState<K>) -> Result<()> {
        let AdaptState {
            mut counts,
            document_counts,
            documents,
        } = state;
        // finalize_state returns early when no token was counted: the vocabulary stays.
        if counts.is_empty() {
            return Ok(());
        }
        let seen = counts.len();
        if let Some(mask) = &self.mask_token {
            counts.remove(mask.borrow());
        }
        counts.remove(self.oov_token.borrow());
        let mut sorted: Vec<(K, u64)> = counts.into_iter().collect();
        // np.lexsort((tokens, counts))[::-1]: count descending, then token descending.
        sorted.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
        if let Some(max) = self.max_tokens {
            sorted.truncate(max.saturating_sub(self.token_start_index()));
        }
        if sorted.is_empty() {
            // Keras fails here too: its lookup table cannot be made from no keys.
            return Err(Error::invalid_argument(
                K::CLASS_NAME,
                "adapt",
                format!(
                    "data whose {seen} distinct tokens are all special (mask or OOV) or beyond max_tokens"
                ),
                "at least one token to learn besides the mask and OOV tokens (Keras: keys and values cannot be empty tensors); the layer is unchanged",
            ));
        }
        let token_start = self.token_start_index();
        let mut ids: HashMap<K, i64, FingerprintState> = HashMap::default();
        ids.reserve(sorted.len());
        let mut tokens = Vec::with_capacity(sorted.len());
        for (i, (token, _)) in sorted.into_iter().enumerate() {
            ids.insert(token.clone(), to_id(token_start.saturating_add(i))?);
            tokens.push(token);
        }
        if self.output_mode == OutputMode::TfIdf {
            // _inverse_document_frequency: log(1 + num_documents / (1 + document_count)),
            // int64 / int64 being a float64 division in TensorFlow; then cast to float32.
            let learned: Vec<f32> = tokens
                .iter()
                .map(|token| {
                    let in_documents = document_counts.get(token.borrow()).copied().unwrap_or(0);
                    (1.0 + documents as f64 / (1.0 + in_documents as f64)).ln() as f32
                })
                .collect();
            // tf.reduce_mean of the float32 weights (0 when nothing was learned).
            let mean = if learned.is_empty() {
                0.0
            } else {
                (learned.iter().map(|&w| f64::from(w)).sum::<f64>() / learned.len() as f64) as f32
            };
            self.idf_weights = self.padded_idf_weights(token_start, mean, learned)?;
        }
        self.tokens = tokens;
        self.ids = ids;
        self.vocabulary_set = true;
        Ok(())
    }

    /// The id of one query, `None` for an OOV query when there are no OOV ids. In the
    /// vector modes the mask token's "id" is `i64::MAX` (dropped when encoding), as in Keras.
    #[inline]
    pub(crate) fn id_of(&self, query: &K::Query) -> Option<i64> {
        if let Some(mask) = &self.mask_token
            && mask.borrow() == query
        {
            return Some(if self.output_mode == OutputMode::Int {
                0
            } else {
                i64::MAX
            });
        }
        if let Some(&id) = self.ids.get(query) {
            return Some(id);
        }
        let start = self.oov_start_index() as i64;
        match self.num_oov_indices {
            0 => None,
            1 => Some(start),
            n => Some(start + K::oov_bucket(query, n as u64) as i64),
        }
    }

    fn check_forward(&self, wanted: OutputMode) -> Result<()> {
        let owner = K::CLASS_NAME;
        if self.invert {
            return Err(Error::IncompatibleDtype {
                context: format!("{owner} with invert=true"),
                expected: "integer ids (use call_inverted)".into(),
                got: "tokens".into(),
            });
        }
        let vector = |m: OutputMode| m != OutputMode::Int;
        if vector(wanted) != vector(self.output_mode) {
            return Err(Error::invalid_argument(
                owner,
                "output_mode",
                self.output_mode,
                if self.output_mode == OutputMode::Int {
                    "a vector mode for call_encoded (use call, call_batch or call_array for ids)"
                } else {
                    "\"int\" for call, call_batch and call_array (use call_encoded for vectors)"
                },
            ));
        }
        Ok(())
    }

    /// The ids of `inputs` into `out`, or Keras' error for OOV inputs without OOV ids.
    fn ids_into<'a, T: AsQuery<K::Query> + 'a>(
        &self,
        inputs: impl Iterator<Item = &'a T>,
        count: usize,
    ) -> Result<Vec<i64>> {
        let owner = K::CLASS_NAME;
        let mut out: Vec<i64> = Vec::new();
        out.try_reserve_exact(count)
            .map_err(|_| Error::Allocation {
                context: format!("{owner}: ids of {count} inputs"),
                bytes: count.saturating_mul(8),
            })?;
        let mut missing: Vec<String> = Vec::new();
        for item in inputs {
            let query = item.as_query();
            match self.id_of(query) {
                Some(id) => out.push(id),
                None => {
                    out.push(-1);
                    if missing.len() < 10 {
                        missing.push(format!("{query:?}"));
                    }
                }
            }
        }
        if !missing.is_empty() {
            return Err(Error::invalid_argument(
                owner,
                "inputs",
                format!("OOV values [{}]", missing.join(", ")),
                "all inputs in the vocabulary when `num_oov_indices=0` (consider setting `num_oov_indices=1`)",
            ));
        }
        Ok(out)
    }

    /// The ids of a 1-D input.
    ///
    /// # Errors
    /// An OOV input with `num_oov_indices = 0` ([`Error::InvalidArgument`] naming up to ten
    /// of them, as Keras' message does); an inverting layer or a vector output mode.
    ///
    /// With the `rayon` feature, a call on many inputs is split across threads (the same
    /// ids).
    pub fn call<T: AsQuery<K::Query> + Sync>(&self, inputs: &[T]) -> Result<Array1<i64>> {
        self.check_forward(OutputMode::Int)?;
        Ok(Array1::from(self.ids_of_slice(inputs)?))
    }

    /// The ids of a slice of inputs, split across threads when it is large (`rayon`).
    pub(crate) fn ids_of_slice<T: AsQuery<K::Query> + Sync>(
        &self,
        inputs: &[T],
    ) -> Result<Vec<i64>> {
        #[cfg(feature = "rayon")]
        if inputs.len() >= PARALLEL_INPUTS && rayon::current_num_threads() > 1 {
            use rayon::prelude::*;
            let mut ids: Vec<i64> = Vec::new();
            ids.try_reserve_exact(inputs.len())
                .map_err(|_| Error::Allocation {
                    context: format!("{}: ids of {} inputs", K::CLASS_NAME, inputs.len()),
                    bytes: inputs.len().saturating_mul(8),
                })?;
            ids.resize(inputs.len(), 0);
            // Written in place by each task; an input without an id (no OOV ids) is reported
            // by the sequential pass, with Keras' message.
            let found = ids
                .par_chunks_mut(INPUTS_PER_TASK)
                .zip(inputs.par_chunks(INPUTS_PER_TASK))
                .map(|(out, part)| {
                    let mut all = true;
                    for (slot, item) in out.iter_mut().zip(part) {
                        match self.id_of(item.as_query()) {
                            Some(id) => *slot = id,
                            None => all = false,
                        }
                    }
                    all
                })
                .reduce(|| true, |a, b| a && b);
            if found {
                return Ok(ids);
            }
        }
        self.ids_into(inputs.iter(), inputs.len())
    }

    /// The ids of a batch of equal-length rows: `(rows, length)`.
    ///
    /// # Errors
    /// Those of [`call`](Self::call), and [`Error::IncompatibleShape`] for rows of different
    /// lengths (pad them first, or call row by row).
    pub fn call_batch<T: AsQuery<K::Query>, R: AsRef<[T]>>(
        &self,
        rows: &[R],
    ) -> Result<Array2<i64>> {
        self.check_forward(OutputMode::Int)?;
        let width = rows.first().map_or(0, |r| r.as_ref().len());
        if let Some(bad) = rows.iter().find(|r| r.as_ref().len() != width) {
            return Err(Error::IncompatibleShape {
                context: format!("{}: a batch of rows", K::CLASS_NAME),
                expected: vec![Some(rows.len()), Some(width)],
                got: vec![Some(rows.len()), Some(bad.as_ref().len())],
            });
        }
        let count = rows.len().saturating_mul(width);
        let ids = self.ids_into(rows.iter().flat_map(|r| r.as_ref().iter()), count)?;
        Array2::from_shape_vec((rows.len(), width), ids)
            .map_err(|e| Error::invalid_argument(K::CLASS_NAME, "inputs", e, "a rectangular batch"))
    }

    /// The ids of an array of any shape (e.g. an `ArrayD<String>`), in its shape.
    ///
    /// # Errors
    /// Those of [`call`](Self::call).
    pub fn call_array<T, S, D>(&self, inputs: &ArrayBase<S, D>) -> Result<Array<i64, D>>
    where
        T: AsQuery<K::Query> + Sync,
        S: Data<Elem = T>,
        D: Dimension,
    {
        self.check_forward(OutputMode::Int)?;
        let ids = match inputs.as_slice() {
            Some(flat) => self.ids_of_slice(flat)?,
            None => self.ids_into(inputs.iter(), inputs.len())?,
        };
        Array::from_shape_vec(inputs.raw_dim(), ids).map_err(|e| {
            Error::invalid_argument(K::CLASS_NAME, "inputs", e, "an array in standard layout")
        })
    }

    /// One vector per sample (row) in the vector output modes: `(rows, depth)`.
    ///
    /// # Errors
    /// Those of [`call`](Self::call); [`Error::NotBuilt`] when no vocabulary was set or
    /// adapted and `pad_to_max_tokens` is off (Keras: the vocabulary must be set before
    /// calling); a sample of more than one element with `"one_hot"`.
    pub fn call_encoded<T: AsQuery<K::Query>, R: AsRef<[T]>>(
        &self,
        rows: &[R],
    ) -> Result<Array2<f32>> {
        self.check_forward(OutputMode::MultiHot)?;
        let depth = match (self.pad_to_max_tokens, self.max_tokens) {
            (true, Some(max)) => max,
            _ => {
                if !self.vocabulary_set {
                    return Err(Error::NotBuilt {
                        context: K::CLASS_NAME.to_string(),
                        what: format!(
                            "the vocabulary (needed for output_mode=\"{}\")",
                            self.output_mode
                        ),
                        hint: "give a vocabulary or call adapt first, or set pad_to_max_tokens"
                            .into(),
                    });
                }
                self.vocabulary_size()
            }
        };
        let mut ids = Vec::with_capacity(rows.len());
        for row in rows {
            let row = row.as_ref();
            ids.push(self.ids_into(row.iter(), row.len())?);
        }
        encode_rows(
            &ids,
            depth,
            self.output_mode,
            &self.idf_weights,
            K::CLASS_NAME,
        )
    }

    /// The token of one id as an inverting layer gives it: the mask token for 0 (with a mask
    /// token), the vocabulary token, or `oov_token` for OOV and unknown ids.
    pub fn token_of(&self, id: i64) -> &K {
        if id == 0
            && let Some(mask) = &self.mask_token
        {
            return mask;
        }
        usize::try_from(id)
            .ok()
            .and_then(|id| id.checked_sub(self.token_start_index()))
            .and_then(|i| self.tokens.get(i))
            .unwrap_or(&self.oov_token)
    }

    /// Ids to tokens (a layer built with `invert(true)`), in the shape of `ids`.
    ///
    /// # Errors
    /// [`Error::IncompatibleDtype`] on a layer that does not invert.
    pub fn call_inverted<S, D>(&self, ids: &ArrayBase<S, D>) -> Result<Array<K, D>>
    where
        S: Data<Elem = i64>,
        D: Dimension,
    {
        if !self.invert {
            return Err(Error::IncompatibleDtype {
                context: format!("{} with invert=false", K::CLASS_NAME),
                expected: "tokens (build it with invert(true) to map ids to tokens)".into(),
                got: "integer ids".into(),
            });
        }
        Ok(ids.map(|&id| self.token_of(id).clone()))
    }
}

/// Inputs from which a lookup is split across threads (with the `rayon` feature): about
/// 1 ms of lookups, against the microseconds it costs to wake the other threads.
#[cfg(feature = "rayon")]
const PARALLEL_INPUTS: usize = 1 << 15;

/// Inputs per task of a parallel lookup.
#[cfg(feature = "rayon")]
const INPUTS_PER_TASK: usize = 1 << 13;

/// Keras' default `batch_size` of `adapt`: with a 1-D array, each batch is one document.
const KERAS_ADAPT_BATCH: usize = 32;

/// What `adapt` counts (Keras' `token_counts`, `token_document_counts`, `num_documents`).
struct AdaptState<K: LookupKey> {
    counts: HashMap<K, u64, FingerprintState>,
    document_counts: HashMap<K, u64, FingerprintState>,
    documents: u64,
}

impl<K: LookupKey> Default for AdaptState<K> {
    fn default() -> Self {
        AdaptState {
            counts: HashMap::default(),
            document_counts: HashMap::default(),
            documents: 0,
        }
    }
}

impl<K: LookupKey> AdaptState<K> {
    /// One more occurrence of `query`.
    fn count(&mut self, query: &K::Query) {
        match self.counts.get_mut(query) {
            Some(count) => *count += 1,
            None => {
                self.counts.insert(K::from_query(query), 1);
            }
        }
    }

    /// The tokens of one document, and with `documents` its distinct tokens once each.
    fn count_document<T: AsQuery<K::Query>>(&mut self, document: &[T], documents: bool) {
        for item in document {
            self.count(item.as_query());
        }
        if documents {
            self.documents += 1;
            let mut seen: std::collections::HashSet<&K::Query, FingerprintState> =
                std::collections::HashSet::default();
            for item in document {
                let query = item.as_query();
                if seen.insert(query) {
                    match self.document_counts.get_mut(query) {
                        Some(count) => *count += 1,
                        None => {
                            self.document_counts.insert(K::from_query(query), 1);
                        }
                    }
                }
            }
        }
    }
}

/// An id as `i64` (a vocabulary in memory always fits).
/// Keras' error for `adapt` on no data at all.
pub(crate) fn empty_adapt_error(owner: &str) -> Error {
    Error::invalid_argument(
        owner,
        "adapt",
        "no data",
        "at least one element (Keras: Expected input data to be non-empty)",
    )
}

fn to_id(index: usize) -> Result<i64> {
    i64::try_from(index).map_err(|_| Error::ShapeOverflow {
        context: "vocabulary ids".into(),
        shape: vec![index],
    })
}
