//! Behaviours of the model code found wrong in review (one test per behaviour).

use ndarray::{Array2, Array3, array};
use ndkeras::model::InputSpec;
use ndkeras::model::callbacks::{Callback, Control};
use ndkeras::prelude::*;

/// A Sequential whose first layer declares no input shape: built on its first call.
fn deferred_pooling_model() -> Sequential {
    let mut model = Sequential::new();
    model.add(GlobalAveragePooling1D::new()).unwrap();
    model
        .add(Dense::new(1).weights(vec![
            array![[0.5f32], [-0.25], [0.125]].into_dyn(),
            array![0.0f32].into_dyn(),
        ]))
        .unwrap();
    model
        .compile(SGD::new(0.1).into(), Loss::MeanSquaredError)
        .unwrap();
    model
}

/// Keras 2 (and ndkeras before the Sequential became a graph) trains a Sequential without a
/// declared input on data of one sequence length and validates it on another: the model
/// accepts any length (GlobalAveragePooling1D then Dense).
#[test]
fn deferred_sequential_validates_on_another_sequence_length() {
    let mut model = deferred_pooling_model();
    let x = Array3::<f32>::from_shape_fn((4, 5, 3), |(i, j, k)| (i + j + k) as f32 / 10.0);
    let y = Array2::<f32>::ones((4, 1));
    let vx = Array3::<f32>::from_shape_fn((2, 7, 3), |(i, j, k)| (i * j + k) as f32 / 10.0);
    let vy = Array2::<f32>::zeros((2, 1));
    let options = FitOptions::default()
        .epochs(1)
        .verbose(0)
        .shuffle(false)
        .validation_data(vx.clone(), vy.clone());
    let history = model
        .fit(x, y, options)
        .expect("validation data of another length fits the model");
    // The validation loss is the model's evaluate on the validation data.
    let evaluated = model.evaluate(vx, vy).unwrap();
    assert_eq!(history.val_loss, vec![evaluated]);
}

/// Sets the learning rate after the first batch of every epoch.
struct RateAfterFirstBatch(f32);

impl Callback for RateAfterFirstBatch {
    fn on_batch_end(
        &mut self,
        batch: usize,
        _logs: &[(String, f32)],
        model: &mut Model,
    ) -> ndkeras::Result<Control> {
        if batch == 0 {
            model.set_learning_rate(self.0)?;
        }
        Ok(Control::Continue)
    }

    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        _logs: &[(String, f32)],
        _model: &mut Model,
    ) -> ndkeras::Result<Control> {
        Ok(Control::Continue)
    }
}

fn dense_model() -> Sequential {
    let mut model = Sequential::new()
        .with_input(InputSpec {
            batch_shape: vec![None, Some(2)],
            dtype: "float32".into(),
            name: "input_1".into(),
            sparse: false,
            ragged: false,
        })
        .unwrap();
    model
        .add(Dense::new(1).weights(vec![
            array![[1.0f32], [1.0]].into_dyn(),
            array![0.0f32].into_dyn(),
        ]))
        .unwrap();
    model
        .compile(SGD::new(0.1).into(), Loss::MeanSquaredError)
        .unwrap();
    model
}

/// A callback receives `&mut Model` after every batch and may change the learning rate; in
/// Keras 2 the next batch's update uses the new rate (the optimizer reads its `learning_rate`
/// variable at every step). Here the rate set after batch 0 is 0, so batch 1 must not move
/// any weight: the weights after `fit` are those after one `train_on_batch` on batch 0.
#[test]
fn learning_rate_set_after_a_batch_applies_to_the_next_batch() {
    let x = array![[1.0f32, 2.0], [0.5, -1.0], [2.0, 1.0], [-1.0, 0.5]];
    let y = array![[5.0f32], [5.0], [-3.0], [4.0]];

    let mut reference = dense_model();
    reference
        .train_on_batch(
            x.slice(ndarray::s![..2, ..]).to_owned(),
            y.slice(ndarray::s![..2, ..]).to_owned(),
        )
        .unwrap();

    let mut model = dense_model();
    let mut zero_rate = RateAfterFirstBatch(0.0);
    let options = FitOptions::default()
        .epochs(1)
        .batch_size(2)
        .shuffle(false)
        .verbose(0);
    model
        .fit_with_callbacks(x, y, options, &mut [&mut zero_rate])
        .unwrap();
    assert_eq!(model.get_weights(), reference.get_weights());
}

/// Fails after the batch `at` (counted from 0) of the first epoch.
struct FailAfterBatch(usize);

impl Callback for FailAfterBatch {
    fn on_batch_end(
        &mut self,
        batch: usize,
        _logs: &[(String, f32)],
        _model: &mut Model,
    ) -> ndkeras::Result<Control> {
        if batch == self.0 {
            return Err(Error::Model {
                model: "test callback".into(),
                message: "stop here".into(),
            });
        }
        Ok(Control::Continue)
    }

    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        _logs: &[(String, f32)],
        _model: &mut Model,
    ) -> ndkeras::Result<Control> {
        Ok(Control::Continue)
    }
}

fn momentum_embedding_model() -> Sequential {
    let mut model = Sequential::new();
    model
        .add(Embedding::new(5, 2).input_length(1).weights(vec![
                    array![[0.1f32, 0.2], [0.3, 0.4], [0.5, 0.6], [0.7, 0.8], [0.9, 1.0]]
                        .into_dyn(),
                ]))
        .unwrap();
    model.add(GlobalAveragePooling1D::new()).unwrap();
    model
        .add(Dense::new(1).weights(vec![
            array![[0.5f32], [-0.5]].into_dyn(),
            array![0.1f32].into_dyn(),
        ]))
        .unwrap();
    model
        .compile(SGD::new(0.1).momentum(0.9).into(), Loss::MeanSquaredError)
        .unwrap();
    model
}

