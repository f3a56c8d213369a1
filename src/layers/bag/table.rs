//! The table a bag layer owns: its settings, the pending initial `weights`, and the build
//! that makes the [`Weight`] from one or the other (shared by both bag layers).

use ndarray::{ArrayD, ArrayView2, Ix2};

use crate::constraints::Constraint;
use crate::error::{Error, Result};
use crate::initializers::Initializer;
use crate::layer::check_weights;
use crate::regularizers::Regularizer;
use crate::storage::aligned_zeros;
use crate::weight::Weight;

/// The settings of a bag layer's table.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TableSettings {
    /// Rows: ids are `0..rows`.
    pub rows: usize,
    /// Length of each vector.
    pub columns: usize,
    /// How the table is filled at build.
    pub initializer: Initializer,
    /// Whether training updates the table.
    pub trainable: bool,
    /// Penalty on the table added to the loss.
    pub regularizer: Option<Regularizer>,
    /// Projection applied after each step.
    pub constraint: Option<Constraint>,
}

/// The table of a bag layer and the `weights` it starts from.
#[derive(Clone, Default)]
pub(super) struct Table {
    /// The `weights` given at construction and not applied yet.
    pub initial: Option<Vec<ArrayD<f32>>>,
    /// The table, once built.
    pub weight: Option<Weight>,
    /// Whether the table was made from `initial` (which `unbuild` gives back).
    pub from_initial: bool,
}

impl Table {
    /// The table, or [`Error::NotBuilt`] naming `context`.
    pub fn get(&self, context: &str) -> Result<&Weight> {
        self.weight.as_ref().ok_or_else(|| Error::NotBuilt {
            context: context.to_string(),
            what: "the embeddings table".into(),
            hint: "use `apply` (which builds the layer on its first call) or `build` first".into(),
        })
    }

    /// The table's values, row-major, or [`Error::NotBuilt`].
    pub fn values(&self, context: &str) -> Result<&[f32]> {
        self.get(context)?
            .as_slice()
            .ok_or_else(|| Error::NotBuilt {
                context: context.to_string(),
                what: "a contiguous table".into(),
                hint: "set the weights again".into(),
            })
    }

    /// A view of the table, or `None` until it is built.
    pub fn view(&self) -> Option<ArrayView2<'_, f32>> {
        self.weight
            .as_ref()
            .and_then(|t| t.view().into_dimensionality::<Ix2>().ok())
    }

    /// Builds an unbuilt table from the initial weights (checked, moved or copied once; the
    /// initializer does not run) or from the initializer, after which row `zero_row` (if
    /// any) is set to zeros (PyTorch zeroes the padding row of a fresh table only). Changes
    /// nothing on error.
    pub fn build(
        &mut self,
        layer: &str,
        context: &str,
        settings: &TableSettings,
        zero_row: Option<usize>,
    ) -> Result<()> {
        let shape = [settings.rows, settings.columns];
        // Keras would run the initializer first: report what it would refuse.
        settings.initializer.validate_for(&shape)?;
        let table_context = || format!("{context}: embeddings table");
        let weight = match self.initial.as_deref() {
            Some(weights) => {
                check_weights(layer, &[shape.to_vec()], weights)?;
                let first = weights.first().ok_or_else(|| Error::WeightCount {
                    layer: layer.to_string(),
                    expected: 1,
                    got: 0,
                })?;
                let prepared = Weight::prepare(first, table_context)?;
                let array = self
                    .initial
                    .take()
                    .and_then(|w| w.into_iter().next())
                    .ok_or_else(|| Error::WeightCount {
                        layer: layer.to_string(),
                        expected: 1,
                        got: 0,
                    })?;
                self.from_initial = true;
                Weight::from_prepared("embeddings", array, prepared)?
            }
            None => {
                let mut table = aligned_zeros(shape[0], shape[1], table_context)?;
                let values = table.as_slice_mut().ok_or_else(|| Error::NotBuilt {
                    context: context.to_string(),
                    what: "a contiguous table".into(),
                    hint: "this is a bug in ndkeras".into(),
                })?;
                settings.initializer.initialize_into(&shape, values)?;
                if let Some(row) = zero_row
                    && let Some(values) = values.get_mut(row * shape[1]..(row + 1) * shape[1])
                {
                    values.fill(0.0);
                }
                self.from_initial = false;
                Weight::matrix("embeddings", table)
            }
        };
        self.weight = Some(
            weight
                .with_trainable(settings.trainable)
                .with_regularizer(settings.regularizer)
                .with_constraint(settings.constraint),
        );
        Ok(())
    }

    /// Drops the table; one made from the initial weights gives them back as pending.
    pub fn unbuild(&mut self) {
        let table = self.weight.take();
        if std::mem::take(&mut self.from_initial)
            && let Some(array) = table.and_then(Weight::into_array)
        {
            self.initial = Some(vec![array]);
        }
    }

    /// The shapes of the pending initial weights (for `Debug`, never the values).
    pub fn initial_shapes(&self) -> Option<Vec<Vec<usize>>> {
        self.initial
            .as_ref()
            .map(|w| w.iter().map(|a| a.shape().to_vec()).collect())
    }
}
