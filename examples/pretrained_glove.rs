//! Pretrained word vectors into an `Embedding`: writes a small GloVe file, builds a
//! vocabulary and an embedding from it, looks up a sentence and prints the nearest
//! neighbours of a few words by cosine similarity.

use ndarray::{Array2, ArrayView1};
use ndkeras::io::glove;
use ndkeras::io::vocabulary::Vocabulary;
use ndkeras::io::word_vectors::WordVectors;
use ndkeras::prelude::*;

fn cosine(a: ArrayView1<'_, f32>, b: ArrayView1<'_, f32>) -> f32 {
    let dot = a.dot(&b);
    let norms = a.dot(&a).sqrt() * b.dot(&b).sqrt();
    if norms == 0.0 { 0.0 } else { dot / norms }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A tiny GloVe file: animals, royalty and numbers in three directions of a 4-d space.
    let words = [
        ("cat", [0.9f32, 0.1, 0.0, 0.1]),
        ("dog", [0.8, 0.2, 0.1, 0.0]),
        ("kitten", [0.95, 0.05, 0.0, 0.2]),
        ("king", [0.0, 0.9, 0.1, 0.3]),
        ("queen", [0.1, 0.85, 0.0, 0.4]),
        ("one", [0.0, 0.1, 0.9, 0.0]),
        ("two", [0.1, 0.0, 0.95, 0.1]),
    ];
    let tokens: Vec<String> = words.iter().map(|(w, _)| w.to_string()).collect();
    let table = Array2::from_shape_fn((words.len(), 4), |(i, j)| words[i].1[j]);
    let path =
        std::env::temp_dir().join(format!("ndkeras-example-{}.glove.txt", std::process::id()));
    glove::write_glove(&path, &WordVectors::new(tokens, table)?)?;

    let vectors = glove::read_glove(&path)?;
    std::fs::remove_file(&path)?;
    println!(
        "read {} vectors of {} dimensions",
        vectors.len(),
        vectors.dims()
    );

    // Our vocabulary has a word the file lacks: its row comes from the initializer.
    let vocabulary = Vocabulary::new(
        ["the", "cat", "dog", "king", "queen", "two", "kitten"],
        true,
    )?;
    let fill = Initializer::RandomUniform {
        minval: -0.05,
        maxval: 0.05,
        seed: Some(0),
    };
    let (mut layer, coverage) = vocabulary.embedding_from(&vectors, &fill)?;
    println!(
        "coverage: {} of {} tokens ({:.0}%), missing {:?}",
        coverage.found,
        coverage.found + coverage.missing.len(),
        coverage.ratio() * 100.0,
        coverage.missing
    );

    let sentence = ["the", "king", "and", "the", "cat"];
    let ids = vocabulary.lookup(&sentence);
    println!("ids of {sentence:?}: {ids}");
    let out = layer.apply(&Tensor::from(ids))?;
    println!(
        "looked up: shape {:?}, mask {:?}",
        out.shape(),
        out.mask().map(|m| m.to_string())
    );

    let table = layer.embeddings().ok_or("built by the first call")?;
    for word in ["cat", "queen", "two"] {
        let id = vocabulary.id(word) as usize;
        let mut neighbours: Vec<(f32, &str)> = (2..vocabulary.len())
            .filter(|&other| other != id)
            .map(|other| {
                (
                    cosine(table.row(id), table.row(other)),
                    vocabulary.tokens()[other].as_str(),
                )
            })
            .collect();
        neighbours.sort_by(|a, b| b.0.total_cmp(&a.0));
        println!("nearest to {word:>6}: {:?}", &neighbours[..2]);
    }
    let nearest_cat = {
        let id = vocabulary.id("cat") as usize;
        (2..vocabulary.len()).filter(|&o| o != id).max_by(|&a, &b| {
            cosine(table.row(id), table.row(a)).total_cmp(&cosine(table.row(id), table.row(b)))
        })
    };
    assert_eq!(
        nearest_cat.and_then(|i| vocabulary.token(i as i64)),
        Some("kitten")
    );
    Ok(())
}
