//! Hostile GloVe and word2vec files (issue 7): headers claiming impossible sizes, endless
//! lines, non-finite values and malformed entries end in an `Err` naming what is wrong —
//! never a panic, an abort or an allocation sized by an unchecked header.

use std::io::Read;
use std::path::PathBuf;

use ndarray::{Array2, array};
use ndkeras::Error;
use ndkeras::io::vocabulary::Vocabulary;
use ndkeras::io::word_vectors::{MAX_DIMS, MAX_LINE_BYTES, ReadOptions, Utf8, WordVectors};
use ndkeras::io::{glove, projector, word2vec};

fn options() -> ReadOptions {
    ReadOptions::default()
}

fn glove_bytes(bytes: &[u8]) -> ndkeras::Result<WordVectors> {
    glove::read_glove_from(bytes, "g.txt", options())
}

fn text(bytes: &[u8]) -> ndkeras::Result<WordVectors> {
    word2vec::read_word2vec_text_from(bytes, "w.txt", options())
}

/// The binary reader with the length known and unknown: both must agree on `Err`.
fn binary(bytes: &[u8]) -> Vec<ndkeras::Result<WordVectors>> {
    vec![
        word2vec::read_word2vec_binary_from(bytes, Some(bytes.len() as u64), "w.bin", options()),
        word2vec::read_word2vec_binary_from(bytes, None, "w.bin", options()),
    ]
}

/// Asserts an `InvalidFile` (or `Allocation`) whose message holds every part.
#[track_caller]
fn assert_refused(result: ndkeras::Result<WordVectors>, parts: &[&str]) {
    let err = result.expect_err("a hostile file must be refused");
    assert!(
        matches!(err, Error::InvalidFile { .. } | Error::Allocation { .. }),
        "unexpected kind: {err:?}"
    );
    let message = err.to_string();
    for part in parts {
        assert!(message.contains(part), "{message:?} lacks {part:?}");
    }
}

/// A binary entry: token, space, little-endian floats, newline.
fn entry(token: &str, values: &[f32]) -> Vec<u8> {
    let mut bytes = token.as_bytes().to_vec();
    bytes.push(b' ');
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes.push(b'\n');
    bytes
}

