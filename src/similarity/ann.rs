//! Approximate nearest neighbours by cosine similarity: an HNSW graph (Malkov & Yashunin)
//! from the [`hnsw_rs`] crate, behind the `ann` feature.
//!
//! Built from an exact [`SimilarityIndex`] (same table, same checks), it answers in
//! microseconds what the exact search answers in a pass over the table, at the price of
//! recall: some true neighbours may be missed. `benches/similarity.rs` reports recall@10
//! against the exact search on the same queries.
//!
//! ```
//! use ndarray::Array2;
//! use ndkeras::similarity::ann::{HnswIndex, HnswOptions};
//! use ndkeras::similarity::{Similarity, SimilarityIndex};
//!
//! let table = Array2::from_shape_fn((200, 8), |(i, j)| ((i * 31 + j * 7) % 17) as f32 - 8.0);
//! let exact = SimilarityIndex::new(table.view(), Similarity::Cosine)?;
//! let approximate = HnswIndex::build(&exact, HnswOptions::default())?;
//! let found = approximate.most_similar(table.row(5), 3, &[5])?;
//! assert_eq!(found.len(), 3);
//! assert!(found.iter().all(|n| n.id != 5));
//! # Ok::<(), ndkeras::Error>(())
//! ```
//!
//! # What is guaranteed
//! - Results are ordered as the exact search's (similarity descending, ties by ascending id)
//!   and never hold an excluded id; they are approximate: a true neighbour may be missing.
//! - Similarities are cosines, `1 - d` for the graph's distance `d = 1 - q·r` between unit
//!   vectors (equal to the exact search's within float32 rounding). A zero row is stored as a
//!   zero vector and scores `0.0`, as in the exact search.
//! - Queries are checked as by the exact search (length, finite values, non-zero).
//! - Only [`Similarity::Cosine`]: inner products are not a distance, and HNSW's guarantees rest on
//!   one.
//!
//! # Memory
//! The graph holds its own unit-normalised copy of the table (`rows x dims x 4` bytes) plus
//! its links (about `2 * max_connections * 4` bytes a row). `hnsw_rs` allocates infallibly, so
//! [`HnswIndex::build`] first checks that a buffer of the copy's size can be reserved and
//! reports [`Error::Allocation`] if not.

use hnsw_rs::anndists::dist::distances::Distance;
use hnsw_rs::hnsw::Hnsw;
use ndarray::{ArrayView1, ArrayView2, Axis};

use super::{Neighbour, Similarity, SimilarityIndex, TopK, unit_queries};
use crate::error::{Error, Result};

/// The settings of an HNSW graph. Defaults: `max_connections` 16, `ef_construction` 200,
/// `ef_search` 64 (hnswlib's usual starting point).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswOptions {
    max_connections: usize,
    ef_construction: usize,
    ef_search: usize,
}

impl Default for HnswOptions {
    fn default() -> Self {
        HnswOptions {
            max_connections: 16,
            ef_construction: 200,
            ef_search: 64,
        }
    }
}

impl HnswOptions {
    /// Links kept per node and layer (HNSW's `M`), in `2..=256`. Default 16. More links:
    /// higher recall, more memory, slower build.
    pub fn max_connections(mut self, max_connections: usize) -> Self {
        self.max_connections = max_connections;
        self
    }

    /// Candidates explored while inserting a row, at least 1. Default 200. Higher: a better
    /// graph, a slower build.
    pub fn ef_construction(mut self, ef_construction: usize) -> Self {
        self.ef_construction = ef_construction;
        self
    }

    /// Candidates explored per query, at least 1 (raised to `k` plus the excluded ids when
    /// smaller). Default 64. Higher: higher recall, slower queries.
    pub fn ef_search(mut self, ef_search: usize) -> Self {
        self.ef_search = ef_search;
        self
    }

    fn check(&self) -> Result<()> {
        let owner = "HnswOptions";
        if !(2..=256).contains(&self.max_connections) {
            return Err(Error::invalid_argument(
                owner,
                "max_connections",
                self.max_connections,
                "a number of links in [2, 256]",
            ));
        }
        if self.ef_construction == 0 {
            return Err(Error::invalid_argument(
                owner,
                "ef_construction",
                0,
                "at least 1",
            ));
        }
        if self.ef_search == 0 {
            return Err(Error::invalid_argument(owner, "ef_search", 0, "at least 1"));
        }
        Ok(())
    }
}

/// `1 - a·b` for unit vectors, clamped at 0: `hnsw_rs` requires distances that are never
/// negative (it asserts so), and rounding can make the dot product of a unit vector with
/// itself exceed 1. (`hnsw_rs`' own `DistDot` asserts instead of clamping.)
#[derive(Debug, Clone, Copy, Default)]
struct UnitCosineDistance;

impl Distance<f32> for UnitCosineDistance {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        // Eight partial sums, which the compiler keeps in one vector register (a single
        // running sum cannot be vectorised: float addition is not associative).
        let mut lanes = [0.0f32; 8];
        let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
        let tail: f32 = a_chunks
            .remainder()
            .iter()
            .zip(b_chunks.remainder())
            .map(|(x, y)| x * y)
            .sum();
        for (x, y) in a_chunks.zip(b_chunks) {
            for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
                *lane += x * y;
            }
        }
        let dot = lanes.iter().sum::<f32>() + tail;
        (1.0 - dot).max(0.0)
    }
}

/// An approximate cosine nearest-neighbour index over a copy of a table.
pub struct HnswIndex {
    graph: Hnsw<'static, f32, UnitCosineDistance>,
    rows: usize,
    dims: usize,
    options: HnswOptions,
}

