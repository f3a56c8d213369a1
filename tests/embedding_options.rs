//! PyTorch's `nn.Embedding` options on `Embedding`: `padding_idx`, `max_norm` / `norm_type`,
//! `scale_grad_by_freq`, `from_pretrained`, their errors and Keras JSON, and reading a token
//! table from safetensors under PyTorch's names. Reference values: tests/data/
//! pytorch_embedding_options.json, from a PyTorch 2.15 run (its generator beside it).

use ndarray::{Array2, ArrayD, IxDyn, array};
#[cfg(feature = "serde")]
use ndkeras::config::KerasConfig;
#[cfg(feature = "safetensors")]
use ndkeras::io::safetensors;
use ndkeras::layer::Gradient;
use ndkeras::optimizers::{Adagrad, Adam, Optimizer, RMSprop, SGD, SparseAdam};
use ndkeras::prelude::*;
use serde_json::Value;

fn reference() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/pytorch_embedding_options.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn floats(value: &Value) -> (Vec<usize>, Vec<f32>) {
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
    let (mut shape, mut out) = (Vec::new(), Vec::new());
    walk(value, 0, &mut shape, &mut out);
    (shape, out)
}

fn array(value: &Value) -> ArrayD<f32> {
    let (shape, values) = floats(value);
    ArrayD::from_shape_vec(IxDyn(&shape), values).unwrap()
}

fn ids(value: &Value) -> Tensor {
    let a = array(value).mapv(|v| v as i64);
    Tensor::from(a)
}

fn assert_close(actual: &ArrayD<f32>, expected: &ArrayD<f32>, what: &str) {
    assert_eq!(actual.shape(), expected.shape(), "{what}");
    for (i, (a, e)) in actual.iter().zip(expected.iter()).enumerate() {
        assert!(
            (a - e).abs() <= 1e-6 * e.abs() + 1e-7,
            "{what}: element {i}: {a} vs {e}"
        );
    }
}

fn table(reference: &Value) -> Array2<f32> {
    array(&reference["table"]).into_dimensionality().unwrap()
}

fn norm_type(value: &Value) -> f32 {
    match value {
        Value::String(s) if s == "inf" => f32::INFINITY,
        v => v.as_f64().unwrap() as f32,
    }
}

#[test]
fn padding_row_is_still_looked_up() {
    let r = reference();
    let mut layer = Embedding::from_table(table(&r)).padding_idx(4);
    let out = layer.apply(&ids(&r["ids"])).unwrap();
    assert_close(out.as_float().unwrap(), &array(&r["output"]), "output");
    assert!(out.mask().is_none());
}

#[test]
fn max_norm_renormalises_the_rows_read_in_place_as_pytorch() {
    let r = reference();
    for case in r["renorm"].as_array().unwrap() {
        let what = format!(
            "max_norm {} norm_type {}",
            case["max_norm"], case["norm_type"]
        );
        let make = || {
            Embedding::from_table(table(&r))
                .max_norm(case["max_norm"].as_f64().unwrap() as f32)
                .norm_type(norm_type(&case["norm_type"]))
        };
        // apply stores the renormalised rows, as PyTorch's forward.
        let mut layer = make();
        let out = layer.apply(&ids(&r["ids"])).unwrap();
        assert_close(out.as_float().unwrap(), &array(&case["output"]), &what);
        assert_close(
            &layer.get_weights()[0],
            &array(&case["table_after"]),
            &format!("{what}: table"),
        );
        // call gives the same output without changing the table.
        let mut called = make();
        called.build(&[None]).unwrap();
        let out = called.call(&ids(&r["ids"])).unwrap();
        assert_close(out.as_float().unwrap(), &array(&case["output"]), &what);
        assert_close(&called.get_weights()[0], &array(&r["table"]), &what);
        // forward (fit, evaluate) stores them too.
        let mut forward = make();
        forward.build(&[None]).unwrap();
        forward.forward(&ids(&r["ids"]), true).unwrap();
        assert_close(
            &forward.get_weights()[0],
            &array(&case["table_after"]),
            &what,
        );
    }
}

#[test]
fn a_bad_id_renormalises_nothing() {
    let r = reference();
    let mut layer = Embedding::from_table(table(&r)).max_norm(0.1);
    layer.build(&[None]).unwrap();
    let err = layer.apply(&Tensor::from(vec![0i64, 9])).unwrap_err();
    assert!(
        matches!(err, Error::IndexOutOfRange { index: 9, .. }),
        "{err}"
    );
    assert_close(&layer.get_weights()[0], &array(&r["table"]), "table");
}

