"""Writes keras3_reversible.json: reference values from the real Keras 3
`keras.layers.ReversibleEmbedding` for tests/reversible_embedding.rs.

    ~/.pyenv/versions/3.12.1/bin/python -m venv /tmp/k3
    /tmp/k3/bin/pip install keras==3.15.1 "jax[cpu]"
    KERAS_BACKEND=jax /tmp/k3/bin/python tests/data/keras3_reversible.py

Versions used: keras 3.15.1 (JAX backend, CPU, float32).

Deterministic: every input, weight and upstream gradient is fixed here (values from a seeded
NumPy generator, rounded to multiples of 1/64) and written into the JSON. Gradients are
jax.grad of sum(output * upstream) through `layer.stateless_call`, so they are the
gradients of the layer's own `call`. The training case is a functional model
ids -> emb -> GlobalAveragePooling1D -> Dense(D) -> emb(reverse=True), compiled with SGD and
mean squared error against one-hot targets (ndkeras has no softmax layer and no
`from_logits` loss, so the logits themselves are the output), trained 3 epochs of one batch
with `shuffle=False`.

Tensors are {dtype, shape, data}: data flattened row-major; floats are the float32 values
Keras computed, written with Python's shortest round-trip repr. Masks are bool tensors, or
null when the output carries none.
"""

import json
import os

os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras.src.backend import get_keras_mask  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras3_reversible.json")
RNG = np.random.default_rng(20261211)
V, D = 6, 4


def fixed(*shape, scale=1.0):
    return (np.round(RNG.uniform(-1, 1, size=shape) * 64) / 64 * scale).astype(np.float32)


def tensor(a):
    if a is None:
        return None
    a = np.asarray(a)
    if a.dtype == np.bool_:
        return {"dtype": "bool", "shape": list(a.shape), "data": [bool(v) for v in a.ravel()]}
    if np.issubdtype(a.dtype, np.integer):
        return {"dtype": "int64", "shape": list(a.shape), "data": [int(v) for v in a.ravel()]}
    a = a.astype(np.float32)
    return {"dtype": "float32", "shape": list(a.shape), "data": [float(v) for v in a.ravel()]}


E = fixed(V, D)
R = fixed(D, V)
IDS = np.array([[1, 0, 5], [3, 2, 0]], dtype=np.int64)
X = fixed(2, 3, D, scale=2.0)
UP = fixed(2, 3, V)


def layer_case(tie, cap):
    layer = keras.layers.ReversibleEmbedding(
        V, D, tie_weights=tie, logit_soft_cap=cap, mask_zero=True, name="emb"
    )
    layer.build((None, 3))
    layer.set_weights([E] if tie else [E, R])
    out = layer(IDS)
    mask = get_keras_mask(out)
    logits = layer(X, reverse=True)
    reverse_mask = get_keras_mask(logits)

    trainable = [v.value for v in layer.trainable_variables]
    non_trainable = [v.value for v in layer.non_trainable_variables]

    def loss(weights, x):
        y, _ = layer.stateless_call(weights, non_trainable, x, reverse=True)
        return jnp.sum(y * UP)

    weight_grads, x_grad = jax.grad(loss, argnums=(0, 1))(trainable, jnp.asarray(X))
    return {
        "tie_weights": tie,
        "logit_soft_cap": cap,
        "weight_names": [v.name for v in layer.weights],
        "config": layer.get_config(),
        "output": tensor(out),
        "mask": tensor(mask),
        "logits": tensor(logits),
        "logits_mask": tensor(reverse_mask),
        "weight_gradients": [tensor(g) for g in weight_grads],
        "input_gradient": tensor(x_grad),
    }


def training_case(tie, cap):
    keras.utils.clear_session()
    ids = keras.Input(shape=(3,), dtype="int64", name="ids")
    emb = keras.layers.ReversibleEmbedding(
        V, D, tie_weights=tie, logit_soft_cap=cap, name="emb"
    )
    h = emb(ids)
    h = keras.layers.GlobalAveragePooling1D(name="pool")(h)
    h = keras.layers.Dense(D, name="hidden")(h)
    logits = emb(h, reverse=True)
    model = keras.Model(ids, logits, name="tied_lm")
    kernel = fixed(D, D)
    bias = fixed(D, scale=0.25)
    weights = {"emb": [E] if tie else [E, R], "hidden": [kernel, bias]}
    for name, w in weights.items():
        model.get_layer(name).set_weights(w)
    x = np.array([[1, 2, 3], [4, 5, 0], [2, 2, 1], [5, 0, 3]], dtype=np.int64)
    targets = np.array([2, 4, 1, 0])
    y = np.eye(V, dtype=np.float32)[targets]
    initial = model.predict(x, verbose=0)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5), loss="mean_squared_error")
    history = model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)
    return {
        "tie_weights": tie,
        "logit_soft_cap": cap,
        "initial_weights": {k: [tensor(a) for a in v] for k, v in weights.items()},
        "x": tensor(x),
        "y": tensor(y),
        "learning_rate": 0.5,
        "predict_initial": tensor(initial),
        "loss": [float(v) for v in history.history["loss"]],
        "final_weights": {
            name: [tensor(a) for a in model.get_layer(name).get_weights()]
            for name in weights
        },
        "predict_final": tensor(model.predict(x, verbose=0)),
    }


def main():
    cases = {
        "layer": [layer_case(tie, cap) for tie in (True, False) for cap in (None, 0.75)],
        "training": [training_case(True, None), training_case(True, 0.75), training_case(False, None)],
        "inputs": {
            "embeddings": tensor(E),
            "reverse_embeddings": tensor(R),
            "ids": tensor(IDS),
            "x": tensor(X),
            "upstream": tensor(UP),
        },
        "keras_version": keras.__version__,
    }
    with open(OUT, "w") as f:
        json.dump(cases, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
