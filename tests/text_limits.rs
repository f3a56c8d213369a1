//! The preprocessing layers at the edges of their settings: huge `ngrams`, `num_oov_indices`
//! and `max_tokens` are errors or work lazily (never a panic or an abort, and a failed call
//! leaves the layer as it was); a declared input of a huge shape; `predict` joining batches
//! of `TextVectorization` ids of different widths.

use ndarray::Array2;
use ndkeras::Error;
use ndkeras::model::{Graph, Input};
use ndkeras::prelude::*;
use ndkeras::preprocessing::{OutputMode, StringLookup, TextVectorization};
use ndkeras::tensor::{DType, TensorData};

#[test]
fn integer_ngrams_larger_than_any_text_are_lazy() {
    let vectorize = TextVectorization::builder()
        .ngrams(usize::MAX)
        .build()
        .unwrap();
    // tf.strings.ngrams(ngram_width=(1, ..., n)): every width up to the text's length.
    assert_eq!(
        vectorize.tokens("a b c"),
        ["a", "b", "c", "a b", "b c", "a b c"]
    );
    assert!(vectorize.tokens("").is_empty());
    // A tuple of widths keeps its order and skips widths longer than the text.
    let widths = TextVectorization::builder()
        .ngram_widths([usize::MAX, 2, 1])
        .build()
        .unwrap();
    assert_eq!(widths.tokens("x y"), ["x y", "x", "y"]);
    let zero = TextVectorization::builder().ngram_widths([1, 0]).build();
    assert!(
        matches!(zero, Err(Error::InvalidArgument { .. })),
        "{zero:?}"
    );
}

#[test]
fn num_oov_indices_past_int64_is_an_error() {
    let err = StringLookup::builder()
        .num_oov_indices(usize::MAX)
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert!(
        err.to_string().contains("num_oov_indices") && err.to_string().contains("int64"),
        "{err}"
    );
}

#[test]
fn a_huge_num_oov_indices_still_gives_keras_ids() {
    let oov = (i64::MAX - 1) as usize;
    let mut lookup = StringLookup::builder()
        .num_oov_indices(oov)
        .mask_token("")
        .build()
        .unwrap();
    // The last int64 id is the only one left for a token.
    let err = lookup.set_vocabulary(["a", "b"]).unwrap_err();
    assert!(err.to_string().contains("int64"), "{err}");
    lookup.set_vocabulary(["a"]).unwrap();
    assert_eq!(lookup.token_start_index(), oov + 1);
    let ids = lookup.call(&["a", "", "zzz"]).unwrap();
    assert_eq!(ids[0], i64::MAX);
    assert_eq!(ids[1], 0);
    assert!((1..=oov as i64).contains(&ids[2]), "{}", ids[2]);
    // Listing that many OOV tokens cannot fit: an error, not an abort.
    let err = lookup.get_vocabulary(true).unwrap_err();
    assert!(matches!(err, Error::Allocation { .. }), "{err:?}");
    assert_eq!(lookup.get_vocabulary(false).unwrap(), ["a"]);
    // The mask token elsewhere: the message counts the OOV tokens instead of listing them.
    let err = lookup.set_vocabulary(["c", ""]).unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&format!("{oov} x \"[UNK]\"")), "{message}");
    assert!(message.len() < 1000, "{message}");
    assert_eq!(lookup.get_vocabulary(false).unwrap(), ["a"]);
}

#[test]
fn a_vocabulary_that_starts_with_many_oov_tokens_skips_them() {
    let mut lookup = StringLookup::builder()
        .num_oov_indices(3)
        .mask_token("")
        .build()
        .unwrap();
    lookup
        .set_vocabulary(["", "[UNK]", "[UNK]", "[UNK]", "x"])
        .unwrap();
    assert_eq!(lookup.get_vocabulary(false).unwrap(), ["x"]);
    assert_eq!(lookup.call(&["x"]).unwrap().to_vec(), [4]);
    // Two of three OOV tokens: not the special tokens, so "[UNK]" repeats in the vocabulary.
    let err = lookup
        .set_vocabulary(["", "[UNK]", "[UNK]", "x"])
        .unwrap_err();
    assert!(err.to_string().contains("repeated"), "{err}");
    assert_eq!(lookup.get_vocabulary(false).unwrap(), ["x"]);
}

