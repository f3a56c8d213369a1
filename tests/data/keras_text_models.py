"""Writes keras_text_models.json: tf_keras 2.21 models that take raw strings (a
TextVectorization or StringLookup/Hashing in front of an Embedding), as model.to_json() writes
them, with their weights, the vocabulary file tf_keras saves for an adapted layer, and
predictions on a multilingual sample; plus the configs tf_keras writes for each preprocessing
layer and the reference vectors of output_mode="tf_idf".

    python3 -m venv /tmp/tfk
    /tmp/tfk/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0
    /tmp/tfk/bin/python tests/data/keras_text_models.py

Deterministic: weights come from keras.utils.set_random_seed(7); rerunning gives the same file.
"""

import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_text_models.json")

TEXTS = [
    "The cat sat on the mat.",
    "the CAT, the dog! The end...",
    "Élan café naïve ÉCOLE École",
    "東京 タワー 東京タワー 東京",
    "emoji 😀 😀 🎉party 🎉",
    "",
    "  multiple   spaces\tand\ttabs\nnewline\r\nwindows\x0bvt\x0cff ",
    "don't stop-believing (now) [really] {x} <y> a_b a/b a\\b",
    "x\u00a0y z\u3000w",
    "ß ẞ Σ σ ς İ",
    "Hello, World! hello world HELLO",
    "a a b b c c d d",
    "...!!!???",
]
QUERIES = [
    "the cat and the dog",
    "東京 😀 unknown",
    "",
    "Élan ÉLAN élan",
    "Hello hello, world! The end... of the mat",
    "the the the the the the the the the the cat",
]


def weights_of(model):
    """Every float weight (the vocabulary that tf_keras lists for an adapted layer is left out)."""
    return [np.asarray(w).tolist() for w in model.get_weights() if np.asarray(w).dtype != object]


def predictions(model, inputs):
    """The predictions; NaN (an all-padding text averaged over no step) is written as null."""
    out = np.asarray(model.predict(inputs, verbose=0), dtype=np.float64)
    return [[None if np.isnan(v) else v for v in row] for row in out.tolist()]


def vocabulary_file(layer):
    with tempfile.TemporaryDirectory() as d:
        layer.save_assets(d)
        path = os.path.join(d, "vocabulary.txt")
        if not os.path.exists(path):
            return None
        with open(path, "rb") as f:
            return f.read().decode("utf-8")


def sequential_inline():
    """Input(shape=(1,), string) -> TextVectorization(vocabulary=...) -> Embedding -> pool -> Dense."""
    keras.utils.set_random_seed(7)
    probe = keras.layers.TextVectorization(max_tokens=40)
    probe.adapt(TEXTS)
    vocabulary = probe.get_vocabulary(include_special_tokens=False)
    model = keras.Sequential([
        keras.Input(shape=(1,), dtype=tf.string, name="text"),
        keras.layers.TextVectorization(vocabulary=vocabulary, output_sequence_length=8, name="vectorize"),
        keras.layers.Embedding(len(vocabulary) + 2, 5, mask_zero=True, name="words",
                               embeddings_initializer=keras.initializers.RandomUniform(-1, 1)),
        keras.layers.GlobalAveragePooling1D(name="mean"),
        keras.layers.Dense(1, activation="sigmoid", name="score"),
    ], name="inline_text_model")
    return {
        "json": model.to_json(),
        "weights": weights_of(model),
        "inputs": QUERIES + TEXTS,
        "predictions": predictions(model, tf.constant([[t] for t in QUERIES + TEXTS])),
    }


def functional_adapted():
    """Input(shape=(), string) -> adapted TextVectorization (bigrams) -> Embedding -> pool -> Dense(3)."""
    keras.utils.set_random_seed(7)
    text = keras.Input(shape=(), dtype=tf.string, name="text")
    vectorize = keras.layers.TextVectorization(max_tokens=30, ngrams=2, output_sequence_length=10,
                                               name="vectorize")
    vectorize.adapt(TEXTS)
    ids = vectorize(text)
    rows = keras.layers.Embedding(30, 4, mask_zero=True, name="words",
                                  embeddings_initializer=keras.initializers.RandomUniform(-1, 1))(ids)
    mean = keras.layers.GlobalAveragePooling1D(name="mean")(rows)
    out = keras.layers.Dense(3, activation="softmax", name="topic")(mean)
    model = keras.Model(text, out, name="adapted_text_model")
    return {
        "json": model.to_json(),
        "weights": weights_of(model),
        "vocabulary_file": vocabulary_file(vectorize),
        "inputs": QUERIES + TEXTS,
        "predictions": predictions(model, tf.constant(QUERIES + TEXTS)),
    }


