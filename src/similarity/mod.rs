//! Nearest neighbours in an embedding table: exact top-k search by cosine similarity or dot
//! product, by vector, by id, by token and by analogy, over an owned or a memory-mapped table
//! without copying it; and (with the `ann` feature) an approximate HNSW index in `similarity::ann`.
//!
//! ```
//! use ndarray::array;
//! use ndkeras::similarity::{Similarity, SimilarityIndex};
//!
//! let table = array![[1.0f32, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]];
//! let index = SimilarityIndex::new(table.view(), Similarity::Cosine)?;
//! // The two rows nearest to row 0, row 0 itself left out (as gensim and finalfusion do).
//! let nearest = index.most_similar_to_id(0, 2, &[])?;
//! assert_eq!(nearest.iter().map(|n| n.id).collect::<Vec<_>>(), vec![1, 2]);
//! assert!((nearest[0].similarity - 0.9 / 0.82f32.sqrt()).abs() < 1e-6);
//! // Any vector, here excluding row 1 by request.
//! let nearest = index.most_similar(array![1.0f32, 0.05].view(), 1, &[1])?;
//! assert_eq!(nearest[0].id, 0);
//! # Ok::<(), ndkeras::Error>(())
//! ```
//!
//! # What is guaranteed
//! - **Exact.** Every row is scored; the result is the best `k` rows, best first. Scores are
//!   float32: a query's dot product with a row, divided by the row's norm for
//!   [`Similarity::Cosine`] (the query is unit-normalised first), as gensim's
//!   `dot(vectors, mean) / norms`.
//! - **Order.** Higher similarity first; equal similarities by ascending id (`-0.0` equals
//!   `0.0`). So a result never depends on the number of threads or on how the table was
//!   split; and a query gets the same scores, to the bit, alone or in a batch (both go through
//!   the same matrix product).
//! - **Fewer than `k`.** `k` larger than what is left after the exclusions returns every row
//!   that is left, in order. `k == 0` is an [`Error::InvalidArgument`].
//! - **Exclusions.** Ids given in `exclude` never appear. A search by id leaves that id out; an
//!   analogy or a combination leaves its input ids out (gensim's `most_similar` does both)
//!   unless asked not to ([`InputIds::Include`]). A search by token leaves out the
//!   vocabulary's special ids (the mask id and `[UNK]`), which are not words.
//! - **Zero vectors under cosine.** A row whose norm is zero scores `0.0` against every query
//!   (finalfusion's behaviour, whose normalised storage leaves a zero row zero; gensim divides
//!   by the zero norm and ranks NaNs unpredictably). A query, an id or an analogy input whose
//!   norm is zero has no direction: an [`Error::InvalidArgument`], not a silent ranking by id.
//! - **Finite values.** [`SimilarityIndex::new`] reads the table once (to compute the norms,
//!   cached in the index) and refuses NaN and infinite values, naming the row and column (a
//!   memory-mapped table is not checked when it is opened). Queries are checked likewise.
//!   Only products that overflow float32 can still give an infinite score, or a NaN, which
//!   ranks below every number.
//! - **Errors, never panics**, for an empty table, a query of the wrong length, an id out of
//!   range, a token the vocabulary lacks, a vocabulary that does not match the table.
//!
//! # Speed
//! A batch of queries is scored as matrix products over blocks of table rows (512 rows at a
//! time, up to 1,024 queries per pass), so each block is read from memory once per batch and
//! the products run at the speed of ndarray's matrix multiplication instead of one
//! matrix-vector loop per query. With the `rayon` feature (on by default) the blocks are split
//! across threads; each part keeps a bounded heap of `k` per query and the parts are merged
//! (unless the heaps of a batch exceed 4M entries, e.g. `k` = 5,000 for 1,000 queries: then
//! one thread scans, so that memory stays that of one set of heaps).
//! `benches/similarity.rs` measures 1,000 queries over a 400k x 300 table against a
//! one-query-at-a-time loop in the same run.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

use crate::error::{Error, Result};
use crate::io::vocabulary::{OOV_TOKEN, Vocabulary};
use crate::layer::Layer;
use crate::layers::Embedding;

#[cfg(feature = "ann")]
pub mod ann;
mod scan;
mod top_k;

