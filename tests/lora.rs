//! LoRA on `Embedding` (Keras 3's `enable_lora`), checked against the real Keras 3.15.1 on JAX
//! (`tests/data/keras3_lora.json`, made by `tests/data/keras3_lora.py`): the effective table
//! in every lookup path, the gradients of `A` (row-sparse) and `B` (dense), two SGD steps of
//! a small model, the merged table `save_own_variables` writes, loading into a LoRA layer,
//! and Keras' errors.

use ndarray::{ArrayD, IxDyn};
use ndkeras::layer::Gradient;
use ndkeras::prelude::*;
use ndkeras::quantization::QuantizationMode;
use serde_json::Value;

fn reference() -> Value {
    serde_json::from_str(include_str!("data/keras3_lora.json")).unwrap()
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

fn assert_close(ours: &ArrayD<f32>, keras: &ArrayD<f32>, what: &str) {
    assert_eq!(ours.shape(), keras.shape(), "{what}: shape");
    for (i, (&a, &b)) in ours.iter().zip(keras).enumerate() {
        assert!(
            (a - b).abs() <= 1e-5 * b.abs() + 1e-6,
            "{what}[{i}]: ours {a}, Keras {b}"
        );
    }
}

/// The reference layer: E set, LoRA enabled with rank 2 and alpha 3, A and B set.
fn lora_layer(r: &Value) -> Embedding {
    let mut layer = Embedding::new(5, 3).weights(vec![array(&r["embeddings"])]);
    layer.apply(&Tensor::from(vec![0i64])).unwrap();
    let rank = r["rank"].as_u64().unwrap() as usize;
    let alpha = r["alpha"].as_f64().unwrap() as f32;
    layer
        .enable_lora_with(
            rank,
            Some(alpha),
            Initializer::HeUniform { seed: Some(1) },
            Initializer::Zeros,
        )
        .unwrap();
    layer
        .set_weights(vec![
            array(&r["embeddings"]),
            array(&r["lora_a"]),
            array(&r["lora_b"]),
        ])
        .unwrap();
    layer
}

#[test]
fn every_lookup_path_reads_the_effective_table() {
    let r = reference();
    let mut layer = lora_layer(&r);
    let x = ids(&r["ids"]);
    let expected = array(&r["output"]);
    assert_close(&layer.call(&x).unwrap().to_f32(), &expected, "call");
    assert_close(&layer.apply(&x).unwrap().to_f32(), &expected, "apply");
    assert_close(
        &layer.forward(&x, true).unwrap().to_f32(),
        &expected,
        "forward",
    );
    let mut out = ArrayD::<f32>::zeros(IxDyn(&[2, 3, 3]));
    layer.lookup_into(&x, out.view_mut()).unwrap();
    assert_close(&out, &expected, "lookup_into");
    assert_eq!(layer.lora_rank(), Some(2));
    assert_eq!(layer.lora_alpha(), Some(3.0));
}

#[test]
fn variables_follow_keras_order_and_the_table_is_frozen() {
    let r = reference();
    let layer = lora_layer(&r);
    assert_eq!(
        layer.weight_names(),
        ["embeddings", "lora_embeddings_a", "lora_embeddings_b"]
    );
    let trainable: Vec<bool> = layer.variables().iter().map(|w| w.is_trainable()).collect();
    assert_eq!(trainable, [false, true, true]);
    for (ours, keras) in layer
        .get_weights()
        .iter()
        .zip(r["get_weights"].as_array().unwrap())
    {
        assert_close(ours, &array(keras), "get_weights");
    }
}

#[test]
fn gradients_of_a_are_row_sparse_and_of_b_dense_as_jax_grad() {
    let r = reference();
    let mut layer = lora_layer(&r);
    let x = ids(&r["ids"]);
    let (a_id, b_id) = (layer.variables()[1].id(), layer.variables()[2].id());
    let table_id = layer.variables()[0].id();
    let backward = layer.backward(&x, array(&r["weight"])).unwrap();
    assert!(
        backward
            .weight_gradients
            .iter()
            .all(|(id, _)| *id != table_id),
        "the frozen table gets no gradient"
    );
    let keras_a = array(&r["grad_a"]);
    let mut saw = (false, false);
    for (id, gradient) in &backward.weight_gradients {
        match gradient {
            Gradient::Rows { rows, values } if *id == a_id => {
                // Ids 0, 1, 2, 4 are looked up (rows come in any order); row 3 gets no
                // gradient.
                let mut sorted = rows.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, [0, 1, 2, 4]);
                let mut dense = ArrayD::<f32>::zeros(IxDyn(&[5, 2]));
                for (&row, values) in rows.iter().zip(values.rows()) {
                    dense.index_axis_mut(ndarray::Axis(0), row).assign(&values);
                }
                assert_close(&dense, &keras_a, "gradient of lora_embeddings_a");
                saw.0 = true;
            }
            Gradient::Dense(values) if *id == b_id => {
                assert_close(
                    values,
                    &array(&r["grad_b"]),
                    "gradient of lora_embeddings_b",
                );
                saw.1 = true;
            }
            other => panic!("unexpected gradient {other:?}"),
        }
    }
    assert_eq!(saw, (true, true));
}

