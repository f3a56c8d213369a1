//! The gather-and-reduce kernels shared by [`EmbeddingBag`](super::EmbeddingBag) and
//! [`EmbedReduce`](super::EmbedReduce): each bag's rows are read from the table and folded
//! into the bag's output row in one pass, so the `(bags, length, dim)` lookup never exists;
//! and the row-sparse gradient of the table for an output gradient.

use ndarray::Array2;

use crate::error::{Error, Result};
use crate::storage::try_zeroed;

/// How the rows of one bag are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reduction {
    /// `Σ w_i E[x_i]`.
    Sum,
    /// `Σ w_i E[x_i] / Σ w_i`, zero when the divisor is zero (PyTorch's `mean`, where
    /// `w_i = 1` and the divisor is the number of rows; keras-rs' `divide_no_nan`).
    Mean,
    /// `Σ w_i E[x_i] / sqrt(Σ w_i²)`, zero when the divisor is zero (keras-rs' `sqrtn`).
    SqrtN,
    /// The element-wise maximum; the first row holding it wins a tie (PyTorch's strict `>`).
    Max,
}

/// Bags of table rows: the checked row of every entry, where each bag starts and ends, and
/// which entries take part.
#[derive(Debug)]
pub(super) struct Bags<'a> {
    /// The table row of every entry, checked against the table.
    pub rows: Vec<usize>,
    /// `bags + 1` non-decreasing boundaries into `rows`, the last one `rows.len()`: bag `b` is
    /// `rows[bounds[b]..bounds[b + 1]]`.
    pub bounds: Vec<usize>,
    /// One weight per entry (PyTorch's `per_sample_weights`, keras-rs' `weights`); `None`
    /// means 1 for every entry.
    pub weights: Option<&'a [f32]>,
    /// Entries left out of the reduction and the count (PyTorch's `padding_idx`).
    pub padding: Option<usize>,
    /// Entries left out where `false` (a Keras mask); `None` keeps all.
    pub keep: Option<&'a [bool]>,
}

/// Entries (bag outputs times `dim`) from which a reduction is split across threads: about
/// the 512 KB of rows from which the `Embedding` lookup splits its gather.
#[cfg(feature = "rayon")]
const PARALLEL_REDUCE_VALUES: usize = 1 << 17;