#[cfg(feature = "ann")]
use scan::unit_queries;
use scan::{norm_f64, prepare_queries, row_norms};
#[cfg(feature = "ann")]
use top_k::TopK;

/// How a row is compared with a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Similarity {
    /// `q·r / (|q| |r|)`, in `[-1, 1]`; a zero row scores `0.0`. The default, as in gensim
    /// and finalfusion.
    #[default]
    Cosine,
    /// `q·r`, the raw inner product (what a model's output layer computes against a tied
    /// table).
    Dot,
}

/// Whether the ids a query is made of (an analogy's three words, a combination's positives
/// and negatives) may appear among its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputIds {
    /// Leave them out, as gensim's `most_similar` and finalfusion's `analogy` do. The default.
    #[default]
    Exclude,
    /// Keep them (finalfusion's `analogy_masked` with no mask): in an analogy the answer is
    /// then often one of the inputs.
    Include,
}

/// A row of the table and its similarity to the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    /// The row's id (its index in the table).
    pub id: usize,
    /// Cosine similarity or dot product, as the index's [`Similarity`].
    pub similarity: f32,
}

impl Neighbour {
    /// The token of this id in `vocabulary`, if it has one.
    pub fn token<'v>(&self, vocabulary: &'v Vocabulary) -> Option<&'v str> {
        i64::try_from(self.id)
            .ok()
            .and_then(|id| vocabulary.token(id))
    }
}

/// A [`Neighbour`] with its token, from the searches through a [`Vocabulary`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenNeighbour<'v> {
    /// The row's token.
    pub token: &'v str,
    /// The row's id.
    pub id: usize,
    /// Cosine similarity or dot product, as the index's [`Similarity`].
    pub similarity: f32,
}

/// Exact nearest-neighbour search over a borrowed `(rows, dims)` float32 table.
///
/// The index borrows the table (an owned array, an [`Embedding`]'s table, a memory map) and
/// keeps only its row norms (8 bytes a row, float64), computed once by
/// [`SimilarityIndex::new`]. It is `Send + Sync`: one index serves many threads.
///
/// A memory-mapped table is searched in place (`MappedTable::view`, or
/// [`SimilarityIndex::from_embedding`] on [`Embedding::from_mapped`]):
///
/// ```
/// # #[cfg(feature = "mmap")] {
/// use ndarray::array;
/// use ndkeras::io::npy::{map_npy, write_npy};
/// use ndkeras::similarity::{Similarity, SimilarityIndex};
///
/// let path = std::env::temp_dir().join(format!("ndkeras-doc-similarity-{}.npy", std::process::id()));
/// write_npy(&path, &array![[0.0f32, 1.0], [1.0, 0.0], [2.0, 0.1]].into_dyn().view())?;
/// let mapped = map_npy(&path)?;
/// let index = SimilarityIndex::new(mapped.view(), Similarity::Dot)?;
/// let nearest = index.most_similar(array![1.0f32, 0.0].view(), 3, &[])?;
/// assert_eq!(nearest.iter().map(|n| n.id).collect::<Vec<_>>(), vec![2, 1, 0]);
/// # drop(index); drop(mapped); std::fs::remove_file(&path).ok();
/// # }
/// # Ok::<(), ndkeras::Error>(())
/// ```
#[derive(Clone)]
pub struct SimilarityIndex<'t> {
    /// Borrowed (an owned or mapped float32 table), or decoded once (a quantized or
    /// half-precision layer's table).
    table: ndarray::CowArray<'t, f32, ndarray::Ix2>,
    /// Euclidean norm of every row, in float64 (the norm of a row of finite float32 values
    /// can exceed `f32::MAX`).
    norms: Vec<f64>,
    metric: Similarity,
}

impl std::fmt::Debug for SimilarityIndex<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimilarityIndex")
            .field("rows", &self.rows())
            .field("dims", &self.dims())
            .field("metric", &self.metric)
            .finish()
    }
}

/// Which query a message is about: `"query 3"`, `"id 17"`, ...
type Describe<'a> = &'a dyn Fn(usize) -> String;

