//! Review findings (rev6), kept as regression tests: similarity search over finite values whose norms leave the float32 range (the bag layers and the PyTorch options matched PyTorch).

use ndarray::array;
use ndkeras::similarity::{Similarity, SimilarityIndex};

/// `SimilarityIndex::new` (src/similarity/mod.rs, `over`, with `row_norms` in
/// src/similarity/scan.rs) refuses a table whose values are all finite when a row's norm,
/// computed in float64, overflows float32 on rounding (row `[3e38, 3e38]`, norm 4.2e38): the
/// norm becomes `inf` and the table is refused as holding "NaN at row 0, column 0", a value it
/// does not hold (under `Similarity::Dot` too, which never uses the norms). The module docs promise that only NaN and infinite values are refused and
/// that only products overflowing float32 can give an infinite score. Expected: the index is
/// built (the norm kept in float64 or the row scaled), and row 0 is the nearest to `[1, 1]`.
#[test]
fn a_finite_table_whose_row_norm_exceeds_f32_max_is_accepted() {
    let table = array![[3.0e38f32, 3.0e38], [1.0, 0.0]];
    let index = SimilarityIndex::new(table.view(), Similarity::Cosine)
        .expect("every value of the table is finite");
    let found = index
        .most_similar(array![1.0f32, 1.0].view(), 1, &[])
        .unwrap();
    assert_eq!(found[0].id, 0);
}

/// `prepare_queries` (src/similarity/scan.rs) rounds the float64 norm of a cosine query to
/// float32 before dividing: for a finite query `[3e38, 3e38]` the norm rounds to `inf`, the
/// query becomes all zeros and every row scores 0.0, so the search silently returns rows in id
/// order, which the module docs rule out for zero queries ("not a silent ranking by id").
/// Expected: the query direction `[1, 1]/sqrt(2)`, so row 1 (`[1, 1]`) first with cosine 1.
#[test]
fn a_huge_finite_cosine_query_is_not_turned_into_zeros() {
    let table = array![[1.0f32, -1.0], [1.0, 1.0]];
    let index = SimilarityIndex::new(table.view(), Similarity::Cosine).unwrap();
    let found = index
        .most_similar(array![3.0e38f32, 3.0e38].view(), 2, &[])
        .unwrap();
    assert_eq!(found[0].id, 1, "{found:?}");
    assert!((found[0].similarity - 1.0).abs() < 1e-6, "{found:?}");
}

/// Same place (`prepare_queries`, src/similarity/scan.rs): for a tiny query `[1e-45, 1e-45]`
/// (subnormal, finite, non-zero) the norm `1.98e-45` rounds to the float32 `1.4e-45`, so the
/// "unit" query is `[1, 1]` with norm `sqrt(2)`, and the cosine reported against row `[1, 1]`
/// is 1.414, outside the documented `[-1, 1]`. Expected: cosine 1.0 (normalise in float64).
#[test]
fn a_tiny_cosine_query_gives_cosines_within_one() {
    let table = array![[1.0f32, 1.0], [1.0, 0.0]];
    let index = SimilarityIndex::new(table.view(), Similarity::Cosine).unwrap();
    let found = index
        .most_similar(array![1.0e-45f32, 1.0e-45].view(), 2, &[])
        .unwrap();
    assert_eq!(found[0].id, 0);
    assert!(
        found.iter().all(|n| n.similarity <= 1.0 + 1e-6),
        "{found:?}"
    );
}
