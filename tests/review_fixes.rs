//! Failing tests for findings of the review of the fixes in 5ef033d..a5fb71e (each test says
//! what is wrong and what is expected).

use ndarray::{Array2, ArrayD, array};
use ndkeras::io::npy::{self, NpyArray, NpyView};
use ndkeras::prelude::*;
use ndkeras::preprocessing::{StringLookup, TextVectorization};

fn scratch(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ndkeras-review-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `widened` (src/model/persistence.rs) now looks the variable up by the entry's name when
/// `names_match` holds, comparing against `Weight::name()`. A TokenAndPositionEmbedding's
/// `weight_names()` are `token_embedding/embeddings` and `position_embedding/embeddings`
/// while its variables are both named `embeddings`: no variable is found, so the dtype check
/// is skipped entirely. An int8 entry (a quantized table) is then loaded silently into the
/// float32 table as if its codes were values. Before a5fb71e the entry fell back to the
/// variable at its position and the load was refused. Expected: `Error::InvalidFile` naming
/// the entry and int8, the model unchanged.
#[test]
fn load_weights_checks_the_dtype_of_token_and_position_entries() {
    let dir = scratch("tape-dtype");
    let x = array![[1i64, 2, 3]];
    let mut model = Sequential::new();
    model
        .add(TokenAndPositionEmbedding::new(6, 4, 3).with_name("tape"))
        .unwrap();
    model.predict(x.clone()).unwrap();
    let path = dir.join("w.npz");
    model.save_weights(&path).unwrap();
    let stored = npy::read_npz_typed(&path).unwrap();
    assert_eq!(stored[0].0, "tape/token_embedding/embeddings");
    let (NpyArray::Float32(token), NpyArray::Float32(position)) = (&stored[0].1, &stored[1].1)
    else {
        panic!("{stored:?}");
    };
    let codes = ArrayD::from_shape_fn(token.shape(), |i| (i[0] * 4 + i[1]) as i8 - 12);
    let int8 = dir.join("int8.npz");
    npy::write_npz_typed(
        &int8,
        &[
            (stored[0].0.clone(), NpyView::Int8(codes.view())),
            (stored[1].0.clone(), NpyView::Float32(position.view())),
        ],
    )
    .unwrap();
    let before = model.get_layer(0).unwrap().get_weights();
    let result = model.load_weights(&int8);
    let after = model.get_layer(0).unwrap().get_weights();
    std::fs::remove_dir_all(&dir).ok();
    let err =
        result.expect_err("an int8 table was loaded into a float32 TokenAndPositionEmbedding");
    assert!(matches!(err, Error::InvalidFile { .. }), "{err:?}");
    assert!(err.to_string().contains("int8"), "{err}");
    assert_eq!(after, before);
}

/// `finish_adapt` (src/preprocessing/index_lookup.rs, `if sorted.is_empty()`) now fails for
/// texts that hold no token. tf_keras 2.21 does not: `TextVectorization.adapt` of texts
/// without tokens (and `StringLookup.adapt` of a ragged batch of empty documents) returns
/// normally and keeps the vocabulary learned before (`finalize_state` returns early when
/// `token_counts` is empty). Checked in /tmp/tfk:
/// `l.adapt(["a b", "b"]); l.adapt(["", "  ", "!!"])` -> vocabulary
/// `['', '[UNK]', 'b', 'a']`, `l(["a b c"]) == [[3, 2, 1]]`. Before 5ef033d ndkeras did the
/// same (the module docs still say so: "one that sees no token at all leaves the vocabulary
/// as it was (as Keras does)"). Expected: `Ok(())`, the vocabulary unchanged.
#[test]
fn re_adapting_on_texts_without_tokens_keeps_the_vocabulary_as_keras_does() {
    let mut vectorize = TextVectorization::builder().build().unwrap();
    vectorize.adapt(["a b", "b"]).unwrap();
    let result = vectorize.adapt(["", "  ", "!!"]);
    assert!(result.is_ok(), "Keras' adapt succeeds here: {result:?}");
    assert_eq!(
        vectorize.get_vocabulary(true).unwrap(),
        ["", "[UNK]", "b", "a"]
    );
    assert_eq!(vectorize.call(&["a b c"]).unwrap(), array![[3, 2, 1]]);

    // StringLookup.adapt(tf.ragged.constant([[]])) after adapt([["a", "b"]]): Keras keeps
    // ['[UNK]', 'b', 'a'].
    let mut lookup = StringLookup::builder().build().unwrap();
    lookup.adapt_documents([vec!["a", "b"]]).unwrap();
    let result = lookup.adapt_documents([Vec::<&str>::new()]);
    assert!(result.is_ok(), "Keras' adapt succeeds here: {result:?}");
    assert_eq!(lookup.get_vocabulary(true).unwrap(), ["[UNK]", "b", "a"]);
}

/// `write_quantized_npy` (src/io/npy.rs) refuses "the same path for both files" by comparing
/// the two `Path`s, so the same file spelled two ways (`codes.npy` and `./codes.npy`,
/// `dir/codes.npy` and `dir/sub/../codes.npy`) passes: both staged files are renamed over
/// the one target, the call returns `Ok`, and the file left holds the scales (the codes
/// are lost, `map_npy_codes` then fails). Expected: an error (compare the files, e.g. the
/// canonical folder and the name, or the inodes of the staged targets), nothing written.
#[test]
fn write_quantized_npy_refuses_one_file_spelled_two_ways() {
    let dir = scratch("same-file");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let table = Array2::from_shape_fn((8, 3), |(i, j)| i as f32 - j as f32 * 0.5);
    let mut layer = Embedding::from_table(table);
    layer.apply(&Tensor::from(vec![0i64])).unwrap();
    layer.quantize("int8").unwrap();
    let codes = dir.join("codes.npy");
    let same = dir.join("sub").join("..").join("codes.npy");
    let result = npy::write_quantized_npy(&layer, &codes, &same);
    let left = std::fs::read(&codes).map(|bytes| bytes.len());
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        result.is_err(),
        "saved codes and scales to one file; the file left holds {left:?} bytes"
    );
}

