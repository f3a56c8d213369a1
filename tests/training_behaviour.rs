//! Training behaviour beyond the Keras vectors: bad input, failed steps that change nothing,
//! lazy sparse updates equal to Keras' dense ones, frozen layers, constraints, regularizers,
//! dropout, validation and shuffling.

use ndarray::{Array2, ArrayD, Axis, array};
use ndkeras::prelude::*;

fn table(rows: usize, cols: usize) -> ArrayD<f32> {
    Array2::<f32>::from_shape_fn((rows, cols), |(i, j)| {
        ((i * cols + j) as f32 * 0.37).sin() * 0.5
    })
    .into_dyn()
}

fn embedding_model(optimizer: Optimizer, embedding: Embedding) -> Sequential {
    let mut model = Sequential::new();
    model.add(embedding).unwrap();
    model.compile(optimizer, Loss::MeanSquaredError).unwrap();
    model
}

fn targets(samples: usize, steps: usize, dim: usize) -> ArrayD<f32> {
    ArrayD::from_shape_fn(vec![samples, steps, dim], |i| {
        ((i[0] * 7 + i[1] * 3 + i[2]) as f32 * 0.11).cos() * 0.3
    })
}

fn quiet(epochs: usize, batch_size: usize) -> FitOptions {
    FitOptions::default()
        .epochs(epochs)
        .batch_size(batch_size)
        .shuffle(false)
        .verbose(false)
}

fn weights(model: &Sequential) -> Vec<ArrayD<f32>> {
    model
        .layers()
        .iter()
        .flat_map(|l| l.get_weights())
        .collect()
}

#[test]
fn fit_before_compile_is_an_error() {
    let mut model = Sequential::new();
    model
        .add(Embedding::new(4, 2).weights(vec![table(4, 2)]))
        .unwrap();
    let err = model
        .fit(array![[1i64]], targets(1, 1, 2), quiet(1, 1))
        .unwrap_err();
    assert!(
        matches!(err, Error::Model { .. }) && err.to_string().contains("compile"),
        "{err}"
    );
    assert!(model.evaluate(array![[1i64]], targets(1, 1, 2)).is_err());
    assert_eq!(weights(&model), vec![table(4, 2)]);
}

#[test]
fn bad_data_and_options_are_refused_before_any_step() {
    let mut model = embedding_model(
        SGD::new(0.1).into(),
        Embedding::new(4, 2)
            .input_length(2)
            .weights(vec![table(4, 2)]),
    );
    let x = array![[1i64, 2], [3, 0], [2, 2]];
    // Different sample counts.
    let err = model
        .fit(x.clone(), targets(2, 2, 2), quiet(1, 2))
        .unwrap_err();
    assert!(
        err.to_string().contains("3 samples") && err.to_string().contains("2"),
        "{err}"
    );
    // y of the wrong shape.
    let err = model
        .fit(x.clone(), targets(3, 2, 3), quiet(1, 2))
        .unwrap_err();
    assert!(matches!(err, Error::IncompatibleShape { .. }), "{err:?}");
    // batch_size 0, validation_split outside [0, 1).
    assert!(matches!(
        model.fit(x.clone(), targets(3, 2, 2), quiet(1, 0)),
        Err(Error::InvalidArgument { .. })
    ));
    for split in [1.0f32, -0.1, f32::NAN] {
        let err = model
            .fit(
                x.clone(),
                targets(3, 2, 2),
                quiet(1, 1).validation_split(split),
            )
            .unwrap_err();
        assert!(err.to_string().contains("validation_split"), "{err}");
    }
    // An out-of-range id anywhere: no step at all.
    let err = model
        .fit(
            array![[1i64, 2], [3, 9], [0, 0]],
            targets(3, 2, 2),
            quiet(1, 1),
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::IndexOutOfRange { index: 9, .. }),
        "{err:?}"
    );
    assert_eq!(weights(&model), vec![table(4, 2)]);
}