fn gradient_of(layer: &mut Embedding, ids: &Tensor, grad: ArrayD<f32>) -> Array2<f32> {
    layer.forward(ids, true).unwrap();
    let backward = layer.backward(ids, grad).unwrap();
    let (rows, values) = match &backward.weight_gradients[..] {
        [(_, Gradient::Rows { rows, values })] => (rows.clone(), values.clone()),
        other => panic!("expected one row gradient, got {other:?}"),
    };
    let mut dense = Array2::zeros((layer.input_dim(), layer.output_dim()));
    for (k, &row) in rows.iter().enumerate() {
        dense.row_mut(row).assign(&values.row(k));
    }
    dense
}

#[test]
fn gradients_skip_the_padding_row_and_scale_by_frequency() {
    let r = reference();
    for case in r["gradients"].as_array().unwrap() {
        let what = format!(
            "padding_idx {} scale_grad_by_freq {}",
            case["padding_idx"], case["scale_grad_by_freq"]
        );
        let mut layer = Embedding::from_table(table(&r))
            .scale_grad_by_freq(case["scale_grad_by_freq"].as_bool().unwrap());
        if let Some(p) = case["padding_idx"].as_i64() {
            layer = layer.padding_idx(p as isize);
        }
        layer.build(&[None]).unwrap();
        let dense = gradient_of(&mut layer, &ids(&r["ids"]), array(&r["grad_output"]));
        assert_close(&dense.into_dyn(), &array(&case["grad_weight"]), &what);
    }
}

