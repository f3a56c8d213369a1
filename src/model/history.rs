//! What `fit` returns: the loss of every epoch (Keras' `History.history`).

/// Per-epoch results of [`Model::fit`](crate::model::Model::fit) and
/// [`Sequential::fit`](crate::model::Sequential::fit), as Keras' `History.history`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    /// The training loss of each epoch: the mean of the batch losses (each computed before
    /// its step), weighted by batch size, plus the regularization penalties of every weight,
    /// frozen ones included, as in Keras.
    pub loss: Vec<f32>,
    /// The validation loss after each epoch, penalties included (empty without validation
    /// data).
    pub val_loss: Vec<f32>,
    /// For a model with several outputs, each output's loss per epoch (unweighted), under
    /// Keras' key `{output}_loss`, in output order (empty otherwise).
    pub output_losses: Vec<(String, Vec<f32>)>,
    /// Everything else per epoch, under Keras' keys, in the order Keras reports them: the
    /// metrics of `compile_with_metrics` (`accuracy`, `{output}_accuracy` with several
    /// outputs), and with validation data `val_accuracy`, each output's `val_{output}_loss`;
    /// `lr` when a callback logs the learning rate.
    pub metrics: Vec<(String, Vec<f32>)>,
}

impl History {
    /// The number of epochs recorded.
    pub fn epochs(&self) -> usize {
        self.loss.len()
    }

    /// Appends `value` to the metric series `name` (created on its first value).
    pub(crate) fn record(&mut self, name: &str, value: f32) {
        match self.metrics.iter_mut().find(|(key, _)| key == name) {
            Some((_, series)) => series.push(value),
            None => self.metrics.push((name.to_string(), vec![value])),
        }
    }

    /// Appends `value` to the output loss series `name` (`{output}_loss`).
    pub(crate) fn record_output_loss(&mut self, name: &str, value: f32) {
        match self.output_losses.iter_mut().find(|(key, _)| key == name) {
            Some((_, series)) => series.push(value),
            None => self.output_losses.push((name.to_string(), vec![value])),
        }
    }

    /// A series by Keras' key (`history.history["loss"]`): `"loss"`, `"val_loss"`, an
    /// output's `"{output}_loss"`, or a metric's name (`"accuracy"`, `"val_accuracy"`).
    pub fn get(&self, key: &str) -> Option<&[f32]> {
        match key {
            "loss" => Some(&self.loss),
            "val_loss" if !self.val_loss.is_empty() => Some(&self.val_loss),
            _ => self
                .output_losses
                .iter()
                .chain(&self.metrics)
                .find(|(name, _)| name == key)
                .map(|(_, series)| series.as_slice()),
        }
    }
}
