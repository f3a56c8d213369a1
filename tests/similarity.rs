//! Similarity search (`ndkeras::similarity`): exact top-k against a brute-force float64
//! reference written here, the order of ties, exclusions, memory-mapped tables, gensim's
//! analogy weighting, searches through a vocabulary, and the errors.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, array};
use ndkeras::Error;
use ndkeras::io::vocabulary::Vocabulary;
use ndkeras::layers::Embedding;
use ndkeras::similarity::{InputIds, Neighbour, Similarity, SimilarityIndex};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A table more than two blocks (512 rows) long, so that blocks and threads are exercised.
const ROWS: usize = 1300;
const DIMS: usize = 16;

fn random_table(rows: usize, dims: usize, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((rows, dims), |_| rng.random_range(-1.0f32..1.0))
}

fn norm64(v: ArrayView1<'_, f32>) -> f64 {
    v.iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt()
}

/// Every row scored in float64, sorted by similarity descending then id ascending.
fn reference(
    table: ArrayView2<'_, f32>,
    query: ArrayView1<'_, f32>,
    metric: Similarity,
    exclude: &[usize],
) -> Vec<(usize, f64)> {
    let query_norm = norm64(query);
    let mut all: Vec<(usize, f64)> = table
        .outer_iter()
        .enumerate()
        .filter(|(id, _)| !exclude.contains(id))
        .map(|(id, row)| {
            let dot: f64 = row
                .iter()
                .zip(query)
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum();
            let score = match metric {
                Similarity::Dot => dot,
                _ => {
                    let row_norm = norm64(row);
                    if row_norm == 0.0 {
                        0.0
                    } else {
                        dot / (row_norm * query_norm)
                    }
                }
            };
            (id, score)
        })
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all
}

/// The found neighbours are the reference's first `k`, in order, with the same scores; a
/// swap is only allowed between reference scores closer than float32 can tell apart.
fn assert_matches(found: &[Neighbour], expected: &[(usize, f64)], k: usize, what: &str) {
    let k = k.min(expected.len());
    assert_eq!(found.len(), k, "{what}: result length");
    for (position, (n, &(id, score))) in found.iter().zip(expected).enumerate() {
        let tolerance = 1e-5 * score.abs().max(1.0);
        assert!(
            (f64::from(n.similarity) - score).abs() < tolerance,
            "{what}: position {position}: similarity {} vs reference {score}",
            n.similarity
        );
        if n.id != id {
            let close = expected
                .iter()
                .find(|(other, _)| *other == n.id)
                .is_some_and(|&(_, s)| (s - score).abs() < tolerance);
            assert!(
                close,
                "{what}: position {position}: id {} vs reference {id}",
                n.id
            );
        }
    }
}

fn ids(found: &[Neighbour]) -> Vec<usize> {
    found.iter().map(|n| n.id).collect()
}

fn invalid_argument(err: Error, parameter: &str, words: &[&str]) {
    let message = err.to_string();
    match &err {
        Error::InvalidArgument { parameter: p, .. } => {
            assert_eq!(p, parameter, "{message}")
        }
        other => panic!("expected InvalidArgument about {parameter}, got {other:?}"),
    }
    for word in words {
        assert!(message.contains(word), "{message:?} lacks {word:?}");
    }
}

#[test]
fn exact_search_matches_a_float64_brute_force_for_both_metrics() {
    let table = random_table(ROWS, DIMS, 1);
    let queries = random_table(7, DIMS, 2);
    for metric in [Similarity::Cosine, Similarity::Dot] {
        let index = SimilarityIndex::new(table.view(), metric).unwrap();
        for (q, query) in queries.outer_iter().enumerate() {
            let found = index.most_similar(query, 10, &[]).unwrap();
            let expected = reference(table.view(), query, metric, &[]);
            assert_matches(&found, &expected, 10, &format!("{metric:?} query {q}"));
        }
    }
}

