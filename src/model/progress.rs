//! A Keras-like progress line for `fit`, printed only when asked for (`verbose`), only to a
//! terminal, and only with the default `progress` feature, so a library that trains a model
//! stays quiet in logs and pipes. Written by hand: a line of text does not need a
//! progress-bar crate and its dependencies.

use std::io::{IsTerminal, Write};

/// Reports training progress on standard error.
pub(crate) struct Progress {
    enabled: bool,
    epochs: usize,
    batches: usize,
}

impl Progress {
    /// A reporter for `epochs` epochs of `batches` batches; silent unless `verbose` and
    /// standard error is a terminal.
    pub(crate) fn new(verbose: bool, epochs: usize, batches: usize) -> Self {
        Progress {
            enabled: cfg!(feature = "progress") && verbose && std::io::stderr().is_terminal(),
            epochs,
            batches,
        }
    }

    /// After batch `batch` (from 1) of epoch `epoch` (from 1), with the running mean loss.
    pub(crate) fn batch(&self, epoch: usize, batch: usize, loss: f32) {
        if !self.enabled {
            return;
        }
        let width = 30;
        let done = (batch * width).checked_div(self.batches).unwrap_or(width);
        let bar = format!(
            "{}{}",
            "=".repeat(done),
            ".".repeat(width - done.min(width))
        );
        let mut err = std::io::stderr();
        let _ = write!(
            err,
            "\rEpoch {epoch}/{} {batch}/{} [{bar}] - loss: {loss:.4}",
            self.epochs, self.batches
        );
        let _ = err.flush();
    }

    /// At the end of an epoch.
    pub(crate) fn epoch_end(&self, loss: f32, val_loss: Option<f32>) {
        if !self.enabled {
            return;
        }
        let mut err = std::io::stderr();
        match val_loss {
            Some(v) => {
                let _ = writeln!(err, " - loss: {loss:.4} - val_loss: {v:.4}");
            }
            None => {
                let _ = writeln!(err, " - loss: {loss:.4}");
            }
        }
    }
}
