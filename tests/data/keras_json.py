"""Writes keras_json.json: Sequential models as the real tf_keras 2.21 `model.to_json()`
writes them, and the names tf_keras gives layers made after `model_from_json`.

    python3 -m venv /tmp/tfk
    /tmp/tfk/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0
    /tmp/tfk/bin/python tests/data/keras_json.py

Each model is made right after `keras.backend.clear_session()`, so its automatic names
(`sequential`, `input_1`, `embedding`, ...) are those of a fresh process. `to_json` is the
text exactly as tf_keras wrote it; `keras_round_trip` says whether tf_keras' own
`model_from_json(to_json).to_json()` gives the same JSON value back.
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402,F401
import tf_keras as keras  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_json.json")
L = keras.layers


def input_embedding_pooling_dense():
    """keras.Input(shape=(6,), dtype="int32") -> Embedding -> GlobalAveragePooling1D -> Dense."""
    return keras.Sequential(
        [
            keras.Input(shape=(6,), dtype="int32"),
            L.Embedding(20, 4),
            L.GlobalAveragePooling1D(),
            L.Dense(1, activation="sigmoid"),
        ]
    )


def embedding_input_length():
    """The classic script: Embedding(1000, 64, input_length=10), no Input."""
    return keras.Sequential([L.Embedding(1000, 64, input_length=10)])


def embedding_input_length_pooling_dense():
    """Embedding with input_length, then pooling and Dense, no Input."""
    return keras.Sequential(
        [
            L.Embedding(50, 8, input_length=5),
            L.GlobalAveragePooling1D(),
            L.Dense(3, activation="softmax"),
        ]
    )


def input_embedding_mask_zero():
    """Input + Embedding(mask_zero=True) + pooling + Dense, with a named model."""
    return keras.Sequential(
        [
            keras.Input(shape=(5,), dtype="int32"),
            L.Embedding(10, 3, mask_zero=True),
            L.GlobalAveragePooling1D(),
            L.Dense(2, activation="softmax"),
        ],
        name="masked",
    )


def input_dense_only():
    """keras.Input(shape=(3,)) -> Dense(2): a float input, no Embedding."""
    return keras.Sequential([keras.Input(shape=(3,)), L.Dense(2)])


def input_embedding_flatten_dense():
    """An Embedding without input_length after an Input with a length: Flatten then Dense
    need the Input's length to be built."""
    return keras.Sequential(
        [
            keras.Input(shape=(4,), dtype="int32", name="ids"),
            L.Embedding(30, 2, name="words"),
            L.Flatten(),
            L.Dropout(0.25, seed=7),
            L.Dense(1),
        ]
    )


MODELS = [
    input_embedding_pooling_dense,
    embedding_input_length,
    embedding_input_length_pooling_dense,
    input_embedding_mask_zero,
    input_dense_only,
    input_embedding_flatten_dense,
]


def names_after_loading(text):
    """In a fresh session: load `text`, then make one layer of each class without a name."""
    keras.backend.clear_session()
    model = keras.models.model_from_json(text)
    loaded = [layer.name for layer in model.layers]
    made = {
        "Sequential": keras.Sequential().name,
        "Embedding": L.Embedding(3, 2).name,
        "Dense": L.Dense(1).name,
        "GlobalAveragePooling1D": L.GlobalAveragePooling1D().name,
        "Flatten": L.Flatten().name,
        "Dropout": L.Dropout(0.5).name,
        "Input": keras.Input(shape=(2,)).node.layer.name,
    }
    return {"model": model.name, "layers": loaded, "made_after": made}


def names_scenario(text):
    """In a fresh session: load `text`, then make layers with explicit names (as a config
    gives them) and without, interleaved. Returns (kind, explicit name or None, name given)."""
    keras.backend.clear_session()
    keras.models.model_from_json(text)
    steps = [
        ("Embedding", "embedding"),
        ("Embedding", None),
        ("Embedding", "words"),
        ("Embedding", None),
        ("Embedding", "embedding_2"),
        ("Embedding", None),
        ("Sequential", None),
        ("Dense", None),
        ("Flatten", None),
        ("Dropout", None),
        ("GlobalAveragePooling1D", None),
    ]
    make = {
        "Embedding": lambda **kw: L.Embedding(3, 2, **kw),
        "Sequential": lambda **kw: keras.Sequential(**kw),
        "Dense": lambda **kw: L.Dense(1, **kw),
        "Flatten": lambda **kw: L.Flatten(**kw),
        "Dropout": lambda **kw: L.Dropout(0.5, **kw),
        "GlobalAveragePooling1D": lambda **kw: L.GlobalAveragePooling1D(**kw),
    }
    out = []
    for kind, name in steps:
        obj = make[kind](**({"name": name} if name else {}))
        out.append({"class_name": kind, "explicit_name": name, "name": obj.name})
    return out


def main():
    cases = []
    for make in MODELS:
        keras.backend.clear_session()
        model = make()
        text = model.to_json()
        keras.backend.clear_session()
        again = keras.models.model_from_json(text).to_json()
        cases.append(
            {
                "id": make.__name__,
                "doc": make.__doc__,
                "to_json": text,
                "keras_round_trip": json.loads(again) == json.loads(text),
                "names": names_after_loading(text),
            }
        )
    root = {
        "generator": "tests/data/keras_json.py",
        "tf_keras": keras.__version__,
        "tensorflow": tf.__version__,
        "cases": cases,
        "names_after_loading": {
            "loads": "input_embedding_flatten_dense",
            "steps": names_scenario(cases[-1]["to_json"]),
        },
    }
    with open(OUT, "w") as f:
        json.dump(root, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
