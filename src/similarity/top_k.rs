//! The bounded heap that keeps the best `k` candidates of one query, and the order that
//! defines "best": higher similarity first, ties by ascending id.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::error::{Error, Result};

use super::Neighbour;

/// The value a similarity is ranked by: itself, except NaN, which ranks as `-inf` (below every
/// number) so that the order stays total. Only products that overflow float32 can make a NaN
/// score: tables and queries are checked to be finite.
fn rank_key(similarity: f32) -> f32 {
    if similarity.is_nan() {
        f32::NEG_INFINITY
    } else {
        similarity
    }
}

/// Whether `(a_key, a_id)` ranks before `(b_key, b_id)`: higher key first, then lower id.
/// Keys are never NaN; `-0.0` and `0.0` are a tie.
fn ranks_before(a_key: f32, a_id: usize, b_key: f32, b_id: usize) -> bool {
    a_key > b_key || (a_key == b_key && a_id < b_id)
}

/// One candidate, ordered so that the heap's greatest element is the worst kept candidate.
#[derive(Debug, Clone, Copy)]
struct Entry {
    key: f32,
    similarity: f32,
    id: usize,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    /// `Greater` means "ranks after" (worse).
    fn cmp(&self, other: &Self) -> Ordering {
        if ranks_before(self.key, self.id, other.key, other.id) {
            Ordering::Less
        } else if ranks_before(other.key, other.id, self.key, self.id) {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    }
}

/// The best `k` candidates seen so far for one query.
#[derive(Debug, Clone)]
pub(super) struct TopK {
    k: usize,
    heap: BinaryHeap<Entry>,
    /// The key and id of the worst kept candidate once the heap is full: the bar a new
    /// candidate must pass, cached so that most candidates are refused without touching the
    /// heap.
    bar: Option<(f32, usize)>,
}

impl TopK {
    /// An empty heap for `k` candidates (`k` is bounded by the table's rows by the caller).
    ///
    /// # Errors
    /// [`Error::Allocation`] when `k` entries do not fit in memory.
    pub(super) fn new(k: usize) -> Result<Self> {
        let mut heap = BinaryHeap::new();
        heap.try_reserve_exact(k).map_err(|_| Error::Allocation {
            context: format!("similarity search: a heap for the best {k} candidates"),
            bytes: k.saturating_mul(std::mem::size_of::<Entry>()),
        })?;
        Ok(TopK { k, heap, bar: None })
    }

    /// Whether `(similarity, id)` would be kept: cheap, so that the caller checks its
    /// exclusions only for the few candidates that pass.
    #[inline]
    pub(super) fn accepts(&self, similarity: f32, id: usize) -> bool {
        match self.bar {
            None => self.k > 0,
            Some((key, worst)) => ranks_before(rank_key(similarity), id, key, worst),
        }
    }

    /// Keeps `(similarity, id)` if it ranks among the best `k` (call [`TopK::accepts`] first,
    /// or not: the check is repeated).
    pub(super) fn push(&mut self, similarity: f32, id: usize) {
        if !self.accepts(similarity, id) {
            return;
        }
        let entry = Entry {
            key: rank_key(similarity),
            similarity,
            id,
        };
        if self.heap.len() == self.k {
            self.heap.pop();
        }
        // Never grows beyond the `k` reserved in `new`.
        self.heap.push(entry);
        if self.heap.len() == self.k {
            self.bar = self.heap.peek().map(|worst| (worst.key, worst.id));
        }
    }

    /// Adds every candidate of `other` (the best `k` of another part of the table).
    pub(super) fn merge(&mut self, other: TopK) {
        for entry in other.heap {
            self.push(entry.similarity, entry.id);
        }
    }

    /// The kept candidates, best first.
    pub(super) fn into_sorted(self) -> Vec<Neighbour> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|entry| Neighbour {
                id: entry.id,
                similarity: entry.similarity,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(top: TopK) -> Vec<usize> {
        top.into_sorted().iter().map(|n| n.id).collect()
    }

    #[test]
    fn keeps_the_best_k_with_ties_by_ascending_id() {
        let mut top = TopK::new(3).unwrap();
        for (id, s) in [(5, 0.5), (1, 0.9), (7, 0.5), (2, 0.5), (3, 0.1), (0, 0.9)] {
            top.push(s, id);
        }
        assert_eq!(ids(top), vec![0, 1, 2]);
    }

    #[test]
    fn nan_ranks_last_and_zero_signs_tie() {
        let mut top = TopK::new(3).unwrap();
        top.push(f32::NAN, 0);
        top.push(f32::NEG_INFINITY, 1);
        top.push(-0.0, 4);
        top.push(0.0, 3);
        assert_eq!(ids(top), vec![3, 4, 0]);
    }

    #[test]
    fn merging_parts_gives_the_same_as_one_pass() {
        let scores: Vec<f32> = (0..50).map(|i| ((i * 37) % 11) as f32).collect();
        let mut whole = TopK::new(7).unwrap();
        let mut left = TopK::new(7).unwrap();
        let mut right = TopK::new(7).unwrap();
        for (id, &s) in scores.iter().enumerate() {
            whole.push(s, id);
            if id < 20 {
                left.push(s, id);
            } else {
                right.push(s, id);
            }
        }
        right.merge(left);
        assert_eq!(ids(whole), ids(right));
    }

    #[test]
    fn impossible_heaps_are_errors() {
        assert!(matches!(
            TopK::new(usize::MAX / 2),
            Err(Error::Allocation { .. })
        ));
    }
}
