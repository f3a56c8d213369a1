//! Pretrained word vectors into an `Embedding`: writes a small GloVe file, builds a
//! vocabulary and an embedding from it, looks up a sentence, then searches the layer's table
//! with `ndkeras::similarity`: the nearest neighbours of a few words by cosine similarity and
//! the analogy "man is to king as woman is to ?".

use ndarray::Array2;
use ndkeras::io::glove;
use ndkeras::io::vocabulary::Vocabulary;
use ndkeras::io::word_vectors::WordVectors;
use ndkeras::prelude::*;
use ndkeras::similarity::{Similarity, SimilarityIndex};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A tiny GloVe file: animals, royalty and numbers in three directions of a 4-d space.
    let words = [
        ("cat", [0.9f32, 0.1, 0.0, 0.1]),
        ("dog", [0.8, 0.2, 0.1, 0.0]),
        ("kitten", [0.95, 0.05, 0.0, 0.2]),
        ("king", [0.0, 0.9, 0.1, 0.3]),
        ("queen", [0.1, 0.85, 0.0, 0.4]),
        ("man", [0.1, 0.3, 0.1, -0.3]),
        ("woman", [0.2, 0.25, 0.0, 0.1]),
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
        [
            "the", "cat", "dog", "king", "queen", "man", "woman", "two", "kitten",
        ],
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

    // The search borrows the layer's table (no copy); the norms are computed once here.
    let index = SimilarityIndex::from_embedding(&layer, Similarity::Cosine)?;
    for word in ["cat", "queen", "two"] {
        // The word itself, the mask row and [UNK] are left out.
        let nearest = index.most_similar_to_token(&vocabulary, word, 2)?;
        let shown: Vec<String> = nearest
            .iter()
            .map(|n| format!("{} ({:.3})", n.token, n.similarity))
            .collect();
        println!("nearest to {word:>6}: {}", shown.join(", "));
    }
    let nearest_cat = index.most_similar_to_token(&vocabulary, "cat", 1)?;
    assert_eq!(nearest_cat.first().map(|n| n.token), Some("kitten"));

    // gensim's most_similar(positive=["king", "woman"], negative=["man"]).
    let answer = index.analogy_tokens(&vocabulary, ["man", "king", "woman"], 1)?;
    if let Some(best) = answer.first() {
        println!(
            "man is to king as woman is to: {} ({:.3})",
            best.token, best.similarity
        );
    }
    assert_eq!(answer.first().map(|n| n.token), Some("queen"));
    Ok(())
}
