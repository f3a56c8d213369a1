//! Review: memory a model keeps after `fit` returns. The training step's buffer pool
//! (`Scratch`, up to 4 buffers) and the `Embedding`'s spare forward output stay allocated
//! in the model after training ends, whatever their size: here several times the size of
//! the table and of every weight together.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use ndarray::{Array2, Array3};
use ndkeras::prelude::*;

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::SeqCst);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::SeqCst);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The tests count the bytes of the whole process: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn fit_leaves_no_batch_sized_buffers_in_the_model() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (vocab, dim, seq, samples) = (100, 64, 64, 256);
    let x =
        Array2::<i64>::from_shape_fn((samples, seq), |(i, j)| ((i * 31 + j * 7) % vocab) as i64);
    let y = Array3::<f32>::from_shape_fn((samples, seq, dim), |(i, j, c)| {
        ((i + j + c) % 5) as f32 * 0.1
    });
    let mut model = Sequential::new();
    model.add(Embedding::new(vocab, dim)).unwrap();
    model
        .compile(SGD::new(0.1).into(), Loss::MeanSquaredError)
        .unwrap();
    // Build it (and its slots) with one step on one sample first.
    model
        .train_on_batch(
            x.slice(ndarray::s![..1, ..]).to_owned(),
            y.slice(ndarray::s![..1, .., ..]).to_owned(),
        )
        .unwrap();
    let before = LIVE.load(Ordering::SeqCst);
    let history = model
        .fit(
            x.clone(),
            y.clone(),
            FitOptions::default()
                .epochs(1)
                .batch_size(128)
                .shuffle(false)
                .verbose(0),
        )
        .unwrap();
    drop(history);
    let kept = LIVE.load(Ordering::SeqCst) - before;
    // One batch's output (and its gradient) is 128 * 64 * 64 * 4 bytes = 2 MiB; the table
    // is 25 KiB.
    let batch_output = (128 * seq * dim * 4) as isize;
    assert!(
        kept < batch_output / 2,
        "the model keeps {kept} bytes more after fit than before it ({:.1} batch outputs; table: {} bytes)",
        kept as f64 / batch_output as f64,
        vocab * dim * 4
    );
}

#[test]
fn release_buffers_frees_what_train_on_batch_keeps_for_the_next_call() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (vocab, dim, seq, batch) = (100, 64, 64, 128);
    let x = Array2::<i64>::from_shape_fn((batch, seq), |(i, j)| ((i * 13 + j) % vocab) as i64);
    let y = Array3::<f32>::from_elem((batch, seq, dim), 0.5);
    let mut model = Sequential::new();
    model.add(Embedding::new(vocab, dim)).unwrap();
    model
        .compile(SGD::new(0.1).into(), Loss::MeanSquaredError)
        .unwrap();
    model.train_on_batch(x.clone(), y.clone()).unwrap();
    model.release_buffers();
    let before = LIVE.load(Ordering::SeqCst);
    for _ in 0..3 {
        model.train_on_batch(x.clone(), y.clone()).unwrap();
    }
    let batch_output = (batch * seq * dim * 4) as isize;
    let kept = LIVE.load(Ordering::SeqCst) - before;
    // Kept for the next call: the forward output and the gradient, not one per step.
    assert!(
        kept >= batch_output && kept < 3 * batch_output,
        "{kept} bytes kept ({:.1} batch outputs)",
        kept as f64 / batch_output as f64
    );
    model.release_buffers();
    let kept = LIVE.load(Ordering::SeqCst) - before;
    assert!(
        kept < batch_output / 2,
        "{kept} bytes kept after release_buffers"
    );
}
