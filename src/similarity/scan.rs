//! The exact search itself: queries checked and normalised, the table scored block by block
//! with matrix products, the blocks split across threads, one bounded heap per query.

use ndarray::{Array2, ArrayView1, ArrayView2, s};

use super::top_k::TopK;
use super::{Describe, Neighbour, Similarity, SimilarityIndex};
use crate::error::{Error, Result};

/// Table rows scored together: 512 rows of 300 floats are 600 KB, which stay in the cache
/// while a batch of queries is multiplied with them.
const BLOCK_ROWS: usize = 512;

/// Queries scored in one pass over the table: the scores of a block (1,024 x 512 floats,
/// 2 MB per thread) stay small while the table is read once per 1,024 queries.
const QUERY_BATCH: usize = 1024;

/// Heap entries of one query batch (queries x k) above which the table is not split across
/// threads: 4M entries are 96 MB per part.
#[cfg(feature = "rayon")]
const PARALLEL_HEAP_ENTRIES: usize = 1 << 22;

impl SimilarityIndex<'_> {
    /// Top-k over the whole table for queries that are ready to multiply.
    pub(super) fn search_prepared(
        &self,
        owner: &str,
        queries: ArrayView2<'_, f32>,
        k: usize,
        exclude: &[usize],
        own: &[Vec<usize>],
    ) -> Result<Vec<Vec<Neighbour>>> {
        if k == 0 {
            return Err(Error::invalid_argument(
                owner,
                "k",
                0,
                "k >= 1 (the number of neighbours to return)",
            ));
        }
        let mut shared = exclude.to_vec();
        shared.sort_unstable();
        shared.dedup();
        if let Some(&last) = shared.last() {
            self.check_id(owner, "exclude", last)?;
        }
        let exclusions = Exclusions { shared, own };
        // A heap never needs more room than the table has rows.
        let k = k.min(self.rows());
        let mut results = Vec::new();
        results
            .try_reserve_exact(queries.nrows())
            .map_err(|_| Error::Allocation {
                context: format!("{owner}: results of {} queries", queries.nrows()),
                bytes: queries
                    .nrows()
                    .saturating_mul(std::mem::size_of::<Vec<Neighbour>>()),
            })?;
        let mut start = 0;
        while start < queries.nrows() {
            let end = start.saturating_add(QUERY_BATCH).min(queries.nrows());
            let batch = queries.slice(s![start..end, ..]);
            for top in self.scan_table(batch, start, k, &exclusions)? {
                results.push(top.into_sorted());
            }
            start = end;
        }
        Ok(results)
    }

    /// One pass over the table for a batch of queries (`first` is the batch's first query
    /// among all), split across threads by contiguous ranges of blocks.
    fn scan_table(
        &self,
        batch: ArrayView2<'_, f32>,
        first: usize,
        k: usize,
        exclusions: &Exclusions<'_>,
    ) -> Result<Vec<TopK>> {
        let blocks = self.rows().div_ceil(BLOCK_ROWS);
        // Each part keeps its own heaps until they are merged: with large heaps (a big `k` for
        // many queries) the parts would multiply the memory, so the table is scanned as one.
        #[cfg(feature = "rayon")]
        let parts = if batch.nrows().saturating_mul(k) > PARALLEL_HEAP_ENTRIES {
            1
        } else {
            blocks
                .min(rayon::current_num_threads().saturating_mul(4))
                .max(1)
        };
        #[cfg(not(feature = "rayon"))]
        let parts = 1;
        let ranges: Vec<(usize, usize)> = (0..parts)
            .map(|p| {
                let from = blocks * p / parts * BLOCK_ROWS;
                let to = (blocks * (p + 1) / parts * BLOCK_ROWS).min(self.rows());
                (from, to)
            })
            .collect();
        let scan =
            |&(from, to): &(usize, usize)| self.scan_rows(batch, first, from, to, k, exclusions);
        #[cfg(feature = "rayon")]
        let partial: Vec<Result<Vec<TopK>>> = {
            use rayon::prelude::*;
            ranges.par_iter().map(scan).collect()
        };
        #[cfg(not(feature = "rayon"))]
        let partial: Vec<Result<Vec<TopK>>> = ranges.iter().map(scan).collect();
        let mut merged: Option<Vec<TopK>> = None;
        for part in partial {
            let part = part?;
            match &mut merged {
                None => merged = Some(part),
                Some(merged) => {
                    for (into, from) in merged.iter_mut().zip(part) {
                        into.merge(from);
                    }
                }
            }
        }
        Ok(merged.unwrap_or_default())
    }

    /// Scores rows `from..to` against the batch, block by block, into one heap per query.
    fn scan_rows(
        &self,
        batch: ArrayView2<'_, f32>,
        first: usize,
        from: usize,
        to: usize,
        k: usize,
        exclusions: &Exclusions<'_>,
    ) -> Result<Vec<TopK>> {
        let queries = batch.nrows();
        let mut heaps = Vec::new();
        heaps
            .try_reserve_exact(queries)
            .map_err(|_| Error::Allocation {
                context: format!("similarity search: heaps for {queries} queries"),
                bytes: queries.saturating_mul(std::mem::size_of::<TopK>()),
            })?;
        for _ in 0..queries {
            heaps.push(TopK::new(k)?);
        }
        let block_len = BLOCK_ROWS.min(to.saturating_sub(from));
        let scores_len = queries.saturating_mul(block_len);
        let mut scores = Array2::from_shape_vec(
            (queries, block_len),
            crate::storage::try_zeroed(scores_len, || {
                format!("similarity search: scores of {queries} queries x {block_len} rows")
            })?,
        )
        .map_err(|_| Error::ShapeOverflow {
            context: "similarity search: a block of scores".into(),
            shape: vec![queries, block_len],
        })?;
        let mut start = from;
        while start < to {
            let end = (start + BLOCK_ROWS).min(to);
            let rows = self.table.slice(s![start..end, ..]);
            let mut block = scores.slice_mut(s![.., ..end - start]);
            // A matrix product even for one query (rather than a matrix-vector product, which
            // sums in another order): a query gets the same scores, to the bit, alone or in a
            // batch.
            ndarray::linalg::general_mat_mul(1.0, &batch, &rows.t(), 0.0, &mut block);
            let norms = &self.norms[start..end];
            for (q, (scores, heap)) in block.outer_iter().zip(heaps.iter_mut()).enumerate() {
                let query = first + q;
                for (offset, (&raw, &norm)) in scores.iter().zip(norms).enumerate() {
                    let similarity = match self.metric {
                        Similarity::Dot => raw,
                        Similarity::Cosine if norm > 0.0 => (f64::from(raw) / norm) as f32,
                        Similarity::Cosine => 0.0,
                    };
                    let id = start + offset;
                    if heap.accepts(similarity, id) && !exclusions.excludes(query, id) {
                        heap.push(similarity, id);
                    }
                }
            }
            start = end;
        }
        Ok(heaps)
    }
}