/// `first_bad_int8_scale` (src/quantization.rs), now also used by `set_weights` /
/// `load_weights` (`check_stored_values`, src/layers/embedding.rs:2367), refuses a scale `s`
/// when `128 * (1 / s)` overflows. But `quantize("int8")` itself (`abs_max_rows`:
/// `127 / (max|row| + 1e-7)`) makes such scales for any row whose largest |value| is above
/// about `127/128 * f32::MAX` (here f32::MAX: `s = 3.73e-37`, `128 * (1 / s)` = inf). So a
/// layer's own quantized weights cannot be given back to it (`set_weights(get_weights())`
/// fails), nor saved with `save_weights` and loaded, nor mapped from `write_quantized_npy`'s
/// files. (The doc of `first_bad_int8_scale` claims the scales of `abs_max_rows`, down to
/// 127 / 3.4e38, pass.) Keras 3 dequantises with `codes / scale` = 3.4028235e38 here, finite;
/// ndkeras' call gives inf for that row. Expected: one rule: either `quantize("int8")` refuses
/// such a table (naming the row), or what it makes is accepted back.
#[test]
fn set_weights_accepts_the_int8_weights_quantize_made() {
    let mut table = Array2::from_shape_fn((4, 3), |(i, j)| i as f32 - j as f32);
    table[[2, 1]] = f32::MAX;
    let mut layer = Embedding::from_table(table);
    layer.apply(&Tensor::from(vec![0i64])).unwrap();
    if layer.quantize("int8").is_err() {
        return; // refusing the table up front is fine too
    }
    let weights = layer.get_weights();
    layer
        .set_weights(weights)
        .expect("set_weights refused the weights quantize(\"int8\") made");
}

/// `prepare_tokens` (src/preprocessing/index_lookup.rs:744,
/// `token_start.saturating_add(tokens.len() - 1)`) underflows when the vocabulary is only the
/// special tokens: they are skipped, no token is left, and `0 - 1` panics ("attempt to
/// subtract with overflow" in debug builds; in release it wraps and the error wrongly blames
/// `num_oov_indices` and int64). The non-empty check runs before the special tokens are
/// skipped. tf_keras 2.21 refuses such a vocabulary (`set_vocabulary(["[UNK]"])`: "keys and
/// values cannot be empty tensors"). Expected: `Error::InvalidArgument` saying the vocabulary
/// holds no token besides the special ones, the layer unchanged.
#[test]
fn a_vocabulary_of_only_the_special_tokens_is_an_error_not_a_panic() {
    let attempt = std::panic::catch_unwind(|| {
        let mut lookup = StringLookup::builder().mask_token("").build().unwrap();
        lookup.set_vocabulary(["a"]).unwrap();
        let result = lookup.set_vocabulary(["", "[UNK]"]);
        (result, lookup.get_vocabulary(false).unwrap())
    });
    let (result, kept) = attempt.expect("set_vocabulary([mask, oov]) panicked");
    let err = result.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert!(!err.to_string().contains("int64"), "misleading: {err}");
    assert_eq!(kept, ["a"]);
}
