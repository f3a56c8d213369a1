//! Keras' `TextVectorization` (tf_keras `layers/preprocessing/text_vectorization.py`): text ->
//! standardize -> split -> n-grams -> `StringLookup` ids, padded or truncated
//! (`output_mode="int"`), or one vector per text (`"multi_hot"`, `"count"`, `"tf_idf"`).
//!
//! What TensorFlow's string ops do, reproduced (and checked on the multilingual sample of
//! `tests/keras_lookups.rs`):
//! - `lower` is `tf.strings.lower` without an encoding: **ASCII letters only** (`"ÉCOLE"`
//!   becomes `"École"`, `"Σ"` stays).
//! - `strip_punctuation` removes Keras' regex class
//!   ``[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~']``: exactly the 32 ASCII punctuation
//!   characters; other punctuation (`«»`, `。`, `¿`) is kept.
//! - `whitespace` is `tf.strings.split` without a separator: runs of ASCII whitespace (space,
//!   `\t`, `\n`, `\v`, `\f`, `\r`) separate tokens; U+00A0 and U+3000 do not.
//! - `character` is `tf.strings.unicode_split`: one token per code point.
//! - `ngrams` is `tf.strings.ngrams` with `" "` as separator: for each width in order, every
//!   window of that width (none when the text is shorter).
//! - The vocabulary is a `StringLookup` with `mask_token=""`: id 0 pads, id 1 is `[UNK]`.
//! - With `output_sequence_length`, every row is cut or padded with 0 to that length; without
//!   it, rows are padded to the longest row of the call.
//! - In the vector modes each text is one sample (and, for `adapt` in `"tf_idf"` mode, one
//!   document).
//!
//! Texts are turned into ids without an allocation per token (the standardized text and the
//! n-grams live in buffers reused from text to text); with the `rayon` feature, a call on
//! many texts is split across threads by blocks of texts, giving the same ids.

use std::fmt;
use std::sync::Arc;

use ndarray::{Array2, ArrayD};

use super::index_lookup::StringLookup;
use super::output_mode::{OutputMode, encode_rows};
use crate::error::{Error, Result};

/// A standardization closure: text in, text out.
pub type StandardizeFn = Arc<dyn Fn(&str) -> String + Send + Sync>;
/// A split closure: text in, tokens out.
pub type SplitFn = Arc<dyn Fn(&str) -> Vec<String> + Send + Sync>;

/// How text is standardized before splitting (Keras' `standardize`).
#[derive(Clone, Default)]
pub enum Standardize {
    /// ASCII lowercase, then ASCII punctuation removed (the default).
    #[default]
    LowerAndStripPunctuation,
    /// ASCII lowercase only.
    Lower,
    /// ASCII punctuation removed only.
    StripPunctuation,
    /// The text as given (`None` in Keras).
    None,
    /// A Rust closure (not representable in Keras JSON).
    Custom(StandardizeFn),
}

impl Standardize {
    /// Keras' name (`"lower_and_strip_punctuation"`, `"lower"`, `"strip_punctuation"`),
    /// `None` for no standardization; `Err(())` for a closure.
    #[allow(clippy::result_unit_err)]
    pub fn keras_name(&self) -> std::result::Result<Option<&'static str>, ()> {
        match self {
            Standardize::LowerAndStripPunctuation => Ok(Some("lower_and_strip_punctuation")),
            Standardize::Lower => Ok(Some("lower")),
            Standardize::StripPunctuation => Ok(Some("strip_punctuation")),
            Standardize::None => Ok(None),
            Standardize::Custom(_) => Err(()),
        }
    }
}

impl fmt::Debug for Standardize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Standardize::LowerAndStripPunctuation => "LowerAndStripPunctuation",
            Standardize::Lower => "Lower",
            Standardize::StripPunctuation => "StripPunctuation",
            Standardize::None => "None",
            Standardize::Custom(_) => "Custom(..)",
        })
    }
}

