//! Hostile `.npy` and `.npz` files (issue 7): every one ends in an `Err` naming what was
//! wrong, never a panic, a huge allocation or a full inflation. The archives are built byte
//! by byte here, so each test says exactly which claim is a lie.

use std::path::{Path, PathBuf};

use ndarray::{ArrayD, array};
use ndkeras::Error;
use ndkeras::io::npy;

/// A fresh folder for one test's files.
fn scratch(test: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("ndkeras-hostile-npy-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An `.npy` file of the given version with `header` as its dictionary text and `data` after.
fn npy_with_header(version: u8, header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = b"\x93NUMPY".to_vec();
    bytes.extend_from_slice(&[version, 0]);
    if version == 1 {
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

/// A version 1.0 `.npy` file as NumPy writes it.
fn npy_file(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
    let fortran = if fortran { "True" } else { "False" };
    let header =
        format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}\n");
    npy_with_header(1, &header, data)
}

fn f32_le(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn f64_be(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// Asserts an `InvalidFile` error whose message holds every part.
fn assert_invalid(result: Result<impl std::fmt::Debug, Error>, parts: &[&str]) {
    let err = result.expect_err("a hostile file was accepted");
    let message = err.to_string();
    assert!(matches!(err, Error::InvalidFile { .. }), "{err:?}");
    for part in parts {
        assert!(message.contains(part), "{message:?} lacks {part:?}");
    }
}

// ---- A zip archive written by hand ----------------------------------------------------

/// One entry of a hand-made archive: what is stored, and what the headers claim.
struct Entry {
    name: String,
    /// 0 = stored, 8 = deflate.
    method: u16,
    payload: Vec<u8>,
    crc: u32,
    compressed_size: u64,
    size: u64,
}

impl Entry {
    /// An honest stored entry.
    fn stored(name: &str, content: &[u8]) -> Entry {
        Entry {
            name: name.to_string(),
            method: 0,
            payload: content.to_vec(),
            crc: crc32(content),
            compressed_size: content.len() as u64,
            size: content.len() as u64,
        }
    }
}

/// The archive's bytes, with one central-directory record per entry.
fn zip_archive(entries: &[Entry]) -> Vec<u8> {
    let central: Vec<(usize, &str)> = entries
        .iter()
        .map(|e| e.name.as_str())
        .enumerate()
        .collect();
    zip_with_directory(entries, &central)
}

/// The archive's bytes; `central` lists the central-directory records: which entry's local
/// header each points to, and the name it gives.
fn zip_with_directory(entries: &[Entry], central: &[(usize, &str)]) -> Vec<u8> {
    fn sizes(entry: &Entry) -> (u32, u32, Vec<u8>) {
        if entry.size >= 0xFFFF_FFFF || entry.compressed_size >= 0xFFFF_FFFF {
            let mut extra = vec![1, 0, 16, 0];
            extra.extend_from_slice(&entry.size.to_le_bytes());
            extra.extend_from_slice(&entry.compressed_size.to_le_bytes());
            (0xFFFF_FFFF, 0xFFFF_FFFF, extra)
        } else {
            (entry.compressed_size as u32, entry.size as u32, Vec::new())
        }
    }
    let mut out = Vec::new();
    let mut offsets = Vec::new();
    for entry in entries {
        offsets.push(out.len() as u32);
        let (compressed, size, extra) = sizes(entry);
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&45u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&entry.method.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0x21, 0]); // time, date
        out.extend_from_slice(&entry.crc.to_le_bytes());
        out.extend_from_slice(&compressed.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&(entry.name.len() as u16).to_le_bytes());
        out.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        out.extend_from_slice(entry.name.as_bytes());
        out.extend_from_slice(&extra);
        out.extend_from_slice(&entry.payload);
    }
    let directory_start = out.len() as u32;
    for &(index, name) in central {
        let entry = &entries[index];
        let (compressed, size, extra) = sizes(entry);
        out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        out.extend_from_slice(&45u16.to_le_bytes());
        out.extend_from_slice(&45u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&entry.method.to_le_bytes());
        out.extend_from_slice(&[0, 0, 0x21, 0]);
        out.extend_from_slice(&entry.crc.to_le_bytes());
        out.extend_from_slice(&compressed.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0; 10]); // comment length, disk, internal and external attributes
        out.extend_from_slice(&offsets[index].to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&extra);
    }
    let directory_len = out.len() as u32 - directory_start;
    end_of_directory(
        &mut out,
        central.len() as u16,
        directory_len,
        directory_start,
    );
    out
}

fn end_of_directory(out: &mut Vec<u8>, entries: u16, directory_len: u32, directory_start: u32) {
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&entries.to_le_bytes());
    out.extend_from_slice(&entries.to_le_bytes());
    out.extend_from_slice(&directory_len.to_le_bytes());
    out.extend_from_slice(&directory_start.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A raw deflate stream (one fixed-Huffman block) of `prefix` followed by `zeros` zero bytes,
/// written as back-references of 258 bytes: about 13 bits per 258 bytes inflated.
fn deflate_then_zeros(prefix: &[u8], zeros: usize) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        n: u32,
    }
    impl Bits {
        fn put(&mut self, value: u64, bits: u32) {
            self.acc |= value << self.n;
            self.n += bits;
            while self.n >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.n -= 8;
            }
        }
        /// Huffman codes go most significant bit first.
        fn code(&mut self, code: u32, bits: u32) {
            let reversed = code.reverse_bits() >> (32 - bits);
            self.put(u64::from(reversed), bits);
        }
        fn literal(&mut self, byte: u8) {
            match byte {
                0..=143 => self.code(0x30 + u32::from(byte), 8),
                _ => self.code(0x190 + u32::from(byte - 144), 9),
            }
        }
    }
    let mut bits = Bits {
        out: Vec::new(),
        acc: 0,
        n: 0,
    };
    bits.put(1, 1); // final block
    bits.put(1, 2); // fixed Huffman codes
    for &b in prefix {
        bits.literal(b);
    }
    let mut left = zeros;
    if left > 0 {
        bits.literal(0);
        left -= 1;
    }
    while left >= 258 {
        bits.code(0xC5, 8); // length 258 (symbol 285)
        bits.code(0, 5); // distance 1
        left -= 258;
    }
    for _ in 0..left {
        bits.literal(0);
    }
    bits.code(0, 7); // end of block
    bits.put(0, 7);
    bits.out
}

