//! Quantized and half-precision embedding tables against the real Keras 3.15.1 on JAX
//! (`tests/data/keras3_quantized.json`, made by `tests/data/keras3_quantized.py`): integer
//! codes, zero points and lookups bit-exact, scales within rtol 1e-6; get_config; errors;
//! set/get/save/load of the quantized variables; a quantized layer refusing to train.

use ndarray::{ArrayD, IxDyn};
use ndkeras::prelude::*;
use ndkeras::quantization::{QuantizationMode, TableDType};
use serde_json::Value;

fn reference() -> Value {
    serde_json::from_str(include_str!("data/keras3_quantized.json")).unwrap()
}

fn array(value: &Value, shape: &[usize]) -> ArrayD<f32> {
    fn flatten(v: &Value, out: &mut Vec<f32>) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
            n => out.push(n.as_f64().unwrap() as f32),
        }
    }
    let mut flat = Vec::new();
    flatten(value, &mut flat);
    ArrayD::from_shape_vec(IxDyn(shape), flat).unwrap()
}

fn shape_of(value: &Value) -> Vec<usize> {
    let mut shape = Vec::new();
    let mut v = value;
    while let Value::Array(items) = v {
        shape.push(items.len());
        match items.first() {
            Some(first) => v = first,
            None => break,
        }
    }
    shape
}

fn tensor_of(value: &Value) -> ArrayD<f32> {
    array(value, &shape_of(value))
}

fn ids(reference: &Value) -> Tensor {
    let ids = tensor_of(&reference["ids"]);
    Tensor::from(ids.mapv(|v| v as i64))
}

fn assert_close(ours: &ArrayD<f32>, keras: &ArrayD<f32>, what: &str) {
    assert_eq!(ours.shape(), keras.shape(), "{what}: shape");
    for (i, (&a, &e)) in ours.iter().zip(keras).enumerate() {
        assert!(
            (a - e).abs() <= 1e-6 * e.abs() + 1e-30,
            "{what}: element {i}: {a} vs Keras {e}"
        );
    }
}

fn mode_of(case: &str) -> QuantizationMode {
    match case {
        "int8" => QuantizationMode::Int8,
        "int4_default" => "int4".parse().unwrap(),
        "int4_per_channel" => QuantizationMode::Int4 { block_size: None },
        other => QuantizationMode::Int4 {
            block_size: Some(other.trim_start_matches("int4_block").parse().unwrap()),
        },
    }
}

fn float_layer(reference: &Value, name: &str) -> Embedding {
    let table = tensor_of(&reference["table"]);
    let (rows, cols) = (table.shape()[0], table.shape()[1]);
    let mut layer = Embedding::new(rows, cols)
        .with_name(name)
        .weights(vec![table]);
    layer.build(&[None]).unwrap();
    layer
}

