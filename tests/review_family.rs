//! Review of the Keras 3 / KerasHub embedding family (`src/layers/position/`,
//! `src/layers/reversible.rs`, LoRA on `Embedding`): one test per bug found, each failing
//! before its fix (kept as regression tests).

#![cfg(feature = "serde")]

use ndarray::array;
use ndkeras::prelude::*;
use serde_json::json;

/// `ReversibleEmbedding::from_config` (`src/config/reversible.rs`) reads the `Embedding`
/// fields through `Embedding::from_config`, which turns `lora_rank` into
/// `Embedding::with_lora`, but then builds a fresh `ReversibleEmbedding::new` from a few of
/// the fields only: `lora_rank` is dropped without a word, and the layer written back has no
/// `lora_rank`. Keras 3's `ReversibleEmbedding.__init__` passes `**kwargs` on to
/// `Embedding.__init__`, which takes `lora_rank`/`lora_alpha` and enables LoRA at build
/// (its reverse call reads `self.embeddings`, LoRA included); its `get_config` writes
/// `lora_rank` and `lora_alpha` when set (`../shared/research/keras_embedding.md` §2.10,
/// "get_config adds `lora_rank` and `lora_alpha` only when `lora_rank` is set").
/// Expected: the setting is kept (the config read back has `lora_rank: 2`) or refused with
/// an error naming `lora_rank`, never silently lost.
#[test]
fn reversible_embedding_from_config_does_not_silently_drop_lora_rank() {
    let mut config = ReversibleEmbedding::new(5, 3).with_name("emb").get_config();
    config["lora_rank"] = json!(2);
    config["lora_alpha"] = json!(2.0);
    match ReversibleEmbedding::from_config(&config) {
        Err(err) => assert!(
            err.to_string().contains("lora_rank"),
            "a refusal should name lora_rank: {err}"
        ),
        Ok(layer) => {
            let back = layer.get_config();
            assert_eq!(
                back["lora_rank"],
                json!(2),
                "lora_rank was read and lost: {back}"
            );
        }
    }
}

/// An out-of-range id given to a `TokenAndPositionEmbedding` is reported by its inner
/// token table as `layer "token_embedding": index 9 ...`: the name of a sub-layer that is
/// not a layer of the model, so the user cannot tell which layer failed (a model with an
/// encoder and a decoder embedding has two "token_embedding"s). The token sub-layer is
/// given the owner's context (`ReversibleEmbedding::part_of`, used by its reverse-call
/// errors), but the lookup's `Error::IndexOutOfRange` (from `Embedding`, reached through
/// `TokenAndPositionEmbedding::check_input`/`call` in
/// `src/layers/position/token_and_position.rs`) does not use it. Expected: the error names
/// the model's layer, `tape_oov`.
#[test]
fn token_and_position_out_of_range_id_error_names_the_layer() {
    let mut graph = Graph::new();
    let ids = graph.input(Input::new(&[2]).dtype(DType::Int64));
    let tape = graph
        .add(TokenAndPositionEmbedding::new(5, 3, 2).with_name("tape_oov"))
        .unwrap();
    let out = graph.call(tape, &[ids]).unwrap();
    let mut model = graph.model(&[ids], &[out]).unwrap();
    let err = model
        .predict(vec![Tensor::from(array![[1i64, 9]])])
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("index 9"), "{text}");
    assert!(
        text.contains("tape_oov"),
        "the error does not name the layer: {text}"
    );
}

/// `TokenAndPositionEmbedding::call_with_start_index` and `backward_with_start_index`
/// (`src/layers/position/token_and_position.rs`) leave the `start_index` check to the
/// inner `PositionEmbedding` (`add_positions` / `table_gradient` -> `rows` -> `too_long`),
/// whose context is its own sub-layer name: the error reads `layer "position_embedding"
/// (PositionEmbedding): start_index 3 + ...`, not the `TokenAndPositionEmbedding` the user
/// called (its other errors name it, e.g. a sequence longer than `sequence_length` from
/// `check_input`). Expected: both errors name the layer, `tape_start`.
#[test]
fn token_and_position_start_index_error_names_the_layer() {
    let mut tape = TokenAndPositionEmbedding::new(7, 4, 3).with_name("tape_start");
    let ids = Tensor::from(array![[1i64, 2]]);
    tape.apply(&ids).unwrap();

    let err = tape.call_with_start_index(&ids, 3).unwrap_err().to_string();
    assert!(err.contains("start_index 3"), "{err}");
    assert!(
        err.contains("tape_start"),
        "the forward error does not name the layer: {err}"
    );

    let err = tape
        .backward_with_start_index(&ids, ndarray::ArrayD::zeros(vec![1, 2, 3]), 3)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tape_start"),
        "the backward error does not name the layer: {err}"
    );
}