impl<'t> SimilarityIndex<'t> {
    /// An index over `table`, one row per id. Reads the table once, in parallel with the
    /// `rayon` feature: computes and caches the row norms and checks that every value is
    /// finite.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a table with no rows or no columns, or holding a NaN or
    /// infinite value (named with its row and column); [`Error::Allocation`] when the norms do
    /// not fit in memory.
    pub fn new(table: ArrayView2<'t, f32>, metric: Similarity) -> Result<Self> {
        SimilarityIndex::over(ndarray::CowArray::from(table), metric)
    }

    fn over(table: ndarray::CowArray<'t, f32, ndarray::Ix2>, metric: Similarity) -> Result<Self> {
        let owner = "SimilarityIndex::new";
        if table.nrows() == 0 || table.ncols() == 0 {
            return Err(Error::invalid_argument(
                owner,
                "table",
                format!("shape ({}, {})", table.nrows(), table.ncols()),
                "a table with at least one row and one column",
            ));
        }
        let norms = row_norms(table.view())?;
        if let Some(row) = norms.iter().position(|n| !n.is_finite()) {
            // Only a non-finite value makes a float64 sum of squared float32 values
            // non-finite, so the row holds one.
            let (column, value) = table
                .row(row)
                .iter()
                .copied()
                .enumerate()
                .find(|(_, v)| !v.is_finite())
                .unwrap_or((0, f32::NAN));
            return Err(Error::invalid_argument(
                owner,
                "table",
                format!("{value} at row {row}, column {column}"),
                "finite float32 values only",
            ));
        }
        Ok(SimilarityIndex {
            table,
            norms,
            metric,
        })
    }

    /// An index over a built layer's table: an owned or memory-mapped float32 table is
    /// searched where it is (no copy); a quantized or half-precision table is decoded once
    /// into a float32 copy the index owns (the float32 table's size, allocated fallibly).
    ///
    /// # Errors
    /// [`Error::NotBuilt`] when the layer has no table yet; [`Error::Allocation`] for the
    /// decoded copy; the errors of [`SimilarityIndex::new`].
    pub fn from_embedding(layer: &'t Embedding, metric: Similarity) -> Result<Self> {
        if let Some(table) = layer.table_view() {
            return SimilarityIndex::new(table, metric);
        }
        let not_built = || Error::NotBuilt {
            context: format!("SimilarityIndex::from_embedding(\"{}\")", layer.name()),
            what: "the embedding table".into(),
            hint: "build the layer (call it once, or add it to a model) before searching it".into(),
        };
        if !layer.is_built() {
            return Err(not_built());
        }
        // Every row through the layer's own decoding (the lookup a model would make).
        let rows = layer.input_dim();
        let mut decoded = crate::storage::try_zeroed(rows * layer.output_dim(), || {
            format!(
                "SimilarityIndex::from_embedding(\"{}\"): the decoded table",
                layer.name()
            )
        })?;
        let ids = crate::tensor::Tensor::from(ndarray::Array1::from_iter(0..rows));
        {
            let mut out = ndarray::ArrayViewMutD::from_shape(
                ndarray::IxDyn(&[rows, layer.output_dim()]),
                &mut decoded,
            )
            .map_err(|_| not_built())?;
            layer.lookup_into(&ids, out.view_mut())?;
        }
        let table = ndarray::Array2::from_shape_vec((rows, layer.output_dim()), decoded)
            .map_err(|_| not_built())?;
        SimilarityIndex::over(ndarray::CowArray::from(table), metric)
    }

    /// The number of rows (ids).
    pub fn rows(&self) -> usize {
        self.table.nrows()
    }

    /// The length of each row, which every query must have.
    pub fn dims(&self) -> usize {
        self.table.ncols()
    }

    /// How rows are scored.
    pub fn metric(&self) -> Similarity {
        self.metric
    }