fn tf_idf_lookup(max_tokens: usize) -> ndkeras::Result<StringLookup> {
    StringLookup::builder()
        .output_mode(OutputMode::TfIdf)
        .max_tokens(max_tokens)
        .pad_to_max_tokens(true)
        .build()
}

#[test]
fn tf_idf_padding_to_a_huge_max_tokens_is_an_allocation_error() {
    let huge = usize::MAX / 2;
    let err = StringLookup::builder()
        .output_mode(OutputMode::TfIdf)
        .max_tokens(huge)
        .pad_to_max_tokens(true)
        .vocabulary(["a", "b"])
        .idf_weights([0.5, 0.25])
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Allocation { .. }), "{err:?}");

    // set_vocabulary_with_idf fails before it changes anything.
    let mut lookup = tf_idf_lookup(huge).unwrap();
    let err = lookup
        .set_vocabulary_with_idf(["a", "b"], [0.5, 0.25])
        .unwrap_err();
    assert!(matches!(err, Error::Allocation { .. }), "{err:?}");
    assert!(lookup.get_vocabulary(false).unwrap().is_empty());
    assert!(lookup.idf_weights().is_empty());

    // So does adapt.
    let err = lookup.adapt(["a", "b", "a"]).unwrap_err();
    assert!(matches!(err, Error::Allocation { .. }), "{err:?}");
    assert!(lookup.get_vocabulary(false).unwrap().is_empty());

    // With a reasonable max_tokens the weights are padded with zeros, as Keras pads them.
    let mut lookup = tf_idf_lookup(6).unwrap();
    lookup
        .set_vocabulary_with_idf(["a", "b"], [0.5, 0.25])
        .unwrap();
    assert_eq!(lookup.idf_weights(), [0.375, 0.5, 0.25, 0.0, 0.0, 0.0]);
}

#[test]
fn a_string_input_of_a_huge_declared_shape_is_checked_without_allocating() {
    let mut graph = Graph::new();
    let text = graph.input(
        Input::new(&[usize::MAX / 2, 4])
            .dtype(DType::String)
            .with_name("text"),
    );
    let err = graph
        .apply(Embedding::new(10, 2).with_name("ids"), &[text])
        .unwrap_err();
    assert!(matches!(err, Error::IncompatibleDtype { .. }), "{err:?}");
    assert!(err.to_string().contains("\"ids\""), "{err}");
}

