//! LoRA on quantized (int8, int4 per-channel, int4 grouped) and half-precision (float16,
//! bfloat16) tables, checked against the real Keras 3.15.1 on JAX
//! (`tests/data/keras3_quantized_lora.json`, made by `tests/data/keras3_quantized_lora.py`):
//! the variables in Keras' order with Keras' trainability, lookups bit-exact, the gradients of
//! `A` (row-sparse) and `B` (dense), the re-quantized merged table `save_own_variables`
//! writes (codes bit-exact), loading it into a LoRA layer, two SGD steps of a small model, and
//! `save_weights`/`load_weights` of such a model into twins with and without LoRA.

use ndarray::{ArrayD, IxDyn};
use ndkeras::layer::Gradient;
use ndkeras::prelude::*;
use ndkeras::quantization::{QuantizationMode, TableDType};
use serde_json::Value;

fn reference() -> Value {
    serde_json::from_str(include_str!("data/keras3_quantized_lora.json")).unwrap()
}

fn array(value: &Value) -> ArrayD<f32> {
    fn walk(v: &Value, depth: usize, shape: &mut Vec<usize>, out: &mut Vec<f32>) {
        match v {
            Value::Array(items) => {
                if shape.len() == depth {
                    shape.push(items.len());
                }
                items.iter().for_each(|i| walk(i, depth + 1, shape, out));
            }
            n => out.push(n.as_f64().unwrap() as f32),
        }
    }
    let (mut shape, mut flat) = (Vec::new(), Vec::new());
    walk(value, 0, &mut shape, &mut flat);
    ArrayD::from_shape_vec(IxDyn(&shape), flat).unwrap()
}

fn ids(value: &Value) -> Tensor {
    Tensor::from(array(value).mapv(|v| v as i64))
}

const CASES: [&str; 5] = [
    "int8",
    "int4_per_channel",
    "int4_grouped_2",
    "float16",
    "bfloat16",
];

/// The storage of a case: a quantization mode or a half-precision type.
fn storage(case: &str) -> (Option<QuantizationMode>, TableDType) {
    match case {
        "int8" => (Some(QuantizationMode::Int8), TableDType::Float32),
        "int4_per_channel" => (
            Some(QuantizationMode::Int4 { block_size: None }),
            TableDType::Float32,
        ),
        "int4_grouped_2" => (
            Some(QuantizationMode::Int4 {
                block_size: Some(2),
            }),
            TableDType::Float32,
        ),
        "float16" => (None, TableDType::Float16),
        "bfloat16" => (None, TableDType::BFloat16),
        other => panic!("unknown case {other}"),
    }
}

/// A built layer over the reference table, stored as `case` says (not yet with LoRA).
fn base_layer(r: &Value, case: &str) -> Embedding {
    let table = array(&r["embeddings"]);
    let (rows, cols) = (table.shape()[0], table.shape()[1]);
    let (mode, dtype) = storage(case);
    let mut layer = Embedding::new(rows, cols)
        .with_name("emb")
        .input_length(3)
        .dtype(dtype)
        .weights(vec![table]);
    layer.build(&[None, Some(3)]).unwrap();
    if let Some(mode) = mode {
        layer.quantize_with(mode).unwrap();
    }
    layer
}

/// `enable_lora(2, lora_alpha=4)` with the reference A and B, set in Keras' order.
fn adapt(layer: &mut Embedding, r: &Value) {
    let rank = r["rank"].as_u64().unwrap() as usize;
    let alpha = r["alpha"].as_f64().unwrap() as f32;
    layer
        .enable_lora_with(rank, Some(alpha), Initializer::Zeros, Initializer::Zeros)
        .unwrap();
    let weights: Vec<ArrayD<f32>> = layer
        .weight_names()
        .iter()
        .zip(layer.get_weights())
        .map(|(name, current)| match name.as_str() {
            "lora_embeddings_a" => array(&r["lora_a"]),
            "lora_embeddings_b" => array(&r["lora_b"]),
            _ => current,
        })
        .collect();
    layer.set_weights(weights).unwrap();
}