#[test]
fn sparse_categorical_labels_must_be_class_ids() {
    let mut model = Sequential::new();
    model
        .add(
            Embedding::new(5, 3)
                .input_length(2)
                .weights(vec![table(5, 3)]),
        )
        .unwrap();
    model.add(Flatten::new()).unwrap();
    model
        .add(Dense::new(3).activation(Activation::Softmax))
        .unwrap();
    model
        .compile(
            Adam::default().into(),
            "sparse_categorical_crossentropy".parse().unwrap(),
        )
        .unwrap();
    let before = weights(&model);
    let x = array![[1i64, 2], [3, 4]];
    for bad in [array![0i64, 3], array![-1i64, 0]] {
        let err = model.fit(x.clone(), bad, quiet(1, 2)).unwrap_err();
        assert!(err.to_string().contains("class ids in [0, 3)"), "{err}");
    }
    let err = model
        .fit(x.clone(), array![0.5f32, 1.0], quiet(1, 2))
        .unwrap_err();
    assert!(err.to_string().contains("0.5"), "{err}");
    assert_eq!(weights(&model), before);
    // Valid labels, as ids or as a trailing axis of 1, train and lower the loss.
    let first = model.evaluate(x.clone(), array![[0i64], [2]]).unwrap();
    model.fit(x.clone(), array![0i64, 2], quiet(30, 2)).unwrap();
    assert!(model.evaluate(x, array![0i64, 2]).unwrap() < first);
}

