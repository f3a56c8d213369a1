"""Writes keras_lookups.json: reference ids from the real tf_keras 2.21 for the id-making
preprocessing layers (StringLookup, IntegerLookup, Hashing, TextVectorization) and for the two
hashes TensorFlow uses under them (tf.strings.to_hash_bucket_fast = FarmHash Fingerprint64,
tf.strings.to_hash_bucket_strong = SipHash-2-4 keyed by a pair of integers).

    python3 -m venv /tmp/tfk
    /tmp/tfk/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0
    /tmp/tfk/bin/python tests/data/keras_lookups.py

Deterministic (no randomness anywhere): rerunning gives a byte-identical file.

The sample is multilingual on purpose: ASCII, accented Latin (precomposed), CJK, emoji,
punctuation, empty strings, non-ASCII spaces (U+00A0, U+3000), tokens repeated so that counts
tie (Keras breaks ties by the token, highest first: np.lexsort((tokens, counts))[::-1] in
index_lookup.py finalize_state; for strings the comparison is on the UTF-8 bytes).

Layout: {"hashes": {...}, "string_lookup": [case...], "integer_lookup": [...],
"hashing": [...], "text_vectorization": [...]}; every case holds the layer's config as given,
the adapt data or vocabulary, get_vocabulary(), vocabulary_size() and the outputs for inputs.
"""

import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_lookups.json")


def hash_strings():
    """Strings of every length FarmHash branches on (0..16, 17..32, 33..64, > 64) and more."""
    out = []
    for n in list(range(0, 70)) + [95, 127, 128, 129, 200, 257]:
        out.append("".join(chr(33 + (i * 7 + n) % 94) for i in range(n)))
    out += ["A", "B", "C", "D", "E", "the", "The", "café", "Élan", "東京", "タワー",
            "😀", "🎉 party", "naïve ÉCOLE", "ß", "\u00a0", "\u3000", "[UNK]",
            "-1", "0", "42", "9223372036854775807", "-9223372036854775808",
            "東京タワーは高い" * 5, "😀" * 33]
    return out


BUCKETS = [1, 2, 3, 10, 1000, 2**31 - 1, 2**62, 2**63 - 1]
KEYS = [[133, 137], [133, 133], [0, 0], [1, 2], [2**62 + 12345, 987654321987654321]]


def hashes():
    strings = hash_strings()
    fast = {str(n): tf.strings.to_hash_bucket_fast(strings, n).numpy().tolist() for n in BUCKETS}
    strong = []
    for key in KEYS:
        for n in [3, 1000, 2**62, 2**63 - 1]:
            strong.append({
                "key": key,
                "num_buckets": n,
                "buckets": tf.strings.to_hash_bucket_strong(strings, n, key).numpy().tolist(),
            })
    return {"strings": strings, "fast": fast, "strong": strong}


TOKENS = [
    "the", "cat", "sat", "on", "the", "mat", "the", "cat", "", "", "東京", "東京", "タワー",
    "😀", "😀", "🎉", "café", "café", "Élan", "naïve", "z", "y", "x", "a", "b", "b", "[UNK]",
    "Café", "ß", "\u00a0", "!", "!!", "the",
]
QUERIES = [
    ["the", "cat", "dog", ""],
    ["東京", "京", "😀", "🎉"],
    ["café", "cafe", "Café", "ß"],
    ["[UNK]", "unknown", "zzz", "!"],
]


def decode(x):
    if isinstance(x, bytes):
        return x.decode("utf-8")
    if isinstance(x, (np.integer,)):
        return int(x)
    return x


def tolist(array):
    return [[decode(v) for v in row] for row in np.asarray(array).tolist()] \
        if np.asarray(array).ndim == 2 else [decode(v) for v in np.asarray(array).tolist()]