fn lora_layer(r: &Value, case: &str) -> Embedding {
    let mut layer = base_layer(r, case);
    adapt(&mut layer, r);
    layer
}

fn assert_exact(ours: &ArrayD<f32>, keras: &ArrayD<f32>, what: &str) {
    assert_eq!(ours.shape(), keras.shape(), "{what}: shape");
    for (i, (&a, &b)) in ours.iter().zip(keras).enumerate() {
        assert!(
            a.to_bits() == b.to_bits(),
            "{what}[{i}]: ours {a}, Keras {b}"
        );
    }
}

fn assert_close(ours: &ArrayD<f32>, keras: &ArrayD<f32>, rtol: f32, what: &str) {
    assert_eq!(ours.shape(), keras.shape(), "{what}: shape");
    for (i, (&a, &b)) in ours.iter().zip(keras).enumerate() {
        assert!(
            (a - b).abs() <= rtol * b.abs() + 1e-6,
            "{what}[{i}]: ours {a}, Keras {b}"
        );
    }
}

#[test]
fn variables_follow_keras_order_and_trainability() {
    let r = reference();
    for case in CASES {
        let keras = &r["cases"][case]["variables"];
        let layer = lora_layer(&r, case);
        let names: Vec<&str> = keras
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(layer.weight_names(), names, "{case}");
        for (weight, keras) in layer.variables().iter().zip(keras.as_array().unwrap()) {
            assert_eq!(
                weight.is_trainable(),
                keras["trainable"].as_bool().unwrap(),
                "{case}: {} trainable",
                weight.name()
            );
            assert_eq!(
                weight.dtype().name(),
                keras["dtype"].as_str().unwrap(),
                "{case}: {} dtype",
                weight.name()
            );
        }
        for ((name, ours), keras) in layer
            .weight_names()
            .iter()
            .zip(layer.get_weights())
            .zip(keras.as_array().unwrap())
        {
            assert_exact(&ours, &array(&keras["values"]), &format!("{case}: {name}"));
        }
    }
}

#[test]
fn every_lookup_path_reads_the_dequantized_table_plus_the_delta_bit_exactly() {
    let r = reference();
    let x = ids(&r["ids"]);
    for case in CASES {
        let mut layer = lora_layer(&r, case);
        let expected = array(&r["cases"][case]["output"]);
        assert_exact(&layer.call(&x).unwrap().to_f32(), &expected, case);
        assert_exact(&layer.apply(&x).unwrap().to_f32(), &expected, case);
        assert_exact(&layer.forward(&x, true).unwrap().to_f32(), &expected, case);
        let mut out = ArrayD::<f32>::zeros(IxDyn(expected.shape()));
        layer.lookup_into(&x, out.view_mut()).unwrap();
        assert_exact(&out, &expected, &format!("{case}: lookup_into"));
    }
}

#[test]
fn gradients_of_a_are_row_sparse_and_of_b_dense_as_jax_grad() {
    let r = reference();
    let x = ids(&r["ids"]);
    let weight = array(&r["weight"]);
    for case in CASES {
        let mut layer = lora_layer(&r, case);
        let names = layer.weight_names();
        let id_of = |name: &str| {
            let i = names.iter().position(|n| n == name).unwrap();
            layer.variables()[i].id()
        };
        let (a_id, b_id) = (id_of("lora_embeddings_a"), id_of("lora_embeddings_b"));
        let backward = layer.backward(&x, weight.clone()).unwrap();
        assert_eq!(backward.weight_gradients.len(), 2, "{case}: A and B only");
        for (id, gradient) in &backward.weight_gradients {
            match gradient {
                Gradient::Rows { rows, values } if *id == a_id => {
                    let mut looked_up = rows.clone();
                    looked_up.sort_unstable();
                    assert_eq!(looked_up, [0, 1, 2, 4, 5], "{case}: the ids looked up");
                    let keras = array(&r["cases"][case]["grad_a"]);
                    let mut dense = ArrayD::<f32>::zeros(IxDyn(keras.shape()));
                    for (&row, values) in rows.iter().zip(values.rows()) {
                        dense.index_axis_mut(ndarray::Axis(0), row).assign(&values);
                    }
                    assert_close(&dense, &keras, 1e-6, &format!("{case}: grad A"));
                }
                Gradient::Dense(values) if *id == b_id => {
                    let keras = array(&r["cases"][case]["grad_b"]);
                    assert_close(values, &keras, 1e-6, &format!("{case}: grad B"));
                }
                other => panic!("{case}: unexpected gradient {other:?}"),
            }
        }
    }
}