#[test]
fn a_loss_that_overflows_stops_training_at_its_epoch_and_batch() {
    let start = array![[1e18f32]].into_dyn();
    let make = || {
        embedding_model(
            SGD::new(1e3).into(),
            Embedding::new(1, 1).weights(vec![start.clone()]),
        )
    };
    let x = array![[0i64]];
    let y = array![[[0.0f32]]];
    // One good step first: the loss (1e36) is finite, then the weight is about -2e21.
    let mut reference = make();
    reference.fit(x.clone(), y.clone(), quiet(1, 1)).unwrap();
    let after_one_step = weights(&reference);

    let mut model = make();
    let err = model.fit(x, y, quiet(3, 1)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFiniteLoss {
                epoch: 2,
                batch: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("epoch 2, batch 1"), "{err}");
    assert_eq!(
        weights(&model),
        after_one_step,
        "the weights of the last good step"
    );
}

/// A failed step leaves the weights and the optimizer's state as they were: training on
/// afterwards gives exactly what a model that never saw the failure gives.
#[test]
fn a_failed_step_changes_no_weight_and_no_optimizer_state() {
    for optimizer in [
        Optimizer::from(RMSprop::default().momentum(0.5).centered(true)),
        SGD::new(0.1).momentum(0.9).into(),
        Adam::default().into(),
        Adagrad::default().into(),
    ] {
        let make = || {
            embedding_model(
                optimizer,
                Embedding::new(6, 2)
                    .input_length(2)
                    .weights(vec![table(6, 2)]),
            )
        };
        let good = array![[1i64, 2], [2, 3]];
        let y = targets(2, 2, 2);
        let mut clean = make();
        let mut disturbed = make();
        for model in [&mut clean, &mut disturbed] {
            model.train_on_batch(good.clone(), y.clone()).unwrap();
        }
        assert!(
            disturbed
                .train_on_batch(array![[1i64, 6], [0, 0]], y.clone())
                .is_err()
        );
        assert!(
            disturbed
                .train_on_batch(good.clone(), targets(2, 2, 3))
                .is_err()
        );
        for model in [&mut clean, &mut disturbed] {
            model
                .train_on_batch(array![[4i64, 2], [5, 5]], y.clone())
                .unwrap();
        }
        assert_eq!(weights(&clean), weights(&disturbed), "{optimizer:?}");
    }
}

/// Rows absent from a batch are brought up to date lazily, in closed form; the result equals
/// Keras' dense update (forced here by a zero regularizer, which makes the step dense).
#[test]
fn lazy_row_updates_equal_the_dense_update() {
    let optimizers: Vec<Optimizer> = vec![
        SGD::new(0.1).momentum(0.9).into(),
        SGD::new(0.1).momentum(0.8).nesterov(true).into(),
        RMSprop::default().into(),
        RMSprop::default()
            .learning_rate(0.01)
            .momentum(0.7)
            .centered(true)
            .into(),
        Adagrad::default().learning_rate(0.1).into(),
        SGD::new(0.2).into(),
    ];
    // Batches touch different rows; some rows are skipped for several steps.
    let x = array![[0i64, 1], [2, 2], [3, 4], [1, 5], [6, 6], [0, 7]];
    let y = targets(6, 2, 3);
    for optimizer in optimizers {
        let lazy_layer = Embedding::new(8, 3)
            .input_length(2)
            .weights(vec![table(8, 3)]);
        let dense_layer = lazy_layer
            .clone()
            .embeddings_regularizer(Regularizer::L2(0.0));
        let mut lazy = embedding_model(optimizer, lazy_layer.with_name("lazy"));
        let mut dense = embedding_model(optimizer, dense_layer.with_name("dense"));
        let lazy_history = lazy.fit(x.clone(), y.clone(), quiet(3, 2)).unwrap();
        let dense_history = dense.fit(x.clone(), y.clone(), quiet(3, 2)).unwrap();
        for (a, b) in weights(&lazy)[0].iter().zip(weights(&dense)[0].iter()) {
            assert!(
                (a - b).abs() <= 1e-6 + 1e-5 * b.abs(),
                "{optimizer:?}: {a} vs {b}"
            );
        }
        for (a, b) in lazy_history.loss.iter().zip(&dense_history.loss) {
            assert!(
                (a - b).abs() <= 1e-6 + 1e-5 * b.abs(),
                "{optimizer:?}: loss {a} vs {b}"
            );
        }
    }
}

#[test]
fn adam_is_dense_as_in_keras_unless_lazy() {
    let x1 = array![[0i64, 1]];
    let x2 = array![[2i64, 2]];
    let y = targets(1, 2, 3);
    for (lazy, rows_0_1_move) in [(false, true), (true, false)] {
        let mut model = embedding_model(
            Adam::default().learning_rate(0.01).lazy(lazy).into(),
            Embedding::new(4, 3).weights(vec![table(4, 3)]),
        );
        model.train_on_batch(x1.clone(), y.clone()).unwrap();
        let before = weights(&model)[0].clone();
        model.train_on_batch(x2.clone(), y.clone()).unwrap();
        let after = weights(&model)[0].clone();
        let moved = |r: usize| before.index_axis(Axis(0), r) != after.index_axis(Axis(0), r);
        assert_eq!(moved(0) && moved(1), rows_0_1_move, "lazy = {lazy}");
        assert!(moved(2));
        assert!(!moved(3), "a row never touched never moves (lazy = {lazy})");
    }
}

#[test]
fn a_frozen_table_does_not_move_but_the_layers_after_it_train() {
    let mut model = Sequential::new();
    model
        .add(
            Embedding::new(6, 3)
                .input_length(3)
                .trainable(false)
                .weights(vec![table(6, 3)]),
        )
        .unwrap();
    model.add(GlobalAveragePooling1D::new()).unwrap();
    model.add(Dense::new(1)).unwrap();
    model
        .compile(SGD::new(0.1).into(), Loss::MeanSquaredError)
        .unwrap();
    let dense_before = model.get_layer(2).unwrap().get_weights();
    model
        .fit(
            array![[1i64, 2, 3], [4, 5, 0]],
            array![[1.0f32], [-1.0]],
            quiet(5, 2),
        )
        .unwrap();
    assert_eq!(model.get_layer(0).unwrap().get_weights(), vec![table(6, 3)]);
    assert_ne!(model.get_layer(2).unwrap().get_weights(), dense_before);
    let summary = model.summary().unwrap();
    assert!(summary.contains("Non-trainable params: 18"), "{summary}");
}

#[test]
fn constraints_hold_after_every_step() {
    let mut model = embedding_model(
        SGD::new(5.0).into(),
        Embedding::new(5, 4)
            .input_length(2)
            .weights(vec![table(5, 4)])
            .embeddings_constraint(Constraint::MaxNorm {
                max_value: 0.5,
                axis: 1,
            }),
    );
    model
        .fit(
            array![[1i64, 2], [3, 4]],
            targets(2, 2, 4).mapv(|v| v * 10.0),
            quiet(4, 1),
        )
        .unwrap();
    for row in weights(&model)[0].outer_iter() {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!(norm <= 0.5 + 1e-5, "row norm {norm}");
    }
    let mut non_neg = embedding_model(
        SGD::new(1.0).into(),
        Embedding::new(3, 2)
            .weights(vec![table(3, 2)])
            .embeddings_constraint(Constraint::NonNeg),
    );
    non_neg
        .fit(
            array![[0i64, 1, 2]],
            targets(1, 3, 2).mapv(|v| v - 1.0),
            quiet(2, 1),
        )
        .unwrap();
    assert!(weights(&non_neg)[0].iter().all(|&v| v >= 0.0));
}

#[test]
fn a_constraint_on_a_missing_axis_is_refused_before_the_step() {
    let mut model = embedding_model(
        SGD::new(0.1).into(),
        Embedding::new(3, 2)
            .weights(vec![table(3, 2)])
            .embeddings_constraint(Constraint::UnitNorm { axis: 2 }),
    );
    let err = model
        .fit(array![[0i64, 1]], targets(1, 2, 2), quiet(1, 1))
        .unwrap_err();
    assert!(err.to_string().contains("axis"), "{err}");
    assert_eq!(weights(&model), vec![table(3, 2)]);
}

#[test]
fn a_regularizer_adds_its_penalty_to_the_loss() {
    let x = array![[0i64, 1]];
    let y = targets(1, 2, 2);
    let mut plain = embedding_model(
        SGD::new(0.1).into(),
        Embedding::new(3, 2).weights(vec![table(3, 2)]),
    );
    let mut regularized = embedding_model(
        SGD::new(0.1).into(),
        Embedding::new(3, 2)
            .weights(vec![table(3, 2)])
            .embeddings_regularizer(Regularizer::L2(0.01)),
    );
    let penalty = 0.01 * table(3, 2).iter().map(|v| v * v).sum::<f32>();
    let a = plain.evaluate(x.clone(), y.clone()).unwrap();
    let b = regularized.evaluate(x.clone(), y.clone()).unwrap();
    assert!((b - a - penalty).abs() < 1e-6, "{b} - {a} != {penalty}");
    // The penalty's gradient reaches a row no batch touches.
    regularized.fit(x, y, quiet(1, 1)).unwrap();
    assert_ne!(
        weights(&regularized)[0].row(2),
        table(3, 2).index_axis(Axis(0), 2)
    );
}

trait Row {
    fn row(&self, r: usize) -> ndarray::ArrayViewD<'_, f32>;
}

impl Row for ArrayD<f32> {
    fn row(&self, r: usize) -> ndarray::ArrayViewD<'_, f32> {
        self.index_axis(Axis(0), r)
    }
}

