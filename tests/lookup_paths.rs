//! The everyday lookup paths at every size: the allocating call (`apply`, `call`, `predict`)
//! and `lookup_into`, on one thread and split across two, give the rows of a plain gather;
//! a bad id anywhere is reported at its first position with no output (and `lookup_into`
//! leaves its buffer untouched); the allocating call allocates nothing but its output, and an
//! output too large for memory is an `Error::Allocation`, not an abort.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ndarray::{Array2, ArrayD, IxDyn};
use ndkeras::prelude::*;

/// Counts the allocations made by the current thread (tests run on several threads).
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// thread-local `Cell` with a constant initialiser, which never allocates.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        // SAFETY: the caller's layout is passed on as it came.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: `pointer` was allocated by `System` with `layout` (through this type).
        unsafe { System.dealloc(pointer, layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        // SAFETY: as for `dealloc`; `size` is the caller's.
        unsafe { System.realloc(pointer, layout, size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations made by this thread while `f` runs.
fn allocations_during<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let before = ALLOCATIONS.with(Cell::get);
    let value = f();
    (ALLOCATIONS.with(Cell::get) - before, value)
}

/// A `(vocab, dim)` table whose every value names its row and column.
fn table(vocab: usize, dim: usize) -> Array2<f32> {
    Array2::from_shape_fn((vocab, dim), |(r, c)| r as f32 + c as f32 / 1000.0)
}

/// What a plain gather gives: `out[..., :] = table[id, :]`, in row-major order of `ids`.
fn plain_gather(table: &Array2<f32>, ids: &ArrayD<i64>) -> ArrayD<f32> {
    let dim = table.ncols();
    let mut shape = ids.shape().to_vec();
    shape.push(dim);
    let values: Vec<f32> = ids
        .iter()
        .flat_map(|&id| table.row(id as usize).to_vec())
        .collect();
    ArrayD::from_shape_vec(IxDyn(&shape), values).unwrap()
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

/// Ids `(rows, cols)` spread over `0..vocab`.
fn spread_ids(rows: usize, cols: usize, vocab: usize) -> ArrayD<i64> {
    ArrayD::from_shape_fn(IxDyn(&[rows, cols]), |ix| {
        ((ix[0] * cols + ix[1]) * 7919 % vocab) as i64
    })
}

/// Small (one pass on the caller's thread) and large (512 KB and more: split into tasks,
/// with a short last task) lookups.
const SIZES: [(usize, usize, usize, usize); 3] = [
    // vocab, dim, rows, cols
    (50, 3, 4, 5),
    (1000, 64, 64, 33),
    (300, 7, 257, 129),
];

#[test]
fn every_path_gives_the_rows_of_a_plain_gather_on_one_and_two_threads() {
    for (vocab, dim, rows, cols) in SIZES {
        let table = table(vocab, dim);
        let ids = spread_ids(rows, cols, vocab);
        let expected = plain_gather(&table, &ids);
        for threads in [1, 2] {
            pool(threads).install(|| {
                let mut layer = Embedding::from_table(table.clone());
                let applied = layer.apply(&Tensor::from(ids.clone())).unwrap();
                assert_eq!(
                    applied.as_float().unwrap(),
                    &expected,
                    "apply {rows}x{cols}"
                );
                let mut out = ArrayD::<f32>::from_elem(expected.raw_dim(), f32::NAN);
                layer
                    .lookup_into(&Tensor::from(ids.clone()), out.view_mut())
                    .unwrap();
                assert_eq!(out, expected, "lookup_into {rows}x{cols} on {threads}");
                let mut model = Sequential::new();
                model.add(Embedding::from_table(table.clone())).unwrap();
                assert_eq!(model.predict(ids.clone()).unwrap(), expected, "predict");
                // Every id type takes the same path.
                let narrow = Tensor::from(ids.mapv(|id| id as u16));
                assert_eq!(layer.apply(&narrow).unwrap().as_float(), Some(&expected));
                let float = Tensor::from(ids.mapv(|id| id as f32));
                assert_eq!(layer.apply(&float).unwrap().as_float(), Some(&expected));
            });
        }
    }
}

#[test]
fn ids_in_any_memory_layout_are_read_in_logical_order() {
    let table = table(100, 5);
    // 300 x 200 ids, transposed: not in standard layout, and large enough to be split.
    let ids = spread_ids(200, 300, 100).reversed_axes();
    let expected = plain_gather(&table, &ids);
    for threads in [1, 2] {
        pool(threads).install(|| {
            let mut layer = Embedding::from_table(table.clone());
            let out = layer.apply(&Tensor::from(ids.clone())).unwrap();
            assert_eq!(out.as_float().unwrap(), &expected);
            let mut buffer = ArrayD::<f32>::zeros(expected.raw_dim());
            layer
                .lookup_into(&Tensor::from(ids.clone()), buffer.view_mut())
                .unwrap();
            assert_eq!(buffer, expected);
        });
    }
}

#[test]
fn the_first_bad_id_is_reported_even_when_a_later_task_fails_first() {
    let (vocab, dim, rows, cols) = (1000, 64, 64, 64);
    let table = table(vocab, dim);
    let mut ids = spread_ids(rows, cols, vocab);
    // Far apart: in different tasks of a split lookup. The earlier one must win.
    ids[[60, 1]] = -4;
    ids[[9, 7]] = vocab as i64;
    for threads in [1, 2] {
        pool(threads).install(|| {
            let mut layer = Embedding::from_table(table.clone()).with_name("words");
            layer.apply(&Tensor::from(vec![0i64])).unwrap();
            let err = layer.apply(&Tensor::from(ids.clone())).unwrap_err();
            match &err {
                Error::IndexOutOfRange {
                    layer,
                    index,
                    position,
                    input_dim,
                } => {
                    assert_eq!(layer, "words");
                    assert_eq!((*index, position.clone(), *input_dim), (1000, vec![9, 7], 1000));
                }
                other => panic!("expected IndexOutOfRange, got {other:?}"),
            }
            assert!(err.to_string().contains("[9, 7]"), "{err}");
            // lookup_into: the same error, and the buffer untouched.
            let mut out = ArrayD::<f32>::from_elem(IxDyn(&[rows, cols, dim]), 7.0);
            let err_into = layer
                .lookup_into(&Tensor::from(ids.clone()), out.view_mut())
                .unwrap_err();
            assert_eq!(err_into, err);
            assert!(out.iter().all(|&v| v == 7.0), "lookup_into wrote before failing");
            // A fractional float id in the last task, on its own.
            let mut float = ids.mapv(|id| id.clamp(0, vocab as i64 - 1) as f32);
            float[[rows - 1, cols - 1]] = 2.5;
            let err = layer.apply(&Tensor::from(float.clone())).unwrap_err();
            assert!(
                matches!(&err, Error::NonIntegerIndex { position, .. } if position == &vec![rows - 1, cols - 1]),
                "{err:?}"
            );
            let err = layer.lookup_into(&Tensor::from(float), out.view_mut()).unwrap_err();
            assert!(matches!(err, Error::NonIntegerIndex { .. }), "{err:?}");
            assert!(out.iter().all(|&v| v == 7.0));
        });
    }
}

#[test]
fn the_allocating_call_allocates_only_its_output_and_lookup_into_nothing() {
    let mut layer = Embedding::from_table(table(100, 8));
    let ids = Tensor::from(spread_ids(16, 10, 100));
    layer.apply(&ids).unwrap();
    pool(1).install(|| {
        let (count, called) = allocations_during(|| layer.call(&ids).unwrap());
        assert_eq!(count, 1, "call allocated more than its output");
        let (count, applied) = allocations_during(|| layer.apply(&ids).unwrap());
        assert_eq!(count, 1, "apply allocated more than its output");
        assert_eq!(applied, called);
        let mut buffer = applied.into_float().unwrap();
        let (count, result) = allocations_during(|| layer.lookup_into(&ids, buffer.view_mut()));
        result.unwrap();
        assert_eq!(count, 0, "lookup_into allocated");
    });
}

/// Writes the header of a `(rows, cols)` float32 `.npy` and extends the file (sparse) to hold
/// the data, without writing it.
#[cfg(feature = "mmap")]
fn sparse_npy(path: &std::path::Path, rows: usize, cols: usize) {
    use std::io::Write;
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    let unpadded = 10 + dict.len() + 1;
    let padding = unpadded.next_multiple_of(64) - unpadded;
    let header_len = (dict.len() + padding + 1) as u16;
    let mut file = std::fs::File::create(path).unwrap();
    file.write_all(b"\x93NUMPY\x01\x00").unwrap();
    file.write_all(&header_len.to_le_bytes()).unwrap();
    file.write_all(dict.as_bytes()).unwrap();
    file.write_all(&vec![b' '; padding]).unwrap();
    file.write_all(b"\n").unwrap();
    let data = (rows * cols * 4) as u64;
    file.set_len(unpadded as u64 + padding as u64 + data)
        .unwrap();
}

#[cfg(feature = "mmap")]
#[test]
fn an_output_too_large_for_memory_is_an_allocation_error() {
    // A mapped 1 x 2^28 table (1 GiB, sparse: nothing is read) and 2^20 ids: an output of
    // 2^48 floats (1 PiB), whose size comes from the ids alone.
    let path = std::env::temp_dir().join(format!("ndkeras-huge-output-{}.npy", std::process::id()));
    sparse_npy(&path, 1, 1 << 28);
    let table = ndkeras::io::npy::map_npy(&path).unwrap();
    let layer = Embedding::from_mapped(table).unwrap().with_name("wide");
    let err = layer.call(&Tensor::from(vec![0u8; 1 << 20])).unwrap_err();
    let _ = std::fs::remove_file(&path);
    assert!(matches!(err, Error::Allocation { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("\"wide\"") && message.contains("output"),
        "{message}"
    );
}
