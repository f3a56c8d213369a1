//! Documentation-only modules.

pub mod keras_for_rust_users;
