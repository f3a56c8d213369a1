//! `save_weights` / `load_weights`: every weight of a model in one `.npz`, by name.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::npy;
use crate::layer::{Layer, assign_weights, prepare_weights};
use crate::model::functional::Model;
use crate::model::sequential::Sequential;

impl Sequential {
    /// Saves every weight (trainable or not) to an `.npz` archive, one array per weight named
    /// `layer/weight` (readable with `np.load`). The write is atomic: a temporary file is
    /// written, flushed and renamed, so a crash or a full disk never destroys a previous file.
    ///
    /// The weights are written from where they live (no copy of a table, owned or
    /// memory-mapped). A table holds finite values only, so a weight with NaN or an infinity
    /// (possible only in a memory-mapped table, whose values are never scanned) is refused
    /// before the file is touched: what `save_weights` writes, `load_weights` reads.
    ///
    /// # Errors
    /// [`Error::NotBuilt`] when a layer is not built; [`Error::Io`] naming the path;
    /// [`Error::InvalidArgument`] naming a non-finite value, its weight and position.
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        save(&self.name, &self.layers, path.as_ref())
    }

    /// Loads weights saved by [`Sequential::save_weights`] into a model of the same
    /// architecture. Every name and shape is checked, and every value must be finite, before
    /// any weight changes: a mismatched file changes nothing.
    ///
    /// # Errors
    /// [`Error::Io`] / [`Error::InvalidFile`] for the file; [`Error::Model`] naming missing or
    /// unexpected weights (with the names found); [`Error::WeightShape`] naming both shapes;
    /// [`Error::NotBuilt`] when a layer is not built.
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<()> {
        load(&self.name, &mut self.layers, path.as_ref())
    }
}

impl Model {
    /// [`Sequential::save_weights`] for a functional model: every weight once (a shared
    /// layer's weights once), named `layer/weight`.
    ///
    /// # Errors
    /// Those of [`Sequential::save_weights`].
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        save(self.name(), self.layers(), path.as_ref())
    }

    /// [`Sequential::load_weights`] for a functional model: all or nothing.
    ///
    /// # Errors
    /// Those of [`Sequential::load_weights`].
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let name = self.name().to_string();
        load(&name, self.layers_mut(), path.as_ref())
    }
}

/// The name under which each weight is saved: `layer_name/weight_name`, Keras' variable
/// naming (`embedding/embeddings`, `dense/kernel`, `dense/bias`).
fn weight_keys(layers: &[Box<dyn Layer>]) -> Vec<Vec<String>> {
    layers
        .iter()
        .map(|layer| {
            layer
                .weight_names()
                .iter()
                .map(|w| format!("{}/{w}", layer.name()))
                .collect()
        })
        .collect()
}

/// Writes every weight of `layers` to `path` (see [`Sequential::save_weights`]).
fn save(model: &str, layers: &[Box<dyn Layer>], path: &Path) -> Result<()> {
    if let Some(layer) = layers.iter().find(|l| !l.is_built()) {
        return Err(Error::NotBuilt {
                context: format!("model \"{model}\""),
                what: format!("the weights of layer \"{}\"", layer.name()),
                hint: "build the model (predict once, or start it with a layer that declares its input shape) before saving".into(),
            });
    }
    // Written from where the weights live (an owned or a memory-mapped table), with no
    // copy of any weight.
    let named: Vec<(String, ndarray::ArrayViewD<'_, f32>)> = weight_keys(layers)
        .into_iter()
        .zip(layers)
        .flat_map(|(keys, layer)| keys.into_iter().zip(layer.weight_views()))
        .collect();
    npy::write_npz(path, &named)
}

/// Reads `path` into `layers`, all or nothing (see [`Sequential::load_weights`]).
fn load(model: &str, layers: &mut [Box<dyn Layer>], path: &Path) -> Result<()> {
    let mut stored = npy::read_npz(path)?;
    let keys = weight_keys(layers);
    if let Some(layer) = layers.iter().find(|l| !l.is_built()) {
        return Err(Error::NotBuilt {
            context: format!("model \"{model}\""),
            what: format!("the weights of layer \"{}\"", layer.name()),
            hint: "build the model before loading weights into it".into(),
        });
    }
    let expected: Vec<&String> = keys.iter().flatten().collect();
    let missing: Vec<&str> = expected
        .iter()
        .filter(|k| !stored.iter().any(|(n, _)| n == **k))
        .map(|k| k.as_str())
        .collect();
    let unexpected: Vec<&str> = stored
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| !expected.iter().any(|k| k == n))
        .collect();
    if !missing.is_empty() || !unexpected.is_empty() {
        let found: Vec<&str> = stored.iter().map(|(n, _)| n.as_str()).collect();
        return Err(model_error(
            model,
            format!(
                "{} does not match the model: missing {missing:?}, unexpected {unexpected:?} (the file holds {found:?})",
                path.display()
            ),
        ));
    }
    // Every layer's arrays checked (count, shapes, values) and laid out before any layer
    // changes, so a failure (memory included) loads nothing.
    let mut plan = Vec::with_capacity(keys.len());
    for (layer, layer_keys) in layers.iter().zip(&keys) {
        let mut arrays = Vec::with_capacity(layer_keys.len());
        for key in layer_keys {
            let position = stored.iter().position(|(n, _)| n == key).ok_or_else(|| {
                model_error(
                    model,
                    format!("internal: '{key}' was checked present but is gone"),
                )
            })?;
            arrays.push(stored.swap_remove(position).1);
        }
        let prepared = prepare_weights(layer.as_ref(), &arrays)?;
        plan.push((arrays, prepared));
    }
    for (layer, (arrays, prepared)) in layers.iter_mut().zip(plan) {
        assign_weights(layer.as_mut(), arrays, prepared)?;
    }
    Ok(())
}

fn model_error(model: &str, message: String) -> Error {
    Error::Model {
        model: model.to_string(),
        message,
    }
}