/// How standardized text becomes tokens (Keras' `split`).
#[derive(Clone, Default)]
pub enum Split {
    /// On runs of ASCII whitespace (the default).
    #[default]
    Whitespace,
    /// One token per Unicode code point.
    Character,
    /// A Rust closure (not representable in Keras JSON).
    Custom(SplitFn),
}

impl Split {
    /// Keras' name (`"whitespace"`, `"character"`); `None` for a closure.
    pub fn keras_name(&self) -> Option<&'static str> {
        match self {
            Split::Whitespace => Some("whitespace"),
            Split::Character => Some("character"),
            Split::Custom(_) => None,
        }
    }
}

impl fmt::Debug for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Whitespace => "Whitespace",
            Split::Character => "Character",
            Split::Custom(_) => "Custom(..)",
        })
    }
}

/// Keras' `ngrams` argument as it was given: an integer `n` (widths `1..=n`) or a tuple of
/// widths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ngrams {
    /// Widths `1..=n` (Keras' integer `ngrams`).
    UpTo(usize),
    /// Exactly these widths, in this order (Keras' tuple `ngrams`).
    Widths(Vec<usize>),
}

impl Ngrams {
    /// The widths, in order, produced lazily (`UpTo(usize::MAX)` allocates nothing).
    pub fn widths(&self) -> impl Iterator<Item = usize> + '_ {
        let (up_to, given) = match self {
            Ngrams::UpTo(n) => (*n, &[][..]),
            Ngrams::Widths(widths) => (0, widths.as_slice()),
        };
        (1..=up_to).chain(given.iter().copied())
    }
}

/// The settings of a [`TextVectorization`]; defaults are Keras': no `max_tokens`,
/// `standardize="lower_and_strip_punctuation"`, `split="whitespace"`, no `ngrams`,
/// `output_mode="int"`, no `output_sequence_length`, `pad_to_max_tokens=false`, no
/// vocabulary, name `text_vectorization`, `text_vectorization_1`, ...
#[derive(Debug, Clone, Default)]
pub struct TextVectorizationBuilder {
    max_tokens: Option<usize>,
    standardize: Standardize,
    split: Split,
    ngrams: Option<Ngrams>,
    output_mode: OutputMode,
    output_sequence_length: Option<usize>,
    pad_to_max_tokens: bool,
    vocabulary: Option<Vec<String>>,
    idf_weights: Option<Vec<f32>>,
    name: Option<String>,
}

impl TextVectorizationBuilder {
    /// The largest vocabulary, the padding and OOV ids included.
    pub fn max_tokens(mut self, max_tokens: usize) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// How text is standardized (default [`Standardize::LowerAndStripPunctuation`]).
    pub fn standardize(mut self, standardize: Standardize) -> Self {
        self.standardize = standardize;
        self
    }

    /// How text is split (default [`Split::Whitespace`]).
    pub fn split(mut self, split: Split) -> Self {
        self.split = split;
        self
    }

    /// N-grams of widths `1..=n` (Keras' integer `ngrams`).
    pub fn ngrams(mut self, n: usize) -> Self {
        self.ngrams = Some(Ngrams::UpTo(n));
        self
    }

    /// N-grams of exactly these widths, in this order (Keras' tuple `ngrams`).
    pub fn ngram_widths(mut self, widths: impl IntoIterator<Item = usize>) -> Self {
        self.ngrams = Some(Ngrams::Widths(widths.into_iter().collect()));
        self
    }

    /// What calling returns (default [`OutputMode::Int`]): ids, or one vector per text with
    /// [`OutputMode::MultiHot`], [`OutputMode::Count`] or [`OutputMode::TfIdf`]
    /// ([`OutputMode::OneHot`] is refused, as in Keras).
    pub fn output_mode(mut self, output_mode: OutputMode) -> Self {
        self.output_mode = output_mode;
        self
    }

    /// Cut or pad every row to this length (`"int"` mode only).
    pub fn output_sequence_length(mut self, length: usize) -> Self {
        self.output_sequence_length = Some(length);
        self
    }

