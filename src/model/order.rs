//! The order of a functional model's layers as Keras lists them (`model.layers`, the order
//! of `get_weights`, `summary` and the JSON config): by depth from the outputs, deepest
//! first (tf_keras' `_map_graph_network`). `Graph::model` puts its layers in this order.

use std::collections::{HashMap, HashSet};

use crate::model::Model;

/// An entry of Keras' `model.layers`: an input (by node) or a layer (by index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Entry {
    /// An input node.
    Input(usize),
    /// A layer, by its index in the model.
    Layer(usize),
}

/// The order of Keras' `model.layers` (tf_keras' `_map_graph_network`): entries by
/// decreasing depth from the outputs, a layer at the greatest depth of its calls, ties in
/// the order a depth-first walk from the outputs first meets them; inputs the outputs do not
/// need stand at the shallowest depth, as in Keras (first among its entries).
pub(crate) fn keras_layer_order(model: &Model) -> Vec<Entry> {
    let entry_of = |node: usize| match model.call_node(node) {
        Some((layer, _)) => Entry::Layer(layer),
        None => Entry::Input(node),
    };
    let parents = |node: usize| model.call_node(node).map_or(&[][..], |(_, inputs)| inputs);

    // `_build_map`: the nodes in post-order of a depth-first walk from each output, and the
    // order in which the walk first meets each entry. Iterative, so a deep graph cannot
    // exhaust the stack.
    let mut finished: HashSet<usize> = HashSet::new();
    let mut first_met: HashMap<Entry, i64> = HashMap::new();
    let mut post_order: Vec<usize> = Vec::new();
    for &output in model.output_nodes() {
        if finished.contains(&output) {
            continue;
        }
        let met = first_met.len() as i64;
        first_met.entry(entry_of(output)).or_insert(met);
        let mut stack: Vec<(usize, usize)> = vec![(output, 0)];
        while let Some((node, next)) = stack.last_mut() {
            let node = *node;
            if let Some(&parent) = parents(node).get(*next) {
                *next += 1;
                // A parent is finished or not met yet: a graph only reads earlier nodes, so a
                // node is never its own ancestor.
                if !finished.contains(&parent) {
                    let met = first_met.len() as i64;
                    first_met.entry(entry_of(parent)).or_insert(met);
                    stack.push((parent, 0));
                }
            } else {
                stack.pop();
                finished.insert(node);
                post_order.push(node);
            }
        }
    }

    // Depths: from the outputs back, a node one deeper than the deepest node that reads it,
    // a layer as deep as its deepest call (and its later-visited calls raised to it).
    let mut node_depth: HashMap<usize, usize> = HashMap::new();
    let mut entry_depth: HashMap<Entry, usize> = HashMap::new();
    let mut entries: Vec<Entry> = Vec::new();
    for &node in post_order.iter().rev() {
        let entry = entry_of(node);
        let mut depth = node_depth.get(&node).copied().unwrap_or(0);
        match entry_depth.get(&entry) {
            Some(&previous) => depth = depth.max(previous),
            None => entries.push(entry),
        }
        entry_depth.insert(entry, depth);
        node_depth.insert(node, depth);
        for &parent in parents(node) {
            let d = node_depth.entry(parent).or_insert(0);
            *d = (*d).max(depth + 1);
        }
    }
    for &input in model.input_nodes() {
        let entry = Entry::Input(input);
        if let std::collections::hash_map::Entry::Vacant(vacant) = entry_depth.entry(entry) {
            vacant.insert(0);
            first_met.insert(entry, -1);
            entries.push(entry);
        }
    }
    entries.sort_by_key(|entry| {
        (
            std::cmp::Reverse(entry_depth.get(entry).copied().unwrap_or(0)),
            first_met.get(entry).copied().unwrap_or(i64::MAX),
        )
    });
    entries
}
