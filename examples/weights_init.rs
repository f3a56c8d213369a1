//! Seed (b): an embedding initialised from explicit weights, with `mask_zero`.
//!
//! Keras:
//! ```python
//! model = Sequential()
//! weights = np.arange(6).reshape(3, 2)
//! model.add(Embedding(3, 2, input_length=1, weights=[weights], mask_zero=True))
//! model.compile(optimizer="rmsprop", loss="mse")
//! print(model.predict([1, 2, 2, 1, 2, 0]))
//! print(model.layers[0].get_weights())
//! print(model.layers[0].compute_mask(np.array([1, 2, 2, 1, 2, 0])))
//! ```

use ndarray::Array;
use ndkeras::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let weights = Array::range(0.0f32, 6.0, 1.0)
        .into_shape_with_order((3, 2))?
        .into_dyn();

    let mut model = Sequential::new();
    model.add(
        Embedding::new(3, 2)
            .input_length(1)
            .weights(vec![weights.clone()])
            .mask_zero(true),
    )?;
    model.compile("rmsprop".parse()?, "mse".parse()?)?;

    let ids = vec![1i64, 2, 2, 1, 2, 0];
    let output = model.predict(ids.clone())?;
    println!(
        "predict([1, 2, 2, 1, 2, 0]) -> shape {:?}\n{output:.1}",
        output.shape()
    );

    let layer = model.get_layer(0).ok_or("the model has one layer")?;
    println!("weights:\n{:.1}", layer.get_weights()[0]);
    let mask = layer.compute_mask(&Tensor::from(ids), None)?;
    println!("mask: {}", mask.ok_or("mask_zero is on")?);

    assert_eq!(output.shape(), &[6, 1, 2]);
    assert_eq!(
        output.iter().copied().collect::<Vec<f32>>(),
        [2., 3., 4., 5., 4., 5., 2., 3., 4., 5., 0., 1.]
    );
    assert_eq!(layer.get_weights(), vec![weights]);
    Ok(())
}