/// A callback that fails in `on_batch_end` ends `fit` with its error; the weights are those
/// of the last finished step, as the docs say, i.e. Keras' weights after it: with momentum,
/// the embedding rows the last batches did not read have moved too. `fit` keeps such rows
/// lazily and must bring them up to date before returning, as it does on every other error
/// path; here `get_weights` (and `predict`, `save_weights`) still see the lagging rows.
#[test]
fn a_failing_batch_callback_leaves_keras_weights() {
    let x = array![[1i64], [2], [3]];
    let y = array![[1.0f32], [0.0], [1.0]];

    let mut reference = momentum_embedding_model();
    for i in 0..3 {
        reference
            .train_on_batch(
                x.slice(ndarray::s![i..i + 1, ..]).to_owned(),
                y.slice(ndarray::s![i..i + 1, ..]).to_owned(),
            )
            .unwrap();
    }

    let mut model = momentum_embedding_model();
    let mut fail = FailAfterBatch(2);
    let options = FitOptions::default()
        .epochs(1)
        .batch_size(1)
        .shuffle(false)
        .verbose(0);
    let error = model
        .fit_with_callbacks(x, y, options, &mut [&mut fail])
        .unwrap_err();
    assert!(error.to_string().contains("stop here"), "{error}");
    let (got, want) = (model.get_weights(), reference.get_weights());
    for (g, w) in got.iter().zip(&want) {
        for (a, b) in g.iter().zip(w) {
            assert!((a - b).abs() < 1e-6, "got {got:?}, want {want:?}");
        }
    }
}

/// Keras' CSVLogger writes `lr` as the float32 NumPy scalar the learning-rate callbacks log
/// (`str(np.float32(1e-05))` is `1e-05`, `str(np.float32(0.001))` is `0.001`), not as the
/// float64 repr of that float32 (`9.999999747378752e-06`, `0.0010000000474974513`); the other
/// logs are Python floats. Checked with tf_keras 2.21: a ReduceLROnPlateau then a CSVLogger
/// with `SGD(0.001)` gives rows `0,1.0875500440597534,0.001,1.0745388269424438`.
#[test]
fn csv_logger_writes_the_learning_rate_as_keras_does() {
    use ndkeras::model::callbacks::{CsvLogger, ReduceLROnPlateau};
    for (rate, written) in [(0.001f32, "0.001"), (1e-5, "1e-05")] {
        let mut model = dense_model();
        model.set_learning_rate(rate).unwrap();
        let dir = std::env::temp_dir().join(format!(
            "ndkeras-review-csv-{}-{written}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.csv");
        let mut reduce = ReduceLROnPlateau::new("loss");
        let mut csv = CsvLogger::new(&path);
        let x = array![[1.0f32, 2.0], [0.5, -1.0]];
        let y = array![[5.0f32], [5.0]];
        let options = FitOptions::default().epochs(1).verbose(0).shuffle(false);
        model
            .fit_with_callbacks(x, y, options, &mut [&mut reduce, &mut csv])
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let row: Vec<&str> = lines.next().unwrap().split(',').collect();
        let column = header.iter().position(|h| *h == "lr").unwrap();
        assert_eq!(row[column], written, "{text}");
    }
}

/// Puts given weights back after batch `at` (counted from 0) of the first epoch.
struct SetWeightsAfterBatch(usize, Vec<ndarray::ArrayD<f32>>);

impl Callback for SetWeightsAfterBatch {
    fn on_batch_end(
        &mut self,
        batch: usize,
        _logs: &[(String, f32)],
        model: &mut Model,
    ) -> ndkeras::Result<Control> {
        if batch == self.0 {
            model.set_weights(self.1.clone())?;
        }
        Ok(Control::Continue)
    }

    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        _logs: &[(String, f32)],
        _model: &mut Model,
    ) -> ndkeras::Result<Control> {
        Ok(Control::Continue)
    }
}

/// `Model::set_weights` from a batch callback during `fit` with momentum: in Keras every
/// embedding row has already moved for the finished steps when the callback overwrites it,
/// and only later steps move it again. `fit` keeps rows lazily and catches them up later, so
/// the steps that were pending when the weights were replaced are applied on top of the
/// new values: the row moves once more than in Keras.
#[test]
fn set_weights_from_a_batch_callback_is_not_moved_by_earlier_steps() {
    let x = array![[1i64], [2], [3]];
    let y = array![[1.0f32], [0.0], [1.0]];
    let initial = momentum_embedding_model().get_weights();

    let mut reference = momentum_embedding_model();
    for i in 0..3 {
        reference
            .train_on_batch(
                x.slice(ndarray::s![i..i + 1, ..]).to_owned(),
                y.slice(ndarray::s![i..i + 1, ..]).to_owned(),
            )
            .unwrap();
        if i == 1 {
            reference.set_weights(initial.clone()).unwrap();
        }
    }

    let mut model = momentum_embedding_model();
    let mut reset = SetWeightsAfterBatch(1, initial);
    let options = FitOptions::default()
        .epochs(1)
        .batch_size(1)
        .shuffle(false)
        .verbose(0);
    model
        .fit_with_callbacks(x, y, options, &mut [&mut reset])
        .unwrap();
    let (got, want) = (model.get_weights(), reference.get_weights());
    for (g, w) in got.iter().zip(&want) {
        for (a, b) in g.iter().zip(w) {
            assert!((a - b).abs() < 1e-6, "got {got:?}, want {want:?}");
        }
    }
}