def functional_lookups():
    """Tokens (shape (3,)) through a StringLookup and a Hashing into two embeddings, concatenated."""
    keras.utils.set_random_seed(7)
    tokens = keras.Input(shape=(3,), dtype=tf.string, name="tokens")
    lookup = keras.layers.StringLookup(vocabulary=["the", "cat", "東京", "😀", "café"], mask_token="",
                                       num_oov_indices=2, name="lookup")
    hashing = keras.layers.Hashing(num_bins=11, salt=[133, 137], name="hash")
    e1 = keras.layers.Embedding(8, 3, name="e1",
                                embeddings_initializer=keras.initializers.RandomUniform(-1, 1))(lookup(tokens))
    e2 = keras.layers.Embedding(11, 3, name="e2",
                                embeddings_initializer=keras.initializers.RandomUniform(-1, 1))(hashing(tokens))
    joined = keras.layers.Concatenate(axis=1, name="join")([e1, e2])
    mean = keras.layers.GlobalAveragePooling1D(name="mean")(joined)
    out = keras.layers.Dense(2, name="out")(mean)
    model = keras.Model(tokens, out, name="lookup_model")
    inputs = [["the", "cat", ""], ["東京", "😀", "dog"], ["café", "Café", "[UNK]"], ["", "", ""]]
    return {
        "json": model.to_json(),
        "weights": weights_of(model),
        "inputs": inputs,
        "predictions": predictions(model, tf.constant(inputs)),
    }


def layer_configs():
    """What get_config writes for each preprocessing layer (made with these arguments)."""
    cases = []

    def add(cls, kwargs, adapt=None):
        layer = getattr(keras.layers, cls)(**kwargs)
        if adapt is not None:
            layer.adapt(adapt)
        config = json.loads(json.dumps(layer.get_config(), default=lambda o: o.item() if hasattr(o, "item") else list(o)))
        cases.append({"class_name": cls, "kwargs": {k: (list(v) if isinstance(v, tuple) else v) for k, v in kwargs.items()},
                      "adapted": adapt is not None, "config": config})

    add("StringLookup", {"name": "s1"})
    add("StringLookup", {"name": "s2", "vocabulary": ["a", "b"], "mask_token": "", "num_oov_indices": 2})
    add("StringLookup", {"name": "s3", "max_tokens": 10, "oov_token": "<oov>", "output_mode": "multi_hot"}, ["a", "b"])
    add("StringLookup", {"name": "s4", "vocabulary": ["a", "b"], "output_mode": "tf_idf", "idf_weights": [0.5, 0.25]})
    add("StringLookup", {"name": "s5", "vocabulary": ["a", "b"], "invert": True})
    add("IntegerLookup", {"name": "i1", "vocabulary": [3, 7, 9], "mask_token": 0})
    add("IntegerLookup", {"name": "i2", "max_tokens": 5, "output_mode": "count"}, [1, 2, 2])
    add("Hashing", {"name": "h1", "num_bins": 3})
    add("Hashing", {"name": "h2", "num_bins": 5, "salt": 133, "mask_value": ""})
    add("Hashing", {"name": "h3", "num_bins": 5, "salt": [1, 2], "mask_value": 0})
    add("TextVectorization", {"name": "t1"})
    add("TextVectorization", {"name": "t2", "max_tokens": 20, "output_sequence_length": 4, "ngrams": 2}, TEXTS)
    add("TextVectorization", {"name": "t3", "standardize": None, "split": "character", "ngrams": (1, 3),
                              "vocabulary": ["a", "b", "a b"]})
    add("TextVectorization", {"name": "t4", "standardize": "lower", "output_mode": "multi_hot",
                              "max_tokens": 12, "pad_to_max_tokens": True}, TEXTS)
    add("TextVectorization", {"name": "t5", "output_mode": "tf_idf", "vocabulary": ["the", "cat"],
                              "idf_weights": [0.5, 1.5]})
    return cases


