//! Seed (a): an `Embedding(1000, 64, input_length=10)` with its default random
//! initializer, compiled with rmsprop/mse, run on a random (32, 10) batch of ids.
//!
//! Keras:
//! ```python
//! model = Sequential()
//! model.add(Embedding(1000, 64, input_length=10))
//! input_array = np.random.randint(1000, size=(32, 10))
//! model.compile("rmsprop", "mse")
//! output_array = model.predict(input_array)
//! assert output_array.shape == (32, 10, 64)
//! ```

use ndarray::Array2;
use ndkeras::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut model = Sequential::new();
    model.add(Embedding::new(1000, 64).input_length(10))?;

    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let input_array = Array2::<i64>::from_shape_fn((32, 10), |_| rng.random_range(0..1000));

    model.compile("rmsprop".parse()?, "mse".parse()?)?;
    let output_array = model.predict(input_array.clone())?;
    assert_eq!(output_array.shape(), &[32, 10, 64]);

    // Every output vector is the table row of its id, and the table is U(-0.05, 0.05).
    let table = model
        .layer::<Embedding>(0)
        .ok_or("layer 0 is an Embedding")?
        .embeddings()
        .ok_or("built at add")?;
    assert!(table.iter().all(|v| (-0.05..0.05).contains(v)));
    for ((i, j), &id) in input_array.indexed_iter() {
        let row = table.row(usize::try_from(id)?);
        assert!(
            output_array
                .slice(ndarray::s![i, j, ..])
                .iter()
                .eq(row.iter())
        );
    }

    println!("{}", model.summary()?);
    println!("output shape: {:?}", output_array.shape());
    Ok(())
}