#[test]
fn batched_searches_equal_one_query_at_a_time() {
    let table = random_table(ROWS, DIMS, 3);
    let queries = random_table(40, DIMS, 4);
    let index = SimilarityIndex::new(table.view(), Similarity::Cosine).unwrap();
    let batch = index
        .most_similar_batch(queries.view(), 5, &[3, 4])
        .unwrap();
    assert_eq!(batch.len(), 40);
    for (query, found) in queries.outer_iter().zip(&batch) {
        assert_eq!(found, &index.most_similar(query, 5, &[3, 4]).unwrap());
    }
    let by_ids = index.most_similar_to_ids(&[0, 700, 1299], 4, &[]).unwrap();
    for (&id, found) in [0, 700, 1299].iter().zip(&by_ids) {
        assert_eq!(found, &index.most_similar_to_id(id, 4, &[]).unwrap());
    }
}

#[test]
fn search_by_id_leaves_the_id_out_and_matches_the_reference() {
    let table = random_table(ROWS, DIMS, 5);
    let index = SimilarityIndex::new(table.view(), Similarity::Cosine).unwrap();
    for id in [0, 511, 512, 1299] {
        let found = index.most_similar_to_id(id, 8, &[]).unwrap();
        assert!(!ids(&found).contains(&id));
        let expected = reference(table.view(), table.row(id), Similarity::Cosine, &[id]);
        assert_matches(&found, &expected, 8, &format!("id {id}"));
    }
}

#[test]
fn ties_are_ordered_by_ascending_id_across_blocks() {
    // Rows 5, 600 and 1100 are the same vector, in three different blocks (and parts).
    let mut table = Array2::from_shape_fn((ROWS, 4), |(i, j)| ((i * 7 + j * 13) % 10) as f32 - 4.5);
    for id in [1100, 5, 600] {
        table.row_mut(id).assign(&array![9.0f32, 9.0, -9.0, 1.0]);
    }
    for metric in [Similarity::Cosine, Similarity::Dot] {
        let index = SimilarityIndex::new(table.view(), metric).unwrap();
        let found = index
            .most_similar(array![9.0f32, 9.0, -9.0, 1.0].view(), 3, &[])
            .unwrap();
        assert_eq!(ids(&found), vec![5, 600, 1100], "{metric:?}");
        assert_eq!(found[0].similarity, found[2].similarity);
    }
    // Exact ties among small integers: all rows equal, the order is the ids'.
    let flat = Array2::from_elem((20, 3), 1.0f32);
    let index = SimilarityIndex::new(flat.view(), Similarity::Dot).unwrap();
    let found = index.most_similar_to_id(4, 5, &[]).unwrap();
    assert_eq!(ids(&found), vec![0, 1, 2, 3, 5]);
}

