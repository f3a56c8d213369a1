"""Writes keras_parity.json: reference values from the real tf_keras 2.21 for the Keras
parity cases of issue 7 (frozen regularizers, constraint axis lists, small integer ids).

    python3 -m venv /tmp/tfk
    /tmp/tfk/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0
    /tmp/tfk/bin/python tests/data/keras_parity.py

Every value is float32 as Keras computed it, written with Python's shortest round-trip repr.
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_parity.json")


def floats(a):
    return [float(v) for v in np.asarray(a, dtype=np.float32).ravel()]


def tensor(a):
    a = np.asarray(a)
    return {"shape": list(a.shape), "data": floats(a)}


# ----- frozen layers with a regularizer -------------------------------------------------
TABLE = np.array([[0.5, -1.0], [1.5, 2.0], [-0.25, 0.75]], dtype=np.float32)


def frozen_embedding():
    """The issue's case: Embedding(3, 2, trainable=False, embeddings_regularizer=L2(0.1))."""
    x = np.array([[1, 2], [0, 1]], dtype=np.int64)
    y = np.ones((2, 2, 2), dtype=np.float32)
    model = keras.Sequential(
        [
            keras.layers.Embedding(
                3,
                2,
                input_length=2,
                weights=[TABLE],
                trainable=False,
                embeddings_regularizer=keras.regularizers.L2(0.1),
            )
        ]
    )
    model.compile(keras.optimizers.SGD(0.1), "mse")
    history = model.fit(x, y, epochs=2, batch_size=2, shuffle=False, verbose=0)
    evaluate = model.evaluate(x, y, verbose=0)
    return {
        "id": "frozen_embedding_l2",
        "table": tensor(TABLE),
        "l2": 0.1,
        "x": x.tolist(),
        "y": tensor(y),
        "optimizer": {"class": "SGD", "learning_rate": 0.1},
        "loss": "mse",
        "epochs": 2,
        "batch_size": 2,
        "history_loss": floats(history.history["loss"]),
        "evaluate": float(evaluate),
        "penalty": float(0.1 * np.sum(TABLE.astype(np.float64) ** 2)),
        "final_table": tensor(model.layers[0].get_weights()[0]),
    }


def frozen_dense():
    """A trainable Embedding feeding a frozen Dense whose kernel has an L1L2 regularizer."""
    kernel = np.array([[0.3], [-0.6], [0.9], [0.2]], dtype=np.float32)
    bias = np.array([0.1], dtype=np.float32)
    x = np.array([[1, 2], [0, 1], [2, 2]], dtype=np.int64)
    y = np.array([[1.0], [0.0], [0.5]], dtype=np.float32)
    model = keras.Sequential(
        [
            keras.layers.Embedding(3, 2, input_length=2, weights=[TABLE]),
            keras.layers.Flatten(),
            keras.layers.Dense(
                1,
                weights=[kernel, bias],
                trainable=False,
                kernel_regularizer=keras.regularizers.L1L2(l1=0.01, l2=0.05),
            ),
        ]
    )
    model.compile(keras.optimizers.SGD(0.1), "mse")
    history = model.fit(x, y, epochs=2, batch_size=2, shuffle=False, verbose=0)
    evaluate = model.evaluate(x, y, verbose=0)
    return {
        "id": "frozen_dense_l1l2",
        "table": tensor(TABLE),
        "kernel": tensor(kernel),
        "bias": tensor(bias),
        "l1": 0.01,
        "l2": 0.05,
        "x": x.tolist(),
        "y": tensor(y),
        "optimizer": {"class": "SGD", "learning_rate": 0.1},
        "loss": "mse",
        "epochs": 2,
        "batch_size": 2,
        "history_loss": floats(history.history["loss"]),
        "evaluate": float(evaluate),
        "final_table": tensor(model.layers[0].get_weights()[0]),
        "final_kernel": tensor(model.layers[2].get_weights()[0]),
    }


# ----- constraints with an axis list ----------------------------------------------------
MATRIX = np.array([[3.0, 0.0], [4.0, 1.0], [0.5, -2.0]], dtype=np.float32)


def constraint_cases():
    makers = {
        "MaxNorm": lambda axis: keras.constraints.MaxNorm(max_value=1.0, axis=axis),
        "UnitNorm": lambda axis: keras.constraints.UnitNorm(axis=axis),
        "MinMaxNorm": lambda axis: keras.constraints.MinMaxNorm(
            min_value=0.5, max_value=1.5, rate=0.7, axis=axis
        ),
    }
    cases = []
    for name, make in makers.items():
        for axis in (0, 1, [0, 1]):
            constraint = make(axis)
            out = constraint(tf.constant(MATRIX)).numpy()
            cases.append(
                {
                    "class_name": name,
                    "axis": axis,
                    "get_config": constraint.get_config(),
                    "serialized": keras.constraints.serialize(constraint),
                    "output": tensor(out),
                }
            )
    return {"input": tensor(MATRIX), "cases": cases}


