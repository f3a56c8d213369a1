//! The text of `Sequential::summary()`, laid out as Keras 2 prints it.

use std::fmt::Write as _;

use crate::error::{Error, OptDims, Result};
use crate::model::Sequential;

const WIDTH: usize = 65;
const COLUMNS: [usize; 3] = [28, 26, 10];

/// Renders the summary table of `model`.
pub(crate) fn render(model: &Sequential) -> Result<String> {
    let shapes = model.layer_output_shapes()?;
    let mut rows = Vec::with_capacity(model.layers().len());
    let (mut trainable, mut frozen) = (0usize, 0usize);
    for (index, layer) in model.layers().iter().enumerate() {
        let params = layer.count_params().map_err(|_| Error::NotBuilt {
            context: format!("model \"{}\"", model.name()),
            what: format!("the summary (layer \"{}\" is not built)", layer.name()),
            hint:
                "call predict once, or start the model with a layer that declares its input shape"
                    .into(),
        })?;
        if layer.is_trainable() {
            trainable += params;
        } else {
            frozen += params;
        }
        let shape = shapes
            .as_ref()
            .and_then(|s| s.get(index))
            .map_or_else(|| "?".to_string(), |s| OptDims(s).to_string());
        rows.push([
            format!("{} ({})", layer.name(), layer.class_name()),
            shape,
            params.to_string(),
        ]);
    }

    let mut out = String::new();
    let line = |c: char| c.to_string().repeat(WIDTH);
    // Writing to a String cannot fail.
    let _ = writeln!(out, "Model: \"{}\"", model.name());
    let _ = writeln!(out, "{}", line('_'));
    let _ = writeln!(out, "{}", row(&["Layer (type)", "Output Shape", "Param #"]));
    let _ = writeln!(out, "{}", line('='));
    for (i, cells) in rows.iter().enumerate() {
        let _ = writeln!(out, "{}", row(&[&cells[0], &cells[1], &cells[2]]));
        if i + 1 < rows.len() {
            let _ = writeln!(out);
        }
    }
    let _ = writeln!(out, "{}", line('='));
    let total = trainable + frozen;
    let _ = writeln!(out, "Total params: {total} ({})", bytes(total));
    let _ = writeln!(out, "Trainable params: {trainable} ({})", bytes(trainable));
    let _ = writeln!(out, "Non-trainable params: {frozen} ({})", bytes(frozen));
    let _ = write!(out, "{}", line('_'));
    Ok(out)
}

fn row(cells: &[&str; 3]) -> String {
    let mut text = String::from(" ");
    for (cell, width) in cells.iter().zip(COLUMNS) {
        let _ = write!(text, "{cell:<width$}");
        if cell.len() >= width {
            text.push(' ');
        }
    }
    text.trim_end().to_string()
}

/// Memory of `params` float32 values, as Keras writes it (`250.00 KB`).
fn bytes(params: usize) -> String {
    let bytes = params as f64 * 4.0;
    let units = ["Byte", "KB", "MB", "GB", "TB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2} {}", units[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_keras_units() {
        assert_eq!(bytes(64_000), "250.00 KB");
        assert_eq!(bytes(0), "0.00 Byte");
        assert_eq!(bytes(1 << 20), "4.00 MB");
    }
}