#[test]
fn an_all_padding_batch_gives_an_empty_gradient() {
    let r = reference();
    let case = &r["all_padding"];
    let mut layer = Embedding::from_table(table(&r)).padding_idx(3);
    layer.build(&[None]).unwrap();
    let x = ids(&case["ids"]);
    layer.forward(&x, true).unwrap();
    let backward = layer.backward(&x, ArrayD::ones(IxDyn(&[1, 2, 3]))).unwrap();
    match &backward.weight_gradients[..] {
        [(_, Gradient::Rows { rows, values })] => {
            assert!(rows.is_empty());
            assert_eq!(values.dim(), (0, 3));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn padding_row_is_zero_at_init_unless_weights_are_given() {
    let mut layer = Embedding::new(5, 3)
        .embeddings_initializer(Initializer::Ones)
        .padding_idx(-2);
    assert_eq!(layer.padding_index(), Some(3));
    layer.build(&[None]).unwrap();
    let t = layer.embeddings().unwrap();
    assert_eq!(t.row(3), array![0.0f32, 0.0, 0.0]);
    assert_eq!(t.row(2), array![1.0f32, 1.0, 1.0]);
    let given = Array2::from_elem((5, 3), 2.0f32);
    let mut kept = Embedding::from_table(given.clone()).padding_idx(3);
    kept.build(&[None]).unwrap();
    assert_eq!(kept.embeddings().unwrap(), &given);
}

#[test]
fn from_pretrained_is_built_and_frozen_by_choice() {
    let frozen = Embedding::from_pretrained(array![[1.0f32, 2.0], [3.0, 4.0]], true).unwrap();
    assert!(frozen.is_built() && !frozen.is_trainable());
    let trained = Embedding::from_pretrained(array![[1.0f32, 2.0], [3.0, 4.0]], false).unwrap();
    assert!(trained.is_trainable());
    let err = Embedding::from_pretrained(array![[1.0f32, f32::NAN]], true).unwrap_err();
    assert!(err.to_string().contains("[0, 1]"), "{err}");
    let err = Embedding::from_pretrained(Array2::zeros((0, 3)), true).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
}

#[test]
fn bad_options_are_refused_naming_them() {
    let cases: Vec<(Embedding, &str, &str)> = vec![
        (
            Embedding::new(5, 2).padding_idx(5),
            "padding_idx",
            "-5 <= padding_idx < 5",
        ),
        (
            Embedding::new(5, 2).padding_idx(-6),
            "padding_idx",
            "-5 <= padding_idx < 5",
        ),
        (Embedding::new(5, 2).max_norm(0.0), "max_norm", "positive"),
        (Embedding::new(5, 2).max_norm(-1.0), "max_norm", "positive"),
        (
            Embedding::new(5, 2).max_norm(f32::NAN),
            "max_norm",
            "positive",
        ),
        (Embedding::new(5, 2).norm_type(0.0), "norm_type", "positive"),
        (
            Embedding::new(5, 2).norm_type(-2.0),
            "norm_type",
            "positive",
        ),
        (
            Embedding::new(5, 2).norm_type(f32::NAN),
            "norm_type",
            "positive",
        ),
    ];
    for (mut layer, field, words) in cases {
        let err = layer.validate().unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{text}");
        assert!(text.contains(field) && text.contains(words), "{text}");
        // The first call refuses too, and leaves the layer unbuilt.
        assert!(layer.apply(&Tensor::from(vec![0i64])).is_err());
        assert!(!layer.is_built());
    }
    assert!(Embedding::new(5, 2).padding_idx(-5).validate().is_ok());
    assert!(
        Embedding::new(5, 2)
            .norm_type(f32::INFINITY)
            .validate()
            .is_ok()
    );
}

#[cfg(feature = "serde")]
#[test]
fn options_round_trip_through_keras_json_only_when_set() {
    let plain = Embedding::new(5, 2).get_config();
    for key in ["padding_idx", "max_norm", "norm_type", "scale_grad_by_freq"] {
        assert!(plain.get(key).is_none(), "{key} in {plain}");
    }
    let layer = Embedding::new(5, 2)
        .padding_idx(-1)
        .max_norm(0.7)
        .norm_type(f32::INFINITY)
        .scale_grad_by_freq(true);
    let config = layer.get_config();
    assert_eq!(config["padding_idx"], 4);
    assert_eq!(config["norm_type"], "inf");
    assert_eq!(config["scale_grad_by_freq"], true);
    let back = Embedding::from_config(&config).unwrap();
    assert_eq!(back.padding_index(), Some(4));
    assert_eq!(back.config().max_norm, Some(0.7));
    assert_eq!(back.config().norm_type, f32::INFINITY);
    assert!(back.config().scale_grad_by_freq);
    assert_eq!(back.get_config(), config);
    let mut bad = config.clone();
    bad["padding_idx"] = Value::from(7);
    let err = Embedding::from_config(&bad).unwrap_err();
    assert!(err.to_string().contains("padding_idx"), "{err}");
    bad["padding_idx"] = Value::from("x");
    assert!(Embedding::from_config(&bad).is_err());
}

fn optimizers() -> Vec<(&'static str, Optimizer)> {
    vec![
        ("SGD", SGD::new(0.1).into()),
        ("SGD momentum", SGD::new(0.1).momentum(0.9).into()),
        (
            "SGD nesterov",
            SGD::new(0.1).momentum(0.9).nesterov(true).into(),
        ),
        ("RMSprop", RMSprop::default().momentum(0.5).into()),
        ("Adam", Adam::default().into()),
        ("Adam lazy", Adam::default().lazy(true).into()),
        ("Adagrad", Adagrad::default().into()),
        ("SparseAdam", SparseAdam::default().into()),
    ]
}

#[test]
fn training_never_changes_the_padding_row_with_any_optimizer() {
    for (name, optimizer) in optimizers() {
        let mut model = Sequential::new();
        model
            .add(
                Embedding::new(6, 3)
                    .padding_idx(0)
                    .embeddings_initializer(Initializer::Ones),
            )
            .unwrap();
        model.add(Flatten::new()).unwrap();
        model.compile(optimizer, Loss::MeanSquaredError).unwrap();
        // Batches that read the padding row, then batches that do not (lazy rows catch up),
        // then the padding row again.
        let batches = [
            array![[0i64, 1], [2, 0]],
            array![[3i64, 4], [5, 3]],
            array![[0i64, 0], [0, 0]],
            array![[1i64, 0], [4, 5]],
        ];
        for x in batches {
            let y = Array2::from_elem((2, 6), 0.25f32);
            model.train_on_batch(x, y).unwrap();
        }
        let table = &model.get_weights()[0];
        assert_eq!(
            table.index_axis(ndarray::Axis(0), 0),
            array![0.0f32, 0.0, 0.0].into_dyn(),
            "{name}"
        );
        assert_ne!(
            table.index_axis(ndarray::Axis(0), 1),
            array![1.0f32, 1.0, 1.0].into_dyn(),
            "{name}: the other rows train"
        );
    }
}

#[cfg(feature = "safetensors")]
#[test]
fn token_embeddings_are_found_under_pytorch_names() {
    let table = array![[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]].into_dyn();
    let other = array![1.0f32].into_dyn();
    for name in [
        "model.embed_tokens.weight",
        "bert.embeddings.word_embeddings.weight",
        "transformer.wte.weight",
        "shared.weight",
        "tok_embeddings.weight",
    ] {
        let bytes = safetensors::to_bytes(&[
            ("lm_head.weight".to_string(), other.view()),
            (name.to_string(), table.view()),
        ])
        .unwrap();
        let (found, values) = safetensors::read_token_embeddings_bytes(&bytes).unwrap();
        assert_eq!(found, name);
        assert_eq!(values.into_dyn(), table);
    }
    let dir = std::env::temp_dir().join(format!("ndkeras-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    safetensors::write_tensors(&path, &[("encoder.weight".to_string(), table.view())]).unwrap();
    let err = safetensors::read_token_embeddings(&path).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::InvalidFile { .. }), "{text}");
    assert!(
        text.contains("model.safetensors")
            && text.contains("encoder.weight")
            && text.contains("wte.weight"),
        "{text}"
    );
    // A table of the wrong rank.
    safetensors::write_tensors(&path, &[("wte.weight".to_string(), other.view())]).unwrap();
    let err = safetensors::read_token_embeddings(&path).unwrap_err();
    assert!(err.to_string().contains("2-D"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
