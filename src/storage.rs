//! Where numbers live: an embedding table is an owned, cache-line aligned array, or (with the
//! `mmap` feature) a read-only memory map of an `.npy` file (`MappedTable`: float32 values,
//! the int8 codes of a quantized table, or float16 bits); and every large buffer of the crate
//! (tables, optimizer slots, outputs, copies of weights) is allocated here, fallibly.
//!
//! # Allocation
//! Every allocation whose size comes from a file, a config or a user's number goes through
//! `try_zeroed`, `try_filled_in_parts` or `try_to_owned`: a request the system cannot serve
//! is an [`Error::Allocation`] naming what was being allocated and how many bytes, never an
//! abort. A buffer that is about to be overwritten is not zero-filled first
//! (`try_filled_in_parts` writes each element once and proves it), and buffers of 32 MB and
//! more get huge-page advice before their first write.

use std::mem::MaybeUninit;

use ndarray::{Array, ArrayView, Axis, Dimension, Slice};

use crate::error::{Error, Result};
use crate::tensor::checked_size;

#[cfg(feature = "mmap")]
pub use mapped::{MappedElement, MappedTable};

/// The byte alignment of embedding tables: a cache line, so that a row of 64 floats spans 4
/// cache lines instead of 5 (measured: about 8% faster gathers from a table larger than the
/// cache).
pub(crate) const TABLE_ALIGNMENT: usize = 64;

/// A zero-filled `(rows, cols)` table whose first element sits on a 64-byte boundary, in
/// safe code: the `Vec` is over-allocated by one cache line and the array starts at the
/// first aligned element inside it.
pub(crate) fn aligned_zeros(
    rows: usize,
    cols: usize,
    context: impl Fn() -> String,
) -> Result<ndarray::Array2<f32>> {
    let len = checked_size(&[rows, cols], &context)?;
    let pad = TABLE_ALIGNMENT / std::mem::size_of::<f32>();
    let values = try_zeroed(len.saturating_add(pad), &context)?;
    // Before anything touches the fresh (still unmapped) pages.
    advise_huge_pages(&values);
    let misalignment = values.as_ptr() as usize % TABLE_ALIGNMENT;
    let offset = ((TABLE_ALIGNMENT - misalignment) % TABLE_ALIGNMENT) / std::mem::size_of::<f32>();
    let mut flat = ndarray::Array1::from(values);
    flat.slice_axis_inplace(Axis(0), Slice::from(offset..offset + len));
    flat.into_shape_with_order((rows, cols))
        .map_err(|_| Error::ShapeOverflow {
            context: context(),
            shape: vec![rows, cols],
        })
}

/// A 64-byte aligned copy of `table` (see [`aligned_zeros`]).
pub(crate) fn aligned_copy(
    table: ndarray::ArrayView2<'_, f32>,
    context: impl Fn() -> String,
) -> Result<ndarray::Array2<f32>> {
    let mut copy = aligned_zeros(table.nrows(), table.ncols(), context)?;
    copy.assign(&table);
    Ok(copy)
}

/// Buffers at least this large are backed by transparent huge pages where the OS allows:
/// tables (random row reads then miss the TLB far less), and fresh outputs (32 page faults
/// instead of 8,192 per 16 MB written). It is also glibc's largest `mmap` threshold: a buffer
/// this large is always a fresh map, never memory the process already touched.
const HUGE_PAGE_MIN_BYTES: usize = 32 << 20;