#[test]
fn dropout_is_seeded_and_inactive_in_predict() {
    let make = |seed: u64| {
        let mut model = Sequential::new();
        model
            .add(
                Embedding::new(10, 8)
                    .input_length(4)
                    .weights(vec![table(10, 8)]),
            )
            .unwrap();
        model.add(Dropout::new(0.5).seed(seed)).unwrap();
        model
            .compile(SGD::new(0.1).into(), Loss::MeanSquaredError)
            .unwrap();
        model
    };
    let x = array![[1i64, 2, 3, 4], [5, 6, 7, 8]];
    let mut model = make(1);
    let plain = model
        .layer::<Embedding>(0)
        .unwrap()
        .embeddings()
        .unwrap()
        .clone();
    let predicted = model.predict(x.clone()).unwrap();
    assert_eq!(
        predicted.index_axis(Axis(0), 0).index_axis(Axis(0), 0),
        plain.row(1).into_dyn()
    );
    let y = targets(2, 4, 8);
    model.fit(x.clone(), y.clone(), quiet(2, 2)).unwrap();
    let mut again = make(1);
    again.fit(x.clone(), y.clone(), quiet(2, 2)).unwrap();
    let mut other = make(2);
    other.fit(x, y, quiet(2, 2)).unwrap();
    assert_eq!(weights(&model), weights(&again), "same seed, same training");
    assert_ne!(
        weights(&model),
        weights(&other),
        "another seed drops other units"
    );
    let mut bad = Sequential::new();
    assert!(bad.add(Dropout::new(1.0)).is_err());
}

#[test]
fn a_layer_that_cannot_take_a_mask_refuses_one() {
    let mut model = Sequential::new();
    model
        .add(Embedding::new(5, 2).input_length(3).mask_zero(true))
        .unwrap();
    model.add(Flatten::new()).unwrap();
    let err = model.predict(array![[1i64, 0, 2]]).unwrap_err();
    assert!(matches!(err, Error::MaskNotSupported { .. }), "{err:?}");
    assert!(err.to_string().contains("Flatten"), "{err}");
}

