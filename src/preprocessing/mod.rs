//! Layers that make ids from raw values, with Keras' exact ids: [`StringLookup`],
//! [`IntegerLookup`], [`Hashing`] and [`TextVectorization`] (tf_keras 2.21
//! `layers/preprocessing/`).
//!
//! They sit in front of an [`Embedding`](crate::layers::Embedding): a table trained in Keras
//! is only useful if Rust maps `"the"` to the same id, so every id here is checked against
//! the real tf_keras 2.21 on a multilingual sample (ASCII, accents, CJK, emoji, punctuation,
//! empty strings, ties in counts) in `tests/keras_lookups.rs`, including the hashes under
//! them ([`fingerprint64`], [`siphash24`]).
//!
//! They take strings or integers and give `i64` ids (or, in the vector output modes, `f32`
//! vectors). Called directly, they take Rust slices and arrays:
//!
//! ```
//! use ndkeras::preprocessing::{Hashing, StringLookup};
//!
//! let mut lookup = StringLookup::builder().mask_token("").num_oov_indices(2).build()?;
//! lookup.adapt(["the", "cat", "the", "東京", "😀", "the", "cat"])?;
//! assert_eq!(lookup.get_vocabulary(true)?, ["", "[UNK]", "[UNK]", "the", "cat", "😀", "東京"]);
//! // Unknown tokens share the OOV ids 1 and 2 by their FarmHash fingerprint, as in Keras.
//! let ids = lookup.call_batch(&[["the", "dog", ""], ["東京", "cat", "😀"]])?;
//! assert_eq!(ids.row(1).to_vec(), [6, 4, 5]);
//! assert_eq!(Hashing::new(3)?.call(&["A", "B"])?.to_vec(), [1, 0]);
//! # Ok::<(), ndkeras::Error>(())
//! ```
//!
//! Raw text to padded ids, as `TextVectorization(output_sequence_length=4)` after `adapt`:
//!
//! ```
//! use ndkeras::preprocessing::TextVectorization;
//!
//! let mut vectorize = TextVectorization::builder().output_sequence_length(4).build()?;
//! vectorize.adapt(["The cat sat.", "the dog!"])?;
//! assert_eq!(vectorize.get_vocabulary(true)?, ["", "[UNK]", "the", "sat", "dog", "cat"]);
//! let ids = vectorize.call(&["The cat and the dog", "Dog?"])?;
//! assert_eq!(ids, ndarray::array![[2, 5, 1, 2], [4, 0, 0, 0]]);
//! # Ok::<(), ndkeras::Error>(())
//! ```
//!
//! They are also model layers ([`Layer`](crate::layer::Layer)): at the front of a
//! `Sequential` or a functional model they take a string [`Tensor`](crate::tensor::Tensor)
//! (`Tensor::from(vec!["a b", "c"])`, Keras' `tf.string`), so a model trains on raw text and
//! predicts from it. They have no weights (the vocabulary is not among `get_weights`; see
//! the `layer` module for how that differs from tf_keras) and no gradient flows through them.
//!
//! ```
//! use ndarray::array;
//! use ndkeras::prelude::*;
//! use ndkeras::preprocessing::TextVectorization;
//!
//! let texts = vec!["a fine film", "a dull film", "fine, fine", "dull!"];
//! let mut vectorize = TextVectorization::builder().output_sequence_length(3).build()?;
//! vectorize.adapt(&texts)?;
//! let mut model = Sequential::new();
//! model.add(vectorize.clone())?;
//! model.add(Embedding::new(vectorize.vocabulary_size(), 4).mask_zero(true))?;
//! model.add(GlobalAveragePooling1D::new())?;
//! model.add(Dense::new(1).activation(Activation::Sigmoid))?;
//! model.compile(Adam::default().into(), Loss::BinaryCrossentropy)?;
//! model.fit(Tensor::from(texts.clone()), array![1.0f32, 0.0, 1.0, 0.0], FitOptions::default().verbose(false))?;
//! let scores = model.predict(Tensor::from(vec!["fine film"]))?;
//! assert_eq!(scores.shape(), &[1, 1]);
//! # Ok::<(), ndkeras::Error>(())
//! ```

mod farmhash;
mod hashing;
pub mod index_lookup;
mod key;
mod layer;
mod output_mode;
mod siphash;
pub mod text_vectorization;
pub mod vocabulary_file;

pub use farmhash::fingerprint64;
pub use hashing::{Hashing, MaskValue};
pub use index_lookup::{IndexLookup, IntegerLookup, LookupBuilder, StringLookup};
pub use key::{AsQuery, LookupKey};
pub use layer::TensorKey;
pub use output_mode::OutputMode;
pub use siphash::siphash24;
pub use text_vectorization::{
    Ngrams, Split, SplitFn, Standardize, StandardizeFn, TextVectorization, TextVectorizationBuilder,
};