fn scratch(test: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("ndkeras-hostile-wv-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Class 1 (panics): `capacity overflow` from a zero-row header with a huge `dims`.
#[test]
fn a_header_whose_vectors_overflow_memory_is_refused() {
    for result in binary(b"0 4611686018427387904\n") {
        assert_refused(
            result,
            &["line 1", "4611686018427387904 components", "between 1 and"],
        );
    }
    assert_refused(
        text(b"0 4611686018427387904\n"),
        &["w.txt: line 1", "4611686018427387904"],
    );
    // rows × dims × 4 overflows even with a modest dims.
    for result in binary(b"4611686018427387904 16\n") {
        assert_refused(
            result,
            &["4611686018427387904 rows of 16 floats", "overflows"],
        );
    }
}

/// Class 2 (aborts): a zero-row header once skipped the size check and allocated 40 GB.
#[test]
fn a_zero_row_header_with_ten_billion_dims_is_refused() {
    for result in binary(b"0 10000000000\n") {
        assert_refused(result, &["10000000000 components", &MAX_DIMS.to_string()]);
    }
    assert_refused(text(b"3 1000000000000\n"), &["1000000000000 components"]);
    // A large but admissible dims and many rows: refused against the file's length when it
    // is known, and read only as far as the data goes when it is not.
    let mut claims = b"1000000000 1000000\n".to_vec();
    claims.extend_from_slice(&entry("a", &[1.0]));
    let [known, unknown] = binary(&claims).try_into().unwrap();
    assert_refused(
        known,
        &["1000000000 rows of 1000000 floats", "file can hold"],
    );
    assert_refused(unknown, &["row 1", "cut short", "1000000 floats"]);
    assert_refused(
        text(b"1000000000 300\na 1\n"),
        &["line 2", "'a' has 1 components, expected 300"],
    );
}

/// Text headers are checked against the file's length when reading a path.
#[test]
fn a_text_header_claiming_more_rows_than_the_file_holds_is_refused() {
    let dir = scratch("text-header");
    let path = dir.join("claims.w2v.txt");
    std::fs::write(&path, "1000000000000 300\na 1 2\n").unwrap();
    let err = word2vec::read_word2vec_text_with(&path, options()).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::InvalidFile { .. }), "{err:?}");
    for part in [
        path.display().to_string().as_str(),
        "1000000000000 rows",
        "file can hold",
    ] {
        assert!(message.contains(part), "{message} lacks {part}");
    }
    let binary_path = dir.join("claims.bin");
    std::fs::write(&binary_path, b"0 10000000000\n").unwrap();
    let err = word2vec::read_word2vec_binary_with(&binary_path, options()).unwrap_err();
    assert!(
        err.to_string().contains(&binary_path.display().to_string()),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// An endless reader: `prefix`, then `repeat` forever (a 2 GB line, without the 2 GB).
struct Endless {
    prefix: Vec<u8>,
    repeat: &'static [u8],
    at: usize,
    block: Vec<u8>,
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at < self.prefix.len() {
            let n = buf.len().min(self.prefix.len() - self.at);
            buf[..n].copy_from_slice(&self.prefix[self.at..self.at + n]);
            self.at += n;
            return Ok(n);
        }
        // Whole repetitions only, so the pattern stays in step across calls; copied a block
        // at a time (a byte loop is slow in a debug build).
        if self.block.is_empty() {
            self.block = self.repeat.repeat((1 << 16) / self.repeat.len());
        }
        let n = buf.len().min(self.block.len()) / self.repeat.len() * self.repeat.len();
        buf[..n].copy_from_slice(&self.block[..n]);
        Ok(n)
    }
}

/// A line is never read further than a token and `dims` numbers can need.
#[test]
fn an_endless_line_is_refused_once_it_is_longer_than_a_row_can_need() {
    let endless = |prefix: &[u8]| Endless {
        prefix: prefix.to_vec(),
        repeat: b"1 ",
        at: 0,
        block: Vec::new(),
    };
    let err = word2vec::read_word2vec_text_from(endless(b"1 300\ntoken"), "w.txt", options())
        .unwrap_err();
    let message = err.to_string();
    for part in ["w.txt: line 2", "longer than", "300 numbers"] {
        assert!(message.contains(part), "{message} lacks {part}");
    }
    let err = glove::read_glove_from(endless(b"a 1 2\nb"), "g.txt", options()).unwrap_err();
    let message = err.to_string();
    for part in ["g.txt: line 2", "longer than", "2 numbers"] {
        assert!(message.contains(part), "{message} lacks {part}");
    }
    // The first GloVe line, before the number of components is known: bounded by
    // MAX_LINE_BYTES.
    let err = glove::read_glove_from(endless(b"a"), "g.txt", options()).unwrap_err();
    let message = err.to_string();
    for part in ["g.txt: line 1", "longer than", &MAX_LINE_BYTES.to_string()] {
        assert!(message.contains(part), "{message} lacks {part}");
    }
    // An endless token in a binary file.
    let token = Endless {
        prefix: b"1 2\n".to_vec(),
        repeat: b"x",
        at: 0,
        block: Vec::new(),
    };
    let err = word2vec::read_word2vec_binary_from(token, None, "w.bin", options()).unwrap_err();
    assert!(err.to_string().contains("w.bin: row 1"), "{err}");
    assert!(err.to_string().contains("token longer than"), "{err}");
    // A header line that never ends.
    let header = Endless {
        prefix: b"1".to_vec(),
        repeat: b"0",
        at: 0,
        block: Vec::new(),
    };
    let err = word2vec::read_word2vec_text_from(header, "w.txt", options()).unwrap_err();
    assert!(err.to_string().contains("longer than 255 bytes"), "{err}");
}

/// Class 7 (non-finite values) in text: NaN, infinities and numbers that overflow f32.
#[test]
fn text_readers_refuse_values_that_are_not_finite_float32() {
    for written in ["NaN", "nan", "inf", "-inf", "+infinity", "1e40", "-3.5e38"] {
        let glove_line = format!("a 1 2\nb 0.5 {written}\n");
        assert_refused(
            glove_bytes(glove_line.as_bytes()),
            &[
                "g.txt: line 2",
                "component 2 of 'b'",
                &format!("'{written}'"),
                "finite float32",
            ],
        );
        let w2v = format!("2 2\na 1 2\nb {written} 0.5\n");
        assert_refused(
            text(w2v.as_bytes()),
            &[
                "w.txt: line 3",
                "component 1 of 'b'",
                &format!("'{written}'"),
                "finite float32",
            ],
        );
    }
    // The largest finite f32 and the smallest subnormal are fine.
    let edge = glove_bytes(b"a 3.4028235e38 1e-45\n").unwrap();
    assert_eq!(edge.vectors(), &array![[f32::MAX, 1e-45]]);
}

/// Class 7 in binary files: the row, the component and the value with its bits.
#[test]
fn the_binary_reader_refuses_values_that_are_not_finite() {
    for (bad, written) in [
        (f32::NAN, "NaN"),
        (f32::INFINITY, "inf"),
        (f32::NEG_INFINITY, "-inf"),
    ] {
        let mut bytes = b"2 3\n".to_vec();
        bytes.extend_from_slice(&entry("a", &[1.0, 2.0, 3.0]));
        bytes.extend_from_slice(&entry("b", &[1.0, 2.0, bad]));
        for result in binary(&bytes) {
            assert_refused(
                result,
                &[
                    "w.bin: row 2",
                    "component 3 of 'b'",
                    written,
                    &format!("0x{:08x}", bad.to_bits()),
                    "finite float32",
                ],
            );
        }
    }
}

/// Writers: a `WordVectors` cannot hold a non-finite value, so no writer can write one; the
/// projector export, which takes a bare table, checks it.
#[test]
fn writers_never_write_values_that_are_not_finite() {
    let err = WordVectors::new(
        vec!["a".into(), "b".into()],
        array![[1.0f32, 2.0], [3.0, f32::NAN]],
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    for part in ["NaN at [1, 1]", "token 'b'", "finite float32"] {
        assert!(err.to_string().contains(part), "{err} lacks {part}");
    }
    // Through the vocabulary, from a trained table.
    let vocabulary = Vocabulary::new(["a", "b"], true).unwrap();
    let mut table = Array2::<f32>::zeros((4, 2));
    table[[3, 0]] = f32::INFINITY;
    let err = vocabulary.word_vectors(&table).unwrap_err();
    assert!(err.to_string().contains("inf at [1, 0]"), "{err}");

    let dir = scratch("projector");
    let err = projector::write_projector(&dir, &table, &vocabulary).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    for part in ["write_projector", "inf at [3, 0]", "finite float32"] {
        assert!(err.to_string().contains(part), "{err} lacks {part}");
    }
    assert!(!dir.join("vectors.tsv").exists(), "nothing is written");

    // Tokens a text file cannot hold are refused too, so every file written reads back.
    let spaced = WordVectors::new(vec!["a b".into()], array![[1.0f32]]).unwrap();
    for err in [
        glove::write_glove(dir.join("g.txt"), &spaced).unwrap_err(),
        word2vec::write_word2vec_text(dir.join("w.txt"), &spaced).unwrap_err(),
        word2vec::write_word2vec_binary(dir.join("w.bin"), &spaced).unwrap_err(),
    ] {
        assert!(err.to_string().contains("\"a b\" (row 0)"), "{err}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Other malformed entries: each is an error naming the line or row.
#[test]
fn malformed_entries_are_errors() {
    assert_refused(
        glove_bytes(b"a 1 2\nlonely\n"),
        &["line 2", "'lonely' has no components"],
    );
    assert_refused(glove_bytes(b"lonely\r\n"), &["line 1", "no components"]);
    assert_refused(
        glove_bytes(b"a 1 2\nb 1 2 3\n"),
        &["line 2", "more than 2 components", "ragged"],
    );
    assert_refused(
        text(b"1 0\na\n"),
        &["line 1", "0 components", "between 1 and"],
    );
    assert_refused(text(b"-1 2\n"), &["line 1", "not two counts"]);
    assert_refused(text(b"1 2 3\n"), &["line 1", "'rows dims'"]);
    assert_refused(text(b""), &["line 1", "'rows dims'"]);
    // Invalid UTF-8: in a token (default policy), and inside a number (lossy policy).
    assert_refused(
        glove_bytes(b"a 1\n\xc3( 2\n"),
        &["line 2", "invalid UTF-8 at byte 0"],
    );
    let lossy =
        glove::read_glove_from(&b"a 1\nb 1\xff\n"[..], "g.txt", options().utf8(Utf8::Lossy));
    assert_refused(lossy, &["line 2", "component 1 of 'b'", "not a number"]);
    let lossy = glove::read_glove_from(&b"\xffa 1\n"[..], "g.txt", options().utf8(Utf8::Lossy));
    assert_eq!(lossy.unwrap().tokens(), ["\u{fffd}a"]);
    // Binary entries that end early: inside the token, inside the vector, and missing rows.
    // (A long first token keeps the file large enough for the header's claim, so the reader
    // with the length known gets as far as the short entry too.)
    let mut bytes = b"2 2\n".to_vec();
    bytes.extend_from_slice(&entry("a_long_first_token", &[1.0, 2.0]));
    bytes.extend_from_slice(b"bee");
    for result in binary(&bytes) {
        assert_refused(result, &["w.bin: row 2", "ends inside the token 'bee'"]);
    }
    bytes.extend_from_slice(b" \x00\x00");
    for result in binary(&bytes) {
        assert_refused(result, &["w.bin: row 2", "'bee' is cut short", "2 floats"]);
    }
    let mut short = b"3 2\n".to_vec();
    short.extend_from_slice(&entry("a_token_long_enough_for_three_rows", &[1.0, 2.0]));
    for result in binary(&short) {
        assert_refused(result, &["says 3 rows, the file has 1"]);
    }
    let mut invalid = b"1 1\n".to_vec();
    invalid.extend_from_slice(&entry("\u{e9}", &[1.0]));
    invalid[4] = 0xff;
    for result in binary(&invalid) {
        assert_refused(result, &["w.bin: row 1", "invalid UTF-8", "token"]);
    }
}

/// What is valid stays valid: CRLF line ends, a last line without a newline, a binary file
/// without newlines between entries, and normalization of extreme (finite) values.
#[test]
fn clean_edge_cases_still_read() {
    let crlf = glove_bytes(b"a 1 2\r\nb 3 4").unwrap();
    assert_eq!(crlf.vectors(), &array![[1.0f32, 2.0], [3.0, 4.0]]);
    assert_eq!(text(b"2 1\r\na 1\r\n\r\nb 2").unwrap().len(), 2);
    assert_eq!(text(b"0 300").unwrap().dims(), 300);
    let mut packed = b"2 1\n".to_vec();
    for (token, v) in [("a", 1.0f32), ("b", 2.0)] {
        packed.extend_from_slice(token.as_bytes());
        packed.push(b' ');
        packed.extend_from_slice(&v.to_le_bytes());
    }
    for result in binary(&packed) {
        assert_eq!(result.unwrap().vectors(), &array![[1.0f32], [2.0]]);
    }
    // Squares of 3e38 overflow f32 and those of 1e-30 underflow: the norm is taken in f64.
    let normalized = glove::read_glove_from(
        &b"big 3e38 3e38\ntiny 1e-30 0\n"[..],
        "g.txt",
        options().normalize(true),
    )
    .unwrap();
    let half = std::f32::consts::FRAC_1_SQRT_2;
    assert_eq!(normalized.vectors(), &array![[half, half], [1.0, 0.0]]);
}

#[test]
fn what_the_writers_write_the_readers_read_at_the_limits() {
    use ndkeras::io::word_vectors::{MAX_TOKEN_BYTES, WordVectors};
    use ndkeras::io::{glove, word2vec};
    let dir = std::env::temp_dir().join(format!("ndkeras-wv-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // An empty table: written as `0 0`, read back as empty.
    let empty = WordVectors::new(Vec::new(), ndarray::Array2::zeros((0, 0))).unwrap();
    let text = dir.join("empty.txt");
    word2vec::write_word2vec_text(&text, &empty).unwrap();
    assert!(word2vec::read_word2vec_text(&text).unwrap().is_empty());
    let binary = dir.join("empty.bin");
    word2vec::write_word2vec_binary(&binary, &empty).unwrap();
    assert!(word2vec::read_word2vec_binary(&binary).unwrap().is_empty());
    // A token the readers would refuse cannot be made, so it is never written.
    let long = "x".repeat(MAX_TOKEN_BYTES + 1);
    let err = WordVectors::new(vec![long], ndarray::Array2::zeros((1, 2))).unwrap_err();
    assert!(err.to_string().contains("at most"), "{err}");
    // The longest accepted token round-trips through every format.
    let longest = "y".repeat(MAX_TOKEN_BYTES);
    let vectors = WordVectors::new(
        vec!["a".into(), longest.clone()],
        ndarray::array![[1.0f32, 2.0], [3.0, 4.0]],
    )
    .unwrap();
    let path = dir.join("longest.txt");
    glove::write_glove(&path, &vectors).unwrap();
    assert_eq!(glove::read_glove(&path).unwrap().tokens()[1], longest);
    word2vec::write_word2vec_text(&path, &vectors).unwrap();
    assert_eq!(
        word2vec::read_word2vec_text(&path).unwrap().tokens()[1],
        longest
    );
    word2vec::write_word2vec_binary(&path, &vectors).unwrap();
    assert_eq!(
        word2vec::read_word2vec_binary(&path).unwrap().tokens()[1],
        longest
    );
    // Vectors without components are refused when there are rows.
    assert!(WordVectors::new(vec!["a".into()], ndarray::Array2::zeros((1, 0))).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_empty_glove_file_round_trips() {
    use ndkeras::io::glove;
    use ndkeras::io::word_vectors::WordVectors;
    let path = std::env::temp_dir().join(format!("ndkeras-empty-glove-{}.txt", std::process::id()));
    let empty = WordVectors::new(Vec::new(), ndarray::Array2::zeros((0, 0))).unwrap();
    glove::write_glove(&path, &empty).unwrap();
    let back = glove::read_glove(&path);
    std::fs::remove_file(&path).unwrap();
    assert!(back.unwrap().is_empty());
}
