"""Reference vectors for tests/quantized_lora.rs: LoRA on int8, int4 and half-precision
tables, from the real Keras 3.15.1 on JAX (CPU).

Run with a Python that has `keras==3.15.1` and `jax[cpu]`:
    KERAS_BACKEND=jax python tests/data/keras3_quantized_lora.py
It writes tests/data/keras3_quantized_lora.json next to itself. For each storage (int8, int4
per-channel, int4 grouped with block size 2, float16, bfloat16): a layer quantized (or built
in half precision), then `enable_lora(2, lora_alpha=4)` with fixed A and B; its variables
(names, order, trainability), the lookup of fixed ids, `jax.grad` of `sum(y * W)` with
respect to A and B, what `save_own_variables` writes (the merged table re-quantized), what
`load_own_variables` of that leaves in a LoRA layer, and two SGD steps of
Embedding -> GlobalAveragePooling1D -> Dense(1) with MSE.

A and B hold multiples of 1/8 and 1/16 and `lora_alpha / rank` is 2, so `A @ B` and its
scaling are exact in float32 whatever order or fused multiply-adds XLA uses: the merged
tables, hence the re-quantized codes, are the same bits on any machine.
"""

import json
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras.quantizers import Int4QuantizationConfig  # noqa: E402

assert keras.__version__ == "3.15.1", keras.__version__
assert keras.backend.backend() == "jax"

V, D, RANK, ALPHA = 6, 5, 2, 4.0
rng = np.random.default_rng(23)
E = rng.uniform(-1.0, 1.0, (V, D)).astype(np.float32)
E[1] = 0.0  # an all-zero row: scale 127 / 1e-7
A = (rng.integers(-8, 9, (V, RANK)) / 8.0).astype(np.float32)
B = (rng.integers(-8, 9, (RANK, D)) / 16.0).astype(np.float32)
IDS = np.array([[1, 4, 1], [0, 2, 5]], dtype=np.int32)
# Multiples of 1/8: exact in float16, so the half-precision cotangent is the float32 one.
W = (rng.integers(-8, 9, (2, 3, D)) / 8.0).astype(np.float32)
KERNEL = (np.arange(D, dtype=np.float32).reshape(D, 1) / 4.0 - 0.5).astype(np.float32)
BIAS = np.array([0.125], dtype=np.float32)
Y = np.array([[0.25], [-0.5]], dtype=np.float32)

CASES = {
    "int8": ("int8", None, None),
    "int4_per_channel": ("int4", Int4QuantizationConfig(block_size=None), None),
    "int4_grouped_2": ("int4", Int4QuantizationConfig(block_size=2), None),
    "float16": (None, None, "float16"),
    "bfloat16": (None, None, "bfloat16"),
}


def floats(a):
    return np.asarray(a).astype(np.float64).tolist()


def make_layer(case, name="embedding"):
    mode, config, dtype = CASES[case]
    layer = keras.layers.Embedding(V, D, name=name, dtype=dtype)
    layer.build()
    layer.set_weights([E])
    if mode is not None:
        layer.quantize(mode, config=config)
    layer.enable_lora(RANK, lora_alpha=ALPHA)
    layer.lora_embeddings_a.assign(A)
    layer.lora_embeddings_b.assign(B)
    return layer


def variables(layer):
    return [
        {
            "name": v.name,
            "dtype": v.dtype,
            "trainable": bool(v.trainable),
            "values": floats(v.numpy()),
        }
        for v in layer.weights
    ]


def run(case):
    layer = make_layer(case)
    out = layer(IDS)
    trainable = [v.value for v in layer.trainable_variables]
    non_trainable = [v.value for v in layer.non_trainable_variables]

    def objective(tv):
        y, _ = layer.stateless_call(tv, non_trainable, jnp.asarray(IDS))
        return jnp.sum(y.astype("float32") * W)

    grad_a, grad_b = jax.grad(objective)(trainable)
    store = {}
    layer.save_own_variables(store)
    saved = [
        {"dtype": str(np.asarray(store[k]).dtype), "values": floats(store[k])}
        for k in sorted(store, key=int)
    ]
    other = make_layer(case)
    other.load_own_variables(store)
    loaded = variables(other)
    loaded_out = floats(other(IDS))

    model = keras.Sequential(
        [
            keras.Input((3,), dtype="int32"),
            keras.layers.Embedding(V, D, dtype=CASES[case][2]),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(1),
        ]
    )
    emb = model.layers[0]
    emb.set_weights([E])
    mode, config, _ = CASES[case]
    if mode is not None:
        emb.quantize(mode, config=config)
    emb.enable_lora(RANK, lora_alpha=ALPHA)
    emb.lora_embeddings_a.assign(A)
    emb.lora_embeddings_b.assign(B)
    model.layers[2].set_weights([KERNEL, BIAS])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    steps = []
    for _ in range(2):
        loss = float(model.train_on_batch(IDS, Y))
        steps.append(
            {
                "loss": loss,
                "lora_a": floats(emb.lora_embeddings_a.numpy()),
                "lora_b": floats(emb.lora_embeddings_b.numpy()),
                "dense": [floats(v) for v in model.layers[2].get_weights()],
            }
        )
    prediction = floats(model.predict(IDS, verbose=0))
    return {
        "variables": variables(layer),
        "output": floats(out),
        "output_dtype": str(out.dtype),
        "grad_a": floats(grad_a),
        "grad_b": floats(grad_b),
        "saved": saved,
        "loaded": loaded,
        "loaded_output": loaded_out,
        "steps": steps,
        "prediction_after_steps": prediction,
    }


result = {
    "keras_version": keras.__version__,
    "embeddings": floats(E),
    "lora_a": floats(A),
    "lora_b": floats(B),
    "rank": RANK,
    "alpha": ALPHA,
    "ids": IDS.tolist(),
    "weight": floats(W),
    "kernel": floats(KERNEL),
    "bias": floats(BIAS),
    "y": floats(Y),
    "cases": {case: run(case) for case in CASES},
}

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras3_quantized_lora.json"), "w") as f:
    json.dump(result, f, indent=1)