    /// The table searched.
    pub fn table(&self) -> ArrayView2<'_, f32> {
        self.table.view()
    }

    /// The Euclidean norm of every row, as cached by [`SimilarityIndex::new`], in float64
    /// (a row of finite float32 values can have a norm above `f32::MAX`).
    pub fn norms(&self) -> &[f64] {
        &self.norms
    }

    /// The `k` rows most similar to `query` (a vector of [`dims`](Self::dims) values), best
    /// first, leaving out the ids in `exclude`.
    ///
    /// # Errors
    /// [`Error::IncompatibleShape`] for a query of the wrong length; [`Error::InvalidArgument`]
    /// for `k == 0`, a NaN or infinite query value, a zero query under [`Similarity::Cosine`], or
    /// an excluded id out of range.
    pub fn most_similar(
        &self,
        query: ArrayView1<'_, f32>,
        k: usize,
        exclude: &[usize],
    ) -> Result<Vec<Neighbour>> {
        let queries = query.insert_axis(Axis(0));
        let mut results = self.search(
            "SimilarityIndex::most_similar",
            queries,
            &|_| "the query".to_string(),
            k,
            exclude,
            &[],
        )?;
        Ok(results.pop().unwrap_or_default())
    }

    /// [`most_similar`](Self::most_similar) for each row of `queries` `(n, dims)`, in one
    /// blocked pass over the table per 1,024 queries. Returns one list per query, in order.
    ///
    /// # Errors
    /// As [`most_similar`](Self::most_similar), naming the query (its row in `queries`);
    /// [`Error::Allocation`] when the heaps of `n` queries do not fit in memory.
    pub fn most_similar_batch(
        &self,
        queries: ArrayView2<'_, f32>,
        k: usize,
        exclude: &[usize],
    ) -> Result<Vec<Vec<Neighbour>>> {
        self.search(
            "SimilarityIndex::most_similar_batch",
            queries,
            &|q| format!("query {q}"),
            k,
            exclude,
            &[],
        )
    }

    /// The `k` rows most similar to row `id`, best first, leaving out `id` itself and the ids
    /// in `exclude` (gensim's `most_similar(key)`, finalfusion's `word_similarity`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an id out of range, `k == 0`, a zero row under
    /// [`Similarity::Cosine`], or an excluded id out of range.
    pub fn most_similar_to_id(
        &self,
        id: usize,
        k: usize,
        exclude: &[usize],
    ) -> Result<Vec<Neighbour>> {
        let mut results = self.most_similar_to_ids(&[id], k, exclude)?;
        Ok(results.pop().unwrap_or_default())
    }

    /// [`most_similar_to_id`](Self::most_similar_to_id) for many ids at once (one blocked pass
    /// per 1,024 ids); each search leaves out its own id.
    ///
    /// # Errors
    /// As [`most_similar_to_id`](Self::most_similar_to_id).
    pub fn most_similar_to_ids(
        &self,
        ids: &[usize],
        k: usize,
        exclude: &[usize],
    ) -> Result<Vec<Vec<Neighbour>>> {
        let owner = "SimilarityIndex::most_similar_to_ids";
        for &id in ids {
            self.check_id(owner, "ids", id)?;
        }
        let mut queries = Array2::from_shape_vec(
            (ids.len(), self.dims()),
            crate::storage::try_zeroed(ids.len().saturating_mul(self.dims()), || {
                format!("{owner}: the rows of {} ids", ids.len())
            })?,
        )
        .map_err(|_| Error::ShapeOverflow {
            context: format!("{owner}: the rows of the ids"),
            shape: vec![ids.len(), self.dims()],
        })?;
        for (mut query, &id) in queries.outer_iter_mut().zip(ids) {
            query.assign(&self.table.row(id));
        }
        let own: Vec<Vec<usize>> = ids.iter().map(|&id| vec![id]).collect();
        self.search(
            owner,
            queries.view(),
            &|q| format!("id {}", ids.get(q).copied().unwrap_or(q)),
            k,
            exclude,
            &own,
        )
    }

    /// The `k` rows most similar to the row of `token` in `vocabulary` (whose ids must be the
    /// table's rows), leaving out the token itself and the vocabulary's special ids (mask and
    /// `[UNK]`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a token the vocabulary lacks, or a vocabulary whose
    /// length is not the table's rows; the errors of
    /// [`most_similar_to_id`](Self::most_similar_to_id).
    pub fn most_similar_to_token<'v>(
        &self,
        vocabulary: &'v Vocabulary,
        token: &str,
        k: usize,
    ) -> Result<Vec<TokenNeighbour<'v>>> {
        let owner = "SimilarityIndex::most_similar_to_token";
        let id = self.token_id(owner, vocabulary, token)?;
        let found = self.most_similar_to_id(id, k, &special_ids(vocabulary))?;
        Ok(with_tokens(found, vocabulary))
    }

    /// Gensim's `most_similar(positive=positive, negative=negative)`: the query is the mean
    /// of the unit-normalised rows, weighted `+1` for each positive id and `-1` for each
    /// negative one, divided by the sum of the weights' magnitudes and unit-normalised again
    /// (`get_mean_vector(..., pre_normalize=True, post_normalize=True)`); rows are then scored
    /// against it by the index's metric (gensim always uses cosine). Ids may repeat, as in
    /// gensim.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for no ids at all, an id out of range, an input row whose
    /// norm is zero, a combination that cancels out to the zero vector, `k == 0`, or an
    /// excluded id out of range.
    pub fn most_similar_combination(
        &self,
        positive: &[usize],
        negative: &[usize],
        k: usize,
        exclude: &[usize],
        inputs: InputIds,
    ) -> Result<Vec<Neighbour>> {
        let owner = "SimilarityIndex::most_similar_combination";
        let query = self.combination(owner, positive, negative)?;
        let own = match inputs {
            InputIds::Exclude => vec![positive.iter().chain(negative).copied().collect()],
            InputIds::Include => Vec::new(),
        };
        let query = query.insert_axis(Axis(0));
        let mut results = self.search_prepared(owner, query.view(), k, exclude, &own)?;
        Ok(results.pop().unwrap_or_default())
    }

    /// The analogy "`a` is to `b` as `c` is to ?" by 3CosAdd, exactly as gensim's
    /// `most_similar(positive=[b, c], negative=[a])` (so `king - man + woman` is
    /// `analogy(man, king, woman, k)`), leaving out the three input ids.
    ///
    /// # Errors
    /// As [`most_similar_combination`](Self::most_similar_combination).
    pub fn analogy(&self, a: usize, b: usize, c: usize, k: usize) -> Result<Vec<Neighbour>> {
        self.most_similar_combination(&[b, c], &[a], k, &[], InputIds::Exclude)
    }

    /// [`analogy`](Self::analogy) by tokens: `[a, b, c]` reads "`a` is to `b` as `c` is to
    /// ?". Leaves out the three inputs and the vocabulary's special ids.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a token the vocabulary lacks, or a vocabulary whose
    /// length is not the table's rows; the errors of [`analogy`](Self::analogy).
    pub fn analogy_tokens<'v>(
        &self,
        vocabulary: &'v Vocabulary,
        [a, b, c]: [&str; 3],
        k: usize,
    ) -> Result<Vec<TokenNeighbour<'v>>> {
        let owner = "SimilarityIndex::analogy_tokens";
        let a = self.token_id(owner, vocabulary, a)?;
        let b = self.token_id(owner, vocabulary, b)?;
        let c = self.token_id(owner, vocabulary, c)?;
        let found = self.most_similar_combination(
            &[b, c],
            &[a],
            k,
            &special_ids(vocabulary),
            InputIds::Exclude,
        )?;
        Ok(with_tokens(found, vocabulary))
    }

    fn check_id(&self, owner: &str, parameter: &str, id: usize) -> Result<()> {
        if id < self.rows() {
            Ok(())
        } else {
            Err(Error::invalid_argument(
                owner,
                parameter,
                id,
                format!("ids in [0, {}) (the table's rows)", self.rows()),
            ))
        }
    }

    fn token_id(&self, owner: &str, vocabulary: &Vocabulary, token: &str) -> Result<usize> {
        if vocabulary.len() != self.rows() {
            return Err(Error::invalid_argument(
                owner,
                "vocabulary",
                format!("a vocabulary of {} ids", vocabulary.len()),
                format!(
                    "one id per table row ({} rows): the vocabulary the table was built for",
                    self.rows()
                ),
            ));
        }
        let id = vocabulary.id(token);
        if id == vocabulary.oov_id() && token != OOV_TOKEN {
            return Err(Error::invalid_argument(
                owner,
                "token",
                format!("{token:?}"),
                "a token of the vocabulary",
            ));
        }
        usize::try_from(id).map_err(|_| {
            Error::invalid_argument(owner, "token", format!("{token:?}"), "a non-negative id")
        })
    }

    /// Gensim's `get_mean_vector(keys, weights, pre_normalize=True, post_normalize=True)` with
    /// weights `+1` (positive) and `-1` (negative), accumulated in float32 as gensim does.
    fn combination(
        &self,
        owner: &str,
        positive: &[usize],
        negative: &[usize],
    ) -> Result<Array1<f32>> {
        if positive.is_empty() && negative.is_empty() {
            return Err(Error::invalid_argument(
                owner,
                "positive",
                "[] (and no negative ids)",
                "at least one id",
            ));
        }
        let weighted = positive
            .iter()
            .map(|&id| (id, 1.0f32))
            .chain(negative.iter().map(|&id| (id, -1.0f32)));
        let mut mean = Array1::<f32>::zeros(self.dims());
        let mut total_weight = 0.0f32;
        for (id, weight) in weighted {
            let parameter = if weight > 0.0 { "positive" } else { "negative" };
            self.check_id(owner, parameter, id)?;
            let norm = self.norms[id];
            if norm == 0.0 {
                return Err(Error::invalid_argument(
                    owner,
                    parameter,
                    format!("id {id}, whose row is all zeros"),
                    "rows with a direction (a zero row cannot be unit-normalised)",
                ));
            }
            // `vectors[index] / norms[index]`, then `mean += weight * vec`.
            mean.zip_mut_with(&self.table.row(id), |m, &v| {
                *m += weight * (f64::from(v) / norm) as f32;
            });
            total_weight += weight.abs();
        }
        mean.mapv_inplace(|m| m / total_weight);
        let length = norm_f64(mean.view());
        if length == 0.0 {
            return Err(Error::invalid_argument(
                owner,
                "positive",
                format!("{positive:?} with negative {negative:?}"),
                "ids whose combination is not the zero vector",
            ));
        }
        let length = length as f32;
        mean.mapv_inplace(|m| m / length);
        Ok(mean)
    }

    /// Checks `queries`, unit-normalises them for cosine, and searches.
    fn search(
        &self,
        owner: &str,
        queries: ArrayView2<'_, f32>,
        describe: Describe<'_>,
        k: usize,
        exclude: &[usize],
        own: &[Vec<usize>],
    ) -> Result<Vec<Vec<Neighbour>>> {
        if queries.ncols() != self.dims() {
            return Err(Error::IncompatibleShape {
                context: format!(
                    "{owner}: queries must have the table's {} dims",
                    self.dims()
                ),
                expected: vec![None, Some(self.dims())],
                got: queries.shape().iter().map(|&d| Some(d)).collect(),
            });
        }
        let prepared = prepare_queries(owner, queries, describe, self.metric)?;
        self.search_prepared(owner, prepared.view(), k, exclude, own)
    }
}

