//! Callbacks: EarlyStopping's rules (patience, min_delta, mode, baseline, start_from_epoch,
//! restore_best_weights), ModelCheckpoint's save_best_only, LearningRateScheduler, and
//! ReduceLROnPlateau's and CSVLogger's errors, TerminateOnNaN, and callbacks of one's own
//! that stop training (after an epoch or a batch) or fail.

use ndarray::array;
use ndkeras::model::callbacks::{
    Callback, Control, CsvLogger, EarlyStopping, LearningRateScheduler, Mode, ModelCheckpoint,
    ReduceLROnPlateau, TerminateOnNaN,
};
use ndkeras::optimizers::SGD;
use ndkeras::prelude::*;

fn model() -> Sequential {
    let mut model = Sequential::new();
    model
        .add(
            Embedding::new(10, 3)
                .input_length(2)
                .embeddings_initializer(Initializer::RandomUniform {
                    minval: -0.1,
                    maxval: 0.1,
                    seed: Some(1),
                }),
        )
        .unwrap();
    model.add(GlobalAveragePooling1D::new()).unwrap();
    model
        .add(Dense::new(1).activation(Activation::Sigmoid))
        .unwrap();
    model
        .compile(SGD::new(0.5).into(), Loss::BinaryCrossentropy)
        .unwrap();
    model
}

fn logs(name: &str, value: f32) -> Vec<(String, f32)> {
    vec![("loss".into(), 1.0), (name.into(), value)]
}

/// Runs `callback` over a series of monitored values; returns the epoch it stopped at.
fn run(
    callback: &mut dyn Callback,
    monitor: &str,
    series: &[f32],
    model: &mut Model,
) -> Option<usize> {
    callback.on_train_begin(model).unwrap();
    for (epoch, &value) in series.iter().enumerate() {
        if callback
            .on_epoch_end(epoch, &logs(monitor, value), model)
            .unwrap()
            == Control::Stop
        {
            return Some(epoch);
        }
    }
    None
}

#[test]
fn early_stopping_waits_patience_epochs_without_improvement() {
    let mut m = model();
    let mut stop = EarlyStopping::new("val_loss").patience(2);
    assert_eq!(
        run(
            &mut stop,
            "val_loss",
            &[1.0, 0.9, 0.95, 0.97, 0.5],
            m.as_model_mut()
        ),
        Some(3)
    );
    assert_eq!((stop.stopped_epoch(), stop.best_epoch()), (3, 1));
    assert_eq!(stop.best(), 0.9);

    // min_delta: 1.0 -> 0.85 improves by more than 0.1, 0.85 -> 0.8 does not.
    let mut stop = EarlyStopping::new("val_loss").patience(1).min_delta(0.1);
    assert_eq!(
        run(&mut stop, "val_loss", &[1.0, 0.85, 0.8], m.as_model_mut()),
        Some(2)
    );
    assert_eq!(stop.best(), 0.85);

    // Accuracy goes up (mode auto), and an explicit mode wins.
    let mut stop = EarlyStopping::new("val_accuracy").patience(1);
    assert_eq!(
        run(
            &mut stop,
            "val_accuracy",
            &[0.5, 0.6, 0.55, 0.7],
            m.as_model_mut()
        ),
        Some(2)
    );
    let mut stop = EarlyStopping::new("loss").patience(1).mode(Mode::Max);
    assert_eq!(
        run(&mut stop, "loss", &[0.5, 0.4], m.as_model_mut()),
        Some(1)
    );

    // Epochs before start_from_epoch are not watched.
    let mut stop = EarlyStopping::new("val_loss").start_from_epoch(2);
    assert_eq!(
        run(
            &mut stop,
            "val_loss",
            &[1.0, 2.0, 3.0, 4.0],
            m.as_model_mut()
        ),
        Some(3)
    );

    // A baseline that is never beaten: the patience is not reset by improvements.
    let mut stop = EarlyStopping::new("val_loss").patience(2).baseline(0.1);
    assert_eq!(
        run(&mut stop, "val_loss", &[1.0, 0.9, 0.95], m.as_model_mut()),
        Some(2)
    );

    // A monitor the logs do not have is an error naming what they have.
    let mut stop = EarlyStopping::new("val_auc");
    stop.on_train_begin(m.as_model_mut()).unwrap();
    let err = stop
        .on_epoch_end(0, &logs("val_loss", 1.0), m.as_model_mut())
        .unwrap_err();
    assert!(err.to_string().contains("val_loss"), "{err}");
}

