//! The layers, one per file.

pub mod dense;
pub mod dropout;
pub mod embedding;
pub mod flatten;
pub mod pooling;

pub use dense::{Dense, DenseConfig};
pub use dropout::Dropout;
pub use embedding::{Embedding, EmbeddingConfig};
pub use flatten::Flatten;
pub use pooling::GlobalAveragePooling1D;
