//! The layers, one per file (one folder for the merge layers, one for KerasHub's position
//! layers, one for the bag layers).

/// The [`Layer`](crate::layer::Layer) methods of a layer without weights: always built,
/// nothing to initialize or freeze, an empty weight list (so `set_weights` accepts only an
/// empty one).
macro_rules! weightless_layer {
    () => {
        fn is_trainable(&self) -> bool {
            true
        }

        /// Nothing to freeze.
        fn set_trainable(&mut self, _trainable: bool) {}

        fn is_built(&self) -> bool {
            true
        }

        fn weight_shapes_for(&self, _input_shape: &[Option<usize>]) -> Result<Vec<Vec<usize>>> {
            Ok(Vec::new())
        }

        fn build(&mut self, _input_shape: &[Option<usize>]) -> Result<()> {
            Ok(())
        }

        fn initial_weights(&self) -> Option<&[ArrayD<f32>]> {
            None
        }

        fn unbuild(&mut self) {}

        fn variables(&self) -> Vec<&crate::weight::Weight> {
            Vec::new()
        }

        fn variables_mut(&mut self) -> Vec<&mut crate::weight::Weight> {
            Vec::new()
        }
    };
}

pub mod bag;
pub mod dense;
pub mod dropout;
pub mod embedding;
pub mod flatten;
pub mod merge;
pub mod pooling;
pub mod position;
pub mod reshape;
pub mod reversible;

pub use bag::{
    BagMode, Combiner, EmbedReduce, EmbedReduceConfig, EmbeddingBag, EmbeddingBagConfig,
};
pub use dense::{Dense, DenseConfig};
pub use dropout::Dropout;
pub use embedding::{Embedding, EmbeddingConfig};
pub use flatten::Flatten;
pub use merge::{Add, Average, Concatenate, Dot, DotAxes, Maximum, Minimum, Multiply, Subtract};
pub use pooling::GlobalAveragePooling1D;
pub use position::{
    PositionEmbedding, RopeType, RotaryEmbedding, SinePositionEncoding, TokenAndPositionEmbedding,
};
pub use reshape::Reshape;
pub use reversible::ReversibleEmbedding;
