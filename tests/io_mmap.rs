//! Memory-mapped tables: lookups straight from an `.npy` file, read-only for training.

#![cfg(feature = "mmap")]

use std::path::PathBuf;

use ndarray::{Array2, array};
use ndkeras::io::npy;
use ndkeras::prelude::*;

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ndkeras-mmap-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn table() -> Array2<f32> {
    Array2::from_shape_fn((50, 6), |(i, j)| (i as f32 * 0.1 - j as f32).sin())
}

#[test]
fn a_mapped_table_looks_up_exactly_like_an_owned_one() {
    let dir = scratch("lookup");
    let path = dir.join("t.npy");
    npy::write_npy(&path, &table().view().into_dyn()).unwrap();
    let mut mapped = Embedding::from_mapped(npy::map_npy(&path).unwrap()).unwrap();
    let mut owned = Embedding::from_table(table());
    assert!(mapped.is_built() && mapped.is_mapped());
    assert!(mapped.embeddings().is_none(), "not an owned array");
    assert_eq!(mapped.table_view().unwrap(), table());
    let ids = Tensor::from(array![[0i64, 49, 7], [7, 7, 1]]);
    assert_eq!(mapped.apply(&ids).unwrap(), owned.apply(&ids).unwrap());
    let mut out = ndarray::ArrayD::<f32>::zeros(vec![2, 3, 6]);
    mapped.lookup_into(&ids, out.view_mut()).unwrap();
    assert_eq!(Some(&out), owned.apply(&ids).unwrap().as_float());
    assert_eq!(mapped.get_weights(), vec![table().into_dyn()]);
    assert!(matches!(
        mapped.apply(&Tensor::from(vec![50i64])),
        Err(Error::IndexOutOfRange { .. })
    ));

    // In a model, predict and predict_into read from the map too.
    let mut model = Sequential::new();
    model
        .add(
            Embedding::from_mapped(npy::map_npy(&path).unwrap())
                .unwrap()
                .input_length(3),
        )
        .unwrap();
    let x = array![[1i64, 2, 3]];
    let mut buffer = ndarray::ArrayD::<f32>::zeros(vec![1, 3, 6]);
    model.predict_into(x.clone(), buffer.view_mut()).unwrap();
    assert_eq!(buffer, model.predict(x).unwrap());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_mapped_table_is_read_only_for_training_until_copied() {
    let dir = scratch("train");
    let path = dir.join("t.npy");
    npy::write_npy(&path, &table().view().into_dyn()).unwrap();
    let make = |trainable: bool| {
        let mut model = Sequential::new();
        model
            .add(
                Embedding::from_mapped(npy::map_npy(&path).unwrap())
                    .unwrap()
                    .input_length(2)
                    .trainable(trainable),
            )
            .unwrap();
        model.add(GlobalAveragePooling1D::new()).unwrap();
        model.add(Dense::new(1)).unwrap();
        model
            .compile(SGD::new(0.1).into(), Loss::MeanSquaredError)
            .unwrap();
        model
    };
    let x = array![[1i64, 2], [3, 4]];
    let y = array![[1.0f32], [0.0]];
    let quiet = FitOptions::default().verbose(false);
    let err = make(true)
        .fit(x.clone(), y.clone(), quiet.clone())
        .unwrap_err();
    assert!(err.to_string().contains("make_owned"), "{err}");

    let mut frozen = make(false);
    frozen.fit(x.clone(), y.clone(), quiet.clone()).unwrap();
    assert_eq!(
        frozen.get_layer(0).unwrap().get_weights(),
        vec![table().into_dyn()]
    );

    let mut copied = make(true);
    copied
        .layer_mut::<Embedding>(0)
        .unwrap()
        .make_owned()
        .unwrap();
    copied.fit(x, y, quiet).unwrap();
    assert_ne!(
        copied.get_layer(0).unwrap().get_weights(),
        vec![table().into_dyn()]
    );
    // The file itself never changes.
    assert_eq!(npy::read_npy(&path).unwrap(), table().into_dyn());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn files_that_cannot_be_mapped_are_clear_errors() {
    let dir = scratch("errors");
    let path = dir.join("t.npy");
    npy::write_npy(&path, &table().view().into_dyn()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let short = dir.join("short.npy");
    std::fs::write(&short, &bytes[..bytes.len() - 8]).unwrap();
    let err = npy::map_npy(&short).unwrap_err();
    assert!(
        err.to_string().contains("shorter than its header says"),
        "{err}"
    );
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/numpy");
    for (name, words) in [
        ("table_f64.npy", "float32"),
        ("table_fortran.npy", "C order"),
        ("vector_f32.npy", "2 dimensions"),
    ] {
        let err = npy::map_npy(data.join(name)).unwrap_err();
        assert!(err.to_string().contains(words), "{name}: {err}");
    }
    let err = npy::map_npy(dir.join("missing.npy")).unwrap_err();
    assert!(err.to_string().contains("missing.npy"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}