#[test]
fn two_sgd_steps_match_keras() {
    let r = reference();
    let mut model = Sequential::new();
    model
        .add(
            Embedding::new(5, 3)
                .input_length(3)
                .weights(vec![array(&r["embeddings"])]),
        )
        .unwrap();
    model.add(GlobalAveragePooling1D::new()).unwrap();
    model
        .add(Dense::new(1).weights(vec![array(&r["kernel"]), array(&r["bias"])]))
        .unwrap();
    let x = ids(&r["ids"]);
    model.predict(x.clone()).unwrap();
    {
        let embedding = model.layer_mut::<Embedding>(0).unwrap();
        embedding
            .enable_lora_with(2, Some(3.0), Initializer::Zeros, Initializer::Zeros)
            .unwrap();
        embedding
            .set_weights(vec![
                array(&r["embeddings"]),
                array(&r["lora_a"]),
                array(&r["lora_b"]),
            ])
            .unwrap();
    }
    model
        .compile(SGD::new(0.1).into(), Loss::MeanSquaredError)
        .unwrap();
    let y = array(&r["y"]);
    for (step, recorded) in r["steps"].as_array().unwrap().iter().enumerate() {
        let loss = model.train_on_batch(x.clone(), y.clone()).unwrap();
        let keras_loss = recorded["loss"].as_f64().unwrap() as f32;
        assert!(
            (loss - keras_loss).abs() <= 1e-5 * keras_loss.abs(),
            "step {step} loss: ours {loss}, Keras {keras_loss}"
        );
        let weights = model.get_layer(0).unwrap().get_weights();
        for (ours, keras) in weights
            .iter()
            .zip(recorded["embedding_weights"].as_array().unwrap())
        {
            assert_close(
                ours,
                &array(keras),
                &format!("step {step} embedding weights"),
            );
        }
        for (ours, keras) in model
            .get_layer(2)
            .unwrap()
            .get_weights()
            .iter()
            .zip(recorded["dense"].as_array().unwrap())
        {
            assert_close(ours, &array(keras), &format!("step {step} dense"));
        }
    }
}

#[test]
fn saving_writes_the_merged_table_and_loading_zeroes_the_adapters() {
    let r = reference();
    let layer = lora_layer(&r);
    let saved = layer.save_own_variables().unwrap();
    assert_eq!(saved.len(), 1, "A and B are not written, as in Keras");
    assert_close(&saved[0], &array(&r["saved"][0]), "merged table");

    let mut other = lora_layer(&r);
    let doubled = array(&r["embeddings"]) * 2.0;
    other.load_own_variables(vec![doubled]).unwrap();
    for (ours, keras) in other
        .get_weights()
        .iter()
        .zip(r["loaded_into_lora"].as_array().unwrap())
    {
        assert_close(ours, &array(keras), "loaded into a LoRA layer");
    }
    // A plain layer loads the merged table and reproduces the LoRA layer's outputs.
    let mut plain = Embedding::new(5, 3);
    plain.apply(&Tensor::from(vec![0i64])).unwrap();
    plain.load_own_variables(saved).unwrap();
    let x = ids(&r["ids"]);
    assert_close(
        &plain.call(&x).unwrap().to_f32(),
        &array(&r["output"]),
        "plain layer from the merged table",
    );
}