#[test]
fn exclusions_and_k_beyond_the_table() {
    let table = random_table(30, 4, 6);
    let index = SimilarityIndex::new(table.view(), Similarity::Cosine).unwrap();
    let query = table.row(0);
    let exclude = [0, 3, 3, 29, 7];
    let found = index.most_similar(query, 5, &exclude).unwrap();
    let expected = reference(table.view(), query, Similarity::Cosine, &exclude);
    assert_matches(&found, &expected, 5, "exclusions");
    // k beyond the table: every row that is left, in order.
    let all = index.most_similar(query, 1000, &exclude).unwrap();
    assert_eq!(all.len(), 26);
    assert_matches(&all, &expected, 1000, "everything");
    let all = index.most_similar_to_id(2, usize::MAX, &[]).unwrap();
    assert_eq!(all.len(), 29);
    // Everything excluded: nothing left.
    let everything: Vec<usize> = (0..30).collect();
    assert!(
        index
            .most_similar(query, 3, &everything)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn zero_rows_score_zero_under_cosine_and_zero_queries_are_errors() {
    let table = array![[1.0f32, 0.0], [0.0, 0.0], [-1.0, 0.0], [0.0, 1.0]];
    let index = SimilarityIndex::new(table.view(), Similarity::Cosine).unwrap();
    let found = index
        .most_similar(array![1.0f32, 0.0].view(), 4, &[])
        .unwrap();
    assert_eq!(ids(&found), vec![0, 1, 3, 2]);
    assert_eq!(found[1].similarity, 0.0);
    assert_eq!(index.norms(), &[1.0f64, 0.0, 1.0, 1.0]);

    let err = index
        .most_similar(array![0.0f32, 0.0].view(), 1, &[])
        .unwrap_err();
    invalid_argument(err, "query", &["all zeros", "direction"]);
    let err = index.most_similar_to_id(1, 1, &[]).unwrap_err();
    invalid_argument(err, "query", &["id 1", "all zeros"]);
    // A zero query has a dot product with every row: 0, ordered by id.
    let dot = SimilarityIndex::new(table.view(), Similarity::Dot).unwrap();
    let found = dot
        .most_similar(array![0.0f32, 0.0].view(), 2, &[])
        .unwrap();
    assert_eq!(ids(&found), vec![0, 1]);
}

#[cfg(feature = "mmap")]
#[test]
fn a_memory_mapped_table_is_searched_in_place() {
    let table = random_table(ROWS, DIMS, 7);
    let dir = std::env::temp_dir().join(format!("ndkeras-similarity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("table.npy");
    ndkeras::io::npy::write_npy(&path, &table.clone().into_dyn().view()).unwrap();
    check_mapped_search(&table, &path);
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(feature = "mmap")]
fn check_mapped_search(table: &Array2<f32>, path: &std::path::Path) {
    let mapped = ndkeras::io::npy::map_npy(path).unwrap();

    let owned = SimilarityIndex::new(table.view(), Similarity::Cosine).unwrap();
    let index = SimilarityIndex::new(mapped.view(), Similarity::Cosine).unwrap();
    // No copy: the index reads the map itself.
    assert_eq!(index.table().as_ptr(), mapped.as_slice().as_ptr());
    let queries = random_table(5, DIMS, 8);
    assert_eq!(
        index.most_similar_batch(queries.view(), 10, &[]).unwrap(),
        owned.most_similar_batch(queries.view(), 10, &[]).unwrap()
    );

    // Through a layer over the map, and over an owned table.
    let layer = Embedding::from_mapped(mapped.clone()).unwrap();
    let through_layer = SimilarityIndex::from_embedding(&layer, Similarity::Cosine).unwrap();
    assert_eq!(through_layer.table().as_ptr(), mapped.as_slice().as_ptr());
    assert_eq!(
        through_layer.most_similar_to_id(3, 6, &[]).unwrap(),
        owned.most_similar_to_id(3, 6, &[]).unwrap()
    );
    let owned_layer = Embedding::from_table(table.clone());
    let built = SimilarityIndex::from_embedding(&owned_layer, Similarity::Dot);
    if let Some(embeddings) = owned_layer.embeddings() {
        let direct = SimilarityIndex::new(embeddings.view(), Similarity::Dot).unwrap();
        assert_eq!(
            built.unwrap().most_similar_to_id(3, 6, &[]).unwrap(),
            direct.most_similar_to_id(3, 6, &[]).unwrap()
        );
    }
}

/// Gensim's `most_similar(positive, negative)` in float64: the mean of the unit rows
/// weighted +1/-1 over the sum of |weights|, unit-normalised, then cosine against every row.
fn gensim_combination(
    table: ArrayView2<'_, f32>,
    positive: &[usize],
    negative: &[usize],
) -> Array1<f32> {
    let mut mean = Array1::<f64>::zeros(table.ncols());
    let weighted = positive
        .iter()
        .map(|&i| (i, 1.0))
        .chain(negative.iter().map(|&i| (i, -1.0)));
    let mut total = 0.0;
    for (id, weight) in weighted {
        let row = table.row(id);
        let norm = norm64(row);
        mean.zip_mut_with(&row, |m, &v| *m += weight * f64::from(v) / norm);
        total += f64::abs(weight);
    }
    mean /= total;
    let length = mean.dot(&mean).sqrt();
    mean.mapv(|m| (m / length) as f32)
}

#[test]
fn analogy_is_gensims_3cosadd_with_the_inputs_left_out() {
    let table = random_table(ROWS, DIMS, 9);
    let index = SimilarityIndex::new(table.view(), Similarity::Cosine).unwrap();
    let (a, b, c) = (10, 600, 1200);
    let found = index.analogy(a, b, c, 10).unwrap();
    let query = gensim_combination(table.view(), &[b, c], &[a]);
    let expected = reference(table.view(), query.view(), Similarity::Cosine, &[a, b, c]);
    assert_matches(&found, &expected, 10, "analogy");

    let positive = [1, 2, 2];
    let negative = [3, 4];
    let found = index
        .most_similar_combination(&positive, &negative, 6, &[5], InputIds::Exclude)
        .unwrap();
    let query = gensim_combination(table.view(), &positive, &negative);
    let expected = reference(
        table.view(),
        query.view(),
        Similarity::Cosine,
        &[1, 2, 3, 4, 5],
    );
    assert_matches(&found, &expected, 6, "combination");

    // Keeping the inputs: a single positive id finds itself first.
    let found = index
        .most_similar_combination(&[42], &[], 2, &[], InputIds::Include)
        .unwrap();
    assert_eq!(found[0].id, 42);
    assert!((found[0].similarity - 1.0).abs() < 1e-6);
}

#[test]
fn king_minus_man_plus_woman_through_a_vocabulary() {
    // Directions: royalty, male, female, and a little noise to break symmetries.
    let words = [
        ("man", [0.0f32, 1.0, 0.0, 0.1]),
        ("woman", [0.0, 0.0, 1.0, 0.1]),
        ("king", [1.0, 1.0, 0.0, 0.0]),
        ("queen", [1.0, 0.0, 1.0, 0.05]),
        ("prince", [0.8, 0.9, 0.0, 0.3]),
        ("apple", [0.0, 0.1, 0.1, -1.0]),
    ];
    let vocabulary = Vocabulary::new(words.iter().map(|(w, _)| *w), true).unwrap();
    // Row 0 is the mask (zeros), row 1 [UNK]: made very similar to everything royal, to show
    // that special ids never come back.
    let mut table = Array2::<f32>::zeros((vocabulary.len(), 4));
    table.row_mut(1).assign(&array![1.0f32, 0.0, 1.0, 0.05]);
    for (i, (_, v)) in words.iter().enumerate() {
        table.row_mut(i + 2).assign(&ArrayView1::from(v));
    }
    let index = SimilarityIndex::new(table.view(), Similarity::Cosine).unwrap();
    let found = index
        .analogy_tokens(&vocabulary, ["man", "king", "woman"], 2)
        .unwrap();
    assert_eq!(found[0].token, "queen");
    assert_eq!(found[0].id, vocabulary.id("queen") as usize);
    assert!(found.iter().all(|n| n.id >= 2), "{found:?}");

    let found = index
        .most_similar_to_token(&vocabulary, "king", 10)
        .unwrap();
    assert_eq!(found[0].token, "prince");
    let tokens: Vec<&str> = found.iter().map(|n| n.token).collect();
    assert!(!tokens.contains(&"king") && !tokens.contains(&"[UNK]") && !tokens.contains(&""));
    assert_eq!(found.len(), 5);
    assert_eq!(
        Neighbour {
            id: 4,
            similarity: 1.0
        }
        .token(&vocabulary),
        Some("king")
    );

    let err = index
        .most_similar_to_token(&vocabulary, "emperor", 3)
        .unwrap_err();
    invalid_argument(err, "token", &["\"emperor\"", "a token of the vocabulary"]);
    let small = Vocabulary::new(["man"], true).unwrap();
    let err = index.most_similar_to_token(&small, "man", 3).unwrap_err();
    invalid_argument(err, "vocabulary", &["3 ids", "8 rows"]);
}

#[test]
fn bad_tables_are_errors() {
    let empty = Array2::<f32>::zeros((0, 4));
    let err = SimilarityIndex::new(empty.view(), Similarity::Cosine).unwrap_err();
    invalid_argument(err, "table", &["(0, 4)", "at least one row"]);
    let narrow = Array2::<f32>::zeros((4, 0));
    let err = SimilarityIndex::new(narrow.view(), Similarity::Dot).unwrap_err();
    invalid_argument(err, "table", &["(4, 0)"]);
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut table = Array2::<f32>::ones((700, 3));
        table[[650, 2]] = bad;
        let err = SimilarityIndex::new(table.view(), Similarity::Cosine).unwrap_err();
        invalid_argument(err, "table", &["row 650, column 2", "finite"]);
    }
    let unbuilt = Embedding::new(10, 4);
    let err = SimilarityIndex::from_embedding(&unbuilt, Similarity::Cosine).unwrap_err();
    assert!(matches!(err, Error::NotBuilt { .. }), "{err:?}");
    assert!(err.to_string().contains("build the layer"), "{err}");
}

#[test]
fn bad_queries_are_errors_not_panics() {
    let table = random_table(20, 4, 10);
    let index = SimilarityIndex::new(table.view(), Similarity::Cosine).unwrap();
    let err = index
        .most_similar(array![1.0f32, 2.0, 3.0].view(), 3, &[])
        .unwrap_err();
    match &err {
        Error::IncompatibleShape { expected, got, .. } => {
            assert_eq!(expected, &vec![None, Some(4)]);
            assert_eq!(got, &vec![Some(1), Some(3)]);
        }
        other => panic!("expected IncompatibleShape, got {other:?}"),
    }
    assert!(err.to_string().contains("4 dims"), "{err}");

    let queries = array![[1.0f32, 0.0, 0.0, 0.0], [0.0, f32::NAN, 0.0, 0.0]];
    let err = index
        .most_similar_batch(queries.view(), 3, &[])
        .unwrap_err();
    invalid_argument(err, "query", &["NaN", "query 1", "position 1", "finite"]);
    let err = index
        .most_similar(array![f32::INFINITY, 0.0, 0.0, 0.0].view(), 3, &[])
        .unwrap_err();
    invalid_argument(err, "query", &["inf", "finite"]);

    let err = index.most_similar(table.row(0), 0, &[]).unwrap_err();
    invalid_argument(err, "k", &["k >= 1"]);
    let err = index.most_similar(table.row(0), 3, &[2, 20]).unwrap_err();
    invalid_argument(err, "exclude", &["20", "[0, 20)"]);
    let err = index.most_similar_to_id(20, 3, &[]).unwrap_err();
    invalid_argument(err, "ids", &["20", "[0, 20)"]);
    let err = index.most_similar_to_ids(&[1, 99], 3, &[]).unwrap_err();
    invalid_argument(err, "ids", &["99"]);

    let err = index.analogy(0, 1, 25, 3).unwrap_err();
    invalid_argument(err, "positive", &["25"]);
    let err = index.analogy(25, 1, 2, 3).unwrap_err();
    invalid_argument(err, "negative", &["25"]);
    let err = index
        .most_similar_combination(&[], &[], 3, &[], InputIds::Exclude)
        .unwrap_err();
    invalid_argument(err, "positive", &["at least one id"]);
    let err = index
        .most_similar_combination(&[4], &[4], 3, &[], InputIds::Exclude)
        .unwrap_err();
    invalid_argument(err, "positive", &["zero vector"]);
    let with_zero = array![[1.0f32, 0.0], [0.0, 0.0], [0.0, 1.0]];
    let index = SimilarityIndex::new(with_zero.view(), Similarity::Cosine).unwrap();
    let err = index.analogy(0, 1, 2, 1).unwrap_err();
    invalid_argument(err, "positive", &["id 1", "all zeros"]);
}

#[cfg(feature = "ann")]
mod approximate {
    use super::*;
    use ndkeras::similarity::ann::{HnswIndex, HnswOptions};

    #[test]
    fn hnsw_finds_most_exact_neighbours_and_honours_exclusions() {
        let table = random_table(600, 8, 11);
        let exact = SimilarityIndex::new(table.view(), Similarity::Cosine).unwrap();
        let approximate = HnswIndex::build(&exact, HnswOptions::default().ef_search(100)).unwrap();
        let queries = random_table(20, 8, 12);
        let found = approximate
            .most_similar_batch(queries.view(), 10, &[])
            .unwrap();
        let truth = exact.most_similar_batch(queries.view(), 10, &[]).unwrap();
        let hits: usize = found
            .iter()
            .zip(&truth)
            .map(|(f, t)| f.iter().filter(|n| ids(t).contains(&n.id)).count())
            .sum();
        // A tiny 8-d table with a generous ef: nearly exact.
        assert!(hits >= 190, "recall@10 = {hits}/200");
        for (f, t) in found.iter().zip(&truth) {
            assert!(f.windows(2).all(|w| w[0].similarity >= w[1].similarity));
            if let (Some(a), Some(b)) = (f.first(), t.first())
                && a.id == b.id
            {
                assert!((a.similarity - b.similarity).abs() < 1e-5);
            }
        }
        let own = approximate.most_similar(table.row(7), 5, &[7, 8]).unwrap();
        assert_eq!(own.len(), 5);
        assert!(!ids(&own).contains(&7) && !ids(&own).contains(&8));

        let dot = SimilarityIndex::new(table.view(), Similarity::Dot).unwrap();
        let err = HnswIndex::build(&dot, HnswOptions::default()).unwrap_err();
        invalid_argument(err, "metric", &["Cosine"]);
        let err =
            HnswIndex::build(&exact, HnswOptions::default().max_connections(300)).unwrap_err();
        invalid_argument(err, "max_connections", &["300", "[2, 256]"]);
        let err = approximate.most_similar(table.row(0), 0, &[]).unwrap_err();
        invalid_argument(err, "k", &["k >= 1"]);
        let err = approximate
            .most_similar(Array1::<f32>::zeros(8).view(), 1, &[])
            .unwrap_err();
        invalid_argument(err, "query", &["all zeros"]);
    }
}

#[test]
fn a_quantized_or_half_table_is_searched_through_its_decoded_rows() {
    use ndkeras::layer::Layer;
    use ndkeras::quantization::TableDType;
    use ndkeras::tensor::Tensor;
    let table = random_table(300, 16, 41);
    let decoded_of = |layer: &mut Embedding| {
        let ids = Tensor::from(Array1::from_iter(0..300usize));
        let out = layer.apply(&ids).unwrap();
        out.as_float()
            .unwrap()
            .clone()
            .into_dimensionality::<ndarray::Ix2>()
            .unwrap()
    };
    let mut int8 = Embedding::from_table(table.clone());
    int8.build(&[None, None]).unwrap();
    int8.quantize("int8").unwrap();
    let mut half = Embedding::from_table(table.clone());
    half.build(&[None, None]).unwrap();
    half.cast_table(TableDType::Float16).unwrap();
    for layer in [&mut int8, &mut half] {
        let decoded = decoded_of(layer);
        let expected = SimilarityIndex::new(decoded.view(), Similarity::Cosine)
            .unwrap()
            .most_similar_to_id(7, 5, &[])
            .unwrap();
        let index = SimilarityIndex::from_embedding(layer, Similarity::Cosine).unwrap();
        assert_eq!(index.table(), decoded.view());
        assert_eq!(index.most_similar_to_id(7, 5, &[]).unwrap(), expected);
    }
    // An unbuilt layer is still an error naming it.
    let unbuilt = Embedding::new(10, 4).with_name("later");
    let err = SimilarityIndex::from_embedding(&unbuilt, Similarity::Dot).unwrap_err();
    assert!(matches!(err, Error::NotBuilt { .. }) && err.to_string().contains("later"));
}
