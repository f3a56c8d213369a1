//! `Vocabulary`: tokens to ids and back, with Keras' `StringLookup` conventions, and an
//! `Embedding` for a vocabulary built from pretrained vectors.
//!
//! A thin layer over [`StringLookup`]: ids, special tokens and OOV handling are the
//! lookup's (one OOV id, `""` as the mask token with `mask_zero`), so they are Keras' exact
//! ids. For `adapt`, several OOV ids, `max_tokens` or inverting, use
//! [`StringLookup`] itself ([`Vocabulary::lookup_layer`] gives it).

use ndarray::{Array1, Array2};

use crate::error::{Error, Result};
use crate::initializers::Initializer;
use crate::io::word_vectors::WordVectors;
use crate::layers::Embedding;
use crate::preprocessing::StringLookup;

/// Keras' default out-of-vocabulary token.
pub const OOV_TOKEN: &str = "[UNK]";

/// Token <-> id, as Keras' `StringLookup` numbers them: with `mask_zero`, id 0 is the
/// padding/mask token (`""`), id 1 the out-of-vocabulary token `[UNK]`, then the tokens from
/// id 2; without it, id 0 is `[UNK]` and the tokens start at 1.
///
/// ```
/// use ndkeras::io::vocabulary::Vocabulary;
///
/// let vocabulary = Vocabulary::new(["the", "cat", "sat"], true)?;
/// assert_eq!(vocabulary.lookup(&["the", "dog", "", "sat"]).to_vec(), vec![2, 1, 0, 4]);
/// assert_eq!(vocabulary.token(3), Some("cat"));
/// assert_eq!(vocabulary.len(), 5);
/// # Ok::<(), ndkeras::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Vocabulary {
    mask_zero: bool,
    /// Every token by id, special tokens included.
    tokens: Vec<String>,
    lookup: StringLookup,
}

impl Vocabulary {
    /// A vocabulary of `tokens`, in order.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a repeated token, an empty token, or `[UNK]` among the
    /// tokens (they are reserved).
    pub fn new<S: AsRef<str>>(
        tokens: impl IntoIterator<Item = S>,
        mask_zero: bool,
    ) -> Result<Self> {
        let tokens: Vec<String> = tokens.into_iter().map(|t| t.as_ref().to_string()).collect();
        if let Some(token) = tokens.iter().find(|t| t.is_empty() || *t == OOV_TOKEN) {
            return Err(Error::invalid_argument(
                "Vocabulary",
                "tokens",
                format!("{token:?}"),
                "tokens other than \"\" and \"[UNK]\", which are reserved",
            ));
        }
        let mut builder = StringLookup::builder();
        if mask_zero {
            builder = builder.mask_token("");
        }
        let mut lookup = builder.build()?;
        if !tokens.is_empty() {
            lookup.set_vocabulary(tokens).map_err(|e| match e {
                Error::InvalidArgument { value, .. } => {
                    Error::invalid_argument("Vocabulary", "tokens", value, "distinct tokens")
                }
                other => other,
            })?;
        }
        Ok(Vocabulary {
            mask_zero,
            tokens: lookup.get_vocabulary(true)?,
            lookup,
        })
    }

    /// The `StringLookup` that gives this vocabulary's ids.
    pub fn lookup_layer(&self) -> &StringLookup {
        &self.lookup
    }

    /// Whether id 0 is the mask token.
    pub fn mask_zero(&self) -> bool {
        self.mask_zero
    }

    /// The id of the out-of-vocabulary token.
    pub fn oov_id(&self) -> i64 {
        i64::from(self.mask_zero)
    }

    /// The number of ids (special tokens included): the `input_dim` of its embedding.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether there are no ids (never: the OOV token is always there).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Every token by id, special tokens included (Keras' `get_vocabulary()`).
    pub fn tokens(&self) -> &[String] {
        &self.tokens
    }

    /// The id of one token: the mask id for `""` with `mask_zero`, the OOV id when unknown.
    pub fn id(&self, token: &str) -> i64 {
        // One OOV id: the lookup always has an id to give.
        self.lookup.id_of(token).unwrap_or(self.oov_id())
    }

    /// The ids of a batch of tokens.
    pub fn lookup(&self, tokens: &[&str]) -> Array1<i64> {
        tokens.iter().map(|t| self.id(t)).collect()
    }

    /// The token of an id.
    pub fn token(&self, id: i64) -> Option<&str> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.tokens.get(i))
            .map(String::as_str)
    }

    /// An `Embedding` for this vocabulary, its rows taken from `vectors` where the token has
    /// one; the other rows (and the OOV row) come from `fill`; the mask row is zeros. Returns
    /// the layer (with `mask_zero` as the vocabulary) and the coverage.
    ///
    /// # Errors
    /// The errors of `fill.initialize`.
    pub fn embedding_from(
        &self,
        vectors: &WordVectors,
        fill: &Initializer,
    ) -> Result<(Embedding, Coverage)> {
        let dims = vectors.dims();
        let mut table = fill
            .initialize(&[self.len(), dims])?
            .into_dimensionality::<ndarray::Ix2>()
            .map_err(|_| {
                Error::invalid_argument(
                    "Vocabulary::embedding_from",
                    "fill",
                    fill,
                    "an initializer of 2-D tables",
                )
            })?;
        let mut coverage = Coverage {
            found: 0,
            missing: Vec::new(),
        };
        let special = if self.mask_zero { 2 } else { 1 };
        if self.mask_zero {
            table.row_mut(0).fill(0.0);
        }
        for (id, token) in self.tokens.iter().enumerate().skip(special) {
            match vectors.get(token) {
                Some(vector) => {
                    table.row_mut(id).assign(&vector);
                    coverage.found += 1;
                }
                None => coverage.missing.push(token.clone()),
            }
        }
        let layer = Embedding::from_table(table).mask_zero(self.mask_zero);
        Ok((layer, coverage))
    }

    /// The table rows of this vocabulary's tokens, as word vectors (special tokens left out),
    /// e.g. to write a trained table as a GloVe or word2vec file.
    ///
    /// # Errors
    /// [`Error::WeightShape`] when the table does not have one row per id.
    pub fn word_vectors(&self, table: &Array2<f32>) -> Result<WordVectors> {
        if table.nrows() != self.len() {
            return Err(Error::WeightShape {
                layer: "vocabulary table".into(),
                index: 0,
                expected: vec![self.len(), table.ncols()],
                got: table.shape().to_vec(),
            });
        }
        let special = if self.mask_zero { 2 } else { 1 };
        let rows: Vec<usize> = (special..self.len()).collect();
        WordVectors::new(
            self.tokens[special..].to_vec(),
            table.select(ndarray::Axis(0), &rows),
        )
    }
}

/// How many vocabulary tokens had a pretrained vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// Tokens found in the vectors.
    pub found: usize,
    /// Tokens not found (their rows come from the fill initializer).
    pub missing: Vec<String>,
}

impl Coverage {
    /// Found tokens over all (non-special) tokens, in `[0, 1]`.
    pub fn ratio(&self) -> f32 {
        let total = self.found + self.missing.len();
        if total == 0 {
            1.0
        } else {
            self.found as f32 / total as f32
        }
    }
}