/// Asks Linux to back a large, freshly allocated buffer with 2 MB pages: random row reads
/// from a table then miss the TLB far less (measured on this project's machine: a gather
/// from a 2M x 64 table, 14.2 -> 10.6 ms), and writing a fresh output faults 2 MB at a time.
/// Advisory: failure changes nothing. Must run before the pages are first touched.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn advise_huge_pages<T>(values: &[T]) {
    const HUGE_PAGE: usize = 2 << 20;
    let bytes = std::mem::size_of_val(values);
    if bytes < HUGE_PAGE_MIN_BYTES {
        return;
    }
    let start = values.as_ptr() as usize;
    let first = start.next_multiple_of(HUGE_PAGE);
    let end = (start + bytes) / HUGE_PAGE * HUGE_PAGE;
    if end <= first {
        return;
    }
    // SAFETY: `[first, end)` is a page-aligned range inside the allocation of `values`,
    // which this function only borrows. MADV_HUGEPAGE changes how the kernel backs those
    // pages, never their contents, their validity or their lifetime; no memory is read or
    // written through the pointer. The result is ignored: the advice is optional.
    unsafe {
        libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages<T>(_values: &[T]) {}

/// Whether a table starts on a 64-byte boundary.
pub(crate) fn is_aligned<S: ndarray::Data<Elem = f32>, D: Dimension>(
    table: &ndarray::ArrayBase<S, D>,
) -> bool {
    (table.as_ptr() as usize).is_multiple_of(TABLE_ALIGNMENT)
}

/// A zero-filled `Vec` of `len` floats, or [`Error::Allocation`] instead of an abort.
///
/// The zeroed memory comes straight from the allocator's zeroed allocation (`calloc`), which
/// serves large buffers with pages that are zero already: nothing writes zeros over a buffer
/// that is about to be filled, and slot rows that training never touches are never paged in.
/// (Measured with `benches/lookup.rs` when this was introduced: the allocating lookup of
/// 4096 x 64 ids from a 2M x 64 table went from 46 to 24 ms against a zero-filled buffer.) A
/// fallible `calloc` needs `unsafe`: the standard library's zeroed `Vec` aborts on failure.
#[allow(unsafe_code)]
pub(crate) fn try_zeroed(len: usize, context: impl FnOnce() -> String) -> Result<Vec<f32>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let failed = |context: String| Error::Allocation {
        context,
        bytes: len.saturating_mul(std::mem::size_of::<f32>()),
    };
    let Ok(layout) = std::alloc::Layout::array::<f32>(len) else {
        return Err(failed(context()));
    };
    // SAFETY: `layout` has a non-zero size (`len > 0`, checked above; `Layout::array` checked
    // that `len * 4` fits in `isize`). `alloc_zeroed` returns null or a block of exactly that
    // layout, every byte zero; the all-zero bit pattern is `0.0f32`, so all `len` elements are
    // initialised. `Vec::from_raw_parts` then takes ownership of a block allocated by the
    // global allocator with the layout of `Vec<f32>` of capacity `len` (size `len * 4`, the
    // alignment of `f32`), which is what it requires; nothing else holds the pointer.
    let values = unsafe {
        let pointer = std::alloc::alloc_zeroed(layout).cast::<f32>();
        if pointer.is_null() {
            return Err(failed(context()));
        }
        Vec::from_raw_parts(pointer, len, len)
    };
    Ok(values)
}

/// One part of a fresh buffer, written front to back: it knows how much of itself holds
/// values, so [`try_filled_in_parts`] can prove that the whole buffer was written.
pub(crate) struct Filler<'a> {
    slots: &'a mut [MaybeUninit<f32>],
    written: usize,
}

impl Filler<'_> {
    /// Appends `values` after what was written; `false` (writing nothing) when they do not
    /// fit in the part.
    #[inline]
    pub(crate) fn push(&mut self, values: &[f32]) -> bool {
        let end = self.written + values.len();
        let Some(target) = self.slots.get_mut(self.written..end) else {
            return false;
        };
        for (slot, &value) in target.iter_mut().zip(values) {
            slot.write(value);
        }
        self.written = end;
        true
    }

    fn is_full(&self) -> bool {
        self.written == self.slots.len()
    }
}

