//! Review: row-sparse updates split across more threads than rows, with rows at both
//! ends of the table, give the bits of one thread.

use ndarray::{Array2, Array3, ArrayD};
use ndkeras::prelude::*;

fn train_on(threads: usize, optimizer: Optimizer, vocab: usize, dim: usize) -> Vec<ArrayD<f32>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
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
        let batches: [Vec<i64>; 3] = [
            vec![0, vocab as i64 - 1],
            vec![vocab as i64 - 1, 1],
            vec![0, 0],
        ];
        for ids in batches {
            let ids = Array2::from_shape_vec((1, 2), ids).unwrap();
            let targets =
                Array3::<f32>::from_shape_fn((1, 2, dim), |(_, j, c)| ((j + c) % 7) as f32 * 0.01);
            model.train_on_batch(ids, targets).unwrap();
        }
        model.get_weights()
    })
}

#[test]
fn more_threads_than_rows_give_the_bits_of_one() {
    let optimizers: [Optimizer; 4] = [
        SGD::new(0.1).momentum(0.9).into(),
        RMSprop::default().momentum(0.5).into(),
        Adam::default().lazy(true).into(),
        Adagrad::default().into(),
    ];
    for optimizer in optimizers {
        let one = train_on(1, optimizer, 3, 1 << 17);
        for threads in [2, 7] {
            assert_eq!(
                one,
                train_on(threads, optimizer, 3, 1 << 17),
                "{optimizer:?} on {threads}"
            );
        }
    }
}