impl std::fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HnswIndex")
            .field("rows", &self.rows)
            .field("dims", &self.dims)
            .field("options", &self.options)
            .finish()
    }
}

impl HnswIndex {
    /// Builds the graph over the table of `exact`, inserting rows in parallel (with the `rayon`
    /// feature). Takes time: every row is a search of the graph built so far.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an index whose metric is not [`Similarity::Cosine`] or for
    /// bad options; [`Error::Allocation`] when a copy of the table cannot be reserved.
    pub fn build(exact: &SimilarityIndex<'_>, options: HnswOptions) -> Result<Self> {
        options.check()?;
        if exact.metric() != Similarity::Cosine {
            return Err(Error::invalid_argument(
                "HnswIndex::build",
                "metric",
                format!("{:?}", exact.metric()),
                "Similarity::Cosine (an HNSW graph needs a distance; inner products are not one)",
            ));
        }
        let (rows, dims) = (exact.rows(), exact.dims());
        let copy = rows.checked_mul(dims).ok_or_else(|| Error::ShapeOverflow {
            context: "HnswIndex::build: the copy of the table".into(),
            shape: vec![rows, dims],
        })?;
        let mut probe: Vec<f32> = Vec::new();
        probe
            .try_reserve_exact(copy)
            .map_err(|_| Error::Allocation {
                context: "HnswIndex::build: the graph's copy of the table".into(),
                bytes: copy.saturating_mul(4),
            })?;
        drop(probe);
        // hnsw_rs' recipe: one layer per factor of `max_connections`, at most 16.
        let layers = 16.min(((rows.max(2) as f64).ln().ceil() as usize).max(1));
        let mut graph = Hnsw::new(
            options.max_connections,
            rows,
            layers,
            options.ef_construction,
            UnitCosineDistance,
        );
        let table = exact.table();
        let norms = exact.norms();
        let insert = |id: usize| {
            let norm = norms.get(id).copied().unwrap_or(0.0);
            let unit: Vec<f32> = table
                .row(id)
                .iter()
                .map(|&v| {
                    if norm > 0.0 {
                        (f64::from(v) / norm) as f32
                    } else {
                        0.0
                    }
                })
                .collect();
            graph.insert_slice((&unit, id));
        };
        #[cfg(feature = "rayon")]
        {
            use rayon::prelude::*;
            (0..rows).into_par_iter().for_each(insert);
        }
        #[cfg(not(feature = "rayon"))]
        (0..rows).for_each(insert);
        graph.set_searching_mode(true);
        Ok(HnswIndex {
            graph,
            rows,
            dims,
            options,
        })
    }

    /// The number of rows indexed.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The length of each row.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// The options the graph was built with.
    pub fn options(&self) -> HnswOptions {
        self.options
    }

    /// About the `k` rows most similar to `query` by cosine, best first, leaving out the ids
    /// in `exclude`.
    ///
    /// # Errors
    /// As [`SimilarityIndex::most_similar`].
    pub fn most_similar(
        &self,
        query: ArrayView1<'_, f32>,
        k: usize,
        exclude: &[usize],
    ) -> Result<Vec<Neighbour>> {
        let mut found = self.most_similar_batch(query.insert_axis(Axis(0)), k, exclude)?;
        Ok(found.pop().unwrap_or_default())
    }

    /// [`most_similar`](Self::most_similar) for each row of `queries`, in parallel with the
    /// `rayon` feature.
    ///
    /// # Errors
    /// As [`SimilarityIndex::most_similar_batch`].
    pub fn most_similar_batch(
        &self,
        queries: ArrayView2<'_, f32>,
        k: usize,
        exclude: &[usize],
    ) -> Result<Vec<Vec<Neighbour>>> {
        let owner = "HnswIndex::most_similar";
        if k == 0 {
            return Err(Error::invalid_argument(
                owner,
                "k",
                0,
                "k >= 1 (the number of neighbours to return)",
            ));
        }
        if queries.ncols() != self.dims {
            return Err(Error::IncompatibleShape {
                context: format!("{owner}: queries must have the table's {} dims", self.dims),
                expected: vec![None, Some(self.dims)],
                got: queries.shape().iter().map(|&d| Some(d)).collect(),
            });
        }
        let mut exclude = exclude.to_vec();
        exclude.sort_unstable();
        exclude.dedup();
        if let Some(&last) = exclude.last()
            && last >= self.rows
        {
            return Err(Error::invalid_argument(
                owner,
                "exclude",
                last,
                format!("ids in [0, {}) (the table's rows)", self.rows),
            ));
        }
        let prepared = unit_queries(owner, queries, &|q| format!("query {q}"))?;
        let k = k.min(self.rows);
        // Ask for enough candidates that `k` remain after the exclusions.
        let wanted = k.saturating_add(exclude.len()).min(self.rows);
        let ef = self.options.ef_search.max(wanted);
        let search = |query: ArrayView1<'_, f32>| -> Result<Vec<Neighbour>> {
            let values = query.to_vec();
            let mut top = TopK::new(k)?;
            for found in self.graph.search(&values, wanted, ef) {
                if exclude.binary_search(&found.d_id).is_err() {
                    top.push(1.0 - found.distance, found.d_id);
                }
            }
            Ok(top.into_sorted())
        };
        #[cfg(feature = "rayon")]
        let results: Vec<Result<Vec<Neighbour>>> = {
            use rayon::prelude::*;
            let rows: Vec<ArrayView1<'_, f32>> = prepared.outer_iter().collect();
            rows.into_par_iter().map(search).collect()
        };
        #[cfg(not(feature = "rayon"))]
        let results: Vec<Result<Vec<Neighbour>>> = prepared.outer_iter().map(search).collect();
        results.into_iter().collect()
    }
}
