//! Review of quantized (int8, int4) and half-precision embedding tables inside models:
//! `set_weights` of a whole model must check what the layer's own `set_weights` checks,
//! be all or nothing, and name the layer in its errors.

use ndarray::{Array2, ArrayD, array};
use ndkeras::prelude::*;
use ndkeras::quantization::{QuantizationMode, TableDType};

fn table(rows: usize, cols: usize) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |(r, c)| {
        let x = ((r * 31 + c * 17) % 97) as f32 / 97.0 - 0.5;
        x * (1.0 + (r % 5) as f32)
    })
}

/// A built 11 x 7 embedding over `table`, quantized in `mode` or stored as `dtype`.
fn embedding(mode: Option<QuantizationMode>, dtype: TableDType, name: &str) -> Embedding {
    let mut layer = Embedding::new(11, 7)
        .with_name(name)
        .input_length(3)
        .dtype(dtype)
        .weights(vec![table(11, 7).into_dyn()]);
    layer.build(&[None, Some(3)]).unwrap();
    if let Some(mode) = mode {
        layer.quantize_with(mode).unwrap();
    }
    layer
}

fn sequential(mode: QuantizationMode) -> Sequential {
    let mut model = Sequential::new();
    model
        .add(embedding(Some(mode), TableDType::Float32, "small"))
        .unwrap();
    model.add(GlobalAveragePooling1D::new()).unwrap();
    model.add(Dense::new(2)).unwrap();
    model
}

fn ids() -> ArrayD<i64> {
    array![[1i64, 2, 0], [10, 0, 0]].into_dyn()
}

/// Two inputs: a float32 table `plain`, then `small` stored as `mode` / `dtype`.
fn two_tables(mode: Option<QuantizationMode>, dtype: TableDType) -> Model {
    let mut graph = Graph::new();
    let a = graph.input(Input::new(&[3]).dtype(DType::Int32).with_name("a"));
    let b = graph.input(Input::new(&[3]).dtype(DType::Int32).with_name("b"));
    let plain = Embedding::new(11, 7)
        .with_name("plain")
        .weights(vec![table(11, 7).into_dyn()]);
    let ea = graph.apply(plain, &[a]).unwrap();
    let eb = graph.apply(embedding(mode, dtype, "small"), &[b]).unwrap();
    let ea = graph.apply(GlobalAveragePooling1D::new(), &[ea]).unwrap();
    let eb = graph.apply(GlobalAveragePooling1D::new(), &[eb]).unwrap();
    let dot = graph.apply(Dot::new(1), &[ea, eb]).unwrap();
    graph.model(&[a, b], &[dot]).unwrap()
}

/// `Model::set_weights` (src/model/functional.rs, used by `Sequential::set_weights`) checks
/// each layer only with `prepare_weights` (counts, shapes, finiteness) and skips the checks
/// `Embedding::set_weights` makes (`check_stored_values`: int8 scales finite and positive,
/// grouped int4 zero points in -8..=7, a `g_idx` naming groups). So a model accepts a zero
/// int8 scale, a zero point of 100 or a `g_idx` of 50 that the layer itself refuses: the
/// model is left with a table every later `predict` refuses (bad `g_idx`), and
/// `save_weights` writes a file `load_weights` refuses. Expected: the same error as the
/// layer's `set_weights`, naming the layer and the value, and the model unchanged.
#[test]
fn model_set_weights_checks_quantized_variables_as_the_layer_does() {
    let grouped = QuantizationMode::Int4 {
        block_size: Some(3),
    };
    // (mode, index in get_weights, bad value): a zero int8 scale, a negative one, a grouped
    // int4 zero point out of -8..=7, a g_idx outside 0..3.
    let cases = [
        (QuantizationMode::Int8, 1usize, 0.0f32),
        (QuantizationMode::Int8, 1, -1.0),
        (grouped, 2, 100.0),
        (grouped, 3, 50.0),
    ];
    for (mode, index, value) in cases {
        let mut model = sequential(mode);
        let before = model.get_weights();
        let y = model.predict(ids()).unwrap();
        let mut bad = before.clone();
        bad[index].as_slice_mut().unwrap()[0] = value;
        // The layer on its own refuses these arrays.
        let mut layer = embedding(Some(mode), TableDType::Float32, "alone");
        let own = bad[..layer.variables().len()].to_vec();
        assert!(
            layer.set_weights(own).is_err(),
            "{mode:?} [{index}] = {value}"
        );
        // So must the model, changing nothing.
        let result = model.set_weights(bad);
        assert!(
            result.is_err(),
            "{mode:?}: model.set_weights accepted weight {index} = {value}, which the layer refuses"
        );
        let err = result.unwrap_err().to_string();
        assert!(err.contains("small"), "{err}");
        assert_eq!(model.get_weights(), before, "{mode:?} [{index}] = {value}");
        assert_eq!(model.predict(ids()).unwrap(), y);
    }
}

