"""Writes keras_hub_position.json: reference values from the real KerasHub position layers
(PositionEmbedding, SinePositionEncoding, RotaryEmbedding, TokenAndPositionEmbedding) for
tests/position_embeddings.rs.

    ~/.pyenv/versions/3.12.1/bin/python -m venv /tmp/k3
    /tmp/k3/bin/pip install keras==3.15.1 "jax[cpu]" keras-hub==0.32.0
    KERAS_BACKEND=jax /tmp/k3/bin/python tests/data/keras_hub_position.py

Versions used: keras 3.15.1, keras-hub 0.32.0, jax/jaxlib 0.12.0.1, numpy 2.5.5 (JAX
backend, CPU, float32).

Deterministic: every input, weight and upstream gradient is fixed here (small dyadic
values or values from a seeded NumPy generator) and written into the JSON. Gradients are
jax.grad of sum(output * upstream) through `layer.stateless_call`, so they are the
gradients of the layer's own `call`. Rerunning gives the same file.

The "tied_output" entry (TokenAndPositionEmbedding's token embedding called in reverse,
tied and untied, and a tiny functional language model trained three steps with it) draws
its values from a generator of its own, so the entries above are what they were.

Tensors are {dtype, shape, data}: data flattened row-major (C order); floats are the
float32 values Keras computed, written with Python's shortest round-trip repr. Masks are
bool tensors, or null when the output carries none. Non-finite floats (there are none
today) would be written as the strings "NaN", "Infinity", "-Infinity".
"""

import json
import math
import os
import warnings

os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402
from keras.src.backend import get_keras_mask, set_keras_mask  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_hub_position.json")
RNG = np.random.default_rng(20261201)


def f32(a):
    return np.asarray(a, dtype=np.float32)


def number(v):
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def tensor(a):
    if a is None:
        return None
    a = np.asarray(a)
    if a.dtype == np.bool_:
        dtype, data = "bool", [bool(v) for v in a.ravel()]
    elif np.issubdtype(a.dtype, np.integer):
        dtype, data = str(a.dtype), [int(v) for v in a.ravel()]
    else:
        dtype, data = "float32", [number(v) for v in a.astype(np.float32).ravel()]
    return {"dtype": dtype, "shape": list(a.shape), "data": data}


