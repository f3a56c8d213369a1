//! Models: stacks of layers that are built, compiled and run together.

mod fit;
pub mod history;
mod persistence;
mod progress;
pub mod sequential;
mod step;
mod summary;

pub use fit::FitOptions;
pub use history::History;
pub use sequential::{DEFAULT_BATCH_SIZE, InputSpec, Sequential};