/// The vocabulary's special ids: the mask id (with `mask_zero`) and the OOV id.
fn special_ids(vocabulary: &Vocabulary) -> Vec<usize> {
    (0..=usize::from(vocabulary.mask_zero())).collect()
}

fn with_tokens(found: Vec<Neighbour>, vocabulary: &Vocabulary) -> Vec<TokenNeighbour<'_>> {
    found
        .into_iter()
        .map(|n| TokenNeighbour {
            token: n.token(vocabulary).unwrap_or_default(),
            id: n.id,
            similarity: n.similarity,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn combination_follows_gensims_mean() {
        let table = array![[3.0f32, 4.0], [0.0, 2.0], [1.0, 0.0], [1.0, 1.0]];
        let index = SimilarityIndex::new(table.view(), Similarity::Cosine).unwrap();
        // (unit(row 1) + unit(row 2) - unit(row 0)) / 3, unit-normalised.
        let mean = index.combination("t", &[1, 2], &[0]).unwrap();
        let raw: [f64; 2] = [(0.0 + 1.0 - 0.6) / 3.0, (1.0 + 0.0 - 0.8) / 3.0];
        let length = (raw[0] * raw[0] + raw[1] * raw[1]).sqrt();
        assert!((f64::from(mean[0]) - raw[0] / length).abs() < 1e-6);
        assert!((f64::from(mean[1]) - raw[1] / length).abs() < 1e-6);
    }
}
