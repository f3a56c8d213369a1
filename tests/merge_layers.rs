//! Merge and shape layers (`Add`, `Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum`,
//! `Concatenate`, `Dot`, `Reshape`) against tf_keras 2.21: outputs, masks, errors and
//! configs from `tests/data/keras_functional.json` (`merges`, `masked_merges`), and every
//! backward pass against central finite differences.

mod common;

use std::sync::OnceLock;

use approx::assert_relative_eq;
use ndarray::{ArrayD, Dimension, IxDyn, array};
use ndkeras::layer::BackwardOf;
use ndkeras::prelude::*;
use serde_json::Value;
#[cfg(feature = "serde")]
use serde_json::json;

use common::{bool_tensor, f32_tensor, input_tensor, optional_bool_tensor};

fn reference() -> &'static Value {
    static ROOT: OnceLock<Value> = OnceLock::new();
    ROOT.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/keras_functional.json"
        );
        let text = std::fs::read_to_string(path).expect("keras_functional.json is in the repo");
        serde_json::from_str(&text).expect("valid JSON")
    })
}

fn cases(group: &str) -> &'static [Value] {
    let cases = reference()[group].as_array().expect("a list of cases");
    assert!(!cases.is_empty(), "no cases in {group}");
    cases
}

/// The layer a case configures, built from the Keras arguments with the builders, named as
/// Keras named it.
fn layer_of(case: &Value) -> Box<dyn Layer> {
    let args = &case["args"];
    let name = case["config"]["name"].as_str().expect("a name");
    let axis = |v: &Value| v.as_i64().expect("an integer axis") as isize;
    match case["class_name"].as_str().expect("a class") {
        "Add" => Box::new(Add::new().with_name(name)),
        "Subtract" => Box::new(Subtract::new().with_name(name)),
        "Multiply" => Box::new(Multiply::new().with_name(name)),
        "Average" => Box::new(Average::new().with_name(name)),
        "Maximum" => Box::new(Maximum::new().with_name(name)),
        "Minimum" => Box::new(Minimum::new().with_name(name)),
        "Concatenate" => Box::new(
            Concatenate::new()
                .axis(args.get("axis").map_or(-1, axis))
                .with_name(name),
        ),
        "Dot" => {
            let layer = match &args["axes"] {
                Value::Array(pair) => Dot::with_axes(axis(&pair[0]), axis(&pair[1])),
                one => Dot::new(axis(one)),
            };
            let normalize = args["normalize"].as_bool().unwrap_or(false);
            Box::new(layer.normalize(normalize).with_name(name))
        }
        "Reshape" => {
            let target: Vec<isize> = args["target_shape"]
                .as_array()
                .expect("a list")
                .iter()
                .map(axis)
                .collect();
            Box::new(Reshape::new(&target).with_name(name))
        }
        other => panic!("unexpected class {other}"),
    }
}

/// The layer's `get_config` is Keras' config, and `layer_from_config` of it gives the same.
#[cfg(feature = "serde")]
fn check_config(layer: &dyn Layer, case: &Value) {
    use ndkeras::config::layer_from_config;
    let id = &case["id"];
    assert_eq!(layer.get_config(), case["config"], "{id}: get_config");
    let back =
        layer_from_config(&json!({"class_name": case["class_name"], "config": case["config"]}))
            .unwrap_or_else(|e| panic!("{id}: {e}"));
    assert_eq!(back.get_config(), case["config"], "{id}: from_config");
    assert_eq!(back.class_name(), layer.class_name(), "{id}");
}

#[cfg(not(feature = "serde"))]
fn check_config(_layer: &dyn Layer, _case: &Value) {}

fn assert_close(actual: &ArrayD<f32>, expected: &ArrayD<f32>, id: &str) {
    assert_eq!(actual.shape(), expected.shape(), "{id}: shape");
    for (a, e) in actual.iter().zip(expected.iter()) {
        assert_relative_eq!(*a, *e, max_relative = 1e-5, epsilon = 1e-6);
    }
}