    /// In the vector modes, make vectors `max_tokens` long whatever the vocabulary's size
    /// (default false).
    pub fn pad_to_max_tokens(mut self, pad_to_max_tokens: bool) -> Self {
        self.pad_to_max_tokens = pad_to_max_tokens;
        self
    }

    /// A fixed vocabulary (the layer cannot be adapted then).
    pub fn vocabulary<S: Into<String>>(mut self, vocabulary: impl IntoIterator<Item = S>) -> Self {
        self.vocabulary = Some(vocabulary.into_iter().map(Into::into).collect());
        self
    }

    /// The inverse document frequencies of the given vocabulary (`"tf_idf"` mode).
    pub fn idf_weights(mut self, idf_weights: impl IntoIterator<Item = f32>) -> Self {
        self.idf_weights = Some(idf_weights.into_iter().collect());
        self
    }

    /// The layer's name (default: Keras' automatic `text_vectorization`, ...).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The checked layer.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an n-gram width of 0, `output_mode="one_hot"`, an
    /// `output_sequence_length` outside `"int"` mode (Keras' reasons), and the errors of the
    /// `StringLookup` it holds (`max_tokens` of 1 or less, a bad vocabulary, `idf_weights`).
    pub fn build(self) -> Result<TextVectorization> {
        let owner = "TextVectorization";
        if let Some(ngrams) = &self.ngrams {
            let zero_width = match ngrams {
                Ngrams::UpTo(n) => *n == 0,
                Ngrams::Widths(widths) => widths.contains(&0),
            };
            if zero_width {
                return Err(Error::invalid_argument(
                    owner,
                    "ngrams",
                    format!("{ngrams:?}"),
                    "n-gram widths of at least 1",
                ));
            }
        }
        if self.output_mode == OutputMode::OneHot {
            return Err(Error::invalid_argument(
                owner,
                "output_mode",
                self.output_mode,
                "one of \"int\", \"multi_hot\", \"count\", \"tf_idf\" (Keras' TextVectorization has no \"one_hot\")",
            ));
        }
        if self.output_mode != OutputMode::Int
            && let Some(length) = self.output_sequence_length
        {
            return Err(Error::invalid_argument(
                owner,
                "output_sequence_length",
                length,
                format!(
                    "no output_sequence_length unless output_mode is \"int\" (output_mode is \"{}\")",
                    self.output_mode
                ),
            ));
        }
        let mut lookup = StringLookup::builder()
            .mask_token("")
            .output_mode(self.output_mode)
            .pad_to_max_tokens(self.pad_to_max_tokens);
        if let Some(max) = self.max_tokens {
            lookup = lookup.max_tokens(max);
        }
        if let Some(vocabulary) = self.vocabulary {
            lookup = lookup.vocabulary(vocabulary);
        }
        if let Some(weights) = self.idf_weights {
            lookup = lookup.idf_weights(weights);
        }
        let name = match self.name {
            Some(name) => name,
            None => crate::layer::unique_name("text_vectorization"),
        };
        // The inner lookup keeps the layer's name, for its messages.
        let lookup = lookup.name(name.clone()).build().map_err(|e| match e {
            Error::InvalidArgument {
                parameter,
                value,
                expected,
                ..
            } => Error::InvalidArgument {
                owner: owner.into(),
                parameter,
                value,
                expected,
            },
            other => other,
        })?;
        Ok(TextVectorization {
            name,
            trainable: true,
            lookup,
            standardize: self.standardize,
            split: self.split,
            ngrams: self.ngrams,
            output_sequence_length: self.output_sequence_length,
        })
    }
}

/// Keras' `TextVectorization`: texts to rows of ids, or to one vector per text (see the
/// [module docs](crate::preprocessing::text_vectorization) for exactly what each step does).
///
/// As a model's first layer (it implements [`Layer`](crate::layer::Layer)), it takes a
/// string tensor of shape `(batch,)` or `(batch, 1)` and gives `int64` ids or `float32`
/// vectors; it has no weights and stops the gradient.
///
/// # Shapes
/// `"int"` mode: `n` texts -> `(n, length)` ids, `length` = `output_sequence_length` or the
/// longest row of the call. Vector modes: `(n, depth)`, `depth` = the vocabulary size (or
/// `max_tokens` with `pad_to_max_tokens`). `call_ragged`: one `Vec` of ids per text.
#[derive(Debug, Clone)]
pub struct TextVectorization {
    name: String,
    trainable: bool,
    lookup: StringLookup,
    standardize: Standardize,
    split: Split,
    ngrams: Option<Ngrams>,
    output_sequence_length: Option<usize>,
}

