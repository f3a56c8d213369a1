//! `save_weights` / `load_weights`: every weight of a model in one `.npz`, by name.

use std::path::Path;

use crate::error::{Error, Result};
use crate::io::npy;
use crate::layer::{Layer, assign_weights, prepare_weights};
use crate::model::functional::Model;
use crate::model::sequential::Sequential;
use crate::weight::{WeightDType, WeightValues};

impl Sequential {
    /// Saves every weight (trainable or not) to an `.npz` archive, one array per weight named
    /// `layer/weight` (readable with `np.load`). The write is atomic: a temporary file is
    /// written, flushed and renamed, so a crash or a full disk never destroys a previous file.
    ///
    /// The weights are written from where they live (no copy of a table, owned or
    /// memory-mapped), each in its own type as Keras 3 stores it: float32 as `<f4`, the int8
    /// codes and zero points of a quantized table as `|i1` (a quarter of the float32 size),
    /// its scales and `g_idx` as `<f4`, a float16 table as `<f2`; a bfloat16 table as float32
    /// (NumPy has no bfloat16 type; see [`crate::io::npy`]). An embedding with LoRA writes
    /// Keras 3's saved form, the merged table (re-quantized for a quantized table).
    /// `load_weights` reads them back bit-exactly. A table holds finite values only, so a
    /// weight with NaN or an infinity (possible only in a memory-mapped table, whose values
    /// are never scanned) is refused before the file is touched: what `save_weights` writes,
    /// `load_weights` reads.
    ///
    /// # Errors
    /// [`Error::NotBuilt`] when a layer is not built; [`Error::Io`] naming the path;
    /// [`Error::InvalidArgument`] for a path that does not end in `.npz`, and naming a
    /// non-finite value, its weight and position.
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        self.model.save_weights(path)
    }

    /// Loads weights saved by [`Sequential::save_weights`] into a model of the same
    /// architecture, matching the layers that hold weights in order, as Keras 2 loads a
    /// weights file (a model built again gets new automatic names; see [`LoadOptions`] to
    /// match by name). When the file names exactly the model's layers, the names decide.
    /// Every count, shape, dtype and value is checked before any weight changes: a mismatched
    /// file changes nothing. An entry must be stored in a type its variable takes: float32 for
    /// float32 (and bfloat16) variables, int8 (or float32, as older ndkeras wrote them) for
    /// quantized codes and zero points, float16 (or float32) for a float16 table.
    ///
    /// # Errors
    /// [`Error::Io`] / [`Error::InvalidFile`] for the file (naming the entry and its dtype
    /// when the variable does not take that type); [`Error::InvalidArgument`] for a
    /// path that does not end in `.npz`; [`Error::Model`] naming missing or unexpected weights
    /// (with the names found); [`Error::WeightShape`] naming both shapes; [`Error::NotBuilt`]
    /// when a layer is not built.
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<()> {
        self.load_weights_with(path, LoadOptions::default())
    }

    /// [`Sequential::load_weights`] matching weights as `options` say (by name, skipping
    /// mismatches).
    ///
    /// # Errors
    /// Those of [`Sequential::load_weights`]; [`Error::InvalidArgument`] for `skip_mismatch`
    /// without `by_name`.
    pub fn load_weights_with(
        &mut self,
        path: impl AsRef<Path>,
        options: LoadOptions,
    ) -> Result<()> {
        self.model.load_weights_with(path, options)
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
        self.load_weights_with(path, LoadOptions::default())
    }

    /// [`Model::load_weights`] matching weights as `options` say.
    ///
    /// # Errors
    /// Those of [`Sequential::load_weights_with`].
    pub fn load_weights_with(
        &mut self,
        path: impl AsRef<Path>,
        options: LoadOptions,
    ) -> Result<()> {
        // Rows an optimizer keeps lazily are brought up to date first (which changes no
        // weight Keras would report), so that no pending move lands on the loaded values.
        self.flush_lazy_rows();
        let name = self.name().to_string();
        load(&name, self.layers_mut(), path.as_ref(), options)
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

/// Weights files are NumPy `.npz` archives: another extension (Keras' `.h5`, `.keras`,
/// `.weights.h5`, a TensorFlow checkpoint) would be a file under a name that promises a
/// format it is not in.
fn check_extension(path: &Path) -> Result<()> {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if extension.eq_ignore_ascii_case("npz") {
        return Ok(());
    }
    Err(Error::invalid_argument(
        format!("{}", path.display()),
        "path",
        if extension.is_empty() {
            "a name without extension".to_string()
        } else {
            format!("a '.{extension}' file")
        },
        "a '.npz' path: weights are saved as NumPy archives with Keras' names (HDF5 '.h5' and the Keras v3 '.keras'/'.weights.h5' formats are not supported)",
    ))
}

/// Writes every weight of `layers` to `path` (see [`Sequential::save_weights`]).
fn save(model: &str, layers: &[Box<dyn Layer>], path: &Path) -> Result<()> {
    check_extension(path)?;
    if let Some(layer) = layers.iter().find(|l| !l.is_built()) {
        return Err(Error::NotBuilt {
                context: format!("model \"{model}\""),
                what: format!("the weights of layer \"{}\"", layer.name()),
                hint: "build the model (predict once, or start it with a layer that declares its input shape) before saving".into(),
            });
    }
    // Every weight is written in its own type from where it lives (an owned or a
    // memory-mapped table, int8 codes, float16 bits), with no copy; bfloat16 (which NumPy
    // has no type for) through a float32 copy made for the save and dropped after it; a
    // layer with a saved form of its own (an embedding with LoRA: the merged table) writes
    // that, each array in the type of the variable it replaces.
    let mut sources: Vec<(String, Source<'_>)> = Vec::new();
    for (keys, layer) in weight_keys(layers).into_iter().zip(layers) {
        match layer.saved_weights()? {
            Some(saved) => {
                for (name, array) in saved {
                    let key = format!("{}/{name}", layer.name());
                    let dtype = layer
                        .variables()
                        .iter()
                        .find(|w| w.name() == name)
                        .map_or(WeightDType::Float32, |w| w.dtype());
                    let typed = narrowed(array, dtype, &key, model)?;
                    sources.push((key, Source::Owned(typed)));
                }
            }
            None => {
                for (key, weight) in keys.into_iter().zip(layer.variables()) {
                    let source = match weight.dtype() {
                        WeightDType::BFloat16 => {
                            Source::Owned(npy::NpyArray::Float32(weight.try_to_f32(|| {
                                format!("model \"{model}\": save_weights of {key}")
                            })?))
                        }
                        _ => Source::Weight(weight),
                    };
                    sources.push((key, source));
                }
            }
        }
    }
    let named: Vec<(String, npy::NpyView<'_>)> = sources
        .iter()
        .map(|(key, source)| {
            let view = match source {
                Source::Owned(array) => array.view(),
                Source::Weight(weight) => match weight.values() {
                    WeightValues::Int8(codes) => npy::NpyView::Int8(codes),
                    WeightValues::Half(bits, _) => npy::NpyView::Float16(bits),
                    WeightValues::Float32(values) => npy::NpyView::Float32(values),
                },
            };
            (key.clone(), view)
        })
        .collect();
    npy::write_npz_typed(path, &named)
}

/// Where the values of one saved array come from.
enum Source<'a> {
    /// A weight, written in its own type without a copy.
    Weight(&'a crate::weight::Weight),
    /// An array made for the save.
    Owned(npy::NpyArray),
}

/// A layer's saved float32 array in the type of the variable it stands for (int8 codes,
/// float16 values; bfloat16 and float32 stay float32).
fn narrowed(
    array: ndarray::ArrayD<f32>,
    dtype: WeightDType,
    key: &str,
    model: &str,
) -> Result<npy::NpyArray> {
    let context = || format!("model \"{model}\": save_weights of {key}");
    let internal = |value: f32| Error::Model {
        model: model.to_string(),
        message: format!(
            "save_weights of {key}: the value {value} does not fit its {} variable (an internal error)",
            dtype.name()
        ),
    };
    Ok(match dtype {
        WeightDType::Int8 => {
            let mut codes = Vec::new();
            codes
                .try_reserve_exact(array.len())
                .map_err(|_| Error::Allocation {
                    context: context(),
                    bytes: array.len(),
                })?;
            for &v in &array {
                if v.fract() != 0.0 || !(-128.0..=127.0).contains(&v) {
                    return Err(internal(v));
                }
                codes.push(v as i8);
            }
            npy::NpyArray::Int8(shaped(codes, array.shape(), context)?)
        }
        WeightDType::Float16 => {
            let mut bits = Vec::new();
            bits.try_reserve_exact(array.len())
                .map_err(|_| Error::Allocation {
                    context: context(),
                    bytes: array.len().saturating_mul(2),
                })?;
            for &v in &array {
                let half = half::f16::from_f32(v);
                if half.to_f32() != v {
                    return Err(internal(v));
                }
                bits.push(half.to_bits());
            }
            npy::NpyArray::Float16(shaped(bits, array.shape(), context)?)
        }
        _ => npy::NpyArray::Float32(array),
    })
}

fn shaped<T>(
    values: Vec<T>,
    shape: &[usize],
    context: impl Fn() -> String,
) -> Result<ndarray::ArrayD<T>> {
    ndarray::ArrayD::from_shape_vec(shape.to_vec(), values).map_err(|_| Error::ShapeOverflow {
        context: context(),
        shape: shape.to_vec(),
    })
}

/// How `load_weights` matches the weights in a file to the model's layers (Keras'
/// `load_weights(by_name=..., skip_mismatch=...)`).
///
/// By default, as Keras 2 loads a weights file, the layers that hold weights are matched in
/// order, whatever their names (a model built again gets new automatic names: `embedding_1`
/// where the file says `embedding`); when the file names exactly the model's layers, by name.
/// With `by_name`, each layer takes the weights saved under its own name; with
/// `skip_mismatch` too, layers missing from the file or saved with other shapes are left as
/// they are instead of failing the load.
///
/// A deliberate difference: Keras' `by_name` silently ignores layers on either side that the
/// other lacks, even without `skip_mismatch`; ndkeras reports them unless `skip_mismatch` is
/// set, and skips whole layers, not single weights.
///
/// ```
/// use ndkeras::model::LoadOptions;
/// let options = LoadOptions::default().by_name(true).skip_mismatch(true);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    by_name: bool,
    skip_mismatch: bool,
}

impl LoadOptions {
    /// Match weights by layer name instead of by order (Keras' `by_name`). Default: `false`.
    pub fn by_name(mut self, by_name: bool) -> Self {
        self.by_name = by_name;
        self
    }

    /// With `by_name`, leave layers the file does not match (missing, or of other shapes)
    /// as they are (Keras' `skip_mismatch`). Default: `false`.
    pub fn skip_mismatch(mut self, skip_mismatch: bool) -> Self {
        self.skip_mismatch = skip_mismatch;
        self
    }
}

/// The arrays of one saved layer: `(weight name, array)` in file order.
type SavedLayer = (String, Vec<(String, npy::NpyArray)>);

/// The arrays of each layer in a file, grouped by the layer part of `layer/weight` (up to
/// the first `/`: a layer made of layers names its weights `layer/inner/weight`), in the
/// order the layers first appear.
fn saved_layers(stored: Vec<(String, npy::NpyArray)>) -> Vec<SavedLayer> {
    let mut layers: Vec<SavedLayer> = Vec::new();
    for (name, array) in stored {
        let (layer, weight) = name.split_once('/').unwrap_or(("", name.as_str()));
        let entry = (weight.to_string(), array);
        match layers.iter_mut().find(|(saved, _)| saved == layer) {
            Some((_, arrays)) => arrays.push(entry),
            None => layers.push((layer.to_string(), vec![entry])),
        }
    }
    layers
}

/// A saved layer's arrays in the order of `layer`'s weights: by weight name when every
/// entry names a different weight of the layer (`dense/bias` may come before
/// `dense/kernel`; a LoRA layer's file may hold the merged table without the adapters),
/// otherwise in file order.
fn arrays_for<T>(layer: &dyn Layer, saved: Vec<(String, T)>) -> Vec<T> {
    let names = layer.weight_names();
    let mut saved = saved;
    if !names_match(&names, &saved) {
        return saved.into_iter().map(|(_, array)| array).collect();
    }
    names
        .iter()
        .filter_map(|name| {
            let position = saved.iter().position(|(s, _)| s == name)?;
            Some(saved.swap_remove(position).1)
        })
        .collect()
}

/// Whether every saved entry names a different weight of the layer (then entries are
/// matched by name, otherwise by position).
fn names_match<T>(names: &[String], saved: &[(String, T)]) -> bool {
    saved.iter().enumerate().all(|(k, (name, _))| {
        names.contains(name) && !saved[..k].iter().any(|(other, _)| other == name)
    })
}

/// A saved layer's arrays as float32 (exactly), each checked to be stored in a type its
/// variable takes (the variable it is assigned to as [`arrays_for`] assigns it: by name
/// when the names match, else by position):
///
/// | variable | file dtypes accepted |
/// |---|---|
/// | float32 | float32 (float64 rounded, as `read_npz`) |
/// | int8 (codes, zero points) | int8; float32 holding whole numbers (files of older ndkeras) |
/// | float16 | float16; float32 holding float16 values (files of older ndkeras) |
/// | bfloat16 | float32 (what `save_weights` writes for it: NumPy has no bfloat16 type), rounded as `set_weights` rounds |
///
/// # Errors
/// [`Error::InvalidFile`] naming the file, the entry, its dtype and the dtypes the variable
/// takes; [`Error::Allocation`].
fn widened(
    layer: &dyn Layer,
    saved_name: &str,
    entries: Vec<(String, npy::NpyArray)>,
    path: &Path,
) -> Result<Vec<(String, ndarray::ArrayD<f32>)>> {
    let variables = layer.variables();
    let mut arrays = Vec::new();
    arrays
        .try_reserve_exact(entries.len())
        .map_err(|_| Error::Allocation {
            context: format!("{}: entries of layer \"{saved_name}\"", path.display()),
            bytes: entries
                .len()
                .saturating_mul(size_of::<(String, ndarray::ArrayD<f32>)>()),
        })?;
    // A layer's weight names may be paths its variables' own names are the end of
    // (`token_embedding/embeddings`): variables are found by the position of the name.
    let names = layer.weight_names();
    let by_name = names_match(&names, &entries);
    for (position, (name, array)) in entries.into_iter().enumerate() {
        let index = if by_name {
            names.iter().position(|n| *n == name)
        } else {
            Some(position)
        };
        let variable = index.and_then(|i| variables.get(i));
        let entry = format!("{}: entry '{saved_name}/{name}'", path.display());
        if let Some(variable) = variable {
            let dtype = variable.dtype();
            let accepted: &[&str] = match dtype {
                WeightDType::Int8 => &["int8", "float32"],
                WeightDType::Float16 => &["float16", "float32"],
                _ => &["float32"],
            };
            if !accepted.contains(&array.dtype_name()) {
                let hint = match (array.dtype_name(), dtype) {
                    ("int8", WeightDType::Float32) => {
                        " (the file holds a quantized table: quantize the layer the same way, or build it with `quantization(..)`, before loading)"
                    }
                    ("float16", _) => {
                        " (the file holds a float16 table: build the layer with `dtype(TableDType::Float16)`, or cast it, before loading)"
                    }
                    _ => "",
                };
                return Err(Error::invalid_file(
                    entry,
                    format!(
                        "dtype {} does not fit weight '{}' of layer \"{}\", a {} variable: expected {}{hint}",
                        array.dtype_name(),
                        variable.name(),
                        layer.name(),
                        dtype.name(),
                        accepted.join(" or ")
                    ),
                ));
            }
        }
        arrays.push((name, array.into_f32(|| entry.clone())?));
    }
    Ok(arrays)
}

/// Reads `path` into `layers`, all or nothing (see [`Sequential::load_weights`]).
fn load(
    model: &str,
    layers: &mut [Box<dyn Layer>],
    path: &Path,
    options: LoadOptions,
) -> Result<()> {
    if options.skip_mismatch && !options.by_name {
        return Err(Error::invalid_argument(
            format!("model \"{model}\": load_weights"),
            "skip_mismatch",
            true,
            "false unless `by_name` is set (as in Keras)",
        ));
    }
    if let Some(layer) = layers.iter().find(|l| !l.is_built()) {
        return Err(Error::NotBuilt {
            context: format!("model \"{model}\""),
            what: format!("the weights of layer \"{}\"", layer.name()),
            hint: "build the model before loading weights into it".into(),
        });
    }
    check_extension(path)?;
    let stored = npy::read_npz_typed(path)?;
    let file_keys: Vec<String> = stored.iter().map(|(n, _)| n.clone()).collect();
    let model_keys: Vec<String> = weight_keys(layers).into_iter().flatten().collect();
    let mut saved = saved_layers(stored);
    let weighted: Vec<usize> = (0..layers.len())
        .filter(|&i| !layers[i].variables().is_empty())
        .collect();
    // When the file names exactly the model's layers, the names decide whatever the order
    // (a functional model read back from JSON may list its layers in another order).
    let same_names = weighted.len() == saved.len()
        && weighted
            .iter()
            .all(|&i| saved.iter().any(|(name, _)| name == layers[i].name()));
    // Every layer's arrays checked (count, shapes, values) and laid out before any layer
    // changes, so a failure (memory included) loads nothing.
    let mut plan = Vec::new();
    if options.by_name || same_names {
        for &index in &weighted {
            let layer = layers[index].as_ref();
            let Some(position) = saved.iter().position(|(name, _)| name == layer.name()) else {
                if options.skip_mismatch {
                    continue;
                }
                return Err(model_error(
                    model,
                    format!(
                        "{} has no weights for layer \"{}\": the file holds {file_keys:?}, the model needs {model_keys:?} (load by order, the default, to ignore names)",
                        path.display(),
                        layer.name()
                    ),
                ));
            };
            let (saved_name, entries) = saved.swap_remove(position);
            let entries = widened(layer, &saved_name, entries, path)?;
            let arrays = layer.weights_from_saved(arrays_for(layer, entries))?;
            match prepare_weights(layer, &arrays) {
                Ok(prepared) => plan.push((index, arrays, prepared)),
                Err(Error::WeightCount { .. } | Error::WeightShape { .. })
                    if options.skip_mismatch => {}
                Err(error) => return Err(error),
            }
        }
        if !options.skip_mismatch && !saved.is_empty() {
            let names: Vec<&str> = saved.iter().map(|(name, _)| name.as_str()).collect();
            return Err(model_error(
                model,
                format!(
                    "{} holds weights for layers the model does not have: {names:?} (the model needs {model_keys:?}; `skip_mismatch` ignores them)",
                    path.display()
                ),
            ));
        }
    } else {
        if weighted.len() != saved.len() {
            let names: Vec<&str> = saved.iter().map(|(name, _)| name.as_str()).collect();
            let ours: Vec<&str> = weighted.iter().map(|&i| layers[i].name()).collect();
            return Err(model_error(
                model,
                format!(
                    "{} holds the weights of {} layers {names:?}, the model has {} layers with weights {ours:?}: loading by order needs the same architecture (the file holds {file_keys:?}, the model needs {model_keys:?}; load by name with `LoadOptions::default().by_name(true)` if the names match)",
                    path.display(),
                    saved.len(),
                    weighted.len()
                ),
            ));
        }
        for (&index, (saved_name, entries)) in weighted.iter().zip(saved) {
            let layer = layers[index].as_ref();
            let entries = widened(layer, &saved_name, entries, path)?;
            let arrays = layer.weights_from_saved(arrays_for(layer, entries))?;
            let prepared = prepare_weights(layers[index].as_ref(), &arrays)?;
            plan.push((index, arrays, prepared));
        }
    }
    for (index, arrays, prepared) in plan {
        assign_weights(layers[index].as_mut(), arrays, prepared)?;
    }
    Ok(())
}

fn model_error(model: &str, message: String) -> Error {
    Error::Model {
        model: model.to_string(),
        message,
    }
}