/// `Model::set_weights` (src/model/functional.rs) is documented "a failed call changes
/// nothing", but the int8 / half-precision conversion check (`Weight::check_convertible`)
/// runs only inside `Weight::assign`, i.e. while layers are being assigned one after another:
/// a code of 0.5 for a quantized table (or 1e6 for a float16 one) in the second table of a
/// model fails after the first table was already replaced. Expected: the whole list checked
/// before any layer changes, the model left exactly as it was.
#[test]
fn model_set_weights_refused_by_a_quantized_table_changes_no_other_layer() {
    let cases = [
        (Some(QuantizationMode::Int8), TableDType::Float32, 0.5f32),
        (
            Some(QuantizationMode::Int4 { block_size: None }),
            TableDType::Float32,
            0.5,
        ),
        (
            Some(QuantizationMode::Int4 {
                block_size: Some(3),
            }),
            TableDType::Float32,
            200.0,
        ),
        (None, TableDType::Float16, 1e6),
    ];
    for (mode, dtype, value) in cases {
        let mut model = two_tables(mode, dtype);
        let before = model.get_weights();
        let mut bad = before.clone();
        bad[0].mapv_inplace(|v| v + 1.0); // a valid new table for "plain"
        bad[1].as_slice_mut().unwrap()[0] = value; // refused by "small"
        assert!(model.set_weights(bad).is_err(), "{mode:?} {dtype:?}");
        assert_eq!(
            model.get_weights(),
            before,
            "{mode:?} {dtype:?}: table \"plain\" was replaced by a failed set_weights"
        );
    }
}

/// The errors of `Weight::check_convertible` (src/weight.rs), raised by `set_weights` of a
/// quantized or float16 embedding (on its own or through a model), say only
/// "weight 'embeddings': invalid `values` = 0.5 ...": they do not name the layer, so in a
/// model with several tables the user cannot tell which one refused. Expected: the layer's
/// name in the message, as every other weight error gives it.
#[test]
fn set_weights_errors_of_quantized_and_half_tables_name_the_layer() {
    let cases = [
        (Some(QuantizationMode::Int8), TableDType::Float32, 0.5f32),
        (None, TableDType::Float16, 1e6),
    ];
    for (mode, dtype, value) in cases {
        let mut model = two_tables(mode, dtype);
        let mut bad = model.get_weights();
        bad[1].as_slice_mut().unwrap()[0] = value;
        let err = model.set_weights(bad.clone()).unwrap_err().to_string();
        assert!(err.contains("small"), "{mode:?} {dtype:?}: {err}");
        let mut layer = embedding(mode, dtype, "lonely");
        let own = bad[1..1 + layer.variables().len()].to_vec();
        let err = layer.set_weights(own).unwrap_err().to_string();
        assert!(err.contains("lonely"), "{mode:?} {dtype:?}: {err}");
    }
}
