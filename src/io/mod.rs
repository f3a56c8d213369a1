//! Tables in and out: NumPy `.npy`/`.npz` and model weights, GloVe and word2vec word
//! vectors, a [`Vocabulary`](vocabulary::Vocabulary), and the Embedding Projector export.
//!
//! Readers check every header against the size of the data actually present before they
//! allocate, so a corrupted or hostile file is an [`Error`], never a huge
//! allocation or a panic. Writers are atomic: they write a temporary file beside the target
//! and rename it, so an interrupted save never destroys the previous file.

pub mod glove;
pub mod npy;
pub mod projector;
#[cfg(feature = "safetensors")]
pub mod safetensors;
pub mod vocabulary;
pub mod word2vec;
pub mod word_vectors;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Writes a file atomically: `write` fills a temporary file in the same folder, which is
/// flushed to disk and then renamed over `path`. On any error the temporary file is removed
/// and `path` is untouched.
pub(crate) fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    let temporary = temporary_path(path);
    let result = (|| {
        let file = File::create(&temporary)
            .map_err(|e| Error::io(&temporary, "cannot create the temporary file", &e))?;
        let mut writer = BufWriter::new(file);
        write(&mut writer)?;
        let file = writer
            .into_inner()
            .map_err(|e| Error::io(&temporary, "cannot write", e.error()))?;
        file.sync_all()
            .map_err(|e| Error::io(&temporary, "cannot flush to disk", &e))?;
        std::fs::rename(&temporary, path)
            .map_err(|e| Error::io(path, "cannot replace the file", &e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Maps a write error to [`Error::Io`].
pub(crate) fn write_all(writer: &mut impl Write, bytes: &[u8], path: &Path) -> Result<()> {
    writer
        .write_all(bytes)
        .map_err(|e| Error::io(path, "cannot write", &e))
}
