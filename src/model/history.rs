//! What `fit` returns: the loss of every epoch (Keras' `History.history`).

/// Per-epoch results of [`Sequential::fit`](crate::model::Sequential::fit), as Keras'
/// `History.history["loss"]` and `["val_loss"]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// The training loss of each epoch: the mean of the batch losses (each computed before
    /// its step), weighted by batch size, plus the regularization penalties of every weight,
    /// frozen ones included, as in Keras.
    pub loss: Vec<f32>,
    /// The validation loss after each epoch, penalties included (empty without validation
    /// data).
    pub val_loss: Vec<f32>,
}

impl History {
    /// The number of epochs recorded.
    pub fn epochs(&self) -> usize {
        self.loss.len()
    }
}
