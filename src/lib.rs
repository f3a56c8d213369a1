//! # ndkeras
//!
//! The Keras layer API in Rust, on top of [`ndarray`], starting with its heart: the
//! [`Embedding`](layers::Embedding) layer. It behaves as Keras 2 (`tf_keras`) does: the
//! table is created lazily when the layer is built, filled by an
//! [`Initializer`](initializers::Initializer) or by explicit `weights` that override it, and
//! `mask_zero` marks padding. Where Keras is silent or unsafe (an out-of-range id gives an
//! error on a CPU, zeros on a GPU, a NaN row or a wrapped index on JAX), ndkeras always
//! returns a clear [`Error`].
//!
//! ## Quick start
//!
//! The three classic Keras embedding scripts, in Rust:
//!
//! ```
//! use ndarray::{Array, Array2};
//! use ndkeras::prelude::*;
//!
//! // (a) random initialisation: Embedding(1000, 64, input_length=10)
//! let mut model = Sequential::new();
//! model.add(Embedding::new(1000, 64).input_length(10))?;
//! model.compile("rmsprop".parse()?, "mse".parse()?)?;
//! let x = Array2::<i64>::from_shape_fn((32, 10), |(i, j)| ((i * 10 + j) * 7 % 1000) as i64);
//! assert_eq!(model.predict(x)?.shape(), &[32, 10, 64]);
//!
//! // (b) explicit weights, with mask_zero
//! let w = Array::range(0.0f32, 6.0, 1.0).into_shape_with_order((3, 2))?.into_dyn();
//! let mut model = Sequential::new();
//! model.add(Embedding::new(3, 2).input_length(1).mask_zero(true).weights(vec![w.clone()]))?;
//! let out = model.predict(vec![1i64, 2, 2, 1, 2, 0])?;
//! assert_eq!(out.shape(), &[6, 1, 2]);
//! assert_eq!(out.as_slice().unwrap(), &[2., 3., 4., 5., 4., 5., 2., 3., 4., 5., 0., 1.]);
//!
//! // (c) the same table through a Constant initializer
//! let mut model = Sequential::new();
//! model.add(Embedding::new(3, 2).input_length(1).embeddings_initializer(Initializer::Constant(w)))?;
//! let out = model.predict(vec![1i64, 2, 2, 1, 2])?;
//! assert_eq!(out.shape(), &[5, 1, 2]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Training
//!
//! `fit` trains with Keras' optimizers and losses. An embedding's gradient is row-sparse, so
//! a step costs what the batch touches, not the size of the table, and still gives Keras'
//! weights (checked against vectors produced by Keras):
//!
//! ```
//! use ndarray::array;
//! use ndkeras::prelude::*;
//!
//! let mut model = Sequential::new();
//! model.add(Embedding::new(12, 4).mask_zero(true).embeddings_initializer(Initializer::GlorotUniform { seed: Some(1) }))?;
//! model.add(GlobalAveragePooling1D::new())?;
//! model.add(Dense::new(1).activation(Activation::Sigmoid))?;
//! model.compile(Adam::default().learning_rate(0.05).into(), Loss::BinaryCrossentropy)?;
//! let x = array![[3i64, 4, 5, 0], [6, 7, 0, 0]];
//! let y = array![[1.0f32], [0.0]];
//! let history = model.fit(x.clone(), y.clone(), FitOptions::default().epochs(20).verbose(false))?;
//! assert!(history.loss[19] < history.loss[0]);
//! # Ok::<(), ndkeras::Error>(())
//! ```
//!
//! ## Where things are
//!
//! - [`layer`] — the [`Layer`](layer::Layer) trait and the Keras lifecycle, top to bottom.
//! - [`layers`] — the layers: [`Embedding`](layers::Embedding) and its family (position
//!   embeddings, `ReversibleEmbedding`, `EmbeddingBag`, `EmbedReduce`), `Dense`, pooling,
//!   merge layers.
//! - [`initializers`] — Keras' initializers, names and formulas.
//! - [`model`] — [`Sequential`](model::Sequential) and the functional API
//!   ([`Graph`](model::Graph), [`Model`](model::Model)): `predict`, `compile`, `fit`,
//!   `evaluate`, callbacks, `summary`, weights files. A `Sequential` is one case of a graph.
//! - [`metrics`] — Keras' metrics for `compile`.
//! - [`quantization`] — int8/int4 and half-precision tables (Keras 3).
//! - [`preprocessing`] — layers that make ids (`StringLookup`, `Hashing`,
//!   `TextVectorization`) with Keras' exact ids.
//! - [`similarity`] — nearest neighbours and analogies over a table.
//! - [`io`] — NumPy, safetensors, GloVe/word2vec files and vocabularies.
//! - [`optimizers`], [`losses`] — what `compile` takes; [`activations`], [`constraints`],
//!   [`regularizers`] — what layers take.
//! - [`tensor`] — the ids and values that flow between layers, with their masks.
//! - [`weight`] — a layer's variables as values ([`Weight`](weight::Weight)), which
//!   optimizers key their slots by.
//! - `config` (with the `serde` feature, on by default) — Keras JSON: `get_config` /
//!   `from_config` for every layer, `Sequential::to_json` / `from_json`.
//! - [`doc::keras_for_rust_users`] — each Keras call and its ndkeras counterpart.