def lookup_case(cls, config, adapt=None, queries=None, invert_queries=None, vocab_file=False):
    layer = cls(**config)
    if adapt is not None:
        layer.adapt(adapt)
    case = {"config": config, "adapt": adapt}
    case["vocabulary"] = [decode(t) for t in layer.get_vocabulary()]
    case["vocabulary_no_special"] = [decode(t) for t in layer.get_vocabulary(include_special_tokens=False)]
    case["vocabulary_size"] = int(layer.vocabulary_size())
    if queries is not None:
        case["inputs"] = queries
        try:
            out = layer(tf.constant(queries))
            case["outputs"] = np.asarray(out).tolist()
        except Exception as e:  # noqa: BLE001
            case["error"] = type(e).__name__ + ": " + str(e).split("\n")[0][:300]
    if invert_queries is not None:
        inv_config = dict(config)
        inv_config["invert"] = True
        inv_config["vocabulary"] = case["vocabulary_no_special"]
        inv = cls(**inv_config)
        case["invert_inputs"] = invert_queries
        case["invert_outputs"] = tolist(inv(tf.constant(invert_queries, dtype=tf.int64)))
    if vocab_file:
        with tempfile.TemporaryDirectory() as d:
            layer.save_assets(d)
            with open(os.path.join(d, "vocabulary.txt"), "rb") as f:
                case["vocabulary_file"] = f.read().decode("utf-8")
    return case


def string_lookups():
    S = keras.layers.StringLookup
    cases = []
    ids = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 40, -1, 2]]
    cases.append(lookup_case(S, {}, TOKENS, QUERIES, ids, vocab_file=True))
    cases.append(lookup_case(S, {"mask_token": ""}, TOKENS, QUERIES, ids, vocab_file=True))
    cases.append(lookup_case(S, {"num_oov_indices": 3}, TOKENS, QUERIES, ids))
    cases.append(lookup_case(S, {"num_oov_indices": 7, "mask_token": ""}, TOKENS, QUERIES, ids))
    cases.append(lookup_case(S, {"num_oov_indices": 0}, TOKENS, [["the", "cat"], ["東京", "😀"]]))
    cases.append(lookup_case(S, {"num_oov_indices": 0}, TOKENS, [["the", "dog"], ["東京", "😀"]]))
    cases.append(lookup_case(S, {"max_tokens": 6}, TOKENS, QUERIES))
    cases.append(lookup_case(S, {"max_tokens": 8, "mask_token": "", "num_oov_indices": 2}, TOKENS, QUERIES))
    cases.append(lookup_case(S, {"mask_token": "[MASK]", "oov_token": "<oov>"}, TOKENS + ["[MASK]"],
                             [["[MASK]", "the", "<oov>", "[UNK]"]], [[0, 1, 2, 3, 99]]))
    vocab = ["the", "cat", "東京", "😀", "café"]
    cases.append(lookup_case(S, {"vocabulary": vocab}, None, QUERIES, [[0, 1, 2, 3], [4, 5, 6, 7]]))
    cases.append(lookup_case(S, {"vocabulary": ["", "[UNK]"] + vocab, "mask_token": ""}, None, QUERIES))
    cases.append(lookup_case(S, {"vocabulary": ["[UNK]", "[UNK]"] + vocab, "num_oov_indices": 2}, None, QUERIES))
    for mode in ["multi_hot", "count", "one_hot"]:
        q = [["the", "cat", "the", "dog"], ["東京", "", "😀", "the"]] if mode != "one_hot" else [["the"], ["dog"], [""], ["😀"]]
        cases.append(lookup_case(S, {"vocabulary": vocab, "output_mode": mode, "mask_token": ""}, None, q))
        cases.append(lookup_case(S, {"vocabulary": vocab, "output_mode": mode, "num_oov_indices": 2,
                                     "pad_to_max_tokens": True, "max_tokens": 12}, None, q))
    return cases


def integer_lookups():
    I = keras.layers.IntegerLookup
    data = [12, 7, 7, 3, 3, 0, 0, 0, -5, -5, 100, 2**40, 12, -1, 9]
    queries = [[12, 7, 3, 0], [-5, 4, -7, 2**40], [100, 101, -1, 9]]
    ids = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 30, -1]]
    cases = []
    cases.append(lookup_case(I, {}, data, queries, ids, vocab_file=True))
    cases.append(lookup_case(I, {"mask_token": 0}, data, queries, ids, vocab_file=True))
    cases.append(lookup_case(I, {"num_oov_indices": 3}, data, queries, ids))
    cases.append(lookup_case(I, {"num_oov_indices": 4, "mask_token": 0, "oov_token": -9}, data, queries, ids))
    cases.append(lookup_case(I, {"max_tokens": 5}, data, queries))
    cases.append(lookup_case(I, {"vocabulary": [12, 7, 3, 2**40]}, None, queries))
    cases.append(lookup_case(I, {"vocabulary": [12, 7, 3], "output_mode": "count"}, None, [[12, 12, 5, 3], [7, 0, 0, 0]]))
    return cases


