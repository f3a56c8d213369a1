//! The text of `summary()` for a `Sequential` and a functional `Model`, laid out as Keras 2
//! prints them (`tf_keras.utils.layer_utils.print_summary`).

use std::fmt::Write as _;

use crate::error::{Error, OptDims, Result};
use crate::layer::Layer;
use crate::model::Sequential;
use crate::model::functional::Model;

/// Keras 2's layout of a `Sequential` summary: 65 columns, fields ending at 45%, 85%, 100%.
const SEQUENTIAL: Layout = Layout {
    width: 65,
    positions: &[29, 55, 65],
};

/// Keras 2's layout of a functional model's summary: 98 columns, fields ending at 30%, 60%,
/// 70%, 100% (with the "Connected to" column).
const FUNCTIONAL: Layout = Layout {
    width: 98,
    positions: &[29, 58, 68, 98],
};

struct Layout {
    width: usize,
    positions: &'static [usize],
}

/// Renders the summary table of `model`.
pub(crate) fn render(model: &Sequential) -> Result<String> {
    let shapes = model.layer_output_shapes()?;
    let mut rows = Vec::with_capacity(model.layers().len());
    for (index, layer) in model.layers().iter().enumerate() {
        let params = layer.count_params().map_err(|_| Error::NotBuilt {
            context: format!("model \"{}\"", model.name()),
            what: format!("the summary (layer \"{}\" is not built)", layer.name()),
            hint:
                "call predict once, or start the model with a layer that declares its input shape"
                    .into(),
        })?;
        let shape = shapes
            .as_ref()
            .and_then(|s| s.get(index))
            .map_or_else(|| "?".to_string(), |s| OptDims(s).to_string());
        rows.push(vec![
            format!("{} ({})", layer.name(), layer.class_name()),
            shape,
            params.to_string(),
        ]);
    }
    let (trainable, frozen) = parameter_counts(model.layers());
    Ok(table(
        model.name(),
        &SEQUENTIAL,
        &["Layer (type)", "Output Shape", "Param #"],
        &rows,
        trainable,
        frozen,
    ))
}

/// The text of a functional model's summary, laid out as Keras 2 prints it: one row per
/// input and per layer (a shared layer once, with every call it makes in "Connected to").
pub(crate) fn render_functional(model: &Model) -> String {
    let rows: Vec<Vec<String>> = model
        .summary_rows()
        .into_iter()
        .map(|row| {
            let connections: Vec<String> =
                row.connections.iter().map(|c| format!("'{c}'")).collect();
            vec![
                row.label,
                row.shape,
                row.params.to_string(),
                format!("[{}]", connections.join(", ")),
            ]
        })
        .collect();
    let (trainable, frozen) = parameter_counts(model.layers());
    table(
        model.name(),
        &FUNCTIONAL,
        &["Layer (type)", "Output Shape", "Param #", "Connected to"],
        &rows,
        trainable,
        frozen,
    )
}

/// Trainable and frozen parameters, each weight counted once.
fn parameter_counts(layers: &[Box<dyn Layer>]) -> (usize, usize) {
    let (mut trainable, mut frozen) = (0, 0);
    for weight in layers.iter().flat_map(|l| l.variables()) {
        if weight.is_trainable() {
            trainable += weight.len();
        } else {
            frozen += weight.len();
        }
    }
    (trainable, frozen)
}

/// The whole table: title, header, rows separated by blank lines, totals.
fn table(
    name: &str,
    layout: &Layout,
    header: &[&str],
    rows: &[Vec<String>],
    trainable: usize,
    frozen: usize,
) -> String {
    let mut out = String::new();
    let line = |c: char| c.to_string().repeat(layout.width);
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "Model: \"{name}\"");
    let _ = writeln!(out, "{}", line('_'));
    for text in keras_row(&header, layout.positions) {
        let _ = writeln!(out, "{text}");
    }
    let _ = writeln!(out, "{}", line('='));
    for cells in rows {
        for text in keras_row(cells, layout.positions) {
            let _ = writeln!(out, "{text}");
        }
        let _ = writeln!(out, "{}", line(' '));
    }
    let _ = writeln!(out, "{}", line('='));
    let total = trainable + frozen;
    let _ = writeln!(out, "Total params: {total} ({})", bytes(total));
    let _ = writeln!(out, "Trainable params: {trainable} ({})", bytes(trainable));
    let _ = writeln!(out, "Non-trainable params: {frozen} ({})", bytes(frozen));
    let _ = write!(out, "{}", line('_'));
    out
}

/// One row as Keras 2's `print_summary.print_row` prints it: each field cut to its column
/// (a column's width less two spaces, and one more but for the last), preferring to break
/// just after `),`, `},`, `],` or `',`, and continued on the next lines.
fn keras_row(fields: &[String], positions: &[usize]) -> Vec<String> {
    let mut left: Vec<Vec<char>> = fields.iter().map(|f| f.chars().collect()).collect();
    let mut lines = Vec::new();
    while left.iter().any(|f| !f.is_empty()) {
        let mut line = String::new();
        let mut length = 0usize;
        for (column, field) in left.iter_mut().enumerate() {
            let start = if column == 0 {
                0
            } else {
                positions[column - 1]
            };
            let end = positions[column];
            let last = column + 1 == positions.len();
            let space = if last { 0 } else { 2 };
            let mut cutoff = (end - start).saturating_sub(space);
            if !last {
                cutoff = cutoff.saturating_sub(1);
            }
            let fit: String = field.iter().take(cutoff).collect();
            let breaks = ["),", "},", "],", "',"]
                .iter()
                .filter_map(|b| fit.find(b).map(|at| fit[..at].chars().count() + 2))
                .min();
            if let Some(at) = breaks {
                cutoff = at;
            }
            let taken: String = field.iter().take(cutoff).collect();
            if column == 0 {
                line.push(' ');
                length += 1;
            }
            length += taken.chars().count() + space;
            line.push_str(&taken);
            line.push_str(&" ".repeat(space));
            field.drain(..cutoff.min(field.len()));
            if end > length {
                line.push_str(&" ".repeat(end - length));
                length = end;
            }
        }
        lines.push(line);
    }
    lines
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
