//! Review of the pretrained-table readers (`src/io/`): cases where ndkeras parses a file
//! differently from its reference implementation.

use ndkeras::io::word_vectors::ReadOptions;
use ndkeras::io::word2vec;

/// `src/io/word2vec.rs`, `read_text` (via `Collector::read_text_rows` with `max_rows` =
/// the header's count): a word2vec text file whose `rows dims` header counts fewer rows
/// than the body holds is refused ("the header says 1 rows, the file has more").
///
/// The reference, gensim's `KeyedVectors.load_word2vec_format`, reads exactly the header's
/// number of lines and ignores what follows (gensim/models/keyedvectors.py,
/// `_word2vec_read_text`: `for line_no in range(vocab_size): line = fin.readline() ...`;
/// nothing reads past the last counted line), so it loads `a -> [1, 2]`. The project rule
/// is to parse as strictly as the reference: what gensim accepts must load with the same
/// values.
#[test]
fn word2vec_text_header_undercount_loads_the_counted_rows_as_gensim() {
    let text = "1 2\na 1 2\nb 3 4\n";
    let vectors =
        word2vec::read_word2vec_text_from(text.as_bytes(), "under.txt", ReadOptions::default())
            .expect("gensim loads the first `rows` lines and ignores the rest");
    assert_eq!(vectors.tokens(), ["a"]);
    assert_eq!(vectors.get("a").unwrap().to_vec(), vec![1.0f32, 2.0]);
}

/// `src/io/word2vec.rs`, `read_word2vec_binary_from` (the loop after the last row:
/// "Anything but whitespace after the last entry means the header undercounts"): a word2vec
/// binary file whose header counts fewer rows than it holds is refused ("the header says
/// 1 rows, but data follows the last one").
///
/// The reference, gensim's `_word2vec_read_binary`, stops once `tot_processed_words`
/// reaches `vocab_size` (`while tot_processed_words < vocab_size: ...`, and
/// `_add_bytes_to_kv` processes at most `vocab_size - kv.next_index` words) and never looks
/// at the bytes after them, so it loads `a -> [1, 2]`.
#[test]
fn word2vec_binary_header_undercount_loads_the_counted_rows_as_gensim() {
    let dir = std::env::temp_dir().join(format!("ndkeras-review-readers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
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
    std::fs::remove_dir_all(&dir).unwrap();
    let vectors = result.expect("gensim loads the first `rows` entries and ignores the rest");
    assert_eq!(vectors.tokens(), ["a"]);
    assert_eq!(vectors.get("a").unwrap().to_vec(), vec![1.0f32, 2.0]);
}