def hashings():
    H = keras.layers.Hashing
    strs = [["A"], ["B"], ["C"], ["D"], ["E"], [""], ["東京"], ["😀"], ["café"], ["the cat"]]
    ints = [[0], [1], [-1], [42], [2**40], [-(2**63)], [2**63 - 1]]
    cases = []
    for cfg in [{"num_bins": 1}, {"num_bins": 3}, {"num_bins": 1000}, {"num_bins": 3, "mask_value": ""},
                {"num_bins": 1, "mask_value": ""}, {"num_bins": 3, "salt": [133, 137]},
                {"num_bins": 3, "salt": 133}, {"num_bins": 1000, "salt": [1, 2]},
                {"num_bins": 1000, "salt": 7, "mask_value": "東京"}, {"num_bins": 2**40}]:
        layer = H(**cfg)
        cases.append({"config": cfg, "inputs": strs, "outputs": np.asarray(layer(tf.constant(strs))).tolist()})
    for cfg in [{"num_bins": 3}, {"num_bins": 1000}, {"num_bins": 1000, "mask_value": 0},
                {"num_bins": 1000, "salt": [133, 137]}]:
        layer = H(**cfg)
        cases.append({"config": cfg, "integer_inputs": ints,
                      "outputs": np.asarray(layer(tf.constant(ints, dtype=tf.int64))).tolist()})
    return cases


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
QUERY_TEXTS = [
    "the cat and the dog",
    "東京 😀 unknown",
    "",
    "Élan ÉLAN élan",
    "Hello hello, world! The end... of the mat",
]


def text_vectorizations():
    T = keras.layers.TextVectorization
    configs = [
        {},
        {"output_sequence_length": 4},
        {"output_sequence_length": 12},
        {"max_tokens": 10, "output_sequence_length": 6},
        {"standardize": "lower"},
        {"standardize": "strip_punctuation"},
        {"standardize": None},
        {"ngrams": 2},
        {"ngrams": [2, 3], "output_sequence_length": 8},
        {"split": "character", "output_sequence_length": 10},
        {"split": "character", "standardize": None, "max_tokens": 20},
    ]
    cases = []
    for cfg in configs:
        c = dict(cfg)
        if isinstance(c.get("ngrams"), list):
            c["ngrams"] = tuple(c["ngrams"])
        layer = T(**c)
        layer.adapt(TEXTS)
        out = layer(tf.constant(QUERY_TEXTS))
        pre = layer._preprocess(tf.constant(TEXTS))
        pre = pre.to_list() if hasattr(pre, "to_list") else np.asarray(pre).tolist()
        cases.append({
            "config": cfg,
            "vocabulary": [decode(t) for t in layer.get_vocabulary()],
            "vocabulary_size": int(layer.vocabulary_size()),
            "adapt_tokens": [[decode(t) for t in row] for row in pre],
            "inputs": QUERY_TEXTS,
            "outputs": np.asarray(out).tolist(),
        })
    layer = T(vocabulary=["the", "cat", "東京"], output_sequence_length=5)
    cases.append({"config": {"vocabulary": ["the", "cat", "東京"], "output_sequence_length": 5},
                  "vocabulary": layer.get_vocabulary(), "vocabulary_size": int(layer.vocabulary_size()),
                  "inputs": QUERY_TEXTS, "outputs": np.asarray(layer(tf.constant(QUERY_TEXTS))).tolist()})
    return cases


def main():
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    root = {
        "tf_keras": keras.__version__,
        "tensorflow": tf.__version__,
        "hashes": hashes(),
        "string_lookup": string_lookups(),
        "integer_lookup": integer_lookups(),
        "hashing": hashings(),
        "text_vectorization": text_vectorizations(),
    }
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(root, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
