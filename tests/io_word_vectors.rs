//! GloVe and word2vec files, the vocabulary, pretrained embeddings and the projector export.

use std::path::PathBuf;

use ndarray::{Array2, array};
use ndkeras::io::word_vectors::{Duplicates, ReadOptions, Utf8, WordVectors};
use ndkeras::io::{glove, projector, vocabulary::Vocabulary, word2vec};
use ndkeras::prelude::*;

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ndkeras-wv-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn sample() -> WordVectors {
    let vectors = array![
        [0.1f32, -0.25, 3.0],
        [1e-45, f32::MAX, -0.0],
        [1.0 / 3.0, 2.5e-5, 1.234_567_9e7]
    ];
    WordVectors::new(
        vec!["the".into(), "caf\u{e9}".into(), "dog".into()],
        vectors,
    )
    .unwrap()
}

fn bits(v: &WordVectors) -> Vec<u32> {
    v.vectors().iter().map(|x| x.to_bits()).collect()
}

#[test]
fn every_format_round_trips_bit_exactly() {
    let dir = scratch("roundtrip");
    let original = sample();
    let options = ReadOptions::default();
    glove::write_glove(dir.join("v.txt"), &original).unwrap();
    word2vec::write_word2vec_text(dir.join("v.w2v.txt"), &original).unwrap();
    word2vec::write_word2vec_binary(dir.join("v.bin"), &original).unwrap();
    for read in [
        glove::read_glove_with(dir.join("v.txt"), options).unwrap(),
        word2vec::read_word2vec_text_with(dir.join("v.w2v.txt"), options).unwrap(),
        word2vec::read_word2vec_binary_with(dir.join("v.bin"), options).unwrap(),
    ] {
        assert_eq!(read.tokens(), original.tokens());
        assert_eq!(bits(&read), bits(&original));
    }
    std::fs::remove_dir_all(dir).unwrap();
}

fn read_glove(text: &[u8], options: ReadOptions) -> ndkeras::Result<WordVectors> {
    glove::read_glove_from(text, "test.txt", options)
}

#[test]
fn every_glove_line_is_checked() {
    let options = ReadOptions::default();
    let err = read_glove(b"a 1 2\nb 1\n", options).unwrap_err();
    assert!(
        err.to_string().contains("line 2") && err.to_string().contains("ragged"),
        "{err}"
    );
    let err = read_glove(b"a 1 2\nb 1 x\n", options).unwrap_err();
    assert!(
        err.to_string().contains("line 2") && err.to_string().contains("'x'"),
        "{err}"
    );
    let err = read_glove(b"a 1 2\nb 1 2\na 3 4\n", options).unwrap_err();
    assert!(
        err.to_string().contains("duplicate token 'a'") && err.to_string().contains("line 1"),
        "{err}"
    );
    let kept = read_glove(
        b"a 1 2\nb 1 2\na 3 4\n",
        options.duplicates(Duplicates::KeepFirst),
    )
    .unwrap();
    assert_eq!(kept.get("a").unwrap().to_vec(), vec![1.0, 2.0]);
    let err = read_glove(b"a 1 2\n\xff\xfe 1 2\n", options).unwrap_err();
    assert!(
        err.to_string().contains("line 2") && err.to_string().contains("UTF-8"),
        "{err}"
    );
    let lossy = read_glove(b"a 1 2\n\xff 1 2\n", options.utf8(Utf8::Lossy)).unwrap();
    assert_eq!(lossy.tokens()[1], "\u{fffd}");
    let normalized = read_glove(b"a 3 4\nz 0 0\n", options.normalize(true)).unwrap();
    assert_eq!(normalized.vectors(), &array![[0.6f32, 0.8], [0.0, 0.0]]);
    assert_eq!(
        read_glove(b"a 3 4\n\n", options).unwrap().vectors(),
        &array![[3.0f32, 4.0]],
        "raw unless asked"
    );
    let err = glove::read_glove_with("/nonexistent/glove.txt", options).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/glove.txt"), "{err}");
}

#[test]
fn word2vec_headers_are_checked() {
    let options = ReadOptions::default();
    let text = |t: &str| word2vec::read_word2vec_text_from(t.as_bytes(), "w.txt", options);
    assert_eq!(text("2 2\na 1 2\nb 3 4\n").unwrap().len(), 2);
    let err = text("3 2\na 1 2\nb 3 4\n").unwrap_err();
    assert!(
        err.to_string().contains("says 3 rows, the file has 2"),
        "{err}"
    );
    let err = text("1 2\na 1 2\nb 3 4\n").unwrap_err();
    assert!(err.to_string().contains("says 1 rows"), "{err}");
    let err = text("2 3\na 1 2\nb 3 4\n").unwrap_err();
    assert!(err.to_string().contains("expected 3"), "{err}");
    assert!(text("two 2\n").is_err());

    let binary =
        |b: &[u8]| word2vec::read_word2vec_binary_from(b, Some(b.len() as u64), "w.bin", options);
    let mut good = b"2 1\n".to_vec();
    for (token, v) in [("a", 1.5f32), ("b", -2.0)] {
        good.extend_from_slice(token.as_bytes());
        good.push(b' ');
        good.extend_from_slice(&v.to_le_bytes());
        good.push(b'\n');
    }
    assert_eq!(binary(&good).unwrap().vectors(), &array![[1.5f32], [-2.0]]);
    // A header claiming 10^12 rows is refused before anything is allocated.
    let mut huge = b"1000000000000 300\n".to_vec();
    huge.extend_from_slice(&good[4..]);
    assert!(
        binary(&huge)
            .unwrap_err()
            .to_string()
            .contains("more than the")
    );
    // Truncated in the middle of a vector, and trailing entries beyond the header.
    assert!(binary(&good[..good.len() - 3]).is_err());
    let mut more = good.clone();
    more.extend_from_slice(b"c ");
    more.extend_from_slice(&1.0f32.to_le_bytes());
    assert!(
        binary(&more)
            .unwrap_err()
            .to_string()
            .contains("data follows")
    );
}