/// A `Vec` of `len` floats, allocated fallibly and written once, without a zero-fill first:
/// the buffer is cut into parts of `part_len` values (the last may be shorter) and
/// `fill(k, part)` writes part `k` front to back through [`Filler::push`], on several
/// threads when `parallel` (with the `rayon` feature). Large buffers get huge-page advice
/// before anything is written.
///
/// `Ok(None)` when `fill` returns `false` for a part, or leaves a part not full: the caller
/// found a bad input and reports it (nothing of the buffer is returned).
///
/// # Errors
/// [`Error::Allocation`] naming `context`.
#[allow(unsafe_code)]
pub(crate) fn try_filled_in_parts<F>(
    len: usize,
    part_len: usize,
    parallel: bool,
    context: impl FnOnce() -> String,
    fill: F,
) -> Result<Option<Vec<f32>>>
where
    F: Fn(usize, &mut Filler<'_>) -> bool + Sync,
{
    let mut values: Vec<f32> = Vec::new();
    values
        .try_reserve_exact(len)
        .map_err(|_| Error::Allocation {
            context: context(),
            bytes: len.saturating_mul(std::mem::size_of::<f32>()),
        })?;
    let Some(slots) = values.spare_capacity_mut().get_mut(..len) else {
        return Ok(None);
    };
    advise_huge_pages(slots);
    let fill_part = |(k, part): (usize, &mut [MaybeUninit<f32>])| {
        let mut filler = Filler {
            slots: part,
            written: 0,
        };
        fill(k, &mut filler) && filler.is_full()
    };
    let part_len = part_len.max(1);
    #[cfg(feature = "rayon")]
    let complete = if parallel {
        use rayon::prelude::*;
        slots.par_chunks_mut(part_len).enumerate().all(fill_part)
    } else {
        slots.chunks_mut(part_len).enumerate().all(fill_part)
    };
    #[cfg(not(feature = "rayon"))]
    let complete = {
        let _ = parallel;
        slots.chunks_mut(part_len).enumerate().all(fill_part)
    };
    if !complete {
        return Ok(None);
    }
    // SAFETY: `slots` is `values`' spare capacity `[0, len)` (the length is 0: the spare
    // capacity starts at the first element). The chunks of `part_len` cover `[0, len)`
    // exactly, and `complete` is true only when every chunk's `Filler` is full: a `Filler`
    // advances `written` only over slots it has just written, front to back, so a full one
    // wrote every slot of its chunk. Hence all `len <= capacity` elements are initialised.
    unsafe { values.set_len(len) };
    Ok(Some(values))
}

/// An owned copy of `view` in standard (row-major) layout, allocated fallibly and written
/// once (no zero-fill first).
///
/// # Errors
/// [`Error::Allocation`] naming `context`.
pub(crate) fn try_to_owned<D: Dimension>(
    view: ArrayView<'_, f32, D>,
    context: impl FnOnce() -> String,
) -> Result<Array<f32, D>> {
    let mut values: Vec<f32> = Vec::new();
    values
        .try_reserve_exact(view.len())
        .map_err(|_| Error::Allocation {
            context: context(),
            bytes: view.len().saturating_mul(std::mem::size_of::<f32>()),
        })?;
    match view.as_slice() {
        Some(contiguous) => values.extend_from_slice(contiguous),
        None => values.extend(view.iter().copied()),
    }
    // `values` holds the view's elements in logical (row-major) order, so the shape fits.
    Array::from_shape_vec(view.raw_dim(), values).map_err(|e| Error::ShapeOverflow {
        context: format!("copy of an array: {e}"),
        shape: view.shape().to_vec(),
    })
}

#[cfg(feature = "mmap")]
mod mapped {
    use std::fs::File;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use memmap2::Mmap;
    use ndarray::ArrayView2;

    use crate::error::{Error, Result};

    mod sealed {
        pub trait Sealed {}
        impl Sealed for f32 {}
        impl Sealed for i8 {}
        impl Sealed for u16 {}
    }

    /// The element types a [`MappedTable`] holds: `f32` (a float32 table), `i8` (the codes
    /// of an int8-quantized table) and `u16` (the bits of a float16 table). Sealed: the
    /// bytes of the file are read as these types in place, which is sound only for plain
    /// integer and float types.
    pub trait MappedElement: bytemuck::Pod + Send + Sync + sealed::Sealed {
        /// NumPy's name of the type, for messages: `"float32"`, `"int8"`, `"float16"`.
        const NAME: &'static str;
    }

    impl MappedElement for f32 {
        const NAME: &'static str = "float32";
    }

    impl MappedElement for i8 {
        const NAME: &'static str = "int8";
    }

    impl MappedElement for u16 {
        const NAME: &'static str = "float16";
    }

    /// A read-only `(rows, cols)` table of `T` mapped from a file: opening it costs O(1)
    /// time and no copy; the operating system pages rows in as lookups read them.
    ///
    /// `MappedTable` (of `f32`) is made by [`crate::io::npy::map_npy`], `MappedTable<i8>` (int8
    /// codes) by [`crate::io::npy::map_npy_codes`], `MappedTable<u16>` (float16 bits) by
    /// [`crate::io::npy::map_npy_half`]. Cloning shares the map.
    pub struct MappedTable<T: MappedElement = f32> {
        map: Arc<Mmap>,
        offset: usize,
        /// `[rows, cols]`.
        dims: [usize; 2],
        path: PathBuf,
        element: std::marker::PhantomData<T>,
    }

    impl<T: MappedElement> Clone for MappedTable<T> {
        fn clone(&self) -> Self {
            MappedTable {
                map: Arc::clone(&self.map),
                offset: self.offset,
                dims: self.dims,
                path: self.path.clone(),
                element: std::marker::PhantomData,
            }
        }
    }

    impl<T: MappedElement> std::fmt::Debug for MappedTable<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("MappedTable")
                .field("path", &self.path)
                .field("dtype", &T::NAME)
                .field("rows", &self.dims[0])
                .field("cols", &self.dims[1])
                .finish()
        }
    }

    impl<T: MappedElement> MappedTable<T> {
        /// Maps `rows * cols` little-endian values of `T` starting at byte `offset` of
        /// `path`.
        ///
        /// # Errors
        /// [`Error::Io`] naming the path; [`Error::InvalidFile`] when the file is shorter than
        /// the table, or the data is not aligned for `T` or not little-endian here.
        #[allow(unsafe_code)]
        pub(crate) fn map(path: &Path, offset: usize, rows: usize, cols: usize) -> Result<Self> {
            let file = File::open(path).map_err(|e| Error::io(path, "cannot open", &e))?;
            let size_of = std::mem::size_of::<T>();
            let name = T::NAME;
            let bytes = rows
                .checked_mul(cols)
                .and_then(|n| n.checked_mul(size_of))
                .and_then(|n| n.checked_add(offset))
                .filter(|&n| n <= isize::MAX as usize)
                .ok_or_else(|| Error::invalid_file(path.display(), "the table's size overflows"))?;
            let size = file
                .metadata()
                .map_err(|e| Error::io(path, "cannot read the size", &e))?
                .len();
            if (size as u128) < bytes as u128 {
                return Err(Error::invalid_file(
                    path.display(),
                    format!(
                        "the mapped file is shorter than its header says: a ({rows}, {cols}) {name} table needs {} bytes of data after byte {offset} ({bytes} bytes in all), the file has {size}",
                        bytes - offset
                    ),
                ));
            }
            if size_of > 1 && cfg!(target_endian = "big") {
                return Err(Error::invalid_file(
                    path.display(),
                    format!(
                        "little-endian {name} cannot be mapped on a big-endian machine: read it instead"
                    ),
                ));
            }
            // SAFETY: `Mmap::map` is unsafe because the mapped memory may change if another
            // process writes to or truncates the file while it is mapped. ndkeras maps
            // read-only and never writes through the map; it is the caller's contract
            // (documented on `io::npy::map_npy` and `map_npy_codes`) that the file is not
            // modified while a layer uses it. If it is, lookups may read the new values, or
            // the process may receive SIGBUS when reading a truncated page; no other memory is
            // affected. The length was checked above against the file's size.
            let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, "cannot map", &e))?;
            // The file may have shrunk between the size check and the map: the map's own
            // length is what `bytes` slices.
            if map.len() < bytes {
                return Err(Error::invalid_file(
                    path.display(),
                    format!(
                        "the file shrank while it was being mapped: the table needs {bytes} bytes, the map has {}",
                        map.len()
                    ),
                ));
            }
            let table = MappedTable {
                map: Arc::new(map),
                offset,
                dims: [rows, cols],
                path: path.to_path_buf(),
                element: std::marker::PhantomData,
            };
            // The typed view is checked once here (alignment), so `as_slice` cannot fail.
            if bytemuck::try_cast_slice::<u8, T>(table.bytes()).is_err() {
                return Err(Error::invalid_file(
                    path.display(),
                    format!(
                        "the data at byte {offset} is not {size_of}-byte aligned and cannot be mapped: read it instead"
                    ),
                ));
            }
            Ok(table)
        }

        fn bytes(&self) -> &[u8] {
            // `map` checked that the map holds these bytes (and that their count fits).
            let len = self.dims[0] * self.dims[1] * std::mem::size_of::<T>();
            self.map
                .get(self.offset..self.offset + len)
                .unwrap_or_default()
        }

        /// The values, row-major.
        pub fn as_slice(&self) -> &[T] {
            bytemuck::try_cast_slice(self.bytes()).unwrap_or_default()
        }

        /// A view of the table.
        pub fn view(&self) -> ArrayView2<'_, T> {
            // The length was checked in `map`, so the shape always fits.
            ArrayView2::from_shape(self.dims, self.as_slice()).unwrap_or_else(|_| {
                let empty: &[[T; 0]] = &[];
                ArrayView2::from(empty)
            })
        }

        /// Rows.
        pub fn rows(&self) -> usize {
            self.dims[0]
        }

        /// Columns.
        pub fn cols(&self) -> usize {
            self.dims[1]
        }

        /// `[rows, cols]`.
        pub fn shape(&self) -> &[usize] {
            &self.dims
        }

        /// The mapped file.
        pub fn path(&self) -> &Path {
            &self.path
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn zeroed_buffers_are_zero_and_owned() {
        for len in [0, 1, 7, 1 << 20] {
            let mut values = try_zeroed(len, || "test".into()).unwrap();
            assert_eq!(values.len(), len);
            assert!(values.iter().all(|&v| v == 0.0));
            // Owned like any Vec: writable, growable, freed on drop.
            values.push(1.0);
            assert_eq!(values.last(), Some(&1.0));
        }
    }

    #[test]
    fn impossible_allocations_are_errors_not_aborts() {
        let err = try_zeroed(usize::MAX / 4, || "huge buffer".into()).unwrap_err();
        assert!(
            matches!(&err, Error::Allocation { context, .. } if context == "huge buffer"),
            "{err}"
        );
        let err = try_zeroed(1 << 60, || "huge buffer".into()).unwrap_err();
        assert!(matches!(err, Error::Allocation { .. }), "{err}");
    }

    #[test]
    fn filled_buffers_hold_every_part_in_order_or_nothing() {
        let source: Vec<f32> = (0..1000).map(|v| v as f32).collect();
        for parallel in [false, true] {
            // Parts of 64 values, the last one shorter (1000 = 15 * 64 + 40).
            let filled = try_filled_in_parts(1000, 64, parallel, String::new, |k, part| {
                let start = k * 64;
                part.push(&source[start..(start + 64).min(1000)])
            });
            assert_eq!(filled.unwrap().as_deref(), Some(source.as_slice()));
            // A part left short is not a buffer, even when `fill` says it succeeded.
            let short = try_filled_in_parts(1000, 64, parallel, String::new, |k, part| {
                k == 3 || part.push(&source[k * 64..(k * 64 + 64).min(1000)])
            });
            assert_eq!(short.unwrap(), None);
            // A part that refuses to go on, and values that overflow a part.
            let refused = try_filled_in_parts(1000, 64, parallel, String::new, |k, _| k != 0);
            assert_eq!(refused.unwrap(), None);
            let over = try_filled_in_parts(10, 4, parallel, String::new, |_, part| {
                part.push(&source[..5])
            });
            assert_eq!(over.unwrap(), None);
        }
        assert_eq!(
            try_filled_in_parts(0, 0, false, String::new, |_, _| false).unwrap(),
            Some(Vec::new())
        );
        let err =
            try_filled_in_parts(1 << 60, 64, false, || "huge".into(), |_, _| true).unwrap_err();
        assert!(matches!(&err, Error::Allocation { context, .. } if context == "huge"));
    }

    #[test]
    fn copies_are_standard_layout_with_the_same_values() {
        let a = array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]];
        let t = try_to_owned(a.t(), || "t".into()).unwrap();
        assert!(t.is_standard_layout());
        assert_eq!(t, a.t());
        let aligned = aligned_copy(a.view(), || "a".into()).unwrap();
        assert!(is_aligned(&aligned));
        assert_eq!(aligned, a);
    }
}