/// 40 texts: the first batch of 32 has texts of up to 3 tokens, the second up to 6.
fn texts_of_two_widths() -> Vec<String> {
    (0..40)
        .map(|i| {
            let words = if i < 32 { 1 + i % 3 } else { 1 + i % 6 };
            (0..words)
                .map(|k| ["red", "green", "blue", "cyan"][(i + k) % 4])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn predict_pads_batches_of_different_widths_to_the_widest() {
    let texts = texts_of_two_widths();
    let mut vectorize = TextVectorization::builder().build().unwrap();
    vectorize.adapt(&texts).unwrap();
    let expected: Array2<i64> = vectorize.call(&texts).unwrap();
    assert_eq!(expected.ncols(), 6);

    let mut model = Sequential::new();
    model.add(vectorize).unwrap();
    // The default batch size is 32: the two batches are 3 and 6 ids wide.
    let ids = model.predict_tensor(Tensor::from(texts.clone())).unwrap();
    match ids.data() {
        TensorData::Int64(ids) => assert_eq!(ids, &expected.clone().into_dyn()),
        other => panic!("expected int64 ids, got {other:?}"),
    }

    // Through an Embedding with a mask: padded positions give zero rows and a false mask.
    let mut graph = Graph::new();
    let text = graph.input(Input::new(&[1]).dtype(DType::String));
    let mut vectorize = TextVectorization::builder().build().unwrap();
    vectorize.adapt(&texts).unwrap();
    let vocabulary = vectorize.vocabulary_size();
    let ids = graph.apply(vectorize, &[text]).unwrap();
    let rows = graph
        .apply(
            Embedding::new(vocabulary, 2)
                .embeddings_initializer(Initializer::Ones)
                .mask_zero(true),
            &[ids],
        )
        .unwrap();
    let mut model = graph.model(&[text], &[rows]).unwrap();
    let out = model
        .predict_tensors_with_batch_size(vec![Tensor::from(texts.clone())], 32)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(out.shape(), &[40, 6, 2]);
    let mask = out.mask().expect("mask_zero gives a mask");
    let values = out.as_float().unwrap();
    for (row, ids) in expected.rows().into_iter().enumerate() {
        for (position, &id) in ids.iter().enumerate() {
            assert_eq!(
                mask[[row, position]],
                id != 0,
                "row {row} position {position}"
            );
            if id != 0 {
                assert_eq!(
                    values[[row, position, 0]],
                    1.0,
                    "row {row} position {position}"
                );
            }
        }
        // Past the first batch's width: padding, zeros (Keras' ragged rows, `.to_tensor()`).
        if row < 32 {
            for position in 3..6 {
                assert_eq!(
                    values[[row, position, 1]],
                    0.0,
                    "row {row} position {position}"
                );
            }
        }
    }
    // The same mask and values as one batch of all 40, where the mask is true.
    let whole = model
        .predict_tensors_with_batch_size(vec![Tensor::from(texts)], 64)
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(whole.mask(), out.mask());
    let whole_values = whole.as_float().unwrap();
    for ((index, &value), &kept) in values.indexed_iter().zip(whole_values) {
        if mask[[index[0], index[1]]] {
            assert_eq!(value, kept, "{index:?}");
        }
    }
}

#[test]
fn adapting_on_nothing_to_learn_is_an_error_that_changes_nothing() {
    let mut lookup = StringLookup::builder().mask_token("").build().unwrap();
    let err = lookup.adapt(Vec::<&str>::new()).unwrap_err();
    assert!(err.to_string().contains("non-empty"), "{err}");
    let err = lookup.adapt(["", "[UNK]", ""]).unwrap_err();
    assert!(err.to_string().contains("2 distinct tokens"), "{err}");
    // Documents without tokens: nothing learned, nothing changed (Keras' finalize_state).
    lookup.adapt_documents([Vec::<&str>::new()]).unwrap();
    assert!(!lookup.has_vocabulary());
    // After a good adapt, a failed one keeps the vocabulary.
    lookup.adapt(["b", "a", "b"]).unwrap();
    assert!(lookup.adapt([""]).is_err());
    assert_eq!(lookup.get_vocabulary(false).unwrap(), ["b", "a"]);
    // Texts without a token: Keras' finalize_state keeps what the layer had (nothing here).
    let mut vectorize = TextVectorization::builder().name("tv").build().unwrap();
    vectorize.adapt(["", " ,. "]).unwrap();
    assert!(vectorize.get_vocabulary(false).unwrap().is_empty());
    let err = vectorize.adapt(Vec::<&str>::new()).unwrap_err();
    assert!(
        err.to_string().contains("\"tv\" (TextVectorization)")
            && err.to_string().contains("non-empty"),
        "{err}"
    );
    // max_tokens leaves room for the special ids only: nothing can be learned.
    let mut full = TextVectorization::builder()
        .name("full")
        .max_tokens(2)
        .build()
        .unwrap();
    let err = full.adapt(["a b"]).unwrap_err();
    assert!(
        err.to_string().contains("\"full\" (TextVectorization)"),
        "{err}"
    );
}