#[test]
fn defaults_start_from_the_base_table() {
    let mut layer = Embedding::new(6, 4);
    layer.apply(&Tensor::from(vec![0i64])).unwrap();
    let before = layer.call(&Tensor::from(vec![1i64, 5])).unwrap().to_f32();
    layer.enable_lora(3).unwrap();
    assert_eq!(
        layer.lora_alpha(),
        Some(3.0),
        "lora_alpha defaults to the rank"
    );
    let weights = layer.get_weights();
    assert_eq!(weights[1].shape(), &[6, 3]);
    assert_eq!(weights[2].shape(), &[3, 4]);
    assert!(weights[1].iter().any(|&v| v != 0.0), "A is he_uniform");
    assert!(weights[2].iter().all(|&v| v == 0.0), "B is zeros");
    let after = layer.call(&Tensor::from(vec![1i64, 5])).unwrap().to_f32();
    assert_eq!(before, after);
}

fn message(error: Error) -> String {
    assert!(
        matches!(
            error,
            Error::InvalidArgument { .. } | Error::NotBuilt { .. }
        ),
        "{error:?}"
    );
    error.to_string()
}

#[test]
fn keras_errors_and_ours() {
    let r = reference();
    let errors = &r["errors"];
    // Unbuilt.
    let err = Embedding::new(5, 3).enable_lora(2).unwrap_err();
    assert!(matches!(err, Error::NotBuilt { .. }), "{err:?}");
    assert!(
        message(err).contains(errors["unbuilt"].as_str().unwrap().trim_end_matches('.')),
        "unbuilt"
    );
    // Already enabled.
    let mut layer = lora_layer(&r);
    let err = layer.enable_lora(2).unwrap_err();
    assert!(message(err).contains("lora is already enabled"));
    // Constraint (checked before the build, as in Keras).
    let err = Embedding::new(5, 3)
        .embeddings_constraint(Constraint::NonNeg)
        .enable_lora(2)
        .unwrap_err();
    let text = message(err);
    assert!(
        text.contains("Lora is incompatible with embedding constraints"),
        "{text}"
    );
    assert!(
        errors["constraint"]
            .as_str()
            .unwrap()
            .starts_with("Lora is incompatible")
    );
    // Rank 0.
    let mut layer = Embedding::new(5, 3);
    layer.apply(&Tensor::from(vec![0i64])).unwrap();
    let text = message(layer.enable_lora(0).unwrap_err());
    assert!(text.contains("rank") && text.contains("positive"), "{text}");
    assert!(!layer.lora_enabled());
    // Quantizing a LoRA layer (LoRA on a quantized table is tested in
    // tests/quantized_lora.rs).
    let mut layer = lora_layer(&r).with_name("adapted");
    let text = message(layer.quantize_with(QuantizationMode::Int8).unwrap_err());
    assert!(text.contains("adapted") && text.contains("LoRA"), "{text}");
}