impl Bags<'_> {
    /// The number of bags.
    pub fn len(&self) -> usize {
        self.bounds.len().saturating_sub(1)
    }

    /// Whether entry `i` takes part in its bag's reduction.
    #[inline]
    fn included(&self, i: usize) -> bool {
        self.padding != self.rows.get(i).copied()
            && self.keep.is_none_or(|k| k.get(i) == Some(&true))
    }

    /// The entries of bag `b`.
    #[inline]
    fn entries(&self, b: usize) -> std::ops::Range<usize> {
        let start = self.bounds.get(b).copied().unwrap_or(0);
        let end = self.bounds.get(b + 1).copied().unwrap_or(start);
        start..end.max(start)
    }

    /// The weight of entry `i`.
    #[inline]
    fn weight(&self, i: usize) -> f32 {
        self.weights.and_then(|w| w.get(i).copied()).unwrap_or(1.0)
    }

    /// The divisor of bag `b` for `reduction`, or `None` for a bag that gives zeros under
    /// `divide_no_nan` (and 1 for `Sum` and `Max`, which divide by nothing).
    fn divisor(&self, b: usize, reduction: Reduction) -> Option<f32> {
        let divisor = match reduction {
            Reduction::Sum | Reduction::Max => return Some(1.0),
            Reduction::Mean if self.weights.is_none() => {
                // PyTorch divides by the count of rows left after padding (`bag_size`).
                self.entries(b).filter(|&i| self.included(i)).count() as f32
            }
            Reduction::Mean => self
                .entries(b)
                .filter(|&i| self.included(i))
                .map(|i| self.weight(i))
                .sum::<f32>(),
            Reduction::SqrtN => self
                .entries(b)
                .filter(|&i| self.included(i))
                .map(|i| self.weight(i) * self.weight(i))
                .sum::<f32>()
                .sqrt(),
        };
        (divisor != 0.0).then_some(divisor)
    }

    /// Reduces every bag into `out` (`len() * dim` values, zero-filled), reading rows of
    /// `dim` values from `table`. For `Max`, `argmax` (same length as `out`) receives the row
    /// each output value came from.
    fn reduce_range(
        &self,
        first_bag: usize,
        table: &[f32],
        dim: usize,
        reduction: Reduction,
        out: &mut [f32],
        mut argmax: Option<&mut [usize]>,
    ) {
        for (k, acc) in out.chunks_exact_mut(dim).enumerate() {
            let b = first_bag + k;
            let arg = argmax
                .as_deref_mut()
                .and_then(|a| a.get_mut(k * dim..(k + 1) * dim));
            self.reduce_bag(b, table, dim, reduction, acc, arg);
        }
    }

    fn reduce_bag(
        &self,
        b: usize,
        table: &[f32],
        dim: usize,
        reduction: Reduction,
        acc: &mut [f32],
        arg: Option<&mut [usize]>,
    ) {
        let row_of = |r: usize| table.get(r * dim..(r + 1) * dim);
        if reduction == Reduction::Max {
            let mut arg = arg;
            let mut first = true;
            for i in self.entries(b).filter(|&i| self.included(i)) {
                let r = self.rows[i];
                let Some(source) = row_of(r) else { continue };
                if first {
                    acc.copy_from_slice(source);
                    if let Some(arg) = arg.as_deref_mut() {
                        arg.fill(r);
                    }
                    first = false;
                    continue;
                }
                for (d, (a, &s)) in acc.iter_mut().zip(source).enumerate() {
                    if s > *a {
                        *a = s;
                        if let Some(slot) = arg.as_deref_mut().and_then(|arg| arg.get_mut(d)) {
                            *slot = r;
                        }
                    }
                }
            }
            return;
        }
        for i in self.entries(b).filter(|&i| self.included(i)) {
            let Some(source) = row_of(self.rows[i]) else {
                continue;
            };
            match self.weights {
                None => acc.iter_mut().zip(source).for_each(|(a, &s)| *a += s),
                Some(_) => {
                    let w = self.weight(i);
                    acc.iter_mut().zip(source).for_each(|(a, &s)| *a += w * s);
                }
            }
        }
        match self.divisor(b, reduction) {
            Some(1.0) if reduction == Reduction::Sum => {}
            Some(divisor) => acc.iter_mut().for_each(|a| *a /= divisor),
            None => acc.fill(0.0),
        }
    }

    /// The reduced bags, `(len(), dim)` row-major, in a fresh buffer; with `Max`, also the
    /// row each value came from. Large batches are split across threads (`rayon`).
    ///
    /// # Errors
    /// [`Error::ShapeOverflow`], [`Error::Allocation`] naming `context`.
    pub fn reduce(
        &self,
        table: &[f32],
        dim: usize,
        reduction: Reduction,
        context: &dyn Fn() -> String,
    ) -> Result<(Vec<f32>, Vec<usize>)> {
        let len = crate::tensor::checked_size(&[self.len(), dim], context)?;
        let mut out = try_zeroed(len, context)?;
        let mut argmax = Vec::new();
        if reduction == Reduction::Max {
            argmax
                .try_reserve_exact(len)
                .map_err(|_| Error::Allocation {
                    context: context(),
                    bytes: len.saturating_mul(std::mem::size_of::<usize>()),
                })?;
            argmax.resize(len, 0);
        }
        if dim == 0 {
            return Ok((out, argmax));
        }
        #[cfg(feature = "rayon")]
        if self.rows.len().saturating_mul(dim) >= PARALLEL_REDUCE_VALUES
            && rayon::current_num_threads() > 1
        {
            use rayon::prelude::*;
            // Tasks of about 64 Ki values read from the table.
            let per_bag = (self.rows.len() / self.len().max(1)).max(1);
            let bags_per_task = ((1usize << 16) / (per_bag * dim)).max(1);
            let chunk = bags_per_task * dim;
            if argmax.is_empty() {
                out.par_chunks_mut(chunk).enumerate().for_each(|(t, out)| {
                    self.reduce_range(t * bags_per_task, table, dim, reduction, out, None);
                });
            } else {
                out.par_chunks_mut(chunk)
                    .zip(argmax.par_chunks_mut(chunk))
                    .enumerate()
                    .for_each(|(t, (out, arg))| {
                        self.reduce_range(t * bags_per_task, table, dim, reduction, out, Some(arg));
                    });
            }
            return Ok((out, argmax));
        }
        let arg = (!argmax.is_empty()).then_some(argmax.as_mut_slice());
        self.reduce_range(0, table, dim, reduction, &mut out, arg);
        Ok((out, argmax))
    }

    /// The row-sparse gradient of the table for `gradient` (`(len(), dim)` row-major, the
    /// gradient of the reduced output): the distinct rows that received a gradient, sorted,
    /// and one summed gradient row each. Sum and mean: every included entry's row gets its
    /// bag's gradient times its weight over the bag's divisor (rows of zero-weight entries
    /// are listed, with zeros, as in PyTorch's sparse gradient). Max: each value's gradient
    /// goes to the row the maximum came from (`argmax`, from [`Bags::reduce`]); empty bags
    /// give nothing.
    ///
    /// # Errors
    /// [`Error::Allocation`] naming `context`.
    pub fn table_gradient(
        &self,
        gradient: &[f32],
        dim: usize,
        reduction: Reduction,
        argmax: &[usize],
        context: &dyn Fn() -> String,
    ) -> Result<(Vec<usize>, Array2<f32>)> {
        let too_big = |count: usize, size: usize| Error::Allocation {
            context: context(),
            bytes: count.saturating_mul(size),
        };
        // (row, bag, coefficient) of every contribution, sorted by row (then by position).
        let mut contributions: Vec<(usize, usize, f32)> = Vec::new();
        if reduction == Reduction::Max {
            let bags = self.len();
            contributions
                .try_reserve_exact(bags)
                .map_err(|_| too_big(bags, 24))?;
            for b in 0..bags {
                if self.entries(b).any(|i| self.included(i)) {
                    for &row in argmax.get(b * dim..(b + 1) * dim).unwrap_or_default() {
                        contributions.push((row, b, 1.0));
                    }
                }
            }
        } else {
            contributions
                .try_reserve_exact(self.rows.len())
                .map_err(|_| too_big(self.rows.len(), 24))?;
            for b in 0..self.len() {
                let Some(divisor) = self.divisor(b, reduction) else {
                    // divide_no_nan: the output is zero whatever the rows, so is their gradient;
                    // the rows are still listed, as the lookup read them.
                    for i in self.entries(b).filter(|&i| self.included(i)) {
                        contributions.push((self.rows[i], b, 0.0));
                    }
                    continue;
                };
                // PyTorch's mean backward multiplies by `1 / bag_size`.
                let scale = 1.0 / divisor;
                for i in self.entries(b).filter(|&i| self.included(i)) {
                    let coefficient = match (reduction, self.weights) {
                        (Reduction::Sum, None) => 1.0,
                        (Reduction::Sum, Some(_)) => self.weight(i),
                        (_, None) => scale,
                        (_, Some(_)) => self.weight(i) * scale,
                    };
                    contributions.push((self.rows[i], b, coefficient));
                }
            }
        }
        contributions.sort_by_key(|&(row, ..)| row);
        let mut rows: Vec<usize> = Vec::new();
        rows.try_reserve_exact(contributions.len())
            .map_err(|_| too_big(contributions.len(), 8))?;
        for &(row, ..) in &contributions {
            if rows.last() != Some(&row) {
                rows.push(row);
            }
        }
        let len = crate::tensor::checked_size(&[rows.len(), dim], context)?;
        let mut values = try_zeroed(len, context)?;
        if reduction == Reduction::Max {
            for b in 0..self.len() {
                if !self.entries(b).any(|i| self.included(i)) {
                    continue;
                }
                let args = argmax.get(b * dim..(b + 1) * dim).unwrap_or_default();
                let grads = gradient.get(b * dim..(b + 1) * dim).unwrap_or_default();
                for (d, (&row, &g)) in args.iter().zip(grads).enumerate() {
                    if let Ok(k) = rows.binary_search(&row)
                        && let Some(v) = values.get_mut(k * dim + d)
                    {
                        *v += g;
                    }
                }
            }
        } else {
            let mut k = 0;
            for (index, &(row, b, coefficient)) in contributions.iter().enumerate() {
                if index > 0 && contributions[index - 1].0 != row {
                    k += 1;
                }
                let (Some(target), Some(source)) = (
                    values.get_mut(k * dim..(k + 1) * dim),
                    gradient.get(b * dim..(b + 1) * dim),
                ) else {
                    continue;
                };
                if coefficient == 1.0 {
                    target.iter_mut().zip(source).for_each(|(t, &g)| *t += g);
                } else {
                    target
                        .iter_mut()
                        .zip(source)
                        .for_each(|(t, &g)| *t += g * coefficient);
                }
            }
        }
        let count = rows.len();
        let values =
            Array2::from_shape_vec((count, dim), values).map_err(|_| Error::ShapeOverflow {
                context: context(),
                shape: vec![count, dim],
            })?;
        Ok((rows, values))
    }

    /// The distinct rows the reduction reads, sorted (what training brings up to date before
    /// the forward pass).
    pub fn rows_read(&self) -> Vec<usize> {
        let mut rows: Vec<usize> = (0..self.rows.len())
            .filter(|&i| self.included(i))
            .map(|i| self.rows[i])
            .collect();
        rows.sort_unstable();
        rows.dedup();
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Vec<f32> {
        vec![0.0, 1.0, 2.0, 3.0, 4.0, -5.0, 4.0, 9.0]
    }

    fn bags<'a>(rows: Vec<usize>, bounds: Vec<usize>) -> Bags<'a> {
        Bags {
            rows,
            bounds,
            weights: None,
            padding: None,
            keep: None,
        }
    }

    #[test]
    fn max_keeps_the_first_row_on_ties_and_records_it() {
        let b = bags(vec![2, 3, 1], vec![0, 3]);
        let (out, arg) = b.reduce(&table(), 2, Reduction::Max, &String::new).unwrap();
        assert_eq!(out, vec![4.0, 9.0]);
        assert_eq!(arg, vec![2, 3]);
    }

    #[test]
    fn empty_and_all_padding_bags_give_zeros_and_no_gradient_under_max() {
        let mut b = bags(vec![1, 1], vec![0, 0, 2]);
        b.padding = Some(1);
        let (out, arg) = b.reduce(&table(), 2, Reduction::Max, &String::new).unwrap();
        assert_eq!(out, vec![0.0; 4]);
        let (rows, values) = b
            .table_gradient(&[1.0; 4], 2, Reduction::Max, &arg, &String::new)
            .unwrap();
        assert!(rows.is_empty() && values.is_empty());
    }

    #[test]
    fn mean_divides_by_the_rows_left_after_padding() {
        let mut b = bags(vec![1, 0, 2], vec![0, 3]);
        b.padding = Some(0);
        let (out, _) = b
            .reduce(&table(), 2, Reduction::Mean, &String::new)
            .unwrap();
        assert_eq!(out, vec![3.0, -1.0]);
        let (rows, values) = b
            .table_gradient(&[2.0, 4.0], 2, Reduction::Mean, &[], &String::new)
            .unwrap();
        assert_eq!(rows, vec![1, 2]);
        assert_eq!(values.as_slice().unwrap(), &[1.0, 2.0, 1.0, 2.0]);
    }
}