def tf_idf():
    """idf weights and outputs of output_mode="tf_idf"."""
    cases = []
    T = keras.layers.TextVectorization
    for kwargs in [{}, {"max_tokens": 8}, {"max_tokens": 12, "pad_to_max_tokens": True}, {"ngrams": 2}]:
        layer = T(output_mode="tf_idf", **kwargs)
        layer.adapt(TEXTS)
        cases.append({"class_name": "TextVectorization", "kwargs": kwargs, "adapt": TEXTS,
                      "vocabulary": layer.get_vocabulary(),
                      "idf_weights": np.asarray(layer._lookup_layer.idf_weights, dtype=np.float64).tolist(),
                      "inputs": QUERIES, "outputs": np.asarray(layer(tf.constant(QUERIES)), dtype=np.float64).tolist()})
    layer = T(output_mode="tf_idf", vocabulary=["the", "cat", "東京"], idf_weights=[0.25, 1.5, 2.0])
    cases.append({"class_name": "TextVectorization",
                  "kwargs": {"vocabulary": ["the", "cat", "東京"], "idf_weights": [0.25, 1.5, 2.0]},
                  "vocabulary": layer.get_vocabulary(),
                  "idf_weights": np.asarray(layer._lookup_layer.idf_weights, dtype=np.float64).tolist(),
                  "inputs": QUERIES, "outputs": np.asarray(layer(tf.constant(QUERIES)), dtype=np.float64).tolist()})
    S = keras.layers.StringLookup
    tokens = [t for text in TEXTS for t in text.lower().split()] * 2
    queries = [["the", "cat", "the", "zzz"], ["東京", "", "😀", "the"]]
    for kwargs in [{}, {"mask_token": "", "num_oov_indices": 2}, {"max_tokens": 9, "pad_to_max_tokens": True}]:
        layer = S(output_mode="tf_idf", **kwargs)
        layer.adapt(tokens)
        cases.append({"class_name": "StringLookup", "kwargs": kwargs, "adapt": tokens,
                      "vocabulary": layer.get_vocabulary(),
                      "idf_weights": np.asarray(layer.idf_weights, dtype=np.float64).tolist(),
                      "inputs": queries, "outputs": np.asarray(layer(tf.constant(queries)), dtype=np.float64).tolist()})
    vkw = {"vocabulary": ["[UNK]", "the", "cat"], "idf_weights": [0.1, 0.2, 0.3], "max_tokens": 5,
           "pad_to_max_tokens": True}
    layer = S(output_mode="tf_idf", **vkw)
    cases.append({"class_name": "StringLookup", "kwargs": vkw, "vocabulary": layer.get_vocabulary(),
                  "idf_weights": np.asarray(layer.idf_weights, dtype=np.float64).tolist(),
                  "inputs": queries, "outputs": np.asarray(layer(tf.constant(queries)), dtype=np.float64).tolist()})
    I = keras.layers.IntegerLookup
    ints = [3, 3, 5, 7, 7, 7, 9, 0, 11] * 5
    iq = [[3, 7, 7, 42], [9, 0, 0, 5]]
    layer = I(output_mode="tf_idf", mask_token=0)
    layer.adapt(ints)
    cases.append({"class_name": "IntegerLookup", "kwargs": {"mask_token": 0}, "adapt": ints,
                  "vocabulary": [int(v) for v in layer.get_vocabulary()],
                  "idf_weights": np.asarray(layer.idf_weights, dtype=np.float64).tolist(),
                  "inputs": iq, "outputs": np.asarray(layer(tf.constant(iq, dtype=tf.int64)), dtype=np.float64).tolist()})
    return cases


def main():
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    root = {
        "tf_keras": keras.__version__,
        "tensorflow": tf.__version__,
        "sequential_inline": sequential_inline(),
        "functional_adapted": functional_adapted(),
        "functional_lookups": functional_lookups(),
        "layer_configs": layer_configs(),
        "tf_idf": tf_idf(),
    }
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(root, f, ensure_ascii=False, indent=1, allow_nan=False)
        f.write("\n")


if __name__ == "__main__":
    main()
