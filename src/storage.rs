//! Where an embedding table lives: an owned, cache-line aligned array, or (with the `mmap`
//! feature) a read-only memory map of an `.npy` file.

use ndarray::{Array2, ArrayView2};

#[cfg(feature = "mmap")]
pub use mapped::MappedTable;

/// An embedding table's storage.
#[derive(Debug, Clone)]
pub(crate) enum Table {
    /// An array the layer owns (trainable).
    Owned(Array2<f32>),
    /// A read-only map of a file (frozen for training).
    #[cfg(feature = "mmap")]
    Mapped(MappedTable),
}

impl Table {
    /// `(rows, columns)`.
    pub(crate) fn dim(&self) -> (usize, usize) {
        match self {
            Table::Owned(a) => a.dim(),
            #[cfg(feature = "mmap")]
            Table::Mapped(m) => (m.rows(), m.cols()),
        }
    }

    /// The elements, row-major (owned tables are kept in standard layout).
    pub(crate) fn as_slice(&self) -> Option<&[f32]> {
        match self {
            Table::Owned(a) => a.as_slice(),
            #[cfg(feature = "mmap")]
            Table::Mapped(m) => Some(m.as_slice()),
        }
    }

    /// A view of the table, whatever holds it.
    pub(crate) fn view(&self) -> ArrayView2<'_, f32> {
        match self {
            Table::Owned(a) => a.view(),
            #[cfg(feature = "mmap")]
            Table::Mapped(m) => m.view(),
        }
    }

    /// The owned array, if the table is owned.
    pub(crate) fn owned(&self) -> Option<&Array2<f32>> {
        match self {
            Table::Owned(a) => Some(a),
            #[cfg(feature = "mmap")]
            Table::Mapped(_) => None,
        }
    }

    /// The owned array, mutably, if the table is owned.
    pub(crate) fn owned_mut(&mut self) -> Option<&mut Array2<f32>> {
        match self {
            Table::Owned(a) => Some(a),
            #[cfg(feature = "mmap")]
            Table::Mapped(_) => None,
        }
    }

    /// Whether the table is a read-only map.
    pub(crate) fn is_mapped(&self) -> bool {
        !matches!(self, Table::Owned(_))
    }
}

#[cfg(feature = "mmap")]
mod mapped {
    use std::fs::File;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use memmap2::Mmap;
    use ndarray::ArrayView2;

    use crate::error::{Error, Result};

    /// A read-only `(rows, cols)` float32 table mapped from a file: opening it costs O(1)
    /// time and no copy; the operating system pages rows in as lookups read them.
    ///
    /// Made by [`crate::io::npy::map_npy`]. Cloning shares the map.
    #[derive(Clone)]
    pub struct MappedTable {
        map: Arc<Mmap>,
        offset: usize,
        rows: usize,
        cols: usize,
        path: PathBuf,
    }

    impl std::fmt::Debug for MappedTable {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("MappedTable")
                .field("path", &self.path)
                .field("rows", &self.rows)
                .field("cols", &self.cols)
                .finish()
        }
    }

    impl MappedTable {
        /// Maps `rows * cols` little-endian float32 values starting at byte `offset` of
        /// `path`.
        ///
        /// # Errors
        /// [`Error::Io`] naming the path; [`Error::InvalidFile`] when the file is shorter than
        /// the table, or the data is not 4-byte aligned or not little-endian here.
        #[allow(unsafe_code)]
        pub(crate) fn map(path: &Path, offset: usize, rows: usize, cols: usize) -> Result<Self> {
            let file = File::open(path).map_err(|e| Error::io(path, "cannot open", &e))?;
            let bytes = rows
                .checked_mul(cols)
                .and_then(|n| n.checked_mul(4))
                .and_then(|n| n.checked_add(offset))
                .ok_or_else(|| Error::invalid_file(path.display(), "the table's size overflows"))?;
            let size = file
                .metadata()
                .map_err(|e| Error::io(path, "cannot read the size", &e))?
                .len();
            if (size as u128) < bytes as u128 {
                return Err(Error::invalid_file(
                    path.display(),
                    format!(
                        "the mapped file is shorter than its header says: a ({rows}, {cols}) float32 table needs {bytes} bytes, the file has {size}"
                    ),
                ));
            }
            if cfg!(target_endian = "big") {
                return Err(Error::invalid_file(
                    path.display(),
                    "little-endian float32 cannot be mapped on a big-endian machine: read it instead",
                ));
            }
            // SAFETY: `Mmap::map` is unsafe because the mapped memory may change if another
            // process writes to or truncates the file while it is mapped. ndkeras maps
            // read-only and never writes through the map; it is the caller's contract
            // (documented on `io::npy::map_npy`) that the file is not modified while a layer
            // uses it. If it is, lookups may read the new values, or the process may receive
            // SIGBUS when reading a truncated page; no other memory is affected. The length was
            // checked above against the file's size.
            let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, "cannot map", &e))?;
            let table = MappedTable {
                map: Arc::new(map),
                offset,
                rows,
                cols,
                path: path.to_path_buf(),
            };
            // The float view is checked once here (alignment), so `as_slice` cannot fail.
            if bytemuck::try_cast_slice::<u8, f32>(table.bytes()).is_err() {
                return Err(Error::invalid_file(
                    path.display(),
                    format!(
                        "the data at byte {offset} is not 4-byte aligned and cannot be mapped: read it instead"
                    ),
                ));
            }
            Ok(table)
        }

        fn bytes(&self) -> &[u8] {
            &self.map[self.offset..self.offset + self.rows * self.cols * 4]
        }

        /// The values, row-major.
        pub fn as_slice(&self) -> &[f32] {
            bytemuck::try_cast_slice(self.bytes()).unwrap_or_default()
        }

        /// A view of the table.
        pub fn view(&self) -> ArrayView2<'_, f32> {
            // The length was checked in `map`, so the shape always fits.
            ArrayView2::from_shape((self.rows, self.cols), self.as_slice()).unwrap_or_else(|_| {
                let empty: &[[f32; 0]] = &[];
                ArrayView2::from(empty)
            })
        }

        /// Rows.
        pub fn rows(&self) -> usize {
            self.rows
        }

        /// Columns.
        pub fn cols(&self) -> usize {
            self.cols
        }

        /// The mapped file.
        pub fn path(&self) -> &Path {
            &self.path
        }
    }
}
