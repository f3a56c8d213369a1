"""Reference vectors for LoRA on `Embedding` (tests/lora.rs), from the real Keras 3 on JAX.

Run: KERAS_BACKEND=jax python tests/data/keras3_lora.py  (writes keras3_lora.json beside it)
"""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

import keras
from keras import layers

E = np.array(
    [[0.1, -0.2, 0.3], [0.4, 0.5, -0.6], [-0.7, 0.8, 0.9], [1.0, -1.1, 1.2], [0.05, 0.15, -0.25]],
    dtype=np.float32,
)
A = np.array([[0.3, -0.1], [0.2, 0.4], [-0.5, 0.6], [0.7, 0.1], [-0.2, -0.3]], dtype=np.float32)
B = np.array([[0.25, -0.5, 0.75], [-0.125, 0.6, 0.2]], dtype=np.float32)
RANK, ALPHA = 2, 3.0
IDS = np.array([[1, 4, 1], [0, 2, 4]], dtype=np.int32)
W = np.arange(1, 19, dtype=np.float32).reshape(2, 3, 3) / 7.0 - 1.0


def lora_layer():
    layer = layers.Embedding(5, 3)
    layer.build()
    layer.embeddings.assign(E)
    layer.enable_lora(RANK, lora_alpha=ALPHA)
    layer.lora_embeddings_a.assign(A)
    layer.lora_embeddings_b.assign(B)
    return layer


layer = lora_layer()
out = np.asarray(layer(IDS))
assert [v.name for v in layer.trainable_variables] == ["lora_embeddings_a", "lora_embeddings_b"]
assert [v.name for v in layer.non_trainable_variables] == ["embeddings"]
assert [v.name for v in layer.weights] == ["embeddings", "lora_embeddings_a", "lora_embeddings_b"]

trainable = [v.value for v in layer.trainable_variables]
non_trainable = [v.value for v in layer.non_trainable_variables]


def objective(tv):
    y, _ = layer.stateless_call(tv, non_trainable, jnp.asarray(IDS))
    return jnp.sum(y * W)


grad_a, grad_b = jax.grad(objective)(trainable)

store = {}
layer.save_own_variables(store)
saved = [np.asarray(store[k]).tolist() for k in sorted(store)]

# Loading a plain (merged) table into a LoRA layer: the table is assigned and A, B zeroed.
other = lora_layer()
other.load_own_variables({"0": E * 2.0})
loaded = [np.asarray(v).tolist() for v in other.get_weights()]

# A layer from a config with lora_rank and lora_alpha: Keras' build enables LoRA with the rank
# alone, so lora_alpha ends equal to lora_rank.
from_config = layers.Embedding.from_config(layer.get_config())
from_config.build()
from_config_lora = {
    "lora_enabled": from_config.lora_enabled,
    "lora_rank": from_config.lora_rank,
    "lora_alpha": from_config.lora_alpha,
    "weights": [v.name for v in from_config.weights],
}

errors = {}
try:
    layers.Embedding(5, 3).enable_lora(2)
except ValueError as e:
    errors["unbuilt"] = str(e)
try:
    layer.enable_lora(2)
except ValueError as e:
    errors["again"] = str(e)
try:
    c = layers.Embedding(5, 3, embeddings_constraint="max_norm")
    c.build()
    c.enable_lora(2)
except ValueError as e:
    errors["constraint"] = str(e)

# Two SGD steps of Embedding(LoRA) -> GlobalAveragePooling1D -> Dense(1) with MSE.
KERNEL = np.array([[0.5], [-0.25], [0.75]], dtype=np.float32)
BIAS = np.array([0.1], dtype=np.float32)
Y = np.array([[0.3], [-0.4]], dtype=np.float32)
model = keras.Sequential(
    [keras.Input((3,), dtype="int32"), layers.Embedding(5, 3), layers.GlobalAveragePooling1D(), layers.Dense(1)]
)
emb = model.layers[0]
emb.embeddings.assign(E)
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
            "embedding_weights": [np.asarray(v).tolist() for v in emb.get_weights()],
            "dense": [np.asarray(v).tolist() for v in model.layers[2].get_weights()],
        }
    )

json.dump(
    {
        "kernel": KERNEL.tolist(),
        "bias": BIAS.tolist(),
        "y": Y.tolist(),
        "steps": steps,
        "keras_version": keras.__version__,
        "embeddings": E.tolist(),
        "lora_a": A.tolist(),
        "lora_b": B.tolist(),
        "rank": RANK,
        "alpha": ALPHA,
        "ids": IDS.tolist(),
        "output": out.tolist(),
        "weight": W.tolist(),
        "grad_a": np.asarray(grad_a).tolist(),
        "grad_b": np.asarray(grad_b).tolist(),
        "get_weights": [np.asarray(v).tolist() for v in layer.get_weights()],
        "saved": saved,
        "loaded_into_lora": loaded,
        "config_lora": {k: layer.get_config().get(k) for k in ("lora_rank", "lora_alpha")},
        "from_config_lora": from_config_lora,
        "errors": errors,
    },
    open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras3_lora.json"), "w"),
    indent=1,
)