#[test]
fn saving_requantizes_the_merged_table_and_loading_zeroes_the_adapters() {
    let r = reference();
    let x = ids(&r["ids"]);
    for case in CASES {
        let keras = &r["cases"][case];
        let layer = lora_layer(&r, case);
        let saved = layer.save_own_variables().unwrap();
        let keras_saved = keras["saved"].as_array().unwrap();
        assert_eq!(
            saved.len(),
            keras_saved.len(),
            "{case}: A and B not written"
        );
        for (i, (ours, keras)) in saved.iter().zip(keras_saved).enumerate() {
            assert_exact(
                ours,
                &array(&keras["values"]),
                &format!("{case}: saved {i}"),
            );
        }
        let mut other = lora_layer(&r, case);
        other.load_own_variables(saved.clone()).unwrap();
        for ((name, ours), keras) in other
            .weight_names()
            .iter()
            .zip(other.get_weights())
            .zip(keras["loaded"].as_array().unwrap())
        {
            assert_exact(
                &ours,
                &array(&keras["values"]),
                &format!("{case}: loaded {name}"),
            );
        }
        assert_exact(
            &other.call(&x).unwrap().to_f32(),
            &array(&keras["loaded_output"]),
            &format!("{case}: output after loading"),
        );
        // The saved form loads into the same storage without LoRA too.
        let mut plain = base_layer(&r, case);
        plain.load_own_variables(saved).unwrap();
        assert_exact(
            &plain.call(&x).unwrap().to_f32(),
            &array(&keras["loaded_output"]),
            &format!("{case}: plain layer from the saved form"),
        );
    }
}

fn model_of(layer: Embedding, r: &Value) -> Sequential {
    let mut model = Sequential::new();
    model.add(layer).unwrap();
    model.add(GlobalAveragePooling1D::new()).unwrap();
    model
        .add(
            Dense::new(1)
                .with_name("out")
                .weights(vec![array(&r["kernel"]), array(&r["bias"])]),
        )
        .unwrap();
    model
}

#[test]
fn two_sgd_steps_train_the_adapters_as_keras() {
    let r = reference();
    let x = ids(&r["ids"]);
    let y = array(&r["y"]);
    for case in CASES {
        // Half-precision layers compute in their type in Keras (their output gradient is
        // rounded to it); ndkeras keeps float32 gradients.
        let rtol = match case {
            "float16" => 1e-3,
            "bfloat16" => 1e-2,
            _ => 1e-5,
        };
        let mut model = model_of(lora_layer(&r, case), &r);
        let codes_before = model.get_layer(0).unwrap().get_weights();
        model
            .compile(SGD::new(0.1).into(), Loss::MeanSquaredError)
            .unwrap();
        for (step, keras) in r["cases"][case]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            let loss = model.train_on_batch(x.clone(), y.clone()).unwrap();
            let keras_loss = keras["loss"].as_f64().unwrap() as f32;
            assert!(
                (loss - keras_loss).abs() <= rtol * keras_loss.abs(),
                "{case} step {step}: loss {loss}, Keras {keras_loss}"
            );
            let layer = model.layer::<Embedding>(0).unwrap();
            for (name, ours) in layer.weight_names().iter().zip(layer.get_weights()) {
                let what = format!("{case} step {step}: {name}");
                match name.as_str() {
                    "lora_embeddings_a" => {
                        assert_close(&ours, &array(&keras["lora_a"]), rtol, &what)
                    }
                    "lora_embeddings_b" => {
                        assert_close(&ours, &array(&keras["lora_b"]), rtol, &what)
                    }
                    _ => {}
                }
            }
            let dense = model.get_layer(2).unwrap().get_weights();
            for (ours, keras) in dense.iter().zip(keras["dense"].as_array().unwrap()) {
                assert_close(
                    ours,
                    &array(keras),
                    rtol,
                    &format!("{case} step {step}: dense"),
                );
            }
        }
        // The frozen base never moves.
        let after = model.get_layer(0).unwrap().get_weights();
        for ((name, before), after) in model
            .get_layer(0)
            .unwrap()
            .weight_names()
            .iter()
            .zip(&codes_before)
            .zip(&after)
        {
            if !name.starts_with("lora") {
                assert_eq!(before, after, "{case}: {name} changed");
            }
        }
        let prediction = model.predict(x.clone()).unwrap();
        assert_close(
            &prediction,
            &array(&r["cases"][case]["prediction_after_steps"]),
            rtol,
            &format!("{case}: prediction"),
        );
    }
}