#[cfg(feature = "serde")]
#[test]
fn config_writes_lora_settings_and_reads_them_as_keras_builds_them() {
    let r = reference();
    let layer = lora_layer(&r);
    let config = layer.get_config();
    let keras = &r["config_lora"];
    assert_eq!(config["lora_rank"].as_u64(), keras["lora_rank"].as_u64());
    assert_eq!(config["lora_alpha"].as_f64(), keras["lora_alpha"].as_f64());
    assert!(Embedding::new(5, 3).get_config().get("lora_rank").is_none());

    // Keras' build enables LoRA from `lora_rank` alone: `lora_alpha` ends equal to the rank.
    let mut read = Embedding::from_config(&config).unwrap();
    assert!(!read.lora_enabled());
    read.apply(&Tensor::from(vec![0i64])).unwrap();
    let expected = &r["from_config_lora"];
    assert_eq!(
        read.lora_enabled(),
        expected["lora_enabled"].as_bool().unwrap()
    );
    assert_eq!(
        read.lora_rank().map(|r| r as u64),
        expected["lora_rank"].as_u64()
    );
    assert_eq!(
        read.lora_alpha().map(f64::from),
        expected["lora_alpha"].as_f64()
    );
    let names: Vec<&str> = expected["weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(read.weight_names(), names);
    let trainable: Vec<bool> = read.variables().iter().map(|w| w.is_trainable()).collect();
    assert_eq!(trainable, [false, true, true]);
}

#[test]
fn with_lora_enables_it_at_the_build_and_keeps_alpha() {
    let mut layer = Embedding::new(4, 2).with_lora(2, Some(8.0));
    assert_eq!(layer.lora_rank(), Some(2));
    assert!(!layer.lora_enabled());
    layer.apply(&Tensor::from(vec![1i64, 3])).unwrap();
    assert!(layer.lora_enabled());
    assert_eq!(layer.lora_alpha(), Some(8.0));
    assert_eq!(layer.weight_shapes(), [vec![4, 2], vec![4, 2], vec![2, 2]]);

    let mut zero = Embedding::new(4, 2).with_lora(0, None);
    let text = message(zero.apply(&Tensor::from(vec![1i64])).unwrap_err());
    assert!(
        text.contains("lora_rank") && text.contains("positive"),
        "{text}"
    );

    let mut constrained = Embedding::new(4, 2)
        .embeddings_constraint(Constraint::NonNeg)
        .with_lora(2, None);
    let text = message(constrained.apply(&Tensor::from(vec![1i64])).unwrap_err());
    assert!(
        text.contains("Lora is incompatible with embedding constraints"),
        "{text}"
    );
    assert!(!constrained.is_built(), "a refused LoRA builds nothing");
}

#[test]
fn a_model_saves_the_merged_table_as_keras_3_and_any_twin_loads_it() {
    let r = reference();
    let dense = || {
        Dense::new(1).weights(vec![
            ndarray::arr2(&[[0.5f32], [-0.25], [0.125]]).into_dyn(),
            ndarray::arr1(&[0.1f32]).into_dyn(),
        ])
    };
    let mut lora = Sequential::new();
    lora.add(lora_layer(&r).with_name("emb")).unwrap();
    lora.add(GlobalAveragePooling1D::new()).unwrap();
    lora.add(dense().with_name("out")).unwrap();
    let x = ndarray::array![[0i64, 1, 4], [2, 3, 3]];
    let expected = lora.predict(x.clone()).unwrap();

    let dir = std::env::temp_dir().join(format!("ndkeras-lora-save-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("w.npz");
    lora.save_weights(&path).unwrap();
    // The file holds the merged table only (no adapters), as Keras 3's save_own_variables.
    let stored = ndkeras::io::npy::read_npz(&path).unwrap();
    let names: Vec<&str> = stored.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["emb/embeddings", "out/kernel", "out/bias"]);
    assert_close(&stored[0].1, &array(&r["saved"][0]), "saved table");

    // A twin without LoRA loads it and predicts the same.
    let mut plain = Sequential::new();
    plain
        .add(Embedding::new(5, 3).input_length(3).with_name("emb"))
        .unwrap();
    plain.add(GlobalAveragePooling1D::new()).unwrap();
    plain.add(Dense::new(1).with_name("out")).unwrap();
    plain.load_weights(&path).unwrap();
    assert_close(&plain.predict(x.clone()).unwrap(), &expected, "plain twin");

    // The LoRA model loads it back: the merged table, adapters at zero, same predictions.
    lora.load_weights(&path).unwrap();
    let emb = lora.layer::<Embedding>(0).unwrap();
    let weights = emb.get_weights();
    assert!(
        weights[1]
            .iter()
            .chain(weights[2].iter())
            .all(|&v| v == 0.0)
    );
    assert_close(&lora.predict(x).unwrap(), &expected, "reloaded");
    std::fs::remove_dir_all(&dir).unwrap();
}