/// `absl::ascii_isspace`, what `tf.strings.split` separates on.
fn is_tf_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The tokens of `tf.strings.split(text)`: the non-empty runs between ASCII whitespace. A
/// byte scan: the separators are ASCII, so every cut falls on a character boundary.
fn tf_whitespace_tokens(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        while bytes.get(at).is_some_and(|&b| is_tf_space(b)) {
            at += 1;
        }
        let start = at;
        while bytes.get(at).is_some_and(|&b| !is_tf_space(b)) {
            at += 1;
        }
        // `start..at` lies between ASCII separators (or the ends): char boundaries.
        (at > start).then(|| text.get(start..at)).flatten()
    })
}

/// The buffers one thread reuses from text to text.
#[derive(Default)]
struct Scratch {
    /// The standardized text, when a closure made it.
    text: String,
    /// Bytes of the standardized text before they are known to be UTF-8 again.
    bytes: Vec<u8>,
    /// The current n-gram.
    gram: String,
}

/// Texts per task of a parallel call: enough to amortize a task, few enough to share the
/// work evenly.
#[cfg(feature = "rayon")]
const TEXTS_PER_TASK: usize = 256;

/// Texts from which a call is split across threads (with the `rayon` feature).
#[cfg(feature = "rayon")]
const PARALLEL_TEXTS: usize = 2048;

impl TextVectorization {
    /// The settings, Keras' defaults to start with.
    pub fn builder() -> TextVectorizationBuilder {
        TextVectorizationBuilder::default()
    }

    /// The layer's name (Keras' `name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same layer with another name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Keras' `trainable` flag, kept for the config (nothing to train).
    pub fn trainable(&self) -> bool {
        self.trainable
    }

    /// Sets Keras' `trainable` flag.
    pub fn set_trainable(&mut self, trainable: bool) {
        self.trainable = trainable;
    }

    /// The `StringLookup` that gives the ids.
    pub fn lookup(&self) -> &StringLookup {
        &self.lookup
    }

    /// `standardize`.
    pub fn standardize(&self) -> &Standardize {
        &self.standardize
    }

    /// `split`.
    pub fn split(&self) -> &Split {
        &self.split
    }

    /// `ngrams`, as given.
    pub fn ngrams(&self) -> Option<&Ngrams> {
        self.ngrams.as_ref()
    }

    /// `output_mode`.
    pub fn output_mode(&self) -> OutputMode {
        self.lookup.output_mode()
    }

    /// `output_sequence_length`, if set.
    pub fn output_sequence_length(&self) -> Option<usize> {
        self.output_sequence_length
    }

    /// `max_tokens`, if set.
    pub fn max_tokens(&self) -> Option<usize> {
        self.lookup.max_tokens()
    }