#[test]
fn validation_losses_are_recorded_and_shuffling_is_seeded() {
    let x = Array2::<i64>::from_shape_fn((10, 2), |(i, j)| ((i + j) % 6) as i64);
    let y = targets(10, 2, 2);
    let make = || {
        embedding_model(
            RMSprop::default().learning_rate(0.01).into(),
            Embedding::new(6, 2)
                .input_length(2)
                .weights(vec![table(6, 2)]),
        )
    };
    let mut model = make();
    let history = model
        .fit(x.clone(), y.clone(), quiet(3, 4).validation_split(0.2))
        .unwrap();
    assert_eq!((history.loss.len(), history.val_loss.len()), (3, 3));
    let mut model = make();
    let history = model
        .fit(
            x.clone(),
            y.clone(),
            quiet(2, 4).validation_data(x.clone(), y.clone()),
        )
        .unwrap();
    assert_eq!(history.val_loss.len(), 2);
    // The last validation loss is the loss of the final weights on that data.
    let evaluated = model
        .evaluate_with_batch_size(x.clone(), y.clone(), 4)
        .unwrap();
    assert!((history.val_loss[1] - evaluated).abs() < 1e-6);

    let shuffled = |seed: u64| {
        let mut model = make();
        model
            .fit(
                x.clone(),
                y.clone(),
                FitOptions::default()
                    .epochs(2)
                    .batch_size(3)
                    .seed(seed)
                    .verbose(false),
            )
            .unwrap();
        weights(&model)
    };
    assert_eq!(shuffled(7), shuffled(7));
    assert_ne!(shuffled(7), shuffled(8));
}

#[test]
fn categorical_and_binary_crossentropy_train_a_classifier() {
    let x = array![[1i64, 2], [3, 4], [1, 1], [4, 3]];
    for (loss, activation, units, y) in [
        (
            Loss::BinaryCrossentropy,
            Activation::Sigmoid,
            1,
            array![[1.0f32], [0.0], [1.0], [0.0]].into_dyn(),
        ),
        (
            Loss::CategoricalCrossentropy,
            Activation::Softmax,
            2,
            array![[1.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]].into_dyn(),
        ),
        (
            Loss::MeanAbsoluteError,
            Activation::Tanh,
            1,
            array![[0.5f32], [-0.5], [0.5], [-0.5]].into_dyn(),
        ),
    ] {
        let mut model = Sequential::new();
        model
            .add(
                Embedding::new(5, 4)
                    .input_length(2)
                    .weights(vec![table(5, 4)]),
            )
            .unwrap();
        model.add(GlobalAveragePooling1D::new()).unwrap();
        model
            .add(
                Dense::new(units)
                    .activation(activation)
                    .kernel_initializer(Initializer::GlorotUniform { seed: Some(3) }),
            )
            .unwrap();
        model
            .compile(Adam::default().learning_rate(0.05).into(), loss)
            .unwrap();
        let before = model.evaluate(x.clone(), y.clone()).unwrap();
        let history = model.fit(x.clone(), y.clone(), quiet(60, 4)).unwrap();
        let after = model.evaluate(x.clone(), y.clone()).unwrap();
        assert!(
            after < before * 0.5,
            "{loss}: {before} -> {after} ({:?})",
            &history.loss[..3]
        );
    }
}

/// Trains a tiny model with the verbosity in `NDKERAS_VERBOSE_CHILD`, for the parent test.
#[test]
fn verbose_child() {
    let Ok(level) = std::env::var("NDKERAS_VERBOSE_CHILD") else {
        return;
    };
    let mut model = Sequential::new();
    model.add(Embedding::new(5, 2).input_length(2)).unwrap();
    model.add(Flatten::new()).unwrap();
    model.add(Dense::new(1)).unwrap();
    model
        .compile(SGD::new(0.1).into(), Loss::MeanSquaredError)
        .unwrap();
    let x = ndarray::array![[1i64, 2], [3, 4], [0, 1]];
    let y = ndarray::array![[1.0f32], [0.0], [0.5]];
    let options = FitOptions::default()
        .epochs(2)
        .batch_size(2)
        .validation_data(x.clone(), y.clone())
        .verbose(level.parse::<i32>().unwrap());
    model.fit(x, y, options).unwrap();
}

#[test]
fn verbose_prints_keras_epoch_lines_once_each() {
    let run = |level: &str| -> String {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "verbose_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("NDKERAS_VERBOSE_CHILD", level)
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stderr).unwrap()
    };
    for level in ["1", "2"] {
        // Not a terminal here: one line per epoch for 1 as for 2, as Keras does.
        let text = run(level);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(
            lines.contains(&"Epoch 1/2") && lines.contains(&"Epoch 2/2"),
            "{text}"
        );
        let epoch_lines: Vec<&&str> = lines.iter().filter(|l| l.starts_with("2/2 - ")).collect();
        assert_eq!(epoch_lines.len(), 2, "{text}");
        for line in epoch_lines {
            assert_eq!(line.matches("- loss: ").count(), 1, "{line}");
            assert_eq!(line.matches("- val_loss: ").count(), 1, "{line}");
        }
    }
    assert_eq!(run("0").trim(), "", "verbose 0 prints nothing");
}
