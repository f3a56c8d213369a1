//! The id-making layers against tf_keras 2.21 (`tests/data/keras_lookups.json`, made by
//! `keras_lookups.py` beside it): the FarmHash and SipHash buckets of TensorFlow on strings of
//! every length; `StringLookup` and `IntegerLookup` adapted on a multilingual sample with ties
//! (vocabularies, ids with one and several OOV ids, mask tokens, invert, vector modes, the
//! vocabulary file); `Hashing` with and without salt and mask; and the errors Keras raises.

use std::sync::OnceLock;

use ndarray::Array2;
use ndkeras::Error;
use ndkeras::preprocessing::{
    Hashing, IntegerLookup, LookupBuilder, LookupKey, OutputMode, StringLookup, fingerprint64,
    siphash24,
};
use serde_json::Value;

fn reference() -> &'static Value {
    static ROOT: OnceLock<Value> = OnceLock::new();
    ROOT.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/keras_lookups.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    })
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

fn ints(value: &Value) -> Vec<i64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect()
}

fn int_rows(value: &Value) -> Array2<i64> {
    let rows: Vec<Vec<i64>> = value.as_array().unwrap().iter().map(ints).collect();
    let width = rows.first().map_or(0, Vec::len);
    Array2::from_shape_vec((rows.len(), width), rows.concat()).unwrap()
}

fn float_rows(value: &Value) -> Array2<f32> {
    let rows: Vec<Vec<f32>> = value
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    let width = rows.first().map_or(0, Vec::len);
    Array2::from_shape_vec((rows.len(), width), rows.concat()).unwrap()
}

fn message(err: &Error) -> String {
    err.to_string()
}

#[test]
fn farmhash_buckets_match_tensorflow() {
    let hashes = &reference()["hashes"];
    let inputs = strings(&hashes["strings"]);
    for (buckets, expected) in hashes["fast"].as_object().unwrap() {
        let n: u64 = buckets.parse().unwrap();
        let expected = expected.as_array().unwrap();
        for (s, e) in inputs.iter().zip(expected) {
            assert_eq!(
                fingerprint64(s.as_bytes()) % n,
                e.as_u64().unwrap(),
                "to_hash_bucket_fast({s:?}, {n}) ({} bytes)",
                s.len()
            );
        }
    }
}

#[test]
fn siphash_buckets_match_tensorflow() {
    let hashes = &reference()["hashes"];
    let inputs = strings(&hashes["strings"]);
    for case in hashes["strong"].as_array().unwrap() {
        let key: Vec<u64> = case["key"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_u64().unwrap())
            .collect();
        let n = case["num_buckets"].as_u64().unwrap();
        for (s, e) in inputs.iter().zip(case["buckets"].as_array().unwrap()) {
            assert_eq!(
                siphash24([key[0], key[1]], s.as_bytes()) % n,
                e.as_u64().unwrap(),
                "to_hash_bucket_strong({s:?}, {n}, key={key:?})"
            );
        }
    }
}

/// The builder a Keras config describes (the keys the generator uses).
fn configure<K: LookupKey>(
    mut builder: LookupBuilder<K>,
    config: &Value,
    key: impl Fn(&Value) -> K,
) -> LookupBuilder<K> {
    if let Some(n) = config["max_tokens"].as_u64() {
        builder = builder.max_tokens(n as usize);
    }
    if let Some(n) = config["num_oov_indices"].as_u64() {
        builder = builder.num_oov_indices(n as usize);
    }
    if !config["mask_token"].is_null() {
        builder = builder.mask_token(key(&config["mask_token"]));
    }
    if !config["oov_token"].is_null() {
        builder = builder.oov_token(key(&config["oov_token"]));
    }
    if let Some(mode) = config["output_mode"].as_str() {
        builder = builder.output_mode(mode.parse().unwrap());
    }
    if config["pad_to_max_tokens"].as_bool() == Some(true) {
        builder = builder.pad_to_max_tokens(true);
    }
    if let Some(vocabulary) = config["vocabulary"].as_array() {
        builder = builder.vocabulary(vocabulary.iter().map(&key));
    }
    builder
}