/// Reads an archive both from bytes and from a file, and returns the file's error.
fn read_npz_both(bytes: &[u8], dir: &Path) -> Result<Vec<(String, ArrayD<f32>)>, Error> {
    let from_bytes = npy::read_npz_bytes(bytes);
    let path = dir.join("archive.npz");
    std::fs::write(&path, bytes).unwrap();
    let from_file = npy::read_npz(&path);
    assert_eq!(
        from_bytes.is_ok(),
        from_file.is_ok(),
        "{from_bytes:?} vs {from_file:?}"
    );
    if let Err(err) = &from_file {
        assert!(err.to_string().contains("archive.npz"), "{err}");
    }
    from_file
}

// ---- Class 1: panics -----------------------------------------------------------------

#[test]
fn a_multibyte_descr_is_an_error_in_every_reader() {
    let dir = scratch("utf8");
    for version in [1, 3] {
        let header = "{'descr': 'éf4', 'fortran_order': False, 'shape': (2,), }\n";
        let bytes = npy_with_header(version, header, &f32_le(&[1.0, 2.0]));
        assert_invalid(
            npy::read_npy_bytes(&bytes),
            &["dtype", "f4", "not supported"],
        );
        let path = dir.join("utf8.npy");
        std::fs::write(&path, &bytes).unwrap();
        assert_invalid(npy::read_npy(&path), &["utf8.npy", "not supported"]);
        #[cfg(feature = "mmap")]
        assert_invalid(npy::map_npy(&path), &["utf8.npy", "not supported"]);
        let archive = zip_archive(&[Entry::stored("t.npy", &bytes)]);
        assert_invalid(
            read_npz_both(&archive, &dir),
            &["entry 't.npy'", "not supported"],
        );
    }
    // Multi-byte characters anywhere else (keys, values, after the dictionary) are errors too.
    for header in [
        "{'déscr': '<f4', 'fortran_order': False, 'shape': (2,), }",
        "{'descr': '<f4', 'fortran_order': Fälse, 'shape': (2,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2é,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }é",
        "é{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
        "{'descr': '<f4é', 'fortran_order': False, 'shape': (2,), }",
    ] {
        let bytes = npy_with_header(3, header, &f32_le(&[1.0, 2.0]));
        assert_invalid(npy::read_npy_bytes(&bytes), &["bad header"]);
    }
    // A version 3.0 header that is not UTF-8.
    let mut bytes = npy_with_header(
        3,
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
        &[],
    );
    bytes[22] = 0xFF;
    assert_invalid(npy::read_npy_bytes(&bytes), &["UTF-8"]);
    std::fs::remove_dir_all(dir).unwrap();
}