// Five `unsafe` blocks, each with its SAFETY note. Four in `storage`: mapping a file
// (`MappedTable::map`), advising huge pages for large tables (`advise_huge_pages`, a measured
// 25% on gathers from a 512 MB table), a fallible zeroed allocation (`try_zeroed`, which
// keeps large buffers lazily zeroed: a measured 46 -> 24 ms on an allocating lookup), and the
// length of an output filled part by part, set once every part is checked as written
// (`try_filled_in_parts`: the allocating lookup writes each element once, no zero-fill). One
// in `kernels`: the x86_64 prefetch hint (`kernels::prefetch`), which row-sparse optimizer
// updates issue a few rows ahead (a measured 13.0 -> 9.5 ms for a lazy Adam step and
// 11.0 -> 7.7 ms for RMSprop on a 2M x 64 table).
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod activations;
#[cfg(feature = "serde")]
pub mod config;
pub mod constraints;
pub mod doc;
pub mod error;
pub mod initializers;
pub mod io;
mod kernels;
pub mod layer;
pub mod layers;
pub mod losses;
pub mod metrics;
pub mod model;
pub mod optimizers;
pub mod preprocessing;
pub mod quantization;
pub mod regularizers;
pub mod similarity;
pub mod storage;
pub mod tensor;
pub mod weight;

pub use error::{Error, Result, Shape};

/// The names most programs need: `use ndkeras::prelude::*;`.
///
/// It does not export the crate's one-parameter `Result`, which would shadow
/// `std::result::Result`; use `ndkeras::Result` by its path.
pub mod prelude {
    pub use crate::activations::Activation;
    #[cfg(feature = "serde")]
    pub use crate::config::KerasConfig;
    pub use crate::constraints::{Axes, Constraint};
    pub use crate::error::{Error, Shape};
    pub use crate::initializers::{Distribution, FanMode, Initializer};
    pub use crate::layer::{CallArgs, Layer};
    pub use crate::layers::{
        Add, Average, BagMode, Combiner, Concatenate, Dense, Dot, Dropout, EmbedReduce, Embedding,
        EmbeddingBag, Flatten, GlobalAveragePooling1D, Maximum, Minimum, Multiply,
        PositionEmbedding, Reshape, ReversibleEmbedding, RopeType, RotaryEmbedding,
        SinePositionEncoding, Subtract, TokenAndPositionEmbedding,
    };
    pub use crate::losses::Loss;
    pub use crate::metrics::Metric;
    pub use crate::model::{
        FitOptions, Graph, History, Input, LayerRef, Model, Sequential, SymbolicTensor, Verbosity,
    };
    pub use crate::optimizers::{Adagrad, Adam, Optimizer, RMSprop, SGD, SparseAdam};
    pub use crate::preprocessing::{
        Hashing, IntegerLookup, OutputMode, StringLookup, TextVectorization,
    };
    pub use crate::regularizers::Regularizer;
    pub use crate::tensor::{DType, Tensor, TensorData};
    pub use crate::weight::{Weight, WeightId};
}

/// The README's code blocks, compiled and run as doc tests so the quick start stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
