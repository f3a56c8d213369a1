//! The layers, one per file.

pub mod embedding;

pub use embedding::{Embedding, EmbeddingConfig};