    /// `text` standardized, in `scratch` (borrowed from it).
    fn standardize_into<'s>(
        &self,
        text: &str,
        bytes: &'s mut Vec<u8>,
        owned: &'s mut String,
    ) -> &'s str {
        let (lower, strip) = match &self.standardize {
            Standardize::LowerAndStripPunctuation => (true, true),
            Standardize::Lower => (true, false),
            Standardize::StripPunctuation => (false, true),
            Standardize::None => (false, false),
            Standardize::Custom(f) => {
                *owned = f(text);
                return owned;
            }
        };
        // Both steps change ASCII bytes only, and the bytes of a multi-byte UTF-8 character
        // are never ASCII: working on bytes keeps the text valid UTF-8.
        bytes.clear();
        bytes.extend(
            text.bytes()
                .filter(|b| !(strip && b.is_ascii_punctuation()))
                .map(|b| if lower { b.to_ascii_lowercase() } else { b }),
        );
        match std::str::from_utf8(bytes) {
            Ok(valid) => valid,
            // Not reachable (see above); the char-by-char way gives the same text.
            Err(_) => {
                *owned = text
                    .chars()
                    .filter(|c| !(strip && c.is_ascii_punctuation()))
                    .map(|c| if lower { c.to_ascii_lowercase() } else { c })
                    .collect();
                owned
            }
        }
    }

    /// Calls `visit` with every token of `text` (after standardize, split and n-grams), in
    /// Keras' order.
    fn for_each_token(&self, text: &str, scratch: &mut Scratch, mut visit: impl FnMut(&str)) {
        let Scratch {
            text: owned,
            bytes,
            gram,
        } = scratch;
        let standardized = self.standardize_into(text, bytes, owned);
        let custom: Vec<String>;
        let split: Vec<&str> = match &self.split {
            Split::Whitespace => {
                if self.ngrams.is_none() {
                    tf_whitespace_tokens(standardized).for_each(&mut visit);
                    return;
                }
                tf_whitespace_tokens(standardized).collect()
            }
            Split::Character => {
                let pieces = standardized
                    .char_indices()
                    .filter_map(|(at, c)| standardized.get(at..at + c.len_utf8()));
                if self.ngrams.is_none() {
                    pieces.for_each(&mut visit);
                    return;
                }
                pieces.collect()
            }
            Split::Custom(f) => {
                custom = f(standardized);
                custom.iter().map(String::as_str).collect()
            }
        };
        match &self.ngrams {
            None => split.into_iter().for_each(visit),
            Some(ngrams) => {
                for width in ngrams.widths() {
                    if width > split.len() {
                        // No window this wide; `UpTo` widths only grow, so none after it either.
                        if matches!(ngrams, Ngrams::UpTo(_)) {
                            break;
                        }
                        continue;
                    }
                    for window in split.windows(width) {
                        gram.clear();
                        for (k, token) in window.iter().enumerate() {
                            if k > 0 {
                                gram.push(' ');
                            }
                            gram.push_str(token);
                        }
                        visit(gram);
                    }
                }
            }
        }
    }

    /// The tokens of one text after standardize, split and n-grams (Keras' `_preprocess`).
    pub fn tokens(&self, text: &str) -> Vec<String> {
        let mut tokens = Vec::new();
        self.for_each_token(text, &mut Scratch::default(), |t| {
            tokens.push(t.to_string())
        });
        tokens
    }

    /// Appends the ids of the tokens of `text` to `out`.
    fn push_ids(&self, text: &str, scratch: &mut Scratch, out: &mut Vec<i64>) -> Result<()> {
        let mut missing = false;
        self.for_each_token(text, scratch, |token| match self.lookup.id_of(token) {
            Some(id) => out.push(id),
            None => missing = true,
        });
        if missing {
            // The lookup has one OOV id: every token has an id.
            return Err(Error::invalid_argument(
                format!("layer \"{}\" (TextVectorization)", self.name),
                "inputs",
                "a token without an id",
                "internal: the vocabulary has one OOV id",
            ));
        }
        Ok(())
    }

    /// Learns the vocabulary from texts (Keras' `adapt`: the tokens of every text counted,
    /// then ordered as `StringLookup.adapt` orders them; in `"tf_idf"` mode each text is one
    /// document).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the vocabulary was given to the builder, for no texts
    /// at all, or texts whose tokens are all mask or OOV tokens (Keras fails on both). Texts
    /// without any token leave the vocabulary as it was, as in Keras.
    pub fn adapt<S: AsRef<str>>(&mut self, texts: impl IntoIterator<Item = S>) -> Result<()> {
        let documents = texts.into_iter().map(|text| self.tokens(text.as_ref()));
        let documents: Vec<Vec<String>> = documents.collect();
        let owner = format!("layer \"{}\" (TextVectorization)", self.name);
        if documents.is_empty() {
            return Err(super::index_lookup::empty_adapt_error(&owner));
        }
        self.lookup.adapt_documents(documents).map_err(|e| match e {
            Error::InvalidArgument {
                parameter,
                value,
                expected,
                ..
            } => Error::InvalidArgument {
                owner,
                parameter,
                value,
                expected,
            },
            other => other,
        })
    }

    /// The ids of each text, one row per text, unpadded.
    ///
    /// # Errors
    /// Those of [`TextVectorization::call`].
    pub fn call_ragged<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<i64>>> {
        let mut scratch = Scratch::default();
        texts
            .iter()
            .map(|text| {
                let mut ids = Vec::new();
                self.push_ids(text.as_ref(), &mut scratch, &mut ids)?;
                Ok(ids)
            })
            .collect()
    }

    /// The ids of `texts` as a `(texts, length)` array, cut or padded with 0 at the end
    /// (`"int"` mode). With the `rayon` feature, a call on thousands of texts is split across
    /// threads (the same ids).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] in a vector output mode (use
    /// [`call_encoded`](Self::call_encoded)); [`Error::Allocation`] when the output does not
    /// fit in memory.
    pub fn call<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Array2<i64>> {
        if self.output_mode() != OutputMode::Int {
            return Err(self.mode_error("call", "\"int\" (use call_encoded for vectors)"));
        }
        let Some(length) = self.output_sequence_length else {
            let rows = self.call_ragged(texts)?;
            let length = rows.iter().map(Vec::len).max().unwrap_or(0);
            let mut data = self.zeros(rows.len(), length)?;
            for (row, ids) in data.chunks_exact_mut(length.max(1)).zip(&rows) {
                row[..ids.len()].copy_from_slice(ids);
            }
            return self.shaped(data, rows.len(), length);
        };
        let mut data = self.zeros(texts.len(), length)?;
        if length > 0 {
            let fill = |texts: &[S], out: &mut [i64]| -> Result<()> {
                let mut scratch = Scratch::default();
                let mut ids = Vec::new();
                for (text, row) in texts.iter().zip(out.chunks_exact_mut(length)) {
                    ids.clear();
                    self.push_ids(text.as_ref(), &mut scratch, &mut ids)?;
                    let kept = ids.len().min(length);
                    row[..kept].copy_from_slice(&ids[..kept]);
                }
                Ok(())
            };
            #[cfg(feature = "rayon")]
            if texts.len() >= PARALLEL_TEXTS && rayon::current_num_threads() > 1 {
                use rayon::prelude::*;
                let results: Vec<Result<()>> = texts
                    .par_chunks(TEXTS_PER_TASK)
                    .zip(data.par_chunks_mut(TEXTS_PER_TASK * length))
                    .map(|(texts, out)| fill(texts, out))
                    .collect();
                results.into_iter().collect::<Result<Vec<()>>>()?;
                return self.shaped(data, texts.len(), length);
            }
            fill(texts, &mut data)?;
        }
        self.shaped(data, texts.len(), length)
    }

    /// One vector per text in the vector output modes (`"multi_hot"`, `"count"`,
    /// `"tf_idf"`): `(texts, depth)`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] in `"int"` mode; [`Error::NotBuilt`] before a vocabulary
    /// is set or adapted (without `pad_to_max_tokens`), as in Keras; [`Error::Allocation`].
    pub fn call_encoded<S: AsRef<str>>(&self, texts: &[S]) -> Result<Array2<f32>> {
        if self.output_mode() == OutputMode::Int {
            return Err(self.mode_error("call_encoded", "a vector mode (use call for ids)"));
        }
        let Some(depth) = self.lookup.depth() else {
            return Err(Error::NotBuilt {
                context: format!("layer \"{}\" (TextVectorization)", self.name),
                what: format!(
                    "the vocabulary (needed for output_mode=\"{}\")",
                    self.output_mode()
                ),
                hint: "give a vocabulary or call adapt first, or set pad_to_max_tokens".into(),
            });
        };
        let rows = self.call_ragged(texts)?;
        encode_rows(
            &rows,
            depth,
            self.output_mode(),
            self.lookup.idf_weights(),
            "TextVectorization",
        )
    }

    fn mode_error(&self, method: &str, expected: &str) -> Error {
        Error::invalid_argument(
            format!("layer \"{}\" (TextVectorization): {method}", self.name),
            "output_mode",
            self.output_mode(),
            expected,
        )
    }

    /// `rows * length` zeros, or the error naming the output's shape.
    fn zeros(&self, rows: usize, length: usize) -> Result<Vec<i64>> {
        let elements = rows
            .checked_mul(length)
            .ok_or_else(|| Error::ShapeOverflow {
                context: format!("layer \"{}\" (TextVectorization): output", self.name),
                shape: vec![rows, length],
            })?;
        let mut data: Vec<i64> = Vec::new();
        data.try_reserve_exact(elements)
            .map_err(|_| Error::Allocation {
                context: format!(
                    "layer \"{}\" (TextVectorization): ids of shape ({rows}, {length})",
                    self.name
                ),
                bytes: elements.saturating_mul(8),
            })?;
        data.resize(elements, 0);
        Ok(data)
    }

    fn shaped(&self, data: Vec<i64>, rows: usize, length: usize) -> Result<Array2<i64>> {
        Array2::from_shape_vec((rows, length), data).map_err(|e| {
            Error::invalid_argument("TextVectorization", "inputs", e, "a rectangular output")
        })
    }

    /// The output for a string array of shape `(n,)` or `(n, 1)`: ids or vectors.
    pub(crate) fn call_texts(&self, texts: &ArrayD<String>) -> Result<crate::tensor::Tensor> {
        let standard = texts.as_standard_layout();
        let flat = standard.as_slice().unwrap_or_default();
        Ok(if self.output_mode() == OutputMode::Int {
            crate::tensor::Tensor::from(self.call(flat)?)
        } else {
            crate::tensor::Tensor::from(self.call_encoded(flat)?)
        })
    }

    /// The vocabulary by id (`""` and `[UNK]` first with `include_special_tokens`).
    ///
    /// # Errors
    /// Those of [`StringLookup::get_vocabulary`](crate::preprocessing::StringLookup::get_vocabulary).
    pub fn get_vocabulary(&self, include_special_tokens: bool) -> Result<Vec<String>> {
        self.lookup.get_vocabulary(include_special_tokens)
    }

    /// The number of ids, padding and OOV included.
    pub fn vocabulary_size(&self) -> usize {
        self.lookup.vocabulary_size()
    }

    /// Replaces the vocabulary (see [`StringLookup::set_vocabulary`]).
    ///
    /// # Errors
    /// Those of [`StringLookup::set_vocabulary`].
    pub fn set_vocabulary<S: Into<String>>(
        &mut self,
        vocabulary: impl IntoIterator<Item = S>,
    ) -> Result<()> {
        self.lookup.set_vocabulary(vocabulary)
    }

    /// Replaces the vocabulary and its inverse document frequencies (`"tf_idf"` mode; see
    /// [`StringLookup::set_vocabulary_with_idf`]).
    ///
    /// # Errors
    /// Those of [`StringLookup::set_vocabulary_with_idf`].
    pub fn set_vocabulary_with_idf<S: Into<String>>(
        &mut self,
        vocabulary: impl IntoIterator<Item = S>,
        idf_weights: impl IntoIterator<Item = f32>,
    ) -> Result<()> {
        self.lookup.set_vocabulary_with_idf(vocabulary, idf_weights)
    }

    /// Writes the vocabulary file Keras writes (see [`StringLookup::save_vocabulary`]).
    ///
    /// # Errors
    /// [`Error::Io`] naming `path`.
    pub fn save_vocabulary(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        self.lookup.save_vocabulary(path)
    }

    /// Reads a Keras vocabulary file (see [`StringLookup::load_vocabulary`]).
    ///
    /// # Errors
    /// Those of [`StringLookup::load_vocabulary`].
    pub fn load_vocabulary(&mut self, path: impl AsRef<std::path::Path>) -> Result<()> {
        self.lookup.load_vocabulary(path)
    }
}
