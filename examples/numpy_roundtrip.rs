//! A table through NumPy files and back: save an embedding table as `.npy` (what
//! `np.load` reads, and what `np.save(layer.get_weights()[0])` writes in Keras), load it into
//! a new layer, look up, then save and load a whole model's weights as `.npz`.

use ndarray::{Array2, Ix2};
use ndkeras::io::npy;
use ndkeras::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("ndkeras-numpy-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    // A "trained" table, saved as NumPy would.
    let table = Array2::from_shape_fn((1000, 16), |(i, j)| ((i * 16 + j) as f32 * 0.01).sin());
    let path = dir.join("embeddings.npy");
    npy::write_npy(&path, &table.view().into_dyn())?;
    println!(
        "wrote {} ({} bytes)",
        path.display(),
        std::fs::metadata(&path)?.len()
    );

    // Loaded into a new layer, bit for bit.
    let loaded = npy::read_npy(&path)?.into_dimensionality::<Ix2>()?;
    assert_eq!(loaded, table);
    let mut layer = Embedding::from_table(loaded);
    let out = layer.apply(&Tensor::from(vec![7i64, 999]))?;
    println!(
        "row 7 starts {:?}",
        &out.as_float()
            .ok_or("floats")?
            .as_slice()
            .ok_or("contiguous")?[..4]
    );

    // A whole model's weights by name, through an .npz archive.
    let mut model = Sequential::new();
    model.add(
        Embedding::from_table(table.clone())
            .with_name("embedding")
            .input_length(3),
    )?;
    model.add(GlobalAveragePooling1D::new())?;
    model.add(
        Dense::new(2)
            .with_name("dense")
            .kernel_initializer(Initializer::GlorotUniform { seed: Some(1) }),
    )?;
    let weights = dir.join("model.npz");
    model.save_weights(&weights)?;
    let names: Vec<String> = npy::read_npz(&weights)?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    println!("saved {names:?}");

    let mut copy = Sequential::new();
    copy.add(
        Embedding::new(1000, 16)
            .with_name("embedding")
            .input_length(3),
    )?;
    copy.add(GlobalAveragePooling1D::new())?;
    copy.add(Dense::new(2).with_name("dense"))?;
    copy.load_weights(&weights)?;
    let x = ndarray::array![[1i64, 2, 3], [997, 998, 999]];
    assert_eq!(model.predict(x.clone())?, copy.predict(x)?);
    println!("the loaded model predicts exactly what the saved one does");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