/// The ids a search leaves out: `shared` (sorted) for every query, `own[q]` for query `q`
/// only (its own id, or its inputs).
struct Exclusions<'a> {
    shared: Vec<usize>,
    own: &'a [Vec<usize>],
}

impl Exclusions<'_> {
    #[inline]
    fn excludes(&self, query: usize, id: usize) -> bool {
        self.shared.binary_search(&id).is_ok()
            || self.own.get(query).is_some_and(|own| own.contains(&id))
    }
}

/// A standard-layout copy of `queries`, checked finite, unit-normalised for cosine.
pub(super) fn prepare_queries(
    owner: &str,
    queries: ArrayView2<'_, f32>,
    describe: Describe<'_>,
    metric: Similarity,
) -> Result<Array2<f32>> {
    let mut prepared = crate::storage::try_to_owned(queries, || {
        format!("{owner}: a copy of {} queries", queries.nrows())
    })?;
    for (q, mut query) in prepared.outer_iter_mut().enumerate() {
        if let Some((column, value)) = query.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::invalid_argument(
                owner,
                "query",
                format!("{value} in {} at position {column}", describe(q)),
                "finite float32 values",
            ));
        }
        if metric == Similarity::Cosine {
            let norm = norm_f64(query.view());
            if norm == 0.0 {
                return Err(Error::invalid_argument(
                    owner,
                    "query",
                    format!("{}, which is all zeros", describe(q)),
                    "a vector with a direction: cosine similarity to a zero vector is undefined",
                ));
            }
            // In float64: the norm of finite float32 values can be below the smallest or
            // above the largest float32.
            query.mapv_inplace(|v| (f64::from(v) / norm) as f32);
        }
    }
    Ok(prepared)
}

/// [`prepare_queries`] for cosine similarity: checked and unit-normalised.
#[cfg(feature = "ann")]
pub(super) fn unit_queries(
    owner: &str,
    queries: ArrayView2<'_, f32>,
    describe: Describe<'_>,
) -> Result<Array2<f32>> {
    prepare_queries(owner, queries, describe, Similarity::Cosine)
}

/// The Euclidean norm of a float32 vector, summed in float64 (exact enough that the result
/// rounds to the nearest float32, and never overflows for finite values).
pub(super) fn norm_f64(values: ArrayView1<'_, f32>) -> f64 {
    values
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt()
}

/// The norm of every row (infinite or NaN for a row holding a non-finite value), in parallel
/// with the `rayon` feature.
pub(super) fn row_norms(table: ArrayView2<'_, f32>) -> Result<Vec<f64>> {
    let rows = table.nrows();
    let mut norms: Vec<f64> = Vec::new();
    norms
        .try_reserve_exact(rows)
        .map_err(|_| Error::Allocation {
            context: format!("SimilarityIndex::new: the norms of {rows} rows"),
            bytes: rows.saturating_mul(8),
        })?;
    norms.resize(rows, 0.0);
    let fill = |(chunk, norms): (usize, &mut [f64])| {
        let first = chunk * BLOCK_ROWS;
        for (offset, norm) in norms.iter_mut().enumerate() {
            *norm = norm_f64(table.row(first + offset));
        }
    };
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        norms.par_chunks_mut(BLOCK_ROWS).enumerate().for_each(fill);
    }
    #[cfg(not(feature = "rayon"))]
    norms.chunks_mut(BLOCK_ROWS).enumerate().for_each(fill);
    Ok(norms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_and_parts_cover_every_row_once() {
        // More rows than one block, not a multiple of it, and a batch larger than one pass.
        let rows = BLOCK_ROWS * 3 + 7;
        let table = Array2::from_shape_fn((rows, 3), |(i, j)| ((i * 7 + j * 3) % 11) as f32 - 5.0);
        let index = SimilarityIndex::new(table.view(), Similarity::Dot).unwrap();
        let queries = Array2::from_shape_fn((QUERY_BATCH + 3, 3), |(i, j)| ((i + j) % 5) as f32);
        let results = index.most_similar_batch(queries.view(), rows, &[]).unwrap();
        assert_eq!(results.len(), QUERY_BATCH + 3);
        for found in &results {
            let mut ids: Vec<usize> = found.iter().map(|n| n.id).collect();
            ids.sort_unstable();
            assert_eq!(ids, (0..rows).collect::<Vec<_>>());
        }
    }
}