// ---- Class 4: lenient parsing --------------------------------------------------------

#[test]
fn headers_are_parsed_as_the_python_dictionary_they_are() {
    let data = f32_le(&[1.0, 2.0]);
    let hostile = [
        (
            "{'junk': \"'shape': (1,)\", 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
            "unexpected key 'junk'",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'shape': (2,), }",
            "'shape' appears twice",
        ),
        (
            "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
            "'descr' appears twice",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'fortran_order': False, 'shape': (2,)}",
            "'fortran_order' appears twice",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}",
            "unexpected key 'extra'",
        ),
        (
            "{'descr': '<f4', 'shape': (2,), }",
            "'fortran_order' is missing",
        ),
        (
            "{'fortran_order': False, 'shape': (2,), }",
            "'descr' is missing",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, }",
            "'shape' is missing",
        ),
        ("{}", "is missing"),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': [2], }",
            "expected a tuple",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': 2, }",
            "expected a tuple",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2), }",
            "not a tuple",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }",
            "'-2' is not a length",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2.0,), }",
            "not an integer",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (True,), }",
            "not an integer",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (02,), }",
            "not an integer",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (,), }",
            "missing",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,,), }",
            "missing",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2 2), }",
            "expected ')'",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } xyz",
            "after the dictionary",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }}",
            "after the dictionary",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n\0",
            "after the dictionary",
        ),
        (
            "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }",
            "expected True or False",
        ),
        (
            "{'descr': '<f4', 'fortran_order': false, 'shape': (2,), }",
            "expected True or False",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), ",
            "expected",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False 'shape': (2,)}",
            "expected '}'",
        ),
        (
            "{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}",
            "bad header",
        ),
        (
            "{'descr': '\\x3cf4', 'fortran_order': False, 'shape': (2,)}",
            "escape",
        ),
        (
            "{descr: '<f4', 'fortran_order': False, 'shape': (2,)}",
            "expected a key",
        ),
        (
            "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}",
            "structured",
        ),
        (
            "{'descr': '<c8', 'fortran_order': False, 'shape': (2,)}",
            "complex64",
        ),
        (
            "{'descr': 'f4', 'fortran_order': False, 'shape': (2,)}",
            "not supported",
        ),
        ("['descr', '<f4']", "expected '{'"),
        ("", "expected '{'"),
    ];
    for (header, part) in hostile {
        for version in [1, 2, 3] {
            let bytes = npy_with_header(version, header, &data);
            assert_invalid(npy::read_npy_bytes(&bytes), &["bad header", part]);
        }
    }
    // An integer array has a good header but is no table: the float readers refuse it and
    // say where ids are read.
    let bytes = npy_with_header(
        1,
        "{'descr': '<i4', 'fortran_order': False, 'shape': (2,)}",
        &data,
    );
    assert_invalid(npy::read_npy_bytes(&bytes), &["int32", "read_npy_ids"]);
    // The first hostile header of the issue, through an archive too.
    let bytes = npy_with_header(1, hostile[0].0, &data);
    let dir = scratch("junk");
    let archive = zip_archive(&[Entry::stored("w.npy", &bytes)]);
    assert_invalid(read_npz_both(&archive, &dir), &["entry 'w.npy'", "'junk'"]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn headers_numpy_accepts_are_read() {
    let data = f32_le(&[1.0, 2.0]);
    let expected = array![1.0f32, 2.0].into_dyn();
    for header in [
        // As NumPy writes it, padded, with and without the final newline.
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }          \n",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
        // Any key order, double quotes, no trailing comma, Python's whitespace.
        "{'shape': (2,), 'fortran_order': False, 'descr': '<f4'}",
        "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2,)}",
        "\n{\t'descr' :\n'<f4' ,\r\n 'fortran_order':False,'shape':( 2 , ) }\n",
        "{'descr': '|f4', 'fortran_order': True, 'shape': (2,)}",
        "{'descr': '=f4', 'fortran_order': False, 'shape': (2,)}",
    ] {
        for version in [1, 2, 3] {
            let bytes = npy_with_header(version, header, &data);
            assert_eq!(npy::read_npy_bytes(&bytes).unwrap(), expected, "{header:?}");
        }
    }
    // Python 2 wrote longs as `2L` in versions 1.0 and 2.0; NumPy still reads them.
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1L, 2L), }";
    let table = array![[1.0f32, 2.0]].into_dyn();
    assert_eq!(
        npy::read_npy_bytes(&npy_with_header(1, header, &data)).unwrap(),
        table
    );
    assert_eq!(
        npy::read_npy_bytes(&npy_with_header(2, header, &data)).unwrap(),
        table
    );
    assert_invalid(
        npy::read_npy_bytes(&npy_with_header(3, header, &data)),
        &["'1L'"],
    );
    // Big-endian float64, Fortran order.
    let bytes = npy_file(">f8", true, "(2, 2)", &f64_be(&[1.0, 2.0, 3.0, 4.0]));
    assert_eq!(
        npy::read_npy_bytes(&bytes).unwrap(),
        array![[1.0f32, 3.0], [2.0, 4.0]].into_dyn()
    );
    // Other format versions are refused.
    let mut bytes = npy_file("<f4", false, "(2,)", &data);
    bytes[7] = 1;
    assert_invalid(npy::read_npy_bytes(&bytes), &["version 1.1"]);
}