def plain(value):
    """A get_config value as JSON (tuples to lists, numpy scalars to numbers)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def values(n, shape, scale=1.0):
    """Seeded values rounded to multiples of 1/64 (exact in float32)."""
    return f32(np.round(RNG.uniform(-scale, scale, size=shape) * 64) / 64)


def forward_and_grads(layer, x, upstream, kwargs):
    """Output, input gradient and weight gradients of sum(layer(x) * upstream)."""
    trainable = [v.value for v in layer.trainable_variables]
    non_trainable = [v.value for v in layer.non_trainable_variables]

    def loss(tv, xv):
        out, _ = layer.stateless_call(tv, non_trainable, xv, **kwargs)
        return jnp.sum(out * upstream)

    out, _ = layer.stateless_call(trainable, non_trainable, x, **kwargs)
    if np.issubdtype(np.asarray(x).dtype, np.integer):
        grads_w = jax.grad(lambda tv: loss(tv, x))(trainable)
        grad_x = None
    else:
        grads_w, grad_x = jax.grad(loss, argnums=(0, 1))(trainable, x)
    return np.asarray(out), grad_x, grads_w


def case(id_, layer, x, kwargs=None, upstream=None, masked_input=None):
    kwargs = kwargs or {}
    out = layer(x, **kwargs)  # builds; eager call gives the mask Keras attaches
    mask = get_keras_mask(out)
    if upstream is None:
        upstream = values(0, np.shape(out))
    out_np, grad_x, grads_w = forward_and_grads(layer, x, jnp.asarray(upstream), kwargs)
    result = {
        "id": id_,
        "class_name": type(layer).__name__,
        "config": plain(layer.get_config()),
        "call_kwargs": kwargs,
        "input": tensor(x),
        "weights": [
            {"path": v.path, "name": v.name, **tensor(v.numpy())} for v in layer.weights
        ],
        "output": tensor(out_np),
        "mask": tensor(None if mask is None else np.asarray(mask)),
        "upstream": tensor(upstream),
        "input_gradient": tensor(None if grad_x is None else np.asarray(grad_x)),
        "weight_gradients": [
            {"path": v.path, **tensor(np.asarray(g))}
            for v, g in zip(layer.trainable_variables, grads_w)
        ],
        "compute_output_shape": plain(layer.compute_output_shape(tuple(np.shape(x)))),
    }
    if masked_input is not None:
        # What the layer does with a mask attached to its input (Keras 3 drops it, with a
        # warning, at a layer whose `supports_masking` is False).
        masked = jnp.asarray(x)
        set_keras_mask(masked, jnp.asarray(masked_input))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out_masked = layer(masked, **kwargs)
        m = get_keras_mask(out_masked)
        result["masked_call"] = {
            "input_mask": tensor(np.asarray(masked_input)),
            "output_mask": tensor(None if m is None else np.asarray(m)),
            "warned": any("does not support masking" in str(w.message) for w in caught),
        }
    result["supports_masking"] = bool(layer.supports_masking)
    return result


def set_weights(layer, x, weights):
    layer(x)
    layer.set_weights([f32(w) for w in weights])


def position_cases():
    cases = []
    x = values(0, (2, 4, 3))
    table = values(0, (5, 3))
    layer = keras_hub.layers.PositionEmbedding(sequence_length=5, name="pos")
    set_weights(layer, x, [table])
    mask = np.array([[True, True, False, False], [True, True, True, False]])
    cases.append(case("position_embedding", layer, x, masked_input=mask))
    cases.append(case("position_embedding_start_index", layer, x, {"start_index": 1}))
    # A shorter sequence, rank 4 (the table slice broadcasts over the leading axes).
    x4 = values(0, (2, 1, 3, 3))
    cases.append(case("position_embedding_rank4", layer, x4))
    # Rank 2: (sequence, features), no batch axis.
    x2 = values(0, (4, 3))
    cases.append(case("position_embedding_rank2", layer, x2))
    return cases


def sine_cases():
    cases = []
    mask = np.array([[True, True, False, False], [True, True, True, True]])
    layer = keras_hub.layers.SinePositionEncoding(name="sine")
    x = values(0, (2, 4, 6))
    cases.append(case("sine_default", layer, x, masked_input=mask))
    cases.append(case("sine_start_index", layer, x, {"start_index": 3}))
    odd = keras_hub.layers.SinePositionEncoding(max_wavelength=100, name="sine_odd")
    cases.append(case("sine_odd_dim", odd, values(0, (2, 3, 5))))
    cases.append(case("sine_long", layer, values(0, (1, 40, 8))))
    return cases


def rotary_cases():
    cases = []
    mask = np.array([[True, True, False, False], [True, True, True, True]])
    layer = keras_hub.layers.RotaryEmbedding(name="rope")
    x = values(0, (2, 4, 6))
    cases.append(case("rotary_default", layer, x, masked_input=mask))
    cases.append(case("rotary_start_index", layer, x, {"start_index": 5}))
    heads = values(0, (2, 5, 3, 4))
    cases.append(case("rotary_heads", layer, heads))
    scaled = keras_hub.layers.RotaryEmbedding(
        max_wavelength=100, scaling_factor=2.0, name="rope_scaled"
    )
    cases.append(case("rotary_scaled", scaled, x))
    axes = keras_hub.layers.RotaryEmbedding(sequence_axis=2, feature_axis=1, name="rope_axes")
    cases.append(case("rotary_axes", axes, values(0, (2, 4, 3))))
    neg = keras_hub.layers.RotaryEmbedding(sequence_axis=-3, feature_axis=-1, name="rope_neg")
    cases.append(case("rotary_negative_axes", neg, heads))
    dynamic = keras_hub.layers.RotaryEmbedding(
        scaling_factor=4.0, rope_type="dynamic", name="rope_dynamic"
    )
    cases.append(case("rotary_dynamic", dynamic, x))
    denominator = keras_hub.layers.RotaryEmbedding(denominator_dim=8, name="rope_denominator")
    cases.append(case("rotary_denominator_dim", denominator, x))
    cases.append(case("rotary_long", layer, values(0, (1, 64, 8))))
    return cases


def token_and_position_cases():
    cases = []
    ids = np.array([[1, 6, 0, 0], [3, 3, 2, 0]], dtype="int32")
    layer = keras_hub.layers.TokenAndPositionEmbedding(
        vocabulary_size=7, sequence_length=5, embedding_dim=3, mask_zero=True, name="tape"
    )
    set_weights(layer, ids, [values(0, (7, 3)), values(0, (5, 3))])
    cases.append(case("token_and_position_masked", layer, ids))
    cases.append(case("token_and_position_start_index", layer, ids, {"start_index": 1}))
    plain_layer = keras_hub.layers.TokenAndPositionEmbedding(
        vocabulary_size=7, sequence_length=4, embedding_dim=2, name="tape_plain"
    )
    ids2 = np.array([[0, 1, 2, 3]], dtype="int32")
    set_weights(plain_layer, ids2, [values(0, (7, 2)), values(0, (4, 2))])
    cases.append(case("token_and_position_unmasked", plain_layer, ids2))
    return cases


def configs():
    """get_config of layers built with their defaults and with every setting changed."""
    out = {}
    out["PositionEmbedding_default"] = keras_hub.layers.PositionEmbedding(
        sequence_length=16, name="p"
    ).get_config()
    out["PositionEmbedding_custom"] = keras_hub.layers.PositionEmbedding(
        sequence_length=8,
        initializer=keras.initializers.RandomNormal(stddev=0.02, seed=3),
        name="p2",
        trainable=False,
    ).get_config()
    out["SinePositionEncoding_default"] = keras_hub.layers.SinePositionEncoding(
        name="s"
    ).get_config()
    out["SinePositionEncoding_custom"] = keras_hub.layers.SinePositionEncoding(
        max_wavelength=500, name="s2"
    ).get_config()
    out["RotaryEmbedding_default"] = keras_hub.layers.RotaryEmbedding(name="r").get_config()
    out["RotaryEmbedding_custom"] = keras_hub.layers.RotaryEmbedding(
        max_wavelength=500,
        scaling_factor=2.5,
        rope_type="dynamic",
        sequence_axis=2,
        feature_axis=1,
        denominator_dim=16,
        name="r2",
    ).get_config()
    out["TokenAndPositionEmbedding_default"] = keras_hub.layers.TokenAndPositionEmbedding(
        vocabulary_size=100, sequence_length=10, embedding_dim=8, name="t"
    ).get_config()
    out["TokenAndPositionEmbedding_custom"] = keras_hub.layers.TokenAndPositionEmbedding(
        vocabulary_size=100,
        sequence_length=10,
        embedding_dim=8,
        tie_weights=False,
        embeddings_initializer="glorot_uniform",
        mask_zero=True,
        name="t2",
    ).get_config()
    return {k: plain(v) for k, v in out.items()}


def weight_paths():
    """Variable names, paths and order of a built TokenAndPositionEmbedding."""
    layer = keras_hub.layers.TokenAndPositionEmbedding(
        vocabulary_size=7, sequence_length=5, embedding_dim=3, name="token_and_position_embedding"
    )
    layer(np.zeros((1, 5), dtype="int32"))
    return [{"name": v.name, "path": v.path, "shape": list(v.shape)} for v in layer.weights]


def jax_clamps_start_index():
    """What JAX does when start_index + length overflows the table: dynamic_slice clamps."""
    layer = keras_hub.layers.PositionEmbedding(sequence_length=5, name="clamp")
    x = np.zeros((1, 3, 2), dtype="float32")
    set_weights(layer, x, [np.arange(10, dtype="float32").reshape(5, 2)])
    return {
        "table": tensor(layer.weights[0].numpy()),
        "start_index": 4,
        "output": tensor(np.asarray(layer(x, start_index=4))),
    }


def training():
    """Three SGD steps of TokenAndPositionEmbedding -> GlobalAveragePooling1D -> Dense (MSE)."""
    keras.utils.set_random_seed(0)
    tape = keras_hub.layers.TokenAndPositionEmbedding(
        vocabulary_size=6, sequence_length=4, embedding_dim=3, mask_zero=True, name="tape"
    )
    pool = keras.layers.GlobalAveragePooling1D(name="pool")
    dense = keras.layers.Dense(1, name="dense")
    model = keras.Sequential([keras.Input((4,), dtype="int32"), tape, pool, dense])
    x = np.array([[1, 2, 0, 0], [3, 4, 5, 0], [5, 5, 1, 2]], dtype="int32")
    y = f32([[0.5], [-0.25], [1.0]])
    initial = [
        values(0, (6, 3)),
        values(0, (4, 3)),
        values(0, (3, 1)),
        f32([0.125]),
    ]
    model.set_weights(initial)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.5), loss="mse")
    losses = []
    for _ in range(3):
        losses.append(float(model.train_on_batch(x, y)))
    return {
        "x": tensor(x),
        "y": tensor(y),
        "learning_rate": 0.5,
        "initial_weights": [tensor(w) for w in initial],
        "weight_paths": [v.path for v in model.weights],
        "losses": losses,
        "final_weights": [tensor(v.numpy()) for v in model.weights],
        "predictions": tensor(np.asarray(model(x))),
    }


TIED_RNG = np.random.default_rng(20261213)


def tied_values(shape, scale=1.0):
    """Seeded values for the tied cases, rounded to multiples of 1/64 (exact in float32),
    from their own generator so that the cases above keep their values."""
    return f32(np.round(TIED_RNG.uniform(-scale, scale, size=shape) * 64) / 64)


def tied_layer_case(tie):
    """Forward, mask, reverse logits and the reverse call's gradients of a
    TokenAndPositionEmbedding whose token embedding is tied (or not) to the output."""
    v, length, d = 7, 4, 3
    layer = keras_hub.layers.TokenAndPositionEmbedding(
        vocabulary_size=v,
        sequence_length=length,
        embedding_dim=d,
        tie_weights=tie,
        mask_zero=True,
        name="tape",
    )
    ids = np.array([[1, 6, 0, 0], [3, 3, 2, 5]], dtype="int32")
    weights = [tied_values((v, d))]
    if not tie:
        weights.append(tied_values((d, v)))
    weights.append(tied_values((length, d)))
    set_weights(layer, ids, weights)
    out = layer(ids)
    mask = get_keras_mask(out)
    x = tied_values((2, 4, d), scale=2.0)
    upstream = tied_values((2, 4, v))
    token = layer.token_embedding
    logits = token(x, reverse=True)
    trainable = [w.value for w in token.trainable_variables]
    non_trainable = [w.value for w in token.non_trainable_variables]

    def loss(tv, xv):
        y, _ = token.stateless_call(tv, non_trainable, xv, reverse=True)
        return jnp.sum(y * upstream)

    grads_w, grad_x = jax.grad(loss, argnums=(0, 1))(trainable, jnp.asarray(x))
    return {
        "tie_weights": tie,
        "config": plain(layer.get_config()),
        "weights": [
            {"path": w.path, "name": w.name, **tensor(w.numpy())} for w in layer.weights
        ],
        "ids": tensor(ids),
        "output": tensor(np.asarray(out)),
        "mask": tensor(None if mask is None else np.asarray(mask)),
        "x": tensor(x),
        "logits": tensor(np.asarray(logits)),
        "logits_have_mask": get_keras_mask(logits) is not None,
        "reverse_output_shape": plain(token.compute_output_shape((None, 4, d), reverse=True)),
        "upstream": tensor(upstream),
        "input_gradient": tensor(np.asarray(grad_x)),
        "weight_gradients": [
            {"path": w.path, **tensor(np.asarray(g))}
            for w, g in zip(token.trainable_variables, grads_w)
        ],
    }


def tied_training_case(tie, optimizer):
    """A tiny language model as a functional model: ids -> TokenAndPositionEmbedding ->
    Dense(tanh) -> the same layer's token embedding in reverse (logits), trained 3 epochs of
    one batch. The loss is mean squared error against the one-hot next ids: ndkeras has no
    cross-entropy from logits (its cross-entropies take logits only from a softmax layer)."""
    keras.utils.clear_session()
    v, length, d = 7, 4, 3
    ids = keras.Input(shape=(length,), dtype="int32", name="ids")
    tape = keras_hub.layers.TokenAndPositionEmbedding(
        vocabulary_size=v, sequence_length=length, embedding_dim=d, tie_weights=tie, name="tape"
    )
    hidden = keras.layers.Dense(d, activation="tanh", name="hidden")
    logits = tape.token_embedding(hidden(tape(ids)), reverse=True)
    model = keras.Model(ids, logits, name="tiny_lm")
    weights = {
        "tape": [tied_values((v, d))]
        + ([] if tie else [tied_values((d, v))])
        + [tied_values((length, d))],
        "hidden": [tied_values((d, d)), tied_values((d,), scale=0.25)],
    }
    for name, w in weights.items():
        model.get_layer(name).set_weights(w)
    text = np.array([[1, 2, 3, 4, 5], [6, 5, 4, 3, 2], [2, 2, 6, 1, 0], [5, 1, 3, 0, 6]])
    x = text[:, :-1].astype("int32")
    y = np.eye(v, dtype=np.float32)[text[:, 1:]]
    initial = model.predict(x, verbose=0)
    if optimizer == "sgd":
        opt, settings = keras.optimizers.SGD(learning_rate=0.5), {"learning_rate": 0.5}
    else:
        opt, settings = keras.optimizers.Adam(learning_rate=0.05), {"learning_rate": 0.05}
    model.compile(optimizer=opt, loss="mean_squared_error")
    history = model.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)
    return {
        "tie_weights": tie,
        "optimizer": optimizer,
        **settings,
        "initial_weights": {k: [tensor(a) for a in w] for k, w in weights.items()},
        "weight_paths": [w.path for w in tape.weights],
        "x": tensor(x),
        "y": tensor(y),
        "predict_initial": tensor(initial),
        "losses": [float(l) for l in history.history["loss"]],
        "final_weights": {
            name: [tensor(a) for a in model.get_layer(name).get_weights()] for name in weights
        },
        "predict_final": tensor(model.predict(x, verbose=0)),
    }


def tied_output():
    return {
        "layer": [tied_layer_case(True), tied_layer_case(False)],
        "training": [tied_training_case(True, "sgd"), tied_training_case(False, "adam")],
    }


def main():
    root = {
        "versions": {
            "keras": keras.__version__,
            "keras_hub": keras_hub.__version__,
            "jax": jax.__version__,
            "numpy": np.__version__,
            "backend": keras.backend.backend(),
        },
        "cases": position_cases() + sine_cases() + rotary_cases() + token_and_position_cases(),
        "configs": configs(),
        "token_and_position_weights": weight_paths(),
        "jax_clamps_start_index": jax_clamps_start_index(),
        "training": training(),
        "tied_output": tied_output(),
    }
    with open(OUT, "w") as f:
        json.dump(root, f, indent=1, sort_keys=True, allow_nan=False)
        f.write("\n")


if __name__ == "__main__":
    main()
