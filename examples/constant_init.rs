//! Seed (c): the same table as seed (b), given through `Initializer::Constant`.
//!
//! Keras:
//! ```python
//! model = Sequential()
//! model.add(Embedding(3, 2, input_length=1,
//!                     embeddings_initializer=Constant(np.arange(6).reshape(3, 2))))
//! model.compile(optimizer="rmsprop", loss="mse")
//! print(model.predict([1, 2, 2, 1, 2]))
//! print(model.layers[0].get_weights())
//! ```

use ndarray::Array;
use ndkeras::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let table = Array::range(0.0f32, 6.0, 1.0)
        .into_shape_with_order((3, 2))?
        .into_dyn();

    let mut model = Sequential::new();
    model.add(
        Embedding::new(3, 2)
            .input_length(1)
            .embeddings_initializer(Initializer::Constant(table.clone())),
    )?;
    model.compile("rmsprop".parse()?, "mse".parse()?)?;

    let output = model.predict(vec![1i64, 2, 2, 1, 2])?;
    println!(
        "predict([1, 2, 2, 1, 2]) -> shape {:?}\n{output:.1}",
        output.shape()
    );
    let weights = model
        .get_layer(0)
        .ok_or("the model has one layer")?
        .get_weights();
    println!("weights:\n{:.1}", weights[0]);

    assert_eq!(output.shape(), &[5, 1, 2]);
    assert_eq!(
        output.iter().copied().collect::<Vec<f32>>(),
        [2., 3., 4., 5., 4., 5., 2., 3., 4., 5.]
    );
    assert_eq!(weights, vec![table]);
    Ok(())
}
