//! The fast paths of a training step give exactly the numbers of the plain computation: the
//! buffers a model keeps from one step to the next (forward output, loss gradient) never leak
//! a value into the next step, repeated ids are summed in position order, and splitting the
//! work across threads changes no bit.

use ndarray::{Array2, Array3, ArrayD, array};
use ndkeras::prelude::*;

/// One SGD step on an `Embedding`-only model with mse, computed the plain way in `f32`
/// with the operations in the order ndkeras documents: the gradient of each element
/// `2 / (dim * positions) * (p - t)`, the rows of one id added in position order, then
/// `w -= lr * g`.
fn plain_sgd_step(table: &mut Array2<f32>, ids: &Array2<i64>, targets: &Array3<f32>, lr: f32) {
    let dim = table.ncols();
    let positions = ids.len();
    let twice = 2.0 * (1.0 / (dim as f32 * positions as f32));
    let mut sums: Vec<(usize, Vec<f32>)> = Vec::new();
    for ((i, j), &id) in ids.indexed_iter() {
        let id = id as usize;
        let row: Vec<f32> = (0..dim)
            .map(|c| twice * (table[[id, c]] - targets[[i, j, c]]))
            .collect();
        match sums.iter_mut().find(|(k, _)| *k == id) {
            Some((_, sum)) => sum.iter_mut().zip(&row).for_each(|(a, g)| *a += g),
            None => sums.push((id, row)),
        }
    }
    for (id, sum) in sums {
        for (c, g) in sum.into_iter().enumerate() {
            table[[id, c]] -= lr * g;
        }
    }
}

#[test]
fn steps_of_different_batch_sizes_give_the_plain_sgd_update_exactly() {
    let mut table =
        Array2::from_shape_fn((7, 3), |(i, j)| (i as f32 * 0.37 - j as f32 * 0.11).sin());
    let mut model = Sequential::new();
    model
        .add(Embedding::new(7, 3).weights(vec![table.clone()]))
        .unwrap();
    model
        .compile(SGD::new(0.5).into(), Loss::MeanSquaredError)
        .unwrap();
    // Repeated ids, then a larger batch, then a smaller one: a buffer kept from an earlier
    // step must never show through.
    let batches = [
        array![[1i64, 2, 1], [3, 1, 0]],
        array![[5i64, 5, 6, 5], [0, 6, 6, 2], [4, 4, 4, 4]],
        array![[2i64], [2]],
        array![[1i64, 2, 1], [3, 1, 0]],
    ];
    for (step, ids) in batches.iter().enumerate() {
        let (rows, length) = ids.dim();
        let targets = Array3::from_shape_fn((rows, length, 3), |(i, j, c)| {
            (i + 2 * j + 3 * c + step) as f32 * 0.1 - 0.4
        });
        model.train_on_batch(ids.clone(), targets.clone()).unwrap();
        plain_sgd_step(&mut table, ids, &targets, 0.5);
        assert_eq!(
            model.get_weights()[0],
            table.clone().into_dyn(),
            "after step {}",
            step + 1
        );
        // The forward output of a step is the table's rows, whatever buffer it reused.
        let predicted = model.predict(ids.clone()).unwrap();
        let expected = ids.mapv(|id| id as usize);
        for ((i, j), &id) in expected.indexed_iter() {
            for c in 0..3 {
                assert_eq!(predicted[[i, j, c]], table[[id, c]]);
            }
        }
    }
}

/// Trains a model on `threads` threads; returns its losses and weights.
fn train_on(threads: usize, optimizer: Optimizer) -> (Vec<f32>, Vec<ArrayD<f32>>) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let (vocab, dim) = (5000, 128);
        let mut model = Sequential::new();
        model
            .add(
                Embedding::new(vocab, dim).embeddings_initializer(Initializer::RandomUniform {
                    minval: -0.05,
                    maxval: 0.05,
                    seed: Some(3),
                }),
            )
            .unwrap();
        model.compile(optimizer, Loss::MeanSquaredError).unwrap();
        // 64 x 64 ids with many repeats (2,278 distinct): a 64 x 64 x 128 gradient and
        // 2,278 x 128 summed rows, both large enough to be split across threads.
        let mut losses = Vec::new();
        for _ in 0..3 {
            let ids = Array2::<i64>::from_shape_fn((64, 64), |(i, j)| {
                let k = (i * 64 + j) * 2654435761;
                ((k % 1000) * (k % 4999) / 999) as i64
            });
            let targets = Array3::<f32>::from_shape_fn((64, 64, dim), |(i, j, c)| {
                ((i + j + c) % 7) as f32 * 0.01
            });
            losses.push(model.train_on_batch(ids, targets).unwrap());
        }
        (losses, model.get_weights())
    })
}

#[test]
fn two_threads_give_the_same_bits_as_one() {
    let optimizers: [Optimizer; 4] = [
        SGD::new(0.1).into(),
        SGD::new(0.1).momentum(0.9).into(),
        RMSprop::default().into(),
        Adam::default().lazy(true).into(),
    ];
    for optimizer in optimizers {
        let (losses_one, weights_one) = train_on(1, optimizer);
        let (losses_two, weights_two) = train_on(2, optimizer);
        assert_eq!(losses_one, losses_two, "{optimizer:?}");
        assert_eq!(weights_one, weights_two, "{optimizer:?}");
        // The steps did train (the same batch three times).
        assert!(
            losses_one[2] < losses_one[0],
            "{optimizer:?}: {losses_one:?}"
        );
    }
}
