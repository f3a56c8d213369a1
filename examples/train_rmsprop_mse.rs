//! The seed's model, `Embedding(3, 2, input_length=1)` compiled with rmsprop and mse, trained
//! so that its table learns a target table: each id's vector moves to its target row.
//!
//! Keras:
//! ```python
//! model = Sequential([Embedding(3, 2, input_length=1)])
//! model.compile(RMSprop(learning_rate=0.01), "mse")
//! model.fit(ids, target[ids][:, None, :], epochs=60, batch_size=4)
//! ```

use ndarray::{Array1, Array3, array};
use ndkeras::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let target = array![[0.5f32, -0.5], [1.0, 0.25], [-0.75, 0.8]];
    let ids: Array1<i64> = (0..24).map(|i| (i * 7 % 3) as i64).collect();
    let y = Array3::from_shape_fn((ids.len(), 1, 2), |(i, _, j)| target[[ids[i] as usize, j]]);

    let mut model = Sequential::new();
    model.add(Embedding::new(3, 2).input_length(1).embeddings_initializer(
        Initializer::RandomUniform {
            minval: -0.05,
            maxval: 0.05,
            seed: Some(0),
        },
    ))?;
    model.compile(
        RMSprop::default().learning_rate(0.01).into(),
        "mse".parse()?,
    )?;

    let history = model.fit(
        ids.clone(),
        y.clone(),
        FitOptions::default()
            .epochs(60)
            .batch_size(4)
            .seed(0)
            .verbose(false),
    )?;
    println!("loss by epoch:");
    for (epoch, loss) in history
        .loss
        .iter()
        .enumerate()
        .filter(|(e, _)| e % 10 == 0 || *e == 59)
    {
        println!("  epoch {:>2}: {loss:.3e}", epoch + 1);
    }

    let learned = model
        .layer::<Embedding>(0)
        .ok_or("layer 0 is the embedding")?
        .embeddings()
        .ok_or("built")?;
    println!("learned table:\n{learned:.3}\ntarget table:\n{target:.3}");
    let worst = learned
        .iter()
        .zip(target.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    println!("largest difference: {worst:.4}");
    assert!(
        worst < 0.05,
        "the table should have learned the target (largest difference {worst})"
    );
    assert!(history.loss[59] < history.loss[0] / 100.0);
    Ok(())
}