def constrained_training():
    """One SGD step on an Embedding whose table has MaxNorm(1.0, axis=[0, 1])."""
    x = np.array([[1, 2], [0, 1]], dtype=np.int64)
    y = np.ones((2, 2, 2), dtype=np.float32)
    layer = keras.layers.Embedding(
        3,
        2,
        input_length=2,
        weights=[TABLE],
        embeddings_constraint=keras.constraints.MaxNorm(1.0, axis=[0, 1]),
    )
    model = keras.Sequential([layer])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.fit(x, y, epochs=1, batch_size=2, shuffle=False, verbose=0)
    config = layer.get_config()
    return {
        "id": "embedding_max_norm_axis_0_1",
        "x": x.tolist(),
        "y": tensor(y),
        "final_table": tensor(layer.get_weights()[0]),
        "final_norm": float(np.sqrt(np.sum(layer.get_weights()[0].astype(np.float64) ** 2))),
        "layer_config": json.loads(json.dumps(config, default=str)),
    }


# ----- integer id types -----------------------------------------------------------------
def integer_ids():
    table = np.arange(10, dtype=np.float32).reshape(5, 2) / 4.0
    cases = []
    for dtype in ("int8", "int16", "uint16", "uint64"):
        ids = np.array([[1, 4], [0, 3]], dtype=dtype)
        layer = keras.layers.Embedding(5, 2, weights=[table])
        try:
            out = layer(ids).numpy()
            case = {"dtype": dtype, "ids": ids.tolist(), "output": tensor(out)}
        except Exception as e:  # recorded, not hidden
            case = {"dtype": dtype, "ids": ids.tolist(), "raised": type(e).__name__}
        cases.append(case)
    for dtype in ("int8", "int16"):
        ids = np.array([[1, -1]], dtype=dtype)
        layer = keras.layers.Embedding(5, 2, weights=[table])
        try:
            layer(ids)
            raised = None
        except Exception as e:
            raised = type(e).__name__
        cases.append({"dtype": dtype, "ids": ids.tolist(), "raised": raised})
    return {"table": tensor(table), "cases": cases}


# ----- where ndkeras differs on purpose ---------------------------------------------------
def deliberate_differences():
    """Recorded so that the tests show both behaviours (ndkeras asserts its own)."""
    kernel = np.array([[1.0, 2.0, -1.0], [0.5, -3.0, 2.0]], dtype=np.float32)
    x = np.array([[0.5, -1.0]], dtype=np.float32)
    y = np.array([[0.0, 1.0, 0.0]], dtype=np.float32)
    model = keras.Sequential(
        [keras.Input((2,)), keras.layers.Dense(3, activation="sigmoid", use_bias=False)]
    )
    model.layers[-1].set_weights([kernel])
    model.compile("sgd", "categorical_crossentropy")
    keras_value = model.evaluate(x, y, verbose=0)
    # Keras' categorical_crossentropy on the probabilities themselves (what Keras 3 on
    # JAX, PyTorch and NumPy computes): normalise, clip to [eps, 1 - eps], -sum(y log q).
    p = model.predict(x, verbose=0).astype(np.float64)
    q = np.clip(p / p.sum(axis=-1, keepdims=True), 1e-7, 1 - 1e-7)
    probability_value = float(-np.sum(y * np.log(q)))

    masked = keras.Sequential(
        [
            keras.layers.Embedding(3, 2, mask_zero=True, input_length=2),
            keras.layers.Flatten(),
        ]
    )
    try:
        out = masked(np.array([[1, 0]]))
        flatten = {"raised": None, "output_mask": getattr(out, "_keras_mask", None)}
    except Exception as e:
        flatten = {"raised": type(e).__name__}
    return {
        "sigmoid_categorical_crossentropy": {
            "kernel": tensor(kernel),
            "x": tensor(x),
            "y": tensor(y),
            "keras_evaluate": float(keras_value),
            "probability_formula": probability_value,
        },
        "flatten_after_mask_zero": flatten,
    }


def main():
    root = {
        "format_version": 1,
        "generator": "tests/data/keras_parity.py",
        "environment": {
            "tensorflow": tf.__version__,
            "tf_keras": keras.__version__,
            "numpy": np.__version__,
            "generated": True,
        },
        "frozen_regularizer": [frozen_embedding(), frozen_dense()],
        "constraints": constraint_cases(),
        "constrained_training": constrained_training(),
        "integer_ids": integer_ids(),
        "deliberate_differences": deliberate_differences(),
    }
    with open(OUT, "w") as f:
        json.dump(root, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
