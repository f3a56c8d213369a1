//! Property tests: every reader, fed arbitrary bytes or truncated and corrupted versions of
//! valid files, returns `Ok` or an `Err` with a message, and never panics.

use std::path::Path;

use ndkeras::io::word_vectors::ReadOptions;
use ndkeras::io::{glove, npy, word2vec};
use proptest::prelude::*;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/numpy")
            .join(name),
    )
    .unwrap()
}

/// Every reader on the same bytes; errors must carry a message.
fn read_everything(bytes: &[u8]) {
    let options = ReadOptions::default();
    let results: Vec<Result<(), ndkeras::Error>> = vec![
        npy::read_npy_bytes(bytes).map(|_| ()),
        npy::read_npz_bytes(bytes).map(|_| ()),
        glove::read_glove_from(bytes, "fuzz", options).map(|_| ()),
        word2vec::read_word2vec_text_from(bytes, "fuzz", options).map(|_| ()),
        word2vec::read_word2vec_binary_from(bytes, Some(bytes.len() as u64), "fuzz", options)
            .map(|_| ()),
        #[cfg(feature = "safetensors")]
        ndkeras::io::safetensors::read_tensor_bytes(bytes, "embed_tokens.weight").map(|_| ()),
        #[cfg(feature = "serde")]
        ndkeras::model::Sequential::from_json(&String::from_utf8_lossy(bytes)).map(|_| ()),
    ];
    for result in results {
        if let Err(err) = result {
            assert!(!err.to_string().is_empty());
        }
    }
}

fn valid_files() -> Vec<Vec<u8>> {
    let mut files = vec![
        fixture("table_f32.npy"),
        fixture("table_fortran.npy"),
        fixture("weights.npz"),
        fixture("compressed.npz"),
        fixture("model.safetensors"),
        b"the 0.1 0.2 0.3\ncat 0.4 0.5 0.6\n".to_vec(),
        b"2 3\nthe 0.1 0.2 0.3\ncat 0.4 0.5 0.6\n".to_vec(),
    ];
    let mut binary = b"2 1\n".to_vec();
    for (token, v) in [("a", 1.5f32), ("b", -2.0)] {
        binary.extend_from_slice(token.as_bytes());
        binary.push(b' ');
        binary.extend_from_slice(&v.to_le_bytes());
        binary.push(b'\n');
    }
    files.push(binary);
    #[cfg(feature = "serde")]
    {
        let mut model = ndkeras::model::Sequential::new();
        model
            .add(ndkeras::layers::Embedding::new(5, 2).input_length(3))
            .unwrap();
        files.push(model.to_json().into_bytes());
    }
    files
}

/// 200 cases per property in a normal run; `PROPTEST_CASES=100000 cargo test --test
/// robustness` runs a long one (proptest's default configuration reads the variable).
fn config() -> ProptestConfig {
    let from_environment = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        from_environment
    } else {
        ProptestConfig {
            cases: 200,
            ..from_environment
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        read_everything(&bytes);
    }

    #[test]
    fn truncated_files_never_panic(file in 0usize..9, cut in any::<prop::sample::Index>()) {
        let files = valid_files();
        let bytes = &files[file % files.len()];
        read_everything(&bytes[..cut.index(bytes.len() + 1)]);
    }

    #[test]
    fn corrupted_files_never_panic(
        file in 0usize..9,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let files = valid_files();
        let mut bytes = files[file % files.len()].clone();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        read_everything(&bytes);
    }
}

#[test]
fn headers_claiming_huge_sizes_are_refused_without_allocating() {
    // npy: 10^12 rows; word2vec binary: 10^12 rows; safetensors: a 1 TB header.
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 300), }\n";
    let mut npy_bytes = b"\x93NUMPY\x01\x00".to_vec();
    npy_bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    npy_bytes.extend_from_slice(header.as_bytes());
    assert!(npy::read_npy_bytes(&npy_bytes).is_err());
    let w2v = b"1000000000000 300\nabc ";
    assert!(
        word2vec::read_word2vec_binary_from(
            &w2v[..],
            Some(w2v.len() as u64),
            "w",
            ReadOptions::default()
        )
        .is_err()
    );
    #[cfg(feature = "safetensors")]
    {
        let mut st = (1u64 << 40).to_le_bytes().to_vec();
        st.extend_from_slice(b"{}");
        assert!(ndkeras::io::safetensors::read_tensor_bytes(&st, "x").is_err());
    }
}
