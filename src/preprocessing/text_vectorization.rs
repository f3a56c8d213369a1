//! Keras' `TextVectorization` (tf_keras `layers/preprocessing/text_vectorization.py`) in
//! `output_mode="int"`: text -> standardize -> split -> n-grams -> `StringLookup` ids, padded
//! or truncated.
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

use std::fmt;
use std::sync::Arc;

use ndarray::Array2;

use super::index_lookup::StringLookup;
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
    /// A Rust closure.
    Custom(StandardizeFn),
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
    /// A Rust closure.
    Custom(SplitFn),
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

/// The settings of a [`TextVectorization`]; defaults are Keras': no `max_tokens`,
/// `standardize="lower_and_strip_punctuation"`, `split="whitespace"`, no `ngrams`, no
/// `output_sequence_length`, no vocabulary.
#[derive(Debug, Clone, Default)]
pub struct TextVectorizationBuilder {
    max_tokens: Option<usize>,
    standardize: Standardize,
    split: Split,
    ngrams: Option<Vec<usize>>,
    output_sequence_length: Option<usize>,
    vocabulary: Option<Vec<String>>,
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
        self.ngrams = Some((1..=n).collect());
        self
    }

    /// N-grams of exactly these widths, in this order (Keras' tuple `ngrams`).
    pub fn ngram_widths(mut self, widths: impl IntoIterator<Item = usize>) -> Self {
        self.ngrams = Some(widths.into_iter().collect());
        self
    }

    /// Cut or pad every row to this length.
    pub fn output_sequence_length(mut self, length: usize) -> Self {
        self.output_sequence_length = Some(length);
        self
    }

    /// A fixed vocabulary (the layer cannot be adapted then).
    pub fn vocabulary<S: Into<String>>(mut self, vocabulary: impl IntoIterator<Item = S>) -> Self {
        self.vocabulary = Some(vocabulary.into_iter().map(Into::into).collect());
        self
    }

    /// The checked layer.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an n-gram width of 0, and the errors of the
    /// `StringLookup` it holds (`max_tokens` of 1 or less, a bad vocabulary).
    pub fn build(self) -> Result<TextVectorization> {
        if let Some(widths) = &self.ngrams
            && widths.contains(&0)
        {
            return Err(Error::invalid_argument(
                "TextVectorization",
                "ngrams",
                format!("{widths:?}"),
                "n-gram widths of at least 1",
            ));
        }
        let mut lookup = StringLookup::builder().mask_token("");
        if let Some(max) = self.max_tokens {
            lookup = lookup.max_tokens(max);
        }
        if let Some(vocabulary) = self.vocabulary {
            lookup = lookup.vocabulary(vocabulary);
        }
        Ok(TextVectorization {
            lookup: lookup.build()?,
            standardize: self.standardize,
            split: self.split,
            ngrams: self.ngrams,
            output_sequence_length: self.output_sequence_length,
        })
    }
}

/// Keras' `TextVectorization` with `output_mode="int"`: texts to rows of ids (see the
/// [module docs](crate::preprocessing::text_vectorization) for exactly what each step does).
///
/// # Shapes
/// `call`: `n` texts -> `(n, length)` ids, `length` = `output_sequence_length` or the longest
/// row. `call_ragged`: one `Vec` of ids per text.
#[derive(Debug, Clone)]
pub struct TextVectorization {
    lookup: StringLookup,
    standardize: Standardize,
    split: Split,
    ngrams: Option<Vec<usize>>,
    output_sequence_length: Option<usize>,
}

/// `absl::ascii_isspace`, what `tf.strings.split` separates on.
fn is_tf_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{0b}' | '\u{0c}' | '\r')
}

impl TextVectorization {
    /// The settings, Keras' defaults to start with.
    pub fn builder() -> TextVectorizationBuilder {
        TextVectorizationBuilder::default()
    }

    /// The `StringLookup` that gives the ids.
    pub fn lookup(&self) -> &StringLookup {
        &self.lookup
    }

    /// The tokens of one text after standardize, split and n-grams (Keras' `_preprocess`).
    pub fn tokens(&self, text: &str) -> Vec<String> {
        let standardized: std::borrow::Cow<'_, str> = match &self.standardize {
            Standardize::LowerAndStripPunctuation => text
                .chars()
                .filter(|c| !c.is_ascii_punctuation())
                .map(|c| c.to_ascii_lowercase())
                .collect::<String>()
                .into(),
            Standardize::Lower => text.to_ascii_lowercase().into(),
            Standardize::StripPunctuation => text
                .chars()
                .filter(|c| !c.is_ascii_punctuation())
                .collect::<String>()
                .into(),
            Standardize::None => text.into(),
            Standardize::Custom(f) => f(text).into(),
        };
        let tokens: Vec<String> = match &self.split {
            Split::Whitespace => standardized
                .split(is_tf_space)
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
            Split::Character => standardized.chars().map(String::from).collect(),
            Split::Custom(f) => f(&standardized),
        };
        match &self.ngrams {
            None => tokens,
            Some(widths) => {
                let mut grams = Vec::new();
                for &width in widths {
                    for window in tokens.windows(width) {
                        grams.push(window.join(" "));
                    }
                }
                grams
            }
        }
    }

    /// Learns the vocabulary from texts (Keras' `adapt`: the tokens of every text counted,
    /// then ordered as `StringLookup.adapt` orders them).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the vocabulary was given to the builder.
    pub fn adapt<S: AsRef<str>>(&mut self, texts: impl IntoIterator<Item = S>) -> Result<()> {
        let mut all = Vec::new();
        for text in texts {
            all.extend(self.tokens(text.as_ref()));
        }
        self.lookup.adapt(all)
    }

    /// The ids of each text, one row per text, unpadded.
    ///
    /// # Errors
    /// None in practice (the lookup has one OOV id); kept for the lookup's errors.
    pub fn call_ragged<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<i64>>> {
        texts
            .iter()
            .map(|text| {
                let tokens = self.tokens(text.as_ref());
                Ok(self.lookup.call(&tokens)?.to_vec())
            })
            .collect()
    }

    /// The ids of `texts` as a `(texts, length)` array, cut or padded with 0 at the end.
    ///
    /// # Errors
    /// [`Error::Allocation`] when the output does not fit in memory.
    pub fn call<S: AsRef<str>>(&self, texts: &[S]) -> Result<Array2<i64>> {
        let rows = self.call_ragged(texts)?;
        let length = self
            .output_sequence_length
            .unwrap_or_else(|| rows.iter().map(Vec::len).max().unwrap_or(0));
        let elements = rows
            .len()
            .checked_mul(length)
            .ok_or_else(|| Error::ShapeOverflow {
                context: "TextVectorization output".into(),
                shape: vec![rows.len(), length],
            })?;
        let mut data: Vec<i64> = Vec::new();
        data.try_reserve_exact(elements)
            .map_err(|_| Error::Allocation {
                context: format!("TextVectorization: ids of shape ({}, {length})", rows.len()),
                bytes: elements.saturating_mul(8),
            })?;
        for row in &rows {
            let kept = row.len().min(length);
            data.extend_from_slice(&row[..kept]);
            data.extend(std::iter::repeat_n(0, length - kept));
        }
        Array2::from_shape_vec((rows.len(), length), data).map_err(|e| {
            Error::invalid_argument("TextVectorization", "inputs", e, "a rectangular output")
        })
    }

    /// The vocabulary by id (`""` and `[UNK]` first with `include_special_tokens`).
    pub fn get_vocabulary(&self, include_special_tokens: bool) -> Vec<String> {
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
