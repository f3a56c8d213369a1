//! `weights` given together with an initializer win, as in Keras: on the first call the layer
//! is built from the weights (Keras runs the initializer and overwrites its table; ndkeras
//! skips that fill), once.
//!
//! Keras:
//! ```python
//! layer = Embedding(3, 2, weights=[A], embeddings_initializer=Constant(B))
//! layer(np.array([[0, 1, 2]]))  # rows of A
//! ```

use ndarray::array;
use ndkeras::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = array![[0.5f32, 1.5], [2.5, 3.5], [4.5, 5.5]].into_dyn();
    let b = array![[100.0f32, 99.0], [98.0, 97.0], [96.0, 95.0]].into_dyn();

    let mut layer = Embedding::new(3, 2)
        .weights(vec![a.clone()])
        .embeddings_initializer(Initializer::Constant(b));
    println!("built after the constructor: {}", layer.is_built());
    assert!(!layer.is_built());

    let output = layer.apply(&Tensor::from(array![[0i64, 1, 2]]))?;
    let values = output.as_float().ok_or("an embedding outputs floats")?;
    println!("built after the first call: {}", layer.is_built());
    println!("output:\n{values:.1}");
    assert_eq!(values, &a.clone().into_shape_with_order(vec![1, 3, 2])?);
    assert_eq!(layer.get_weights(), vec![a]);

    // set_weights afterwards overrides both, as in Keras.
    let c = array![[7.0f32, 7.0], [8.0, 8.0], [9.0, 9.0]].into_dyn();
    layer.set_weights(vec![c.clone()])?;
    println!("after set_weights:\n{:.1}", layer.get_weights()[0]);
    assert_eq!(layer.get_weights(), vec![c]);
    Ok(())
}
