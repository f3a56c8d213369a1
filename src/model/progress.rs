//! What `fit` prints, as Keras' `verbose` says: nothing (0), a progress bar (1: on a terminal
//! a bar redrawn after each batch, elsewhere one line per epoch, as Keras' progress bar does
//! when the output is not interactive), or one line per epoch (2). Lines go to standard
//! error, so a program's own output stays clean; with the `progress` feature off nothing is
//! printed. Written by hand: a line of text does not need a progress-bar crate and its
//! dependencies.

use std::io::{IsTerminal, Write};
use std::time::Instant;

/// Keras' `verbose` for `fit`: `0`, `1` or `2`. `true` is `1`, `false` is `0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbosity {
    /// `verbose=0`: nothing is printed.
    Silent,
    /// `verbose=1` (the default): a progress bar redrawn after every batch on a terminal; one
    /// line per epoch when the output is not a terminal.
    #[default]
    ProgressBar,
    /// `verbose=2`: one line per epoch.
    EpochLines,
}

impl From<bool> for Verbosity {
    fn from(verbose: bool) -> Self {
        if verbose {
            Verbosity::ProgressBar
        } else {
            Verbosity::Silent
        }
    }
}

impl From<i32> for Verbosity {
    /// Keras' numbers: `0` silent, `1` a progress bar, `2` (or more) one line per epoch;
    /// negative numbers are silent.
    fn from(verbose: i32) -> Self {
        match verbose {
            i32::MIN..=0 => Verbosity::Silent,
            1 => Verbosity::ProgressBar,
            _ => Verbosity::EpochLines,
        }
    }
}

/// How the progress is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Silent,
    Bar,
    Lines,
}

/// Reports training progress on standard error.
pub(crate) struct Progress {
    style: Style,
    epochs: usize,
    batches: usize,
    started: Instant,
}

impl Progress {
    /// A reporter for `epochs` epochs of `batches` batches.
    pub(crate) fn new(verbosity: Verbosity, epochs: usize, batches: usize) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let style = match verbosity {
            _ if !cfg!(feature = "progress") => Style::Silent,
            Verbosity::Silent => Style::Silent,
            Verbosity::ProgressBar if terminal => Style::Bar,
            Verbosity::ProgressBar | Verbosity::EpochLines => Style::Lines,
        };
        Progress {
            style,
            epochs,
            batches,
            started: Instant::now(),
        }
    }

    /// At the start of epoch `epoch` (from 1): Keras' `Epoch 1/3` line.
    pub(crate) fn epoch_start(&mut self, epoch: usize) {
        self.started = Instant::now();
        if self.style != Style::Silent {
            let _ = writeln!(std::io::stderr(), "Epoch {epoch}/{}", self.epochs);
        }
    }

    /// After batch `batch` (from 1), with the running mean loss: the bar, redrawn.
    pub(crate) fn batch(&self, batch: usize, loss: f32) {
        if self.style != Style::Bar {
            return;
        }
        let mut err = std::io::stderr();
        let _ = write!(err, "\r{} - loss: {loss:.4}", self.bar(batch));
        let _ = err.flush();
    }

    /// At the end of an epoch: the bar's last state, or the epoch's line, with the losses
    /// once each (`- loss: 0.6732 - val_loss: 0.6810`).
    pub(crate) fn epoch_end(&self, losses: &[(String, f32)]) {
        if self.style == Style::Silent {
            return;
        }
        let values: String = losses
            .iter()
            .map(|(name, value)| format!(" - {name}: {value:.4}"))
            .collect();
        let elapsed = self.started.elapsed();
        let per_step = elapsed.as_secs_f64() * 1000.0 / self.batches.max(1) as f64;
        let mut err = std::io::stderr();
        let _ = match self.style {
            Style::Bar => writeln!(
                err,
                "\r{} - {:.0}s {per_step:.0}ms/step{values}",
                self.bar(self.batches),
                elapsed.as_secs_f64()
            ),
            _ => writeln!(
                err,
                "{}/{} - {:.0}s - {per_step:.0}ms/step{values}",
                self.batches,
                self.batches,
                elapsed.as_secs_f64()
            ),
        };
    }

    /// `3/10 [=========.....................]`.
    fn bar(&self, batch: usize) -> String {
        let width = 30;
        let done = (batch * width)
            .checked_div(self.batches)
            .unwrap_or(width)
            .min(width);
        format!(
            "{batch}/{} [{}{}]",
            self.batches,
            "=".repeat(done),
            ".".repeat(width - done)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras_numbers_and_booleans_map_to_the_three_levels() {
        assert_eq!(Verbosity::from(0), Verbosity::Silent);
        assert_eq!(Verbosity::from(1), Verbosity::ProgressBar);
        assert_eq!(Verbosity::from(2), Verbosity::EpochLines);
        assert_eq!(Verbosity::from(-1), Verbosity::Silent);
        assert_eq!(Verbosity::from(true), Verbosity::ProgressBar);
        assert_eq!(Verbosity::from(false), Verbosity::Silent);
        assert_eq!(Verbosity::default(), Verbosity::ProgressBar);
    }

    #[test]
    fn the_bar_fills_with_the_batches() {
        let progress = Progress::new(Verbosity::EpochLines, 1, 10);
        assert_eq!(progress.bar(0), format!("0/10 [{}]", ".".repeat(30)));
        assert_eq!(
            progress.bar(5),
            format!("5/10 [{}{}]", "=".repeat(15), ".".repeat(15))
        );
        assert_eq!(progress.bar(10), format!("10/10 [{}]", "=".repeat(30)));
    }
}