#[test]
fn early_stopping_restores_the_best_weights_when_it_stops() {
    let mut m = model();
    let mut stop = EarlyStopping::new("val_loss")
        .patience(1)
        .restore_best_weights(true);
    stop.on_train_begin(m.as_model_mut()).unwrap();
    let table = |value: f32| ndarray::ArrayD::from_elem(vec![10, 3], value);
    let mut series = vec![(1.0, 1.0f32), (0.5, 2.0), (0.7, 3.0), (0.9, 4.0)].into_iter();
    let mut stopped = None;
    for epoch in 0.. {
        let Some((value, weights)) = series.next() else {
            break;
        };
        m.get_layer_mut(0)
            .unwrap()
            .set_weights(vec![table(weights)])
            .unwrap();
        if stop
            .on_epoch_end(epoch, &logs("val_loss", value), m.as_model_mut())
            .unwrap()
            == Control::Stop
        {
            stopped = Some(epoch);
            break;
        }
    }
    assert_eq!(stopped, Some(2));
    assert_eq!(
        m.get_layer(0).unwrap().get_weights(),
        vec![table(2.0)],
        "epoch 1's weights"
    );
}

#[test]
fn a_checkpoint_saves_only_improvements_and_loads_back() {
    let dir = std::env::temp_dir().join(format!("ndkeras-checkpoint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut m = model();
    let mut every = ModelCheckpoint::new(dir.join("every-{epoch}.npz"));
    let mut best = ModelCheckpoint::new(dir.join("best.npz")).save_best_only(true);
    for (epoch, value) in [0.5f32, 0.6, 0.4].into_iter().enumerate() {
        every
            .on_epoch_end(epoch, &logs("val_loss", value), m.as_model_mut())
            .unwrap();
        best.on_epoch_end(epoch, &logs("val_loss", value), m.as_model_mut())
            .unwrap();
    }
    assert_eq!(every.saved_epochs(), &[0, 1, 2]);
    assert!(dir.join("every-1.npz").exists() && dir.join("every-3.npz").exists());
    assert_eq!(best.saved_epochs(), &[0, 2]);
    let mut copy = model();
    copy.load_weights(dir.join("best.npz")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fit_runs_callbacks_in_keras_order_and_stops_when_asked() {
    let (x, y) = (
        array![[1i64, 2], [3, 4], [5, 6]],
        array![[1.0f32], [0.0], [1.0]],
    );

    // A learning-rate schedule: halved from epoch 1; `lr` in the history.
    let mut m = model();
    let mut schedule =
        LearningRateScheduler::new(|epoch, lr| if epoch >= 1 { lr * 0.5 } else { lr });
    let history = m
        .fit_with_callbacks(
            x.clone(),
            y.clone(),
            FitOptions::default().epochs(3).verbose(0),
            &mut [&mut schedule],
        )
        .unwrap();
    assert_eq!(history.get("lr"), Some(&[0.5f32, 0.25, 0.125][..]));
    assert_eq!(m.optimizer().unwrap().learning_rate(), 0.125);

    // A callback of one's own: stop after the second epoch.
    struct StopAt(usize, Vec<usize>);
    impl Callback for StopAt {
        fn on_epoch_end(
            &mut self,
            epoch: usize,
            _: &[(String, f32)],
            _: &mut Model,
        ) -> ndkeras::Result<Control> {
            self.1.push(epoch);
            Ok(if epoch + 1 == self.0 {
                Control::Stop
            } else {
                Control::Continue
            })
        }
    }
    let mut stop = StopAt(2, Vec::new());
    let history = model()
        .fit_with_callbacks(
            x.clone(),
            y.clone(),
            FitOptions::default().epochs(10).verbose(0),
            &mut [&mut stop],
        )
        .unwrap();
    assert_eq!(history.epochs(), 2);
    assert_eq!(stop.1, vec![0, 1]);

    // A failing callback ends fit with its error.
    struct Fails;
    impl Callback for Fails {
        fn on_epoch_end(
            &mut self,
            _: usize,
            _: &[(String, f32)],
            _: &mut Model,
        ) -> ndkeras::Result<Control> {
            Err(Error::Model {
                model: "test".into(),
                message: "the callback failed".into(),
            })
        }
    }
    let err = model()
        .fit_with_callbacks(
            x,
            y,
            FitOptions::default().epochs(3).verbose(0),
            &mut [&mut Fails],
        )
        .unwrap_err();
    assert!(err.to_string().contains("the callback failed"), "{err}");
}

#[test]
fn a_batch_callback_ends_the_epoch_which_is_still_validated_and_logged() {
    /// Stops after the first batch of the second epoch; records the batches it saw.
    struct StopInSecondEpoch(Vec<(usize, usize)>, usize);
    impl Callback for StopInSecondEpoch {
        fn on_epoch_begin(&mut self, epoch: usize, _: &mut Model) -> ndkeras::Result<()> {
            self.1 = epoch;
            Ok(())
        }
        fn on_batch_end(
            &mut self,
            batch: usize,
            logs: &[(String, f32)],
            _: &mut Model,
        ) -> ndkeras::Result<Control> {
            assert_eq!(logs[0].0, "loss");
            self.0.push((self.1, batch));
            Ok(if self.1 == 1 {
                Control::Stop
            } else {
                Control::Continue
            })
        }
        fn on_epoch_end(
            &mut self,
            _: usize,
            logs: &[(String, f32)],
            _: &mut Model,
        ) -> ndkeras::Result<Control> {
            assert!(logs.iter().any(|(k, _)| k == "val_loss"), "{logs:?}");
            Ok(Control::Continue)
        }
    }
    let x = array![[1i64, 2], [3, 4], [5, 6], [7, 8]];
    let y = array![[1.0f32], [0.0], [1.0], [0.0]];
    let mut stop = StopInSecondEpoch(Vec::new(), 0);
    let history = model()
        .fit_with_callbacks(
            x.clone(),
            y.clone(),
            FitOptions::default()
                .epochs(5)
                .batch_size(2)
                .validation_data(x, y)
                .verbose(0),
            &mut [&mut stop],
        )
        .unwrap();
    assert_eq!(stop.0, vec![(0, 0), (0, 1), (1, 0)]);
    assert_eq!(history.epochs(), 2);
    assert_eq!(history.val_loss.len(), 2);
}

#[test]
fn a_nan_loss_is_an_error_unless_terminate_on_nan_ends_training() {
    let x = array![[1i64, 2], [3, 4]];
    let y = array![[1.0f32], [0.0]];
    let huge = || {
        let mut m = model();
        m.compile(SGD::new(1e30).into(), Loss::BinaryCrossentropy)
            .unwrap();
        m
    };
    let options = || FitOptions::default().epochs(20).batch_size(1).verbose(0);
    let err = huge().fit(x.clone(), y.clone(), options()).unwrap_err();
    let Error::NonFiniteLoss { epoch, batch, .. } = err else {
        panic!("{err:?}")
    };
    let mut terminate = TerminateOnNaN::new();
    let history = huge()
        .fit_with_callbacks(x, y, options(), &mut [&mut terminate])
        .unwrap();
    assert_eq!(terminate.stopped_at(), Some((epoch - 1, batch - 1)));
    assert_eq!(history.epochs(), epoch);
    assert!(!history.loss[epoch - 1].is_finite());
    // (That the step computed from the NaN loss is not applied is checked against Keras'
    // weights in keras_callbacks.rs.)
}

#[test]
fn reduce_lr_on_plateau_refuses_what_keras_refuses() {
    let x = array![[1i64, 2], [3, 4]];
    let y = array![[1.0f32], [0.0]];
    for reduce in [
        ReduceLROnPlateau::new("loss").factor(1.0),
        ReduceLROnPlateau::new("loss").factor(0.0),
        ReduceLROnPlateau::new("loss").min_lr(-1.0),
    ] {
        let mut reduce = reduce;
        let mut m = model();
        let before = m.get_weights();
        let err = m
            .fit_with_callbacks(
                x.clone(),
                y.clone(),
                FitOptions::default().verbose(0),
                &mut [&mut reduce],
            )
            .unwrap_err();
        assert!(err.to_string().contains("ReduceLROnPlateau"), "{err}");
        assert_eq!(m.get_weights(), before, "nothing trained");
    }
    // A monitor the logs lack is an error naming the logs there are.
    let mut reduce = ReduceLROnPlateau::default();
    let err = model()
        .fit_with_callbacks(x, y, FitOptions::default().verbose(0), &mut [&mut reduce])
        .unwrap_err();
    assert!(
        err.to_string().contains("val_loss") && err.to_string().contains("\"loss\""),
        "{err}"
    );
}

#[test]
fn a_csv_log_that_cannot_be_written_is_an_error_naming_the_path() {
    let path = std::env::temp_dir()
        .join(format!("ndkeras-no-such-dir-{}", std::process::id()))
        .join("log.csv");
    let mut logger = CsvLogger::new(&path);
    let err = model()
        .fit_with_callbacks(
            array![[1i64, 2]],
            array![[1.0f32]],
            FitOptions::default().verbose(0),
            &mut [&mut logger],
        )
        .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("log.csv"), "{err}");
}

#[test]
fn a_csv_field_with_the_separator_is_quoted_as_python_quotes_it() {
    // A metric name with a comma (from `with_name`) is quoted in the header.
    let dir = std::env::temp_dir().join(format!("ndkeras-csv-quote-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("log.csv");
    let mut m = Sequential::new();
    m.add(Embedding::new(10, 3).input_length(2)).unwrap();
    m.add(GlobalAveragePooling1D::new()).unwrap();
    m.add(Dense::new(1).activation(Activation::Sigmoid))
        .unwrap();
    let metric: ndkeras::metrics::Metric = "accuracy".parse().unwrap();
    m.compile_with_metrics(
        SGD::new(0.1).into(),
        Loss::BinaryCrossentropy,
        vec![metric.with_name("acc,\"x\"")],
    )
    .unwrap();
    let mut logger = CsvLogger::new(&path);
    m.fit_with_callbacks(
        array![[1i64, 2]],
        array![[1.0f32]],
        FitOptions::default().verbose(0),
        &mut [&mut logger],
    )
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("epoch,\"acc,\"\"x\"\"\",loss,\"val_acc,\"\"x\"\"\",val_loss\r\n0,"),
        "{text:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_checkpoint_on_auc_in_auto_mode_minimises_it_as_keras_does() {
    // tf_keras' ModelCheckpoint goes up only for names containing "acc": `val_auc` goes down
    // (EarlyStopping would maximise it). `Mode::Max` says what is meant.
    let dir = std::env::temp_dir().join(format!("ndkeras-auc-checkpoint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut m = model();
    let mut auto = ModelCheckpoint::new(dir.join("auto.npz"))
        .monitor("val_auc")
        .save_best_only(true);
    let mut max = ModelCheckpoint::new(dir.join("max.npz"))
        .monitor("val_auc")
        .save_best_only(true)
        .mode(Mode::Max);
    for (epoch, value) in [0.5f32, 0.6, 0.4].into_iter().enumerate() {
        auto.on_epoch_end(epoch, &logs("val_auc", value), m.as_model_mut())
            .unwrap();
        max.on_epoch_end(epoch, &logs("val_auc", value), m.as_model_mut())
            .unwrap();
    }
    assert_eq!(auto.saved_epochs(), &[0, 2]);
    assert_eq!(max.saved_epochs(), &[0, 1]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn compiling_other_metrics_during_fit_is_an_error_not_a_mislabelled_log() {
    /// Compiles the model again, with another metric, after the first epoch.
    struct Recompile;
    impl Callback for Recompile {
        fn on_epoch_end(
            &mut self,
            _: usize,
            _: &[(String, f32)],
            model: &mut Model,
        ) -> ndkeras::Result<Control> {
            model.compile_with_metrics(
                SGD::new(0.5).into(),
                vec![Loss::BinaryCrossentropy],
                None,
                vec!["mae".parse()?],
            )?;
            Ok(Control::Continue)
        }
    }
    let mut m = model();
    m.compile_with_metrics(
        SGD::new(0.5).into(),
        Loss::BinaryCrossentropy,
        vec!["accuracy".parse().unwrap()],
    )
    .unwrap();
    let err = m
        .fit_with_callbacks(
            array![[1i64, 2], [3, 4]],
            array![[1.0f32], [0.0]],
            FitOptions::default().epochs(3).verbose(0),
            &mut [&mut Recompile],
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("compile was called during fit"),
        "{err}"
    );
}
