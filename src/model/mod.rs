//! Models: stacks of layers that are built, compiled and run together.

pub mod callbacks;
mod fit;
pub mod functional;
pub mod history;
pub(crate) mod order;
mod persistence;
pub use persistence::LoadOptions;
mod progress;
pub mod sequential;
mod step;
pub(crate) mod summary;

pub use fit::FitOptions;
pub use functional::{Graph, Input, LayerRef, Model, SymbolicTensor};
pub use history::History;
pub use progress::Verbosity;
pub use sequential::{DEFAULT_BATCH_SIZE, InputSpec, Sequential};