/// `TokenAndPositionEmbedding::compute_output_shape`
/// (`src/layers/position/token_and_position.rs`) hands the embedded shape to the inner
/// `PositionEmbedding::compute_output_shape`, so a graph input longer than
/// `sequence_length` is refused as `layer "position_embedding" (PositionEmbedding): the
/// input sequence has 10 positions ...`, naming a sub-layer the graph does not hold (the
/// same input given to `predict` of a `Sequential` is reported with the layer's own name,
/// from `check_input`). Expected: the error names the layer, `tape_len`.
#[test]
fn token_and_position_graph_length_error_names_the_layer() {
    let mut graph = Graph::new();
    let ids = graph.input(Input::new(&[10]).dtype(DType::Int64));
    let tape = graph
        .add(TokenAndPositionEmbedding::new(5, 4, 2).with_name("tape_len"))
        .unwrap();
    let err = graph.call(tape, &[ids]).unwrap_err().to_string();
    assert!(err.contains("sequence_length = 4"), "{err}");
    assert!(
        err.contains("tape_len"),
        "the error does not name the layer: {err}"
    );
}

/// `TokenAndPositionEmbedding::mask_zero` (`src/layers/position/token_and_position.rs`)
/// sets `config.mask_zero` and calls `rebuild_sublayers`, which does nothing once the layer
/// is built: a built layer then reports `mask_zero: true` in `config()` and `get_config()`
/// while its token sub-layer still has `mask_zero = false`, so it outputs no mask. The JSON
/// written for it describes another layer (read back, that one does mask). `tie_weights`
/// guards its config for this very case, and `ReversibleEmbedding::mask_zero` on a built
/// layer takes effect. KerasHub's output mask is `ids != 0` exactly when `mask_zero` is set
/// (`../shared/research/embedding_features.md` §2.7). Expected: the setting and the
/// behaviour agree (either the mask is produced, or the config stays `false`).
#[test]
fn token_and_position_mask_zero_on_a_built_layer_agrees_with_its_config() {
    let mut tape = TokenAndPositionEmbedding::new(7, 4, 3);
    let ids = Tensor::from(array![[1i64, 0]]);
    tape.apply(&ids).unwrap();
    let tape = tape.mask_zero(true);
    let says = tape.get_config()["mask_zero"] == json!(true);
    let masks = tape.compute_mask(&ids, None).unwrap().is_some();
    assert_eq!(
        says, masks,
        "get_config says mask_zero = {says}, but the layer masks: {masks}"
    );
}

/// `ReversibleEmbedding::logit_soft_cap` can be set on a built layer, and
/// `ReversibleEmbedding::reverse_call` (`src/layers/reversible.rs`) never validates it
/// (only `build` does): with a NaN cap the reverse call returns NaN logits without an
/// error. The module docs promise that "a `logit_soft_cap` that is not a positive finite
/// number is refused"; the layers of the same family check their settings on every call
/// (`RotaryEmbedding::call_with_start_index` and `SinePositionEncoding` run `validate`).
/// Expected: an error naming `logit_soft_cap`.
#[test]
fn a_soft_cap_set_after_the_build_is_still_refused() {
    let mut emb = ReversibleEmbedding::new(4, 2).with_name("capped");
    emb.apply(&Tensor::from(array![[1i64]])).unwrap();
    let emb = emb.logit_soft_cap(Some(f32::NAN));
    match emb.reverse_call(&Tensor::from(array![[1.0f32, 2.0]])) {
        Err(err) => assert!(err.to_string().contains("logit_soft_cap"), "{err}"),
        Ok(logits) => panic!(
            "a NaN logit_soft_cap gave logits {:?}",
            logits.as_float().unwrap()
        ),
    }
}