fn string_key(v: &Value) -> String {
    v.as_str().unwrap().to_string()
}

fn int_key(v: &Value) -> i64 {
    v.as_i64().unwrap()
}

#[test]
fn string_lookup_matches_keras() {
    let cases = reference()["string_lookup"].as_array().unwrap();
    assert!(cases.len() >= 15);
    for case in cases {
        let config = &case["config"];
        let what = format!("StringLookup({config})");
        let mut layer = configure(StringLookup::builder(), config, string_key)
            .build()
            .unwrap();
        if !case["adapt"].is_null() {
            layer.adapt(strings(&case["adapt"])).unwrap();
        }
        assert_eq!(
            layer.get_vocabulary(true).unwrap(),
            strings(&case["vocabulary"]),
            "{what}"
        );
        assert_eq!(
            layer.get_vocabulary(false).unwrap(),
            strings(&case["vocabulary_no_special"]),
            "{what}"
        );
        assert_eq!(
            layer.vocabulary_size() as u64,
            case["vocabulary_size"].as_u64().unwrap(),
            "{what}"
        );
        let inputs: Vec<Vec<String>> = case["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(strings)
            .collect();
        if layer.output_mode() == OutputMode::Int {
            let got = layer.call_batch(&inputs);
            match case.get("error") {
                Some(error) => {
                    assert!(
                        error.as_str().unwrap().contains("InvalidArgumentError"),
                        "{what}"
                    );
                    let err = got.unwrap_err();
                    assert!(
                        matches!(err, Error::InvalidArgument { .. }),
                        "{what}: {err}"
                    );
                    let msg = message(&err);
                    for part in [
                        "num_oov_indices=0",
                        "\"dog\"",
                        "consider setting `num_oov_indices=1`",
                    ] {
                        assert!(msg.contains(part), "{what}: {msg} lacks {part}");
                    }
                }
                None => assert_eq!(got.unwrap(), int_rows(&case["outputs"]), "{what}"),
            }
        } else {
            assert_eq!(
                layer.call_encoded(&inputs).unwrap(),
                float_rows(&case["outputs"]),
                "{what}"
            );
        }
        if let Some(ids) = case.get("invert_inputs") {
            let inverted = configure(StringLookup::builder(), config, string_key)
                .invert(true)
                .vocabulary(strings(&case["vocabulary_no_special"]))
                .build()
                .unwrap();
            let expected: Vec<Vec<String>> = case["invert_outputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(strings)
                .collect();
            let got = inverted.call_inverted(&int_rows(ids)).unwrap();
            let got: Vec<Vec<String>> = got.outer_iter().map(|r| r.to_vec()).collect();
            assert_eq!(got, expected, "{what} inverted");
        }
        if let Some(file) = case.get("vocabulary_file") {
            let folder = temp_folder();
            let path = folder.join("vocabulary.txt");
            layer.save_vocabulary(&path).unwrap();
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                file.as_str().unwrap(),
                "{what} file"
            );
            let mut loaded = configure(StringLookup::builder(), config, string_key)
                .build()
                .unwrap();
            loaded.load_vocabulary(&path).unwrap();
            assert_eq!(
                loaded.get_vocabulary(true).unwrap(),
                layer.get_vocabulary(true).unwrap(),
                "{what} reloaded"
            );
        }
    }
}

#[test]
fn integer_lookup_matches_keras() {
    let cases = reference()["integer_lookup"].as_array().unwrap();
    assert!(cases.len() >= 7);
    for case in cases {
        let config = &case["config"];
        let what = format!("IntegerLookup({config})");
        let mut layer = configure(IntegerLookup::builder(), config, int_key)
            .build()
            .unwrap();
        if !case["adapt"].is_null() {
            layer.adapt(ints(&case["adapt"])).unwrap();
        }
        assert_eq!(
            layer.get_vocabulary(true).unwrap(),
            ints(&case["vocabulary"]),
            "{what}"
        );
        assert_eq!(
            layer.vocabulary_size() as u64,
            case["vocabulary_size"].as_u64().unwrap(),
            "{what}"
        );
        let inputs: Vec<Vec<i64>> = case["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(ints)
            .collect();
        if layer.output_mode() == OutputMode::Int {
            assert_eq!(
                layer.call_batch(&inputs).unwrap(),
                int_rows(&case["outputs"]),
                "{what}"
            );
        } else {
            assert_eq!(
                layer.call_encoded(&inputs).unwrap(),
                float_rows(&case["outputs"]),
                "{what}"
            );
        }
        if let Some(ids) = case.get("invert_inputs") {
            let inverted = configure(IntegerLookup::builder(), config, int_key)
                .invert(true)
                .vocabulary(ints(&case["vocabulary_no_special"]))
                .build()
                .unwrap();
            assert_eq!(
                inverted.call_inverted(&int_rows(ids)).unwrap(),
                int_rows(&case["invert_outputs"]),
                "{what} inverted"
            );
        }
        if let Some(file) = case.get("vocabulary_file") {
            let folder = temp_folder();
            let path = folder.join("vocabulary.txt");
            layer.save_vocabulary(&path).unwrap();
            assert_eq!(
                std::fs::read_to_string(&path).unwrap(),
                file.as_str().unwrap(),
                "{what} file"
            );
            let mut loaded = configure(IntegerLookup::builder(), config, int_key)
                .build()
                .unwrap();
            loaded.load_vocabulary(&path).unwrap();
            assert_eq!(
                loaded.get_vocabulary(true).unwrap(),
                layer.get_vocabulary(true).unwrap(),
                "{what} reloaded"
            );
        }
    }
}

#[test]
fn hashing_matches_keras() {
    let cases = reference()["hashing"].as_array().unwrap();
    for case in cases {
        let config = &case["config"];
        let what = format!("Hashing({config})");
        let mut layer = Hashing::new(config["num_bins"].as_u64().unwrap()).unwrap();
        match &config["salt"] {
            Value::Null => {}
            Value::Array(pair) => {
                layer = layer.salt([pair[0].as_u64().unwrap(), pair[1].as_u64().unwrap()])
            }
            single => layer = layer.salt([single.as_u64().unwrap(); 2]),
        }
        match &config["mask_value"] {
            Value::Null => {}
            Value::String(s) => layer = layer.mask_value(s.as_str()),
            other => layer = layer.mask_value(other.as_i64().unwrap()),
        }
        let expected: Vec<i64> = case["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[0].as_i64().unwrap())
            .collect();
        let got = if let Some(inputs) = case.get("inputs") {
            let inputs: Vec<String> = inputs
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r[0].as_str().unwrap().to_string())
                .collect();
            layer.call(&inputs).unwrap()
        } else {
            let inputs: Vec<i64> = case["integer_inputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r[0].as_i64().unwrap())
                .collect();
            layer.call_integers(&inputs).unwrap()
        };
        assert_eq!(got.to_vec(), expected, "{what}");
    }
}

/// A fresh folder for one test's files.
fn temp_folder() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let folder = std::env::temp_dir().join(format!(
        "ndkeras-lookups-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&folder).unwrap();
    folder
}

fn invalid_argument(result: Result<impl std::fmt::Debug, Error>, parts: &[&str]) {
    let err = result.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    let msg = err.to_string();
    for part in parts {
        assert!(msg.contains(part), "{msg} lacks {part}");
    }
}

#[test]
fn keras_errors_at_build() {
    invalid_argument(
        StringLookup::builder().max_tokens(1).build(),
        &["max_tokens", "greater than 1"],
    );
    invalid_argument(
        StringLookup::builder().pad_to_max_tokens(true).build(),
        &["pad_to_max_tokens", "max_tokens"],
    );
    invalid_argument(
        StringLookup::builder()
            .invert(true)
            .output_mode(OutputMode::Count)
            .build(),
        &["output_mode", "count", "invert"],
    );
    invalid_argument(
        StringLookup::builder()
            .mask_token("")
            .num_oov_indices(3)
            .max_tokens(3)
            .build(),
        &["max_tokens", "4 special ids"],
    );
    invalid_argument(
        StringLookup::builder()
            .vocabulary(Vec::<String>::new())
            .build(),
        &["empty vocabulary"],
    );
    invalid_argument(
        StringLookup::builder()
            .vocabulary(["a", "b", "a", "c", "b"])
            .build(),
        &["repeated", "[\"a\", \"b\"]"],
    );
    invalid_argument(
        StringLookup::builder()
            .mask_token("")
            .vocabulary(["a", ""])
            .build(),
        &["mask token \"\" at vocabulary index 1", "[\"\", \"[UNK]\"]"],
    );
    invalid_argument(
        StringLookup::builder()
            .invert(true)
            .vocabulary(["a", "[UNK]"])
            .build(),
        &["OOV token \"[UNK]\" at vocabulary index 1"],
    );
    invalid_argument(
        StringLookup::builder()
            .max_tokens(3)
            .vocabulary(["a", "b", "c"])
            .build(),
        &["4 ids", "max_tokens = 3"],
    );
    // Not inverting: "[UNK]" in the vocabulary is an ordinary token, as in Keras.
    let plain = StringLookup::builder()
        .vocabulary(["a", "[UNK]"])
        .build()
        .unwrap();
    assert_eq!(plain.call(&["[UNK]", "zz"]).unwrap().to_vec(), [2, 0]);
    invalid_argument(
        IntegerLookup::builder().max_tokens(0).build(),
        &["max_tokens"],
    );
    assert!(matches!(
        Hashing::new(0),
        Err(Error::InvalidArgument { .. })
    ));
    assert_eq!("tf-idf".parse::<OutputMode>().ok(), Some(OutputMode::TfIdf));
    assert!(matches!(
        "tfidf".parse::<OutputMode>(),
        Err(Error::UnknownName { .. })
    ));
}

#[test]
fn keras_errors_when_used() {
    let mut fixed = StringLookup::builder().vocabulary(["a"]).build().unwrap();
    invalid_argument(fixed.adapt(["a", "b"]), &["adapt", "static vocabulary"]);
    // set_vocabulary after the builder is fine, as in Keras.
    fixed.set_vocabulary(["b", "c"]).unwrap();
    assert_eq!(fixed.call(&["c"]).unwrap().to_vec(), [2]);

    let strict = StringLookup::builder()
        .num_oov_indices(0)
        .vocabulary(["a"])
        .build()
        .unwrap();
    invalid_argument(
        strict.call(&["a", "b", "c"]),
        &["OOV values [\"b\", \"c\"]", "num_oov_indices=0"],
    );

    let forward = StringLookup::builder().vocabulary(["a"]).build().unwrap();
    assert!(matches!(
        forward.call_inverted(&ndarray::array![1i64]),
        Err(Error::IncompatibleDtype { .. })
    ));
    assert!(matches!(
        forward.call_encoded(&[["a"]]),
        Err(Error::InvalidArgument { .. })
    ));
    let ragged: Vec<Vec<&str>> = vec![vec!["a", "b"], vec!["a"]];
    assert!(matches!(
        forward.call_batch(&ragged),
        Err(Error::IncompatibleShape { .. })
    ));

    let inverse = StringLookup::builder()
        .invert(true)
        .vocabulary(["a"])
        .build()
        .unwrap();
    assert!(matches!(
        inverse.call(&["a"]),
        Err(Error::IncompatibleDtype { .. })
    ));

    let unset = StringLookup::builder()
        .output_mode(OutputMode::MultiHot)
        .build()
        .unwrap();
    assert!(matches!(
        unset.call_encoded(&[["a"]]),
        Err(Error::NotBuilt { .. })
    ));
    let one_hot = StringLookup::builder()
        .output_mode(OutputMode::OneHot)
        .vocabulary(["a"])
        .build()
        .unwrap();
    invalid_argument(
        one_hot.call_encoded(&[["a", "a"]]),
        &["one element per sample"],
    );

    let masked = Hashing::new(10).unwrap().mask_value(0);
    assert!(matches!(
        masked.call(&["0"]),
        Err(Error::IncompatibleDtype { .. })
    ));
}

#[test]
fn adapt_orders_ties_by_token_descending_and_keeps_max_tokens() {
    let mut layer = StringLookup::builder().max_tokens(4).build().unwrap();
    layer.adapt(["b", "a", "c", "c", "é", "e", "b"]).unwrap();
    // counts: c 2, b 2, then a, e, é 1 each: ties highest first by UTF-8 bytes.
    assert_eq!(
        layer.get_vocabulary(true).unwrap(),
        ["[UNK]", "c", "b", "é"]
    );
    // An adapt that sees nothing is an error (Keras: "Expected input data to be
    // non-empty") and keeps the vocabulary; a new one replaces it.
    assert!(layer.adapt(Vec::<&str>::new()).is_err());
    assert_eq!(layer.vocabulary_size(), 4);
    layer.adapt(["z"]).unwrap();
    assert_eq!(layer.get_vocabulary(false).unwrap(), ["z"]);
    let mut ints = IntegerLookup::builder().build().unwrap();
    ints.adapt([3i64, -2, 3, 7, -2, 5]).unwrap();
    assert_eq!(ints.get_vocabulary(true).unwrap(), [-1, 3, -2, 7, 5]);
}

#[test]
fn ids_for_arrays_of_any_shape() {
    let layer = StringLookup::builder()
        .mask_token("")
        .vocabulary(["the", "cat"])
        .build()
        .unwrap();
    let input = ndarray::arr3(&[[["the", ""], ["cat", "dog"]]]).into_dyn();
    let ids = layer.call_array(&input).unwrap();
    assert_eq!(ids.shape(), &[1, 2, 2]);
    assert_eq!(ids.iter().copied().collect::<Vec<_>>(), [2, 0, 3, 1]);
    let owned: ndarray::ArrayD<String> = input.map(|s| s.to_string());
    assert_eq!(layer.call_array(&owned).unwrap(), ids);
}

#[test]
fn vocabulary_files_as_keras_reads_them() {
    let folder = temp_folder();
    let path = folder.join("vocabulary.txt");
    // Windows line ends and no special tokens: set_vocabulary adds the specials.
    std::fs::write(&path, "the\r\ncat\r\n東京").unwrap();
    let mut layer = StringLookup::default();
    layer.load_vocabulary(&path).unwrap();
    assert_eq!(
        layer.get_vocabulary(true).unwrap(),
        ["[UNK]", "the", "cat", "東京"]
    );

    std::fs::write(&path, [0x66, 0x6f, 0xff]).unwrap();
    let err = layer.load_vocabulary(&path).unwrap_err();
    assert!(matches!(err, Error::InvalidFile { .. }), "{err}");
    assert!(
        err.to_string().contains("vocabulary.txt") && err.to_string().contains("UTF-8"),
        "{err}"
    );

    std::fs::write(&path, "a\nb\na").unwrap();
    let err = layer.load_vocabulary(&path).unwrap_err();
    assert!(
        matches!(err, Error::InvalidFile { .. }) && err.to_string().contains("repeated"),
        "{err}"
    );

    std::fs::write(&path, "-1\n7\nseven").unwrap();
    let mut ints = IntegerLookup::default();
    let err = ints.load_vocabulary(&path).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::InvalidFile { .. }), "{msg}");
    assert!(
        msg.contains("line 3") && msg.contains("\"seven\"") && msg.contains("integer"),
        "{msg}"
    );

    let missing = folder.join("missing.txt");
    assert!(matches!(
        ints.load_vocabulary(&missing),
        Err(Error::Io { .. })
    ));
}

#[test]
fn text_vectorization_matches_keras() {
    use ndkeras::preprocessing::{Split, Standardize, TextVectorization};
    let root = reference();
    let cases = root["text_vectorization"].as_array().unwrap();
    assert!(cases.len() >= 12);
    let texts: Vec<String> = [
        "The cat sat on the mat.",
        "the CAT, the dog! The end...",
        "Élan café naïve ÉCOLE École",
        "東京 タワー 東京タワー 東京",
        "emoji 😀 😀 🎉party 🎉",
        "",
        "  multiple   spaces\tand\ttabs\nnewline\r\nwindows\u{0b}vt\u{0c}ff ",
        "don't stop-believing (now) [really] {x} <y> a_b a/b a\\b",
        "x\u{a0}y z\u{3000}w",
        "ß ẞ Σ σ ς İ",
        "Hello, World! hello world HELLO",
        "a a b b c c d d",
        "...!!!???",
    ]
    .map(String::from)
    .to_vec();
    for case in cases {
        let config = &case["config"];
        let what = format!("TextVectorization({config})");
        let mut builder = TextVectorization::builder();
        if let Some(n) = config["max_tokens"].as_u64() {
            builder = builder.max_tokens(n as usize);
        }
        if let Some(n) = config["output_sequence_length"].as_u64() {
            builder = builder.output_sequence_length(n as usize);
        }
        match config.get("standardize") {
            None => {}
            Some(Value::Null) => builder = builder.standardize(Standardize::None),
            Some(s) => {
                builder = builder.standardize(match s.as_str().unwrap() {
                    "lower" => Standardize::Lower,
                    "strip_punctuation" => Standardize::StripPunctuation,
                    other => panic!("{other}"),
                })
            }
        }
        if config["split"].as_str() == Some("character") {
            builder = builder.split(Split::Character);
        }
        match &config["ngrams"] {
            Value::Null => {}
            Value::Array(widths) => {
                builder = builder.ngram_widths(widths.iter().map(|w| w.as_u64().unwrap() as usize))
            }
            n => builder = builder.ngrams(n.as_u64().unwrap() as usize),
        }
        if let Some(vocabulary) = config["vocabulary"].as_array() {
            builder =
                builder.vocabulary(vocabulary.iter().map(|v| v.as_str().unwrap().to_string()));
        }
        let mut layer = builder.build().unwrap();
        if let Some(tokens) = case.get("adapt_tokens") {
            for (text, expected) in texts.iter().zip(tokens.as_array().unwrap()) {
                assert_eq!(
                    layer.tokens(text),
                    strings(expected),
                    "{what}: tokens of {text:?}"
                );
            }
            layer.adapt(&texts).unwrap();
        }
        assert_eq!(
            layer.get_vocabulary(true).unwrap(),
            strings(&case["vocabulary"]),
            "{what}"
        );
        assert_eq!(
            layer.vocabulary_size() as u64,
            case["vocabulary_size"].as_u64().unwrap(),
            "{what}"
        );
        let inputs = strings(&case["inputs"]);
        assert_eq!(
            layer.call(&inputs).unwrap(),
            int_rows(&case["outputs"]),
            "{what}"
        );
    }
    let fixed = TextVectorization::builder()
        .vocabulary(["a"])
        .build()
        .unwrap();
    let mut fixed2 = fixed.clone();
    invalid_argument(fixed2.adapt(["a b"]), &["adapt"]);
    invalid_argument(
        TextVectorization::builder().ngram_widths([0, 2]).build(),
        &["ngrams", "at least 1"],
    );
    invalid_argument(
        TextVectorization::builder().max_tokens(1).build(),
        &["max_tokens"],
    );
    let custom = TextVectorization::builder()
        .standardize(Standardize::Custom(std::sync::Arc::new(|t: &str| {
            t.to_lowercase()
        })))
        .split(Split::Custom(std::sync::Arc::new(|t: &str| {
            t.split(',').map(String::from).collect()
        })))
        .build()
        .unwrap();
    assert_eq!(custom.tokens("ÉCOLE,Σ"), ["école", "σ"]);
}