#[test]
fn vocabulary_follows_string_lookup() {
    let masked = Vocabulary::new(["the", "cat"], true).unwrap();
    assert_eq!(masked.tokens(), ["", "[UNK]", "the", "cat"]);
    assert_eq!(masked.lookup(&["cat", "", "zebra"]).to_vec(), vec![3, 0, 1]);
    let plain = Vocabulary::new(["the", "cat"], false).unwrap();
    assert_eq!(plain.tokens(), ["[UNK]", "the", "cat"]);
    assert_eq!(plain.lookup(&["cat", "", "zebra"]).to_vec(), vec![2, 0, 0]);
    assert_eq!(plain.token(9), None);
    assert!(Vocabulary::new(["a", "a"], true).is_err());
    assert!(Vocabulary::new(["[UNK]"], false).is_err());
}

#[test]
fn a_pretrained_embedding_covers_the_vocabulary() {
    let vectors = sample();
    let vocabulary = Vocabulary::new(["dog", "the", "unicorn"], true).unwrap();
    let fill = Initializer::Constant(ndarray::arr0(9.0f32).into_dyn());
    let (mut layer, coverage) = vocabulary.embedding_from(&vectors, &fill).unwrap();
    assert_eq!(coverage.found, 2);
    assert_eq!(coverage.missing, vec!["unicorn".to_string()]);
    assert!((coverage.ratio() - 2.0 / 3.0).abs() < 1e-6);
    let ids = vocabulary.lookup(&["the", "unicorn", ""]);
    let out = layer.apply(&Tensor::from(ids)).unwrap();
    let out = out.as_float().unwrap();
    assert_eq!(
        out.index_axis(ndarray::Axis(0), 0)
            .iter()
            .copied()
            .collect::<Vec<f32>>(),
        vectors.get("the").unwrap().to_vec()
    );
    assert_eq!(
        out.index_axis(ndarray::Axis(0), 1)
            .iter()
            .copied()
            .collect::<Vec<f32>>(),
        vec![9.0; 3]
    );
    assert_eq!(
        out.index_axis(ndarray::Axis(0), 2)
            .iter()
            .copied()
            .collect::<Vec<f32>>(),
        vec![0.0; 3],
        "the padding row is zeros"
    );
    assert!(layer.config().mask_zero);

    // And back out: the table's rows as word vectors, special tokens left out.
    let table = layer.embeddings().unwrap();
    let back = vocabulary.word_vectors(table).unwrap();
    assert_eq!(back.tokens(), ["dog", "the", "unicorn"]);
}

#[test]
fn projector_files_have_one_line_per_id() {
    let dir = scratch("projector");
    let vocabulary = Vocabulary::new(["a\tb", "c"], true).unwrap();
    let table = Array2::from_shape_fn((4, 2), |(i, j)| (i * 2 + j) as f32 * 0.5);
    projector::write_projector(&dir, &table, &vocabulary).unwrap();
    let vectors = std::fs::read_to_string(dir.join("vectors.tsv")).unwrap();
    let metadata = std::fs::read_to_string(dir.join("metadata.tsv")).unwrap();
    assert_eq!(
        vectors.lines().collect::<Vec<_>>(),
        ["0\t0.5", "1\t1.5", "2\t2.5", "3\t3.5"]
    );
    assert_eq!(
        metadata.lines().collect::<Vec<_>>(),
        ["<pad>", "[UNK]", "a b", "c"]
    );
    assert!(projector::write_projector(&dir, &Array2::zeros((3, 2)), &vocabulary).is_err());
    std::fs::remove_dir_all(dir).unwrap();
}

/// A word2vec header that counts fewer rows than the file holds is an error naming the file
/// and the count, in both formats (gensim reads the counted rows and silently drops the
/// rest: a silent truncation ndkeras refuses, see doc/keras_for_rust_users.rs).
#[test]
fn a_word2vec_header_that_undercounts_is_refused_not_truncated() {
    let text = "1 2\na 1 2\nb 3 4\n";
    let err =
        word2vec::read_word2vec_text_from(text.as_bytes(), "under.txt", ReadOptions::default())
            .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::InvalidFile { .. }), "{err:?}");
    assert!(
        message.contains("under.txt") && message.contains("header says 1 rows"),
        "{message}"
    );

    let dir = scratch("undercount");
    let path = dir.join("under.bin");
    let mut bytes = b"1 2\n".to_vec();
    for (word, values) in [(b"a", [1.0f32, 2.0]), (b"b", [3.0, 4.0])] {
        bytes.extend_from_slice(word);
        bytes.push(b' ');
        for v in values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        bytes.push(b'\n');
    }
    std::fs::write(&path, &bytes).unwrap();
    let result = word2vec::read_word2vec_binary(&path);
    // The same file with an honest header reads both rows.
    bytes[0] = b'2';
    std::fs::write(&path, &bytes).unwrap();
    let honest = word2vec::read_word2vec_binary(&path);
    std::fs::remove_dir_all(&dir).unwrap();
    let err = result.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::InvalidFile { .. }), "{err:?}");
    assert!(
        message.contains("under.bin") && message.contains("header says 1 rows"),
        "{message}"
    );
    assert_eq!(honest.unwrap().tokens(), ["a", "b"]);
}