fn call(layer: &mut dyn Layer, inputs: &[&Tensor]) -> ndkeras::Result<Tensor> {
    match inputs {
        [one] if layer.class_name() == "Reshape" => layer.apply(one),
        _ => layer.call_of(inputs),
    }
}

#[test]
fn merges_match_tf_keras_outputs_and_configs() {
    for case in cases("merges") {
        let id = case["id"].as_str().unwrap();
        let mut layer = layer_of(case);
        check_config(layer.as_ref(), case);
        let inputs: Vec<Tensor> = case["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(input_tensor)
            .collect();
        let refs: Vec<&Tensor> = inputs.iter().collect();
        let result = call(layer.as_mut(), &refs);
        if !case["raised"].is_null() {
            assert!(result.is_err(), "{id}: Keras raised {}", case["raised"]);
            continue;
        }
        let output = result.unwrap_or_else(|e| panic!("{id}: {e}"));
        let expected = f32_tensor(&case["output"]);
        assert_close(output.as_float().unwrap(), &expected, id);
        assert!(
            output.mask().is_none(),
            "{id}: no mask without masked inputs"
        );

        // The symbolic shape agrees with the concrete one (batch unknown).
        let shapes: Vec<Shape> = inputs
            .iter()
            .map(|t| {
                let mut s = t.keras_shape();
                s[0] = None;
                s
            })
            .collect();
        let mut want: Shape = expected.shape().iter().map(|&d| Some(d)).collect();
        want[0] = None;
        if id != "concatenate_2d_axis0_is_batch" {
            assert_eq!(
                layer.compute_output_shape_of(&shapes).unwrap(),
                want,
                "{id}"
            );
        }
    }
}

#[test]
fn masked_merges_match_tf_keras_outputs_masks_and_errors() {
    for case in cases("masked_merges") {
        let id = case["id"].as_str().unwrap();
        let mut inputs = Vec::new();
        for (index, spec) in case["embeddings"].as_array().unwrap().iter().enumerate() {
            let dim = |k: &str| spec[k].as_u64().unwrap() as usize;
            let mut embedding = Embedding::new(dim("input_dim"), dim("output_dim"))
                .mask_zero(true)
                .weights(vec![f32_tensor(&spec["embeddings"])])
                .with_name(format!("{id}_embedding_{index}"));
            let out = embedding.apply(&input_tensor(&spec["ids"])).unwrap();
            assert_close(
                out.as_float().unwrap(),
                &f32_tensor(&case["embedding_outputs"][index]),
                id,
            );
            assert_eq!(
                out.mask(),
                Some(&bool_tensor(&case["embedding_masks"][index])),
                "{id}"
            );
            inputs.push(out);
        }
        if !case["unmasked_input"].is_null() {
            inputs.push(input_tensor(&case["unmasked_input"]));
        }
        let layer = layer_of(case);
        check_config(layer.as_ref(), case);
        let refs: Vec<&Tensor> = inputs.iter().collect();
        let result = layer.call_of(&refs);
        if !case["raised"].is_null() {
            let err = result.expect_err(id);
            assert!(
                matches!(err, Error::InvalidArgument { .. }) && err.to_string().contains("masks"),
                "{id}: {err}"
            );
            continue;
        }
        let output = result.unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_close(output.as_float().unwrap(), &f32_tensor(&case["output"]), id);
        assert_eq!(
            output.mask().cloned(),
            optional_bool_tensor(&case["output_mask"]),
            "{id}: mask"
        );
        assert_eq!(
            output.mask().cloned(),
            optional_bool_tensor(&case["compute_mask"]),
            "{id}: compute_mask"
        );
    }
}

#[cfg(feature = "serde")]
#[test]
fn configs_keep_keras_forms_and_refuse_bad_fields() {
    use ndkeras::config::layer_from_config;
    // `axes` keeps the form it was given in.
    assert_eq!(Dot::new(1).get_config()["axes"], json!(1));
    assert_eq!(Dot::with_axes(1, 2).get_config()["axes"], json!([1, 2]));
    assert_eq!(
        Dot::new(-1).normalize(true).get_config()["normalize"],
        json!(true)
    );
    assert_eq!(
        Reshape::new(&[-1, 2]).get_config()["target_shape"],
        json!([-1, 2])
    );
    assert_eq!(Concatenate::new().get_config()["axis"], json!(-1));
    let bad = [
        json!({"class_name": "Dot", "config": {"name": "d"}}),
        json!({"class_name": "Dot", "config": {"name": "d", "axes": [1, 2, 3]}}),
        json!({"class_name": "Dot", "config": {"name": "d", "axes": "one"}}),
        json!({"class_name": "Reshape", "config": {"name": "r"}}),
        json!({"class_name": "Reshape", "config": {"name": "r", "target_shape": [-1, -1]}}),
        json!({"class_name": "Concatenate", "config": {"name": "c", "axis": 1.5}}),
        json!({"class_name": "Add", "config": {"name": "a", "dtype": "float16"}}),
    ];
    for value in bad {
        let err = layer_from_config(&value).expect_err(&value.to_string());
        assert!(
            matches!(err, Error::InvalidArgument { .. }),
            "{value}: {err}"
        );
    }
}

#[test]
fn automatic_names_are_keras_names() {
    let names = [
        (Add::new().name().to_string(), "add"),
        (Subtract::new().name().to_string(), "subtract"),
        (Multiply::new().name().to_string(), "multiply"),
        (Average::new().name().to_string(), "average"),
        (Maximum::new().name().to_string(), "maximum"),
        (Minimum::new().name().to_string(), "minimum"),
        (Concatenate::new().name().to_string(), "concatenate"),
        (Dot::new(1).name().to_string(), "dot"),
        (Dot::with_axes(1, 1).name().to_string(), "dot"),
        (Reshape::new(&[2]).name().to_string(), "reshape"),
    ];
    for (name, base) in names {
        let suffix = name.strip_prefix(base).expect(&name);
        assert!(
            suffix.is_empty()
                || suffix
                    .strip_prefix('_')
                    .is_some_and(|n| n.parse::<usize>().is_ok()),
            "{name}"
        );
    }
}

// ----- errors -------------------------------------------------------------------------------

fn floats(shape: &[usize]) -> Tensor {
    Tensor::from(ArrayD::from_shape_fn(IxDyn(shape), |i| {
        i.slice().iter().sum::<usize>() as f32 * 0.25 - 0.5
    }))
}

fn assert_invalid(result: ndkeras::Result<Tensor>, words: &[&str]) {
    let err = result.expect_err("an error");
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    let text = err.to_string();
    for word in words {
        assert!(text.contains(word), "{word:?} not in: {text}");
    }
}

#[test]
fn single_input_methods_say_the_layer_takes_a_list() {
    let x = floats(&[2, 3]);
    let layers: Vec<(Box<dyn Layer>, &str)> = vec![
        (Box::new(Add::new()), "at least 1 input"),
        (Box::new(Subtract::new()), "exactly 2 inputs"),
        (Box::new(Multiply::new()), "at least 1 input"),
        (Box::new(Average::new()), "at least 1 input"),
        (Box::new(Maximum::new()), "at least 1 input"),
        (Box::new(Minimum::new()), "at least 1 input"),
        (Box::new(Concatenate::new()), "at least 1 input"),
        (Box::new(Dot::new(1)), "exactly 2 inputs"),
    ];
    for (mut layer, expected) in layers {
        let name = layer.name().to_string();
        let words = ["a single tensor", expected, "call_of", name.as_str()];
        assert_invalid(layer.call(&x), &words);
        assert_invalid(layer.apply(&x), &words);
        assert!(layer.check_input(&x).is_err(), "{name}");
        assert!(
            layer.compute_output_shape(&[None, Some(3)]).is_err(),
            "{name}"
        );
        assert!(
            layer.backward(&x, ArrayD::zeros(IxDyn(&[2, 3]))).is_err(),
            "{name}"
        );
        // An empty list is refused too; Keras needs at least one input.
        assert_invalid(layer.call_of(&[]), &["a list of 0", expected]);
    }
}

#[test]
fn keras_errors_are_errors() {
    let (a, b, c) = (floats(&[2, 3]), floats(&[2, 4]), floats(&[3, 3]));
    // Incompatible shapes, different batch sizes, wrong counts.
    assert_invalid(
        Add::new().call_of(&[&a, &b]),
        &["(2, 3)", "(2, 4)", "broadcast"],
    );
    assert_invalid(Maximum::new().call_of(&[&a, &c]), &["batch size"]);
    assert_invalid(
        Subtract::new().call_of(&[&a, &a, &a]),
        &["a list of 3", "exactly 2"],
    );
    assert_invalid(Dot::new(1).call_of(&[&a]), &["a list of 1", "exactly 2"]);
    assert!(
        Add::new()
            .compute_output_shape_of(&[vec![None, Some(3)], vec![None, Some(4)]])
            .is_err()
    );
    // Concatenate: shapes off the axis, ranks, axis range.
    let d = floats(&[2, 3, 2]);
    assert_eq!(
        Concatenate::new()
            .axis(1)
            .call_of(&[&a, &b])
            .unwrap()
            .shape(),
        &[2, 7]
    );
    assert_invalid(
        Concatenate::new().axis(0).call_of(&[&a, &b]),
        &["matching shapes"],
    );
    assert_invalid(Concatenate::new().call_of(&[&a, &d]), &["matching shapes"]);
    assert_invalid(
        Concatenate::new().axis(2).call_of(&[&a, &a]),
        &["axis", "rank 2"],
    );
    assert_invalid(Concatenate::new().axis(-3).call_of(&[&a, &a]), &["axis"]);
    // Dot: the batch axis, lengths that differ, rank 1, an axis out of range.
    assert_invalid(Dot::new(0).call_of(&[&a, &a]), &["axes", "batch axis"]);
    assert_invalid(Dot::new(1).call_of(&[&a, &b]), &["same length"]);
    assert_invalid(Dot::with_axes(1, 3).call_of(&[&a, &d]), &["axes", "3"]);
    let vector = Tensor::from(vec![1.0f32, 2.0]);
    assert!(Dot::new(-1).call_of(&[&vector, &vector]).is_err());
    assert!(Dot::new(1).call_of(&[&a, &c]).is_err());
    // Reshape: sizes that do not divide, two -1, a size mismatch.
    let x = floats(&[2, 3, 4]);
    assert_invalid(
        Reshape::new(&[5, -1]).apply(&x),
        &["(5, -1)", "12 values", "(3, 4)"],
    );
    assert_invalid(Reshape::new(&[5, 2]).apply(&x), &["(5, 2)", "12 values"]);
    assert_invalid(Reshape::new(&[-1, -1]).apply(&x), &["at most one -1"]);
    assert!(
        Reshape::new(&[5, 2])
            .compute_output_shape(&[None, Some(3), Some(4)])
            .is_err()
    );
    assert_eq!(
        Reshape::new(&[-1, 2])
            .compute_output_shape(&[None, None, Some(4)])
            .unwrap(),
        vec![None, None, Some(2)]
    );
}

#[test]
fn integer_inputs_are_refused_by_merges_and_reshaped_by_reshape() {
    let ids = Tensor::from(array![[1i32, 2], [3, 4]]);
    let x = floats(&[2, 2]);
    let err = Add::new().call_of(&[&x, &ids]).unwrap_err();
    assert!(
        matches!(err, Error::IncompatibleDtype { .. }) && err.to_string().contains("input 1"),
        "{err}"
    );
    let reshaped = Reshape::new(&[2, 1]).apply(&ids).unwrap();
    assert_eq!(reshaped.dtype(), DType::Int32);
    assert_eq!(reshaped.shape(), &[2, 2, 1]);
    assert_eq!(
        reshaped.data(),
        &TensorData::Int32(array![[[1], [2]], [[3], [4]]].into_dyn())
    );
    let backward = Reshape::new(&[2, 1])
        .backward(&ids, ArrayD::zeros(IxDyn(&[2, 2, 1])))
        .unwrap();
    assert!(backward.input_gradient.is_none());
}

#[test]
fn masks_combine_as_in_keras() {
    let mask = |rows: ArrayD<bool>| rows;
    let m1 = mask(array![[true, false, true]].into_dyn());
    let m2 = mask(array![[true, true, false]].into_dyn());
    let a = floats(&[1, 3, 2]).with_mask(Some(m1.clone())).unwrap();
    let b = floats(&[1, 3, 2]).with_mask(Some(m2.clone())).unwrap();
    let plain = floats(&[1, 3, 2]);
    let and = array![[true, false, false]].into_dyn();
    for layer in [
        Box::new(Add::new()) as Box<dyn Layer>,
        Box::new(Multiply::new()),
        Box::new(Maximum::new()),
        Box::new(Concatenate::new()),
    ] {
        assert_eq!(layer.call_of(&[&a, &b]).unwrap().mask(), Some(&and));
        assert_eq!(layer.call_of(&[&a, &plain]).unwrap().mask(), Some(&m1));
        assert_eq!(layer.call_of(&[&plain, &plain]).unwrap().mask(), None);
    }
    // Concatenate on the time axis joins the masks; on the batch axis too.
    let joined = Concatenate::new().axis(1).call_of(&[&a, &b]).unwrap();
    assert_eq!(
        joined.mask(),
        Some(&array![[true, false, true, true, true, false]].into_dyn())
    );
    let batch = Concatenate::new().axis(0).call_of(&[&a, &b]).unwrap();
    assert_eq!(
        batch.mask(),
        Some(&array![[true, false, true], [true, true, false]].into_dyn())
    );
    // An unmasked input with one feature can join a masked one in time (Keras can too).
    let one_feature = floats(&[1, 2, 1]);
    let narrow = floats(&[1, 3, 1]).with_mask(Some(m1.clone())).unwrap();
    let joined = Concatenate::new()
        .axis(1)
        .call_of(&[&narrow, &one_feature])
        .unwrap();
    assert_eq!(
        joined.mask(),
        Some(&array![[true, false, true, true, true]].into_dyn())
    );
    // Dot accepts masks and returns none.
    let dot = Dot::new(2).call_of(&[&a, &b]).unwrap();
    assert_eq!(dot.shape(), &[1, 3, 3]);
    assert!(dot.mask().is_none());
    // Masks of different shapes cannot be ANDed (Keras' tf.concat of them raises).
    let short = floats(&[1, 1, 2])
        .with_mask(Some(array![[true]].into_dyn()))
        .unwrap();
    let wide = floats(&[1, 1, 2]);
    assert_invalid(Add::new().call_of(&[&short, &a]), &["masks"]);
    // A mask on a broadcast input does not cover the output.
    let broadcast = wide.with_mask(Some(array![[true]].into_dyn())).unwrap();
    assert_invalid(
        Add::new().call_of(&[&broadcast, &plain]),
        &["masks", "(1, 3, 2)"],
    );
    // Reshape refuses a masked input, like Flatten.
    let err = Reshape::new(&[6]).apply(&a).unwrap_err();
    assert!(matches!(err, Error::MaskNotSupported { .. }), "{err}");
}

#[test]
fn a_merge_layer_in_a_sequential_is_refused_cleanly() {
    let mut model = Sequential::new();
    model
        .add(Embedding::new(5, 2).input_length(3).with_name("e"))
        .unwrap();
    for layer in [
        Box::new(Add::new()) as Box<dyn Layer>,
        Box::new(Concatenate::new()),
        Box::new(Dot::new(1)),
    ] {
        let err = model.add_boxed(layer).unwrap_err();
        assert!(err.to_string().contains("a single tensor"), "{err}");
    }
    assert_eq!(model.layers().len(), 1);

    // Without a known input shape the layer is added, and the first call refuses.
    let mut model = Sequential::new();
    model.add(Average::new()).unwrap();
    let err = model.predict(floats(&[2, 3])).unwrap_err();
    assert!(
        err.to_string().contains("a list of at least 1 input"),
        "{err}"
    );

    // Reshape is a single-input layer and works in a Sequential.
    let mut model = Sequential::new();
    model
        .add(Embedding::new(5, 2).input_length(3).with_name("e"))
        .unwrap();
    model.add(Reshape::new(&[-1])).unwrap();
    assert_eq!(model.output_shape().unwrap(), vec![None, Some(6)]);
}

// ----- gradients ----------------------------------------------------------------------------

/// A small deterministic generator (xorshift), values in [-1, 1).
struct Values(u64);

impl Values {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn array(&mut self, shape: &[usize]) -> ArrayD<f32> {
        ArrayD::from_shape_simple_fn(IxDyn(shape), || self.next())
    }
}

/// `sum(weights * output)` accumulated in f64.
fn loss(layer: &mut dyn Layer, inputs: &[ArrayD<f32>], weights: &ArrayD<f32>) -> f64 {
    let tensors: Vec<Tensor> = inputs.iter().cloned().map(Tensor::from).collect();
    let refs: Vec<&Tensor> = tensors.iter().collect();
    let output = layer.forward_of(&refs, true).unwrap().into_float().unwrap();
    assert_eq!(output.shape(), weights.shape());
    output
        .iter()
        .zip(weights.iter())
        .map(|(&o, &w)| f64::from(o) * f64::from(w))
        .sum()
}

/// Checks `backward_of` against central differences of `sum(weights * output)`.
fn check_gradients(layer: &mut dyn Layer, inputs: Vec<ArrayD<f32>>, seed: u64) {
    let id = layer.name().to_string();
    let tensors: Vec<Tensor> = inputs.iter().cloned().map(Tensor::from).collect();
    let refs: Vec<&Tensor> = tensors.iter().collect();
    let output = layer.forward_of(&refs, true).unwrap();
    let weights = Values(seed).array(output.shape());
    let BackwardOf {
        input_gradients,
        weight_gradients,
    } = layer.backward_of(&refs, weights.clone(), false).unwrap();
    assert!(weight_gradients.is_empty());
    assert_eq!(input_gradients.len(), inputs.len(), "{id}");
    let h = 1e-2f32;
    for (index, gradient) in input_gradients.iter().enumerate() {
        let gradient = gradient.as_ref().expect("a float input has a gradient");
        assert_eq!(
            gradient.shape(),
            inputs[index].shape(),
            "{id}: input {index}"
        );
        for flat in 0..inputs[index].len() {
            let mut plus = inputs.clone();
            let mut minus = inputs.clone();
            plus[index].as_slice_mut().unwrap()[flat] += h;
            minus[index].as_slice_mut().unwrap()[flat] -= h;
            let numeric = (loss(layer, &plus, &weights) - loss(layer, &minus, &weights))
                / (2.0 * f64::from(h));
            let analytic = f64::from(gradient.as_slice().unwrap()[flat]);
            assert!(
                (numeric - analytic).abs() <= 2e-3 + 1e-2 * numeric.abs(),
                "{id}: input {index}, element {flat}: backward {analytic}, finite differences {numeric}"
            );
        }
    }
}

/// Inputs whose values differ by more than the finite-difference step at every position
/// (so Maximum and Minimum have no near-ties), on a common shape.
fn separated(values: &mut Values, count: usize, shape: &[usize]) -> Vec<ArrayD<f32>> {
    let len: usize = shape.iter().product();
    let mut arrays = vec![Vec::with_capacity(len); count];
    for _ in 0..len {
        let mut column: Vec<f32> = (0..count).map(|_| values.next()).collect();
        for i in 1..count {
            while (0..i).any(|j| (column[i] - column[j]).abs() < 0.1) {
                column[i] = values.next();
            }
        }
        for (array, v) in arrays.iter_mut().zip(column) {
            array.push(v);
        }
    }
    arrays
        .into_iter()
        .map(|v| ArrayD::from_shape_vec(IxDyn(shape), v).unwrap())
        .collect()
}

#[test]
fn elementwise_gradients_match_finite_differences() {
    let mut values = Values(7);
    let same = |values: &mut Values, n| (0..n).map(|_| values.array(&[2, 3])).collect::<Vec<_>>();
    check_gradients(&mut Add::new(), same(&mut values, 3), 1);
    check_gradients(&mut Subtract::new(), same(&mut values, 2), 2);
    check_gradients(&mut Multiply::new(), same(&mut values, 3), 3);
    check_gradients(&mut Average::new(), same(&mut values, 3), 4);
    check_gradients(&mut Maximum::new(), separated(&mut values, 3, &[2, 3]), 5);
    check_gradients(&mut Minimum::new(), separated(&mut values, 3, &[2, 3]), 6);
    check_gradients(&mut Add::new(), same(&mut values, 1), 7);

    // Broadcasting: a lower-rank input gains axes after the batch axis, axes of 1 stretch;
    // its gradient is summed back.
    let broadcast = |values: &mut Values| {
        vec![
            values.array(&[2, 3, 4]),
            values.array(&[2, 4]),
            values.array(&[2, 3, 1]),
        ]
    };
    check_gradients(&mut Add::new(), broadcast(&mut values), 8);
    check_gradients(&mut Multiply::new(), broadcast(&mut values), 9);
    check_gradients(&mut Average::new(), broadcast(&mut values), 10);
    check_gradients(
        &mut Subtract::new(),
        vec![values.array(&[2, 1, 3]), values.array(&[2, 4, 1])],
        11,
    );
    // A wide gap keeps the broadcast inputs apart.
    let low = values.array(&[2, 4]).mapv(|v| v - 3.0);
    check_gradients(
        &mut Maximum::new(),
        vec![values.array(&[2, 3, 4]), low.clone()],
        12,
    );
    check_gradients(&mut Minimum::new(), vec![low, values.array(&[2, 3, 4])], 13);
}

#[test]
fn maximum_and_minimum_send_a_tied_gradient_to_the_first_input() {
    let a = Tensor::from(array![[1.0f32, 2.0, 3.0]]);
    let b = Tensor::from(array![[1.0f32, 5.0, 3.0]]);
    let c = Tensor::from(array![[0.0f32, 5.0, 3.0]]);
    let g = array![[1.0f32, 1.0, 1.0]].into_dyn();
    let grads = Maximum::new()
        .backward_of(&[&a, &b, &c], g.clone(), false)
        .unwrap()
        .input_gradients;
    assert_eq!(grads[0], Some(array![[1.0f32, 0.0, 1.0]].into_dyn()));
    assert_eq!(grads[1], Some(array![[0.0f32, 1.0, 0.0]].into_dyn()));
    assert_eq!(grads[2], Some(array![[0.0f32, 0.0, 0.0]].into_dyn()));
    let grads = Minimum::new()
        .backward_of(&[&c, &b, &a], g, false)
        .unwrap()
        .input_gradients;
    assert_eq!(grads[0], Some(array![[1.0f32, 0.0, 1.0]].into_dyn()));
    assert_eq!(grads[1], Some(array![[0.0f32, 0.0, 0.0]].into_dyn()));
    assert_eq!(grads[2], Some(array![[0.0f32, 1.0, 0.0]].into_dyn()));
}

#[test]
fn concatenate_gradients_match_finite_differences() {
    let mut values = Values(11);
    check_gradients(
        &mut Concatenate::new(),
        vec![
            values.array(&[2, 3]),
            values.array(&[2, 1]),
            values.array(&[2, 2]),
        ],
        21,
    );
    check_gradients(
        &mut Concatenate::new().axis(1),
        vec![values.array(&[2, 3, 2]), values.array(&[2, 2, 2])],
        22,
    );
    check_gradients(
        &mut Concatenate::new().axis(0),
        vec![values.array(&[1, 3]), values.array(&[2, 3])],
        23,
    );
}

#[test]
fn dot_gradients_match_finite_differences() {
    let mut values = Values(13);
    // Away from zero, so that the normalised gradients stay moderate.
    let mut away = |shape: &[usize]| {
        values
            .array(shape)
            .mapv(|v| if v >= 0.0 { v + 0.5 } else { v - 0.5 })
    };
    for normalize in [false, true] {
        let dot = |layer: Dot| layer.normalize(normalize);
        check_gradients(
            &mut dot(Dot::new(1)),
            vec![away(&[2, 4]), away(&[2, 4])],
            31,
        );
        check_gradients(
            &mut dot(Dot::with_axes(2, 2)),
            vec![away(&[2, 3, 4]), away(&[2, 2, 4])],
            32,
        );
        check_gradients(
            &mut dot(Dot::with_axes(1, 2)),
            vec![away(&[2, 3, 4]), away(&[2, 2, 3])],
            33,
        );
        check_gradients(
            &mut dot(Dot::new(-1)),
            vec![away(&[2, 4]), away(&[2, 3, 4])],
            34,
        );
        check_gradients(
            &mut dot(Dot::with_axes(1, 1)),
            vec![away(&[2, 3, 4]), away(&[2, 3])],
            35,
        );
        check_gradients(
            &mut dot(Dot::with_axes(2, 1)),
            vec![away(&[2, 2, 3, 2]), away(&[2, 3, 2])],
            36,
        );
    }
}

#[test]
fn dot_normalize_of_a_zero_vector_follows_tf_l2_normalize() {
    // Below epsilon the norm is the constant sqrt(1e-12): output 0, gradient g / 1e-6.
    let zero = Tensor::from(array![[0.0f32, 0.0]]);
    let other = Tensor::from(array![[3.0f32, 4.0]]);
    let mut dot = Dot::new(1).normalize(true);
    let out = dot.call_of(&[&zero, &other]).unwrap();
    assert_eq!(out.as_float().unwrap(), &array![[0.0f32]].into_dyn());
    let grads = dot
        .backward_of(&[&zero, &other], array![[1.0f32]].into_dyn(), false)
        .unwrap()
        .input_gradients;
    let expected = array![[0.6f32, 0.8]].into_dyn().mapv(|v| v * 1e6);
    assert_close(grads[0].as_ref().unwrap(), &expected, "zero vector");
    assert_eq!(grads[1], Some(array![[0.0f32, 0.0]].into_dyn()));
}

#[test]
fn reshape_gradient_is_the_output_gradient_reshaped() {
    let mut layer = Reshape::new(&[-1, 2]);
    let x = Tensor::from(Values(17).array(&[2, 3, 4]));
    let out = layer.forward(&x, true).unwrap();
    assert_eq!(out.shape(), &[2, 6, 2]);
    let g = Values(18).array(&[2, 6, 2]);
    let back = layer.backward(&x, g.clone()).unwrap();
    let expected = g.into_shape_with_order(IxDyn(&[2, 3, 4])).unwrap();
    assert_eq!(back.input_gradient, Some(expected));
    assert!(layer.backward(&x, Values(19).array(&[2, 12])).is_err());
}

#[test]
fn output_gradients_of_the_wrong_shape_are_refused() {
    let a = floats(&[2, 3]);
    let wrong = ArrayD::zeros(IxDyn(&[2, 4]));
    let layers: Vec<Box<dyn Layer>> = vec![
        Box::new(Add::new()),
        Box::new(Maximum::new()),
        Box::new(Concatenate::new()),
        Box::new(Dot::new(1)),
    ];
    for mut layer in layers {
        let err = layer
            .backward_of(&[&a, &a], wrong.clone(), false)
            .unwrap_err();
        assert!(matches!(err, Error::IncompatibleShape { .. }), "{err}");
        assert!(
            layer
                .backward_of(&[&a, &a], ArrayD::zeros(IxDyn(&[2, 3])), true)
                .is_err()
        );
    }
}