#[test]
fn truncated_files_are_errors_at_every_length() {
    let npy_bytes = npy_file(">f8", true, "(2, 3)", &f64_be(&[1.0; 6]));
    for cut in 0..npy_bytes.len() {
        assert_invalid(npy::read_npy_bytes(&npy_bytes[..cut]), &[]);
    }
    let archive = zip_archive(&[
        Entry::stored("a.npy", &npy_bytes),
        Entry::stored("b.npy", &npy_bytes),
    ]);
    assert_eq!(npy::read_npz_bytes(&archive).unwrap().len(), 2);
    for cut in 0..archive.len() {
        assert_invalid(npy::read_npz_bytes(&archive[..cut]), &[]);
    }
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/numpy/compressed.npz");
    let compressed = std::fs::read(fixture).unwrap();
    assert_eq!(npy::read_npz_bytes(&compressed).unwrap().len(), 2);
    for cut in 0..compressed.len() {
        assert_invalid(npy::read_npz_bytes(&compressed[..cut]), &[]);
    }
    // A header length larger than the file.
    let mut bytes = npy_file("<f4", false, "(2,)", &[]);
    bytes[8] = 0xFF;
    bytes[9] = 0xFF;
    assert_invalid(npy::read_npy_bytes(&bytes), &["ends inside its header"]);
    let mut bytes = npy_with_header(2, "{}", &[]);
    bytes[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_invalid(npy::read_npy_bytes(&bytes), &["at most"]);
}

// ---- Class 3: size claims and decompression bombs ------------------------------------

#[test]
fn a_stored_entry_claiming_200_gib_is_refused_before_allocating() {
    let dir = scratch("claims");
    let gib200: u64 = 200 << 30;
    // The .npy header inside says 200 GiB too, so the claim is consistent but for the bytes.
    let header = npy_file("<f4", false, &format!("({},)", gib200 / 4), &[]);
    let header_len = header.len() as u64;
    let mut entry = Entry::stored("big.npy", &header);
    entry.size = header_len + gib200;
    entry.compressed_size = header_len + gib200;
    let archive = zip_archive(&[entry]);
    assert!(archive.len() < 400, "{}", archive.len());
    assert_invalid(
        read_npz_both(&archive, &dir),
        &["entry 'big.npy'", "more than the archive"],
    );

    // Honest zip sizes around a .npy header that claims 200 GiB: the sizes disagree.
    let archive = zip_archive(&[Entry::stored("big.npy", &header)]);
    assert_invalid(
        read_npz_both(&archive, &dir),
        &[
            "entry 'big.npy'",
            "does not agree with its .npy header",
            "53687091200",
        ],
    );

    // A stored entry whose two sizes disagree.
    let content = npy_file("<f4", false, "(2,)", &f32_le(&[1.0, 2.0]));
    let mut entry = Entry::stored("t.npy", &content);
    entry.size = gib200;
    assert_invalid(
        read_npz_both(&zip_archive(&[entry]), &dir),
        &["sizes disagree"],
    );

    // An entry with bytes after its array.
    let mut padded = content.clone();
    padded.extend_from_slice(&[0; 4]);
    let archive = zip_archive(&[Entry::stored("t.npy", &padded)]);
    assert_invalid(read_npz_both(&archive, &dir), &["does not agree"]);

    // A wrong CRC on an honest-looking entry.
    let mut entry = Entry::stored("t.npy", &content);
    entry.crc ^= 1;
    assert_invalid(
        read_npz_both(&zip_archive(&[entry]), &dir),
        &["entry 't.npy'", "corrupted"],
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_deflate_bomb_is_refused_without_inflating_it() {
    let dir = scratch("bomb");
    let header = npy_file("<f4", false, "(2,)", &[]);
    let inflated = 100 << 20;
    let payload = deflate_then_zeros(&header, inflated);
    assert!(payload.len() < 700_000, "{}", payload.len());
    let honest_size = (header.len() + inflated) as u64;

    // The zip sizes tell the truth: they disagree with the .npy header inside.
    let entry = Entry {
        name: "bomb.npy".into(),
        method: 8,
        crc: 0,
        compressed_size: payload.len() as u64,
        size: honest_size,
        payload: payload.clone(),
    };
    assert_invalid(
        read_npz_both(&zip_archive(&[entry]), &dir),
        &["entry 'bomb.npy'", "does not agree with its .npy header"],
    );

    // The zip sizes lie to match the header: inflation stops just past the header's size.
    let entry = Entry {
        name: "bomb.npy".into(),
        method: 8,
        crc: 0,
        compressed_size: payload.len() as u64,
        size: header.len() as u64 + 8,
        payload: payload.clone(),
    };
    assert_invalid(
        read_npz_both(&zip_archive(&[entry]), &dir),
        &["entry 'bomb.npy'", "holds more than the 76 bytes"],
    );

    // A deflated entry claiming more than deflate can expand to.
    let small = deflate_then_zeros(&header, 8);
    let entry = Entry {
        name: "claim.npy".into(),
        method: 8,
        crc: 0,
        compressed_size: small.len() as u64,
        size: 200 << 30,
        payload: small.clone(),
    };
    assert_invalid(
        read_npz_both(&zip_archive(&[entry]), &dir),
        &["entry 'claim.npy'", "more than its"],
    );

    // The same stream, honestly described, reads (the hand-made deflate is valid).
    let mut content = header.clone();
    content.extend_from_slice(&[0; 8]);
    let entry = Entry {
        name: "zeros.npy".into(),
        method: 8,
        crc: crc32(&content),
        compressed_size: small.len() as u64,
        size: content.len() as u64,
        payload: small,
    };
    let arrays = read_npz_both(&zip_archive(&[entry]), &dir).unwrap();
    assert_eq!(arrays, vec![("zeros".to_string(), ArrayD::zeros(vec![2]))]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn overlapping_and_countless_entries_are_refused() {
    let dir = scratch("overlap");
    // One 64 KiB entry referenced 200 times by the central directory: 12.5 MiB of arrays
    // from a 77 KiB archive.
    let values = vec![0.5f32; 16 * 1024];
    let content = npy_file(
        "<f4",
        false,
        &format!("({},)", values.len()),
        &f32_le(&values),
    );
    let entries = [Entry::stored("t.npy", &content)];
    let one = zip_archive(&entries);
    assert_eq!(read_npz_both(&one, &dir).unwrap().len(), 1);
    let names: Vec<String> = (0..200).map(|i| format!("t{i}.npy")).collect();
    let central: Vec<(usize, &str)> = names.iter().map(|n| (0, n.as_str())).collect();
    let archive = zip_with_directory(&entries, &central);
    assert!(archive.len() < 80_000);
    assert_invalid(read_npz_both(&archive, &dir), &["overlapping"]);

    // An end record that claims 65535 entries in a 22-byte file.
    let mut archive = Vec::new();
    end_of_directory(&mut archive, u16::MAX, 46 * 65535, 0);
    assert_invalid(read_npz_both(&archive, &dir), &["archive"]);

    // Many small honest entries read, in archive order.
    let names: Vec<String> = (0..300).map(|i| format!("w{}", 299 - i)).collect();
    let entries: Vec<Entry> = names
        .iter()
        .map(|n| Entry::stored(&format!("{n}.npy"), &npy_file("<f4", false, "(0,)", &[])))
        .collect();
    let arrays = read_npz_both(&zip_archive(&entries), &dir).unwrap();
    let read: Vec<&String> = arrays.iter().map(|(n, _)| n).collect();
    assert_eq!(read, names.iter().collect::<Vec<_>>());
    std::fs::remove_dir_all(dir).unwrap();
}

// ---- Class 7: non-finite values ------------------------------------------------------

#[test]
fn non_finite_values_are_refused_with_their_position() {
    let dir = scratch("nonfinite");
    let mut table = [1.0f32; 6];
    for (bad, written) in [
        (f32::NAN, "NaN"),
        (f32::INFINITY, "inf"),
        (f32::NEG_INFINITY, "-inf"),
    ] {
        table[5] = bad;
        let bytes = npy_file("<f4", false, "(3, 2)", &f32_le(&table));
        let parts = [
            "element [2, 1] is",
            written,
            "expected finite float32 values",
        ];
        assert_invalid(npy::read_npy_bytes(&bytes), &parts);
        let path = dir.join("bad.npy");
        std::fs::write(&path, &bytes).unwrap();
        assert_invalid(npy::read_npy(&path), &["bad.npy", "[2, 1]", written]);
        let archive = zip_archive(&[
            Entry::stored("good.npy", &npy_file("<f4", false, "(1,)", &f32_le(&[1.0]))),
            Entry::stored("bad.npy", &bytes),
        ]);
        assert_invalid(
            read_npz_both(&archive, &dir),
            &["entry 'bad.npy'", "[2, 1]", written],
        );
    }
    // Fortran order: the fifth value in the file is element [1, 2] of a (2, 3) array.
    let mut values = [0.0f64; 6];
    values[5] = f64::NAN;
    values[3] = 1e300;
    let bytes = npy_file(">f8", true, "(2, 3)", &f64_be(&values));
    assert_invalid(
        npy::read_npy_bytes(&bytes),
        &[
            "element [1, 1] is 1e300",
            "overflows float32",
            "expected finite float32 values",
        ],
    );
    values[3] = -1e39;
    let bytes = npy_file(">f8", true, "(2, 3)", &f64_be(&values));
    assert_invalid(
        npy::read_npy_bytes(&bytes),
        &["[1, 1] is -1e39", "overflows"],
    );
    values[3] = 0.0;
    let bytes = npy_file(">f8", true, "(2, 3)", &f64_be(&values));
    assert_invalid(npy::read_npy_bytes(&bytes), &["element [1, 2] is NaN"]);
    // The largest float64 that rounds to float32's largest value is finite; a scalar NaN is
    // at position [].
    let bytes = npy_file(">f8", false, "(1,)", &f64_be(&[f64::from(f32::MAX)]));
    assert_eq!(npy::read_npy_bytes(&bytes).unwrap()[[0]], f32::MAX);
    let bytes = npy_file("<f4", false, "()", &f32_le(&[f32::NAN]));
    assert_invalid(npy::read_npy_bytes(&bytes), &["element [] is NaN"]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn writers_refuse_non_finite_values_before_touching_the_file() {
    let dir = scratch("writers");
    let path = dir.join("table.npy");
    let good = array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]].into_dyn();
    npy::write_npy(&path, &good.view()).unwrap();
    let before = std::fs::read(&path).unwrap();
    let mut bad = good.clone();
    bad[[1, 2]] = f32::NAN;
    let err = npy::write_npy(&path, &bad.view()).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    for part in ["table.npy", "NaN at [1, 2]", "finite float32"] {
        assert!(err.to_string().contains(part), "{err} lacks {part}");
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // The position is the logical one, whatever the memory layout.
    let transposed = bad.view().reversed_axes();
    let err = npy::write_npy(dir.join("t.npy"), &transposed).unwrap_err();
    assert!(err.to_string().contains("NaN at [2, 1]"), "{err}");
    assert!(!dir.join("t.npy").exists());

    let archive = dir.join("model.npz");
    let mut infinite = good.clone();
    infinite[[0, 1]] = f32::NEG_INFINITY;
    let err = npy::write_npz(
        &archive,
        &[
            ("a".to_string(), good.view()),
            ("b/c".to_string(), infinite.view()),
        ],
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    for part in ["model.npz", "'b/c'", "-inf at [0, 1]"] {
        assert!(err.to_string().contains(part), "{err} lacks {part}");
    }
    assert!(!archive.exists());
    let leftovers = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(leftovers, 1, "only table.npy should exist");

    // What the writers accept, the readers read back: the extremes of float32.
    let extreme = array![f32::MAX, f32::MIN, f32::MIN_POSITIVE, -0.0, 1e-45].into_dyn();
    npy::write_npy(&path, &extreme.view()).unwrap();
    assert_eq!(npy::read_npy(&path).unwrap(), extreme);
    npy::write_npz(&archive, &[("x".to_string(), extreme.view())]).unwrap();
    assert_eq!(npy::read_npz(&archive).unwrap()[0].1, extreme);
    std::fs::remove_dir_all(dir).unwrap();
}
