"""Reference vectors for tests/quantized.rs: Keras 3.15.1 on JAX (CPU).

Run with a Python that has `keras==3.15.1` and `jax[cpu]`:
    KERAS_BACKEND=jax python tests/data/keras3_quantized.py
It writes tests/data/keras3_quantized.json next to itself: for fixed tables, the variables
`Embedding.quantize` makes (int8, int4 per-channel, int4 grouped with several block sizes),
the dequantised lookups of fixed ids, `get_config()`, float16/bfloat16 tables, and the
messages of Keras' quantization errors.
"""

import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras.quantizers import Int4QuantizationConfig  # noqa: E402

assert keras.__version__ == "3.15.1", keras.__version__
assert keras.backend.backend() == "jax"

rng = np.random.default_rng(11)
V, D = 9, 7
table = np.zeros((V, D), dtype=np.float32)
# Max 127: the int8 scale is exactly 1 (1e-7 is lost in float32), so x.5 are exact ties.
table[0] = [127.0, 0.5, 1.5, 2.5, -0.5, -2.5, 3.5]
# table[1] stays all zero.
table[2] = rng.normal(0.0, 0.05, D)
table[3] = [-1.0, 0.25, 0.0, 0.75, -0.333, 0.1, 0.9]
table[4] = [1e-3, -2e-3, 5e-4, 0.0, -1e-4, 3e-3, -3e-3]
table[5] = [3.0, -3.0, 1.0, 0.0, 0.0, -1.5, 2.9]
# Max 7: the per-channel int4 scale is exactly 1, ties again.
table[6] = [7.0, 0.5, 1.5, 2.5, -3.5, -0.5, 0.0]
# Range 15: the grouped int4 scale is exactly 1 for groups holding both ends.
table[7] = [-7.5, 7.5, 0.5, 2.5, -1.5, 1.5, 0.0]
table[8] = rng.uniform(-2.0, 2.0, D)
table = table.astype(np.float32)

ids = np.array([[0, 8, 1], [3, 3, 6], [7, 2, 5], [4, 0, 1]], dtype="int32")


def floats(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64).tolist()


def ints(a):
    return np.asarray(a).astype(np.int64).tolist()


def case(name, mode, config=None):
    layer = keras.layers.Embedding(V, D, name=name)
    layer.build()
    layer.set_weights([table])
    if config is None:
        layer.quantize(mode)
    else:
        layer.quantize(mode, config=config)
    variables = []
    for v in layer.variables:
        value = np.asarray(v.value)
        variables.append(
            {
                "name": v.name,
                "dtype": str(value.dtype),
                "shape": list(value.shape),
                "trainable": bool(v.trainable),
                "values": ints(value) if value.dtype == np.int8 else floats(value),
            }
        )
    out = np.asarray(layer(ids))
    return {
        "name": name,
        "policy": layer.dtype_policy.name,
        "variables": variables,
        "lookup": floats(out),
        "config": layer.get_config(),
    }


cases = [
    case("int8", "int8"),
    case("int4_default", "int4"),
    case("int4_per_channel", "int4", Int4QuantizationConfig(block_size=None)),
    case("int4_block2", "int4", Int4QuantizationConfig(block_size=2)),
    case("int4_block3", "int4", Int4QuantizationConfig(block_size=3)),
    case("int4_block7", "int4", Int4QuantizationConfig(block_size=7)),
]

half = []
for dtype in ("float16", "bfloat16"):
    layer = keras.layers.Embedding(V, D, dtype=dtype, name=f"{dtype}_table")
    layer.build()
    layer.set_weights([table])
    half.append(
        {
            "dtype": dtype,
            "stored": floats(np.asarray(layer.embeddings.value).astype(np.float32)),
            "lookup": floats(np.asarray(layer(ids)).astype(np.float32)),
            "config": layer.get_config(),
        }
    )

errors = {}
unbuilt = keras.layers.Embedding(V, D, name="unbuilt")
for key, run in [
    ("unbuilt", lambda: unbuilt.quantize("int8")),
]:
    try:
        run()
    except Exception as e:  # noqa: BLE001
        errors[key] = f"{type(e).__name__}: {e}"
twice = keras.layers.Embedding(V, D, name="twice")
twice.build()
twice.quantize("int8")
for key, run in [
    ("twice", lambda: twice.quantize("int8")),
    ("unknown", lambda: keras.layers.Embedding(V, D, name="u").quantize("int3")),
]:
    try:
        run()
    except Exception as e:  # noqa: BLE001
        errors[key] = f"{type(e).__name__}: {e}"
built = keras.layers.Embedding(V, D, name="f8")
built.build()
try:
    built.quantize("float8")
except Exception as e:  # noqa: BLE001
    errors["float8"] = f"{type(e).__name__}: {e}"

# A layer read back from a quantized config builds the quantized variables.
restored = keras.layers.Embedding.from_config(cases[3]["config"])
restored.build()
restored_names = [v.name for v in restored.variables]

out = {
    "keras_version": keras.__version__,
    "backend": keras.backend.backend(),
    "numpy_version": np.__version__,
    "input_dim": V,
    "output_dim": D,
    "table": floats(table),
    "ids": ints(ids),
    "cases": cases,
    "half": half,
    "errors": errors,
    "restored_from_block2_config": restored_names,
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras3_quantized.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print("wrote", path)