#[test]
fn quantized_variables_and_lookups_match_keras() {
    let reference = reference();
    let ids = ids(&reference);
    for case in reference["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let mut layer = float_layer(&reference, name);
        if name == "int4_default" {
            layer.quantize("int4").unwrap();
        } else {
            layer.quantize_with(mode_of(name)).unwrap();
        }
        assert_eq!(
            layer.quantization_mode().unwrap().policy_name(),
            case["policy"].as_str().unwrap(),
            "{name}"
        );
        let variables = case["variables"].as_array().unwrap();
        assert_eq!(layer.weight_names().len(), variables.len(), "{name}");
        let ours = layer.get_weights();
        for ((variable, ours), weight) in variables.iter().zip(&ours).zip(layer.variables()) {
            let what = format!("{name}/{}", variable["name"].as_str().unwrap());
            assert_eq!(weight.name(), variable["name"].as_str().unwrap(), "{what}");
            assert_eq!(
                weight.dtype().name(),
                variable["dtype"].as_str().unwrap(),
                "{what}"
            );
            assert!(
                !weight.is_trainable(),
                "{what}: quantized variables are not trainable"
            );
            let shape: Vec<usize> = variable["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            let keras = array(&variable["values"], &shape);
            if variable["dtype"] == "int8" {
                assert_eq!(ours, &keras, "{what}: codes bit-exact");
            } else {
                assert_close(ours, &keras, &what);
            }
        }
        let out = layer.apply(&ids).unwrap().into_float().unwrap();
        // Bit-exact: XLA computes Keras' `q / s` as `q * (1 / s)`, and so does ndkeras.
        let keras_lookup = tensor_of(&case["lookup"]);
        for (i, (a, e)) in out.iter().zip(&keras_lookup).enumerate() {
            assert_eq!(
                a.to_bits(),
                e.to_bits(),
                "{name}: lookup {i}: {a} vs Keras {e}"
            );
        }
        // lookup_into decodes the same rows into a buffer the caller keeps.
        let mut buffer = ArrayD::<f32>::zeros(out.raw_dim());
        layer.lookup_into(&ids, buffer.view_mut()).unwrap();
        assert_eq!(buffer, out, "{name}: lookup_into");
    }
}

#[cfg(feature = "serde")]
#[test]
fn get_config_writes_keras_3_policy_and_quantization_config() {
    let reference = reference();
    for case in reference["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let mut layer = float_layer(&reference, name);
        layer.quantize_with(mode_of(name)).unwrap();
        let config = layer.get_config();
        for field in [
            "dtype",
            "quantization_config",
            "input_dim",
            "output_dim",
            "mask_zero",
        ] {
            assert_eq!(config[field], case["config"][field], "{name}: {field}");
        }
        // Read back: a layer that builds the same quantized variables, unbuilt.
        let mut back = Embedding::from_config(&config).unwrap();
        assert_eq!(
            back.quantization_mode(),
            layer.quantization_mode(),
            "{name}"
        );
        back.build(&[None]).unwrap();
        assert_eq!(back.weight_names(), layer.weight_names(), "{name}");
        assert_eq!(back.weight_shapes(), layer.weight_shapes(), "{name}");
        back.set_weights(layer.get_weights()).unwrap();
        let ids = ids(&reference);
        assert_eq!(
            back.apply(&ids).unwrap(),
            layer.apply(&ids).unwrap(),
            "{name}"
        );
        // And Keras' own config reads back the same way.
        let keras = Embedding::from_config(&case["config"]).unwrap();
        assert_eq!(
            keras.quantization_mode(),
            layer.quantization_mode(),
            "{name}"
        );
    }
    // Keras' legacy policy strings.
    let per_channel = serde_json::json!({"name": "e", "input_dim": 3, "output_dim": 2, "dtype": "int4_from_float32"});
    let layer = Embedding::from_config(&per_channel).unwrap();
    assert_eq!(
        layer.quantization_mode(),
        Some(QuantizationMode::Int4 { block_size: None })
    );
    assert_eq!(
        reference["restored_from_block2_config"],
        serde_json::json!(["embeddings", "embeddings_scale", "embeddings_zero", "g_idx"])
    );
}

#[test]
fn half_precision_tables_match_keras() {
    let reference = reference();
    let ids = ids(&reference);
    for case in reference["half"].as_array().unwrap() {
        let dtype: TableDType = case["dtype"].as_str().unwrap().parse().unwrap();
        let table = tensor_of(&reference["table"]);
        let mut layer = Embedding::new(table.shape()[0], table.shape()[1])
            .dtype(dtype)
            .weights(vec![table.clone()]);
        let out = layer.apply(&ids).unwrap().into_float().unwrap();
        assert_eq!(out, tensor_of(&case["lookup"]), "{dtype}: lookup");
        assert_eq!(
            layer.get_weights()[0],
            tensor_of(&case["stored"]),
            "{dtype}"
        );
        assert_eq!(layer.table_bytes(), table.len() * 2);
        #[cfg(feature = "serde")]
        {
            let config = layer.get_config();
            assert_eq!(config["dtype"], case["config"]["dtype"], "{dtype}");
            assert_eq!(
                Embedding::from_config(&config).unwrap().table_dtype(),
                dtype
            );
        }
        // Casting a built float32 layer gives the same table.
        let mut cast = float_layer(&reference, "cast");
        cast.cast_table(dtype).unwrap();
        assert_eq!(cast.apply(&ids).unwrap().into_float().unwrap(), out);
    }
    // A value that overflows float16 is refused, naming its position.
    let mut layer = Embedding::from_table(ndarray::array![[1.0f32, 1e6]]);
    layer.build(&[None]).unwrap();
    let err = layer.cast_table(TableDType::Float16).unwrap_err();
    assert!(
        err.to_string().contains("[0, 1]") && err.to_string().contains("float16"),
        "{err}"
    );
}

#[test]
fn quantize_errors_say_what_keras_says() {
    let reference = reference();
    let errors = &reference["errors"];
    // Unknown mode, before anything else (Keras validates the mode first).
    let mut unbuilt = Embedding::new(3, 2).with_name("unbuilt");
    let err = unbuilt.quantize("int3").unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    assert!(
        err.to_string().contains("Invalid quantization mode"),
        "{err}"
    );
    assert!(
        errors["unknown"]
            .as_str()
            .unwrap()
            .contains("Invalid quantization mode")
    );
    let err = unbuilt.quantize("float8").unwrap_err();
    assert!(err.to_string().contains("('int8', 'int4')"), "{err}");
    // Unbuilt.
    let err = unbuilt.quantize("int8").unwrap_err();
    assert!(matches!(err, Error::NotBuilt { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("Cannot quantize a layer that isn't yet built"),
        "{err}"
    );
    assert!(
        errors["unbuilt"]
            .as_str()
            .unwrap()
            .contains("Cannot quantize a layer that isn't yet built")
    );
    // Twice.
    let mut twice = float_layer(&reference, "twice");
    twice.quantize("int8").unwrap();
    let err = twice.quantize("int4").unwrap_err();
    assert!(
        err.to_string()
            .contains("already quantized with dtype_policy='int8_from_float32'"),
        "{err}"
    );
    assert!(
        errors["twice"]
            .as_str()
            .unwrap()
            .contains("already quantized with dtype_policy='int8_from_float32'")
    );
    // Block size 0.
    let mut zero = float_layer(&reference, "zero");
    let err = zero
        .quantize_with(QuantizationMode::Int4 {
            block_size: Some(0),
        })
        .unwrap_err();
    assert!(err.to_string().contains("block_size"), "{err}");
    assert_eq!(zero.quantization_mode(), None);
}

#[test]
fn set_weights_checks_codes_scales_and_g_idx() {
    let reference = reference();
    let mut layer = float_layer(&reference, "checked");
    layer
        .quantize_with(QuantizationMode::Int4 {
            block_size: Some(3),
        })
        .unwrap();
    let good = layer.get_weights();
    let before = layer.get_weights();
    let mut bad = good.clone();
    bad[0][[1, 1]] = 200.0;
    let err = layer.set_weights(bad).unwrap_err();
    assert!(
        err.to_string().contains("-128..=127") && err.to_string().contains("[1, 1]"),
        "{err}"
    );
    let mut bad = good.clone();
    bad[0][[0, 0]] = 1.5;
    assert!(layer.set_weights(bad).is_err());
    let mut bad = good.clone();
    bad[3][[2]] = 9.0;
    let err = layer.set_weights(bad).unwrap_err();
    assert!(err.to_string().contains("g_idx"), "{err}");
    let mut bad = good.clone();
    bad[1][[0, 0]] = f32::MAX;
    let err = layer.set_weights(bad).unwrap_err();
    assert!(err.to_string().contains("embeddings_scale"), "{err}");
    // The wrong count (a float32 table for a quantized layer) is Keras' count error.
    let err = layer
        .set_weights(vec![tensor_of(&reference["table"])])
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::WeightCount {
                expected: 4,
                got: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(layer.get_weights(), before, "nothing changed");
    // A zero per-channel scale would make an infinite row.
    let mut int8 = float_layer(&reference, "int8_checked");
    int8.quantize("int8").unwrap();
    let mut bad = int8.get_weights();
    bad[1][[2]] = 0.0;
    let err = int8.set_weights(bad).unwrap_err();
    assert!(err.to_string().contains("positive"), "{err}");
}

#[cfg(feature = "serde")]
#[test]
fn quantized_models_predict_save_and_load() {
    let reference = reference();
    let ids = ids(&reference);
    let dir = std::env::temp_dir().join(format!("ndkeras-quantized-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for mode in [
        QuantizationMode::Int8,
        QuantizationMode::Int4 { block_size: None },
        QuantizationMode::Int4 {
            block_size: Some(2),
        },
    ] {
        let mut layer = float_layer(&reference, "table");
        layer.quantize_with(mode).unwrap();
        let expected = layer.apply(&ids).unwrap().into_float().unwrap();
        let mut model = Sequential::new();
        model.add(layer).unwrap();
        assert_eq!(
            model.predict(ids.clone()).unwrap(),
            expected,
            "{mode}: predict"
        );
        let path = dir.join(format!("{}.npz", mode.policy_mode().replace('/', "_")));
        model.save_weights(&path).unwrap();
        let stored = ndkeras::io::npy::read_npz_typed(&path).unwrap();
        let names: Vec<&str> = stored.iter().map(|(n, _)| n.as_str()).collect();
        let dtypes: Vec<&str> = stored.iter().map(|(_, a)| a.dtype_name()).collect();
        let expected_dtypes: &[&str] = match mode.block_size() {
            Some(_) => &["int8", "float32", "int8", "float32"],
            None => &["int8", "float32"],
        };
        assert_eq!(dtypes, expected_dtypes, "{mode}: Keras' dtypes");
        let expected_names: Vec<String> = mode
            .variable_names()
            .iter()
            .map(|n| format!("table/{n}"))
            .collect();
        assert_eq!(names, expected_names, "{mode}: Keras' names and order");

        // A model read back from JSON builds the quantized variables and loads them.
        let mut back = Sequential::from_json(&model.to_json()).unwrap();
        back.predict(ids.clone()).unwrap();
        back.load_weights(&path).unwrap();
        assert_eq!(
            back.predict(ids.clone()).unwrap(),
            expected,
            "{mode}: after load"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_quantized_layer_refuses_to_train_unless_frozen() {
    let reference = reference();
    let table = tensor_of(&reference["table"]);
    let mut layer = Embedding::new(table.shape()[0], table.shape()[1])
        .with_name("frozen_table")
        .input_length(3)
        .weights(vec![table]);
    layer.build(&[None, Some(3)]).unwrap();
    layer.quantize("int8").unwrap();
    let mut model = Sequential::new();
    model.add(layer).unwrap();
    model.add(Flatten::new()).unwrap();
    model.add(Dense::new(1)).unwrap();
    model
        .compile("sgd".parse().unwrap(), Loss::MeanSquaredError)
        .unwrap();
    let x = Tensor::from(ndarray::array![[0i64, 1, 2], [3, 4, 5]]);
    let y = Tensor::from(ndarray::array![[1.0f32], [0.0]]);
    let options = FitOptions::default().epochs(1).verbose(false);
    let err = model
        .fit(x.clone(), y.clone(), options.clone())
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("frozen_table") && text.contains("int8") && text.contains("trainable(false)"),
        "{text}"
    );
    // Frozen, the rest of the model trains.
    model.get_layer_mut(0).unwrap().set_trainable(false);
    model.fit(x, y, options).unwrap();
}