#[test]
fn a_quantized_table_is_trainable_only_through_lora() {
    let r = reference();
    let x = ids(&r["ids"]);
    let y = array(&r["y"]);
    for case in ["int8", "int4_grouped_2", "float16"] {
        let mut model = model_of(base_layer(&r, case).with_name("frozen_base"), &r);
        model
            .compile(SGD::new(0.1).into(), Loss::MeanSquaredError)
            .unwrap();
        let err = model.train_on_batch(x.clone(), y.clone()).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
        assert!(
            text.contains("frozen_base")
                && text.contains("LoRA")
                && text.contains("trainable(false)"),
            "{case}: {text}"
        );
        model
            .layer_mut::<Embedding>(0)
            .unwrap()
            .enable_lora(2)
            .unwrap();
        model.train_on_batch(x.clone(), y.clone()).unwrap();
    }
}

#[test]
fn quantizing_a_lora_layer_is_still_refused() {
    let r = reference();
    let mut layer = lora_layer(&r, "float16");
    let err = layer.quantize("int8").unwrap_err();
    assert!(err.to_string().contains("LoRA"), "{err}");
}

#[test]
fn a_model_saves_the_requantized_table_in_keras_dtypes_and_twins_load_it() {
    let r = reference();
    let x = ids(&r["ids"]);
    let dir = std::env::temp_dir().join(format!("ndkeras-qlora-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for case in CASES {
        let keras = &r["cases"][case];
        let model = model_of(lora_layer(&r, case), &r);
        let path = dir.join(format!("{case}.npz"));
        model.save_weights(&path).unwrap();
        let stored = ndkeras::io::npy::read_npz_typed(&path).unwrap();
        let emb: Vec<_> = stored
            .iter()
            .filter(|(n, _)| n.starts_with("emb/"))
            .collect();
        let keras_saved = keras["saved"].as_array().unwrap();
        assert_eq!(
            emb.len(),
            keras_saved.len(),
            "{case}: no adapters in the file"
        );
        for ((name, stored), keras) in emb.iter().zip(keras_saved) {
            // bfloat16 has no NumPy type: ndkeras writes it as float32.
            let keras_dtype = match keras["dtype"].as_str().unwrap() {
                "bfloat16" => "float32",
                other => other,
            };
            assert_eq!(stored.dtype_name(), keras_dtype, "{case}: {name}");
            let values = stored.clone().into_f32(String::new).unwrap();
            assert_exact(
                &values,
                &array(&keras["values"]),
                &format!("{case}: {name}"),
            );
        }
        // Twins with and without LoRA load it and read Keras' reloaded table.
        let mut plain = model_of(base_layer(&r, case), &r);
        plain.load_weights(&path).unwrap();
        let mut adapted = model_of(lora_layer(&r, case), &r);
        adapted.load_weights(&path).unwrap();
        for twin in [&plain, &adapted] {
            let layer = twin.layer::<Embedding>(0).unwrap();
            assert_exact(
                &layer.call(&x).unwrap().to_f32(),
                &array(&keras["loaded_output"]),
                &format!("{case}: twin after load_weights"),
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
