//! Models: stacks of layers that are built, compiled and run together.

pub mod sequential;
mod summary;

pub use sequential::{DEFAULT_BATCH_SIZE, Sequential};
