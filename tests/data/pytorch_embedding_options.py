"""Reference vectors for ndkeras' PyTorch `nn.Embedding` options (padding_idx, max_norm,
norm_type, scale_grad_by_freq).

NOT A PYTORCH RUN. The CPU PyTorch wheel could not be installed where this was generated (its
package index was unreachable), so the values are derived with NumPy, in float32 where
PyTorch computes in float32, from PyTorch's documented formulas:

- F.embedding (torch/nn/functional.py): output = weight[input]; with max_norm, first
  torch.embedding_renorm_(weight, input, max_norm, norm_type) under no_grad.
- embedding_renorm_ (aten/src/ATen/native/Embedding.cpp): for each distinct id of the input,
  in sorted order, norm = weight[k].norm(norm_type) (a float32, read as a double);
  if norm > max_norm (strict): weight[k] *= max_norm / (norm + 1e-7) (the scale computed in
  double, the float32 row multiplied by it as float32). Here the norm is accumulated in
  float64 and rounded to float32 (PyTorch accumulates in float32: the last bits can differ,
  which the tests' rtol of 1e-6 covers).
- embedding_dense_backward_cpu (Embedding.cpp): grad_weight[k] += scale * grad[i] for each
  position i, in order, whose id k != padding_idx; scale = 1 / count(k in the whole input)
  with scale_grad_by_freq, else 1.
- padding_idx: -num_embeddings <= p < num_embeddings, negative p becomes num_embeddings + p
  (torch/nn/modules/sparse.py); the forward output at p is still weight[p].

Run: python3 -m venv /tmp/np && /tmp/np/bin/pip install numpy
     /tmp/np/bin/python -P tests/data/pytorch_embedding_options.py
(-P: tests/data/numpy, a folder of test files, would otherwise shadow the numpy package.)
"""

import json
import pathlib

import numpy as np

f32 = np.float32
NUM, DIM = 6, 3
rng = np.random.default_rng(20261201)
TABLE = (rng.normal(size=(NUM, DIM)) * 1.5).astype(f32)
# Row 1 has norm exactly 1 in every p: strict `>` leaves it alone at max_norm 1.
TABLE[1] = np.array([1.0, 0.0, 0.0], dtype=f32)
# Row 4 is the padding row in the gradient cases; a non-zero value shows the output keeps it.
IDS = np.array([[1, 4, 1, 0], [5, 4, 4, 2]], dtype=np.int64)
GRAD_OUT = rng.normal(size=IDS.shape + (DIM,)).astype(f32)


def norm(row, p):
    a = np.abs(row.astype(np.float64))
    if p == float("inf"):
        n = a.max()
    elif p == 1.0:
        n = a.sum()
    elif p == 2.0:
        n = np.sqrt((a * a).sum())
    else:
        n = (a ** p).sum() ** (1.0 / p)
    return float(f32(n))


def renorm(table, ids, max_norm, p):
    table = table.copy()
    for k in np.unique(ids):
        n = norm(table[k], p)
        if n > max_norm:
            scale = f32(max_norm / (n + 1e-7))
            table[k] = (table[k] * scale).astype(f32)
    return table


def dense_backward(ids, grad, padding_idx, scale_grad_by_freq):
    flat = ids.reshape(-1)
    g = grad.reshape(len(flat), DIM)
    counts = np.bincount(flat, minlength=NUM)
    out = np.zeros((NUM, DIM), dtype=f32)
    for i, k in enumerate(flat):
        if padding_idx is not None and k == padding_idx:
            continue
        scale = f32(1.0 / counts[k]) if scale_grad_by_freq else f32(1.0)
        out[k] = (out[k] + scale * g[i]).astype(f32)
    return out


def tolist(a):
    return np.asarray(a, dtype=np.float64).tolist()


renorm_cases = []
for max_norm, p in [(1.0, 2.0), (1.0, 1.0), (0.5, float("inf")), (1.25, 3.0), (100.0, 2.0)]:
    after = renorm(TABLE, IDS, max_norm, p)
    renorm_cases.append({
        "max_norm": max_norm,
        "norm_type": "inf" if p == float("inf") else p,
        "table_after": tolist(after),
        "output": tolist(after[IDS]),
    })

grad_cases = []
for padding_idx, scale in [(None, False), (4, False), (-2, False), (None, True), (4, True)]:
    resolved = None if padding_idx is None else padding_idx % NUM
    grad_cases.append({
        "padding_idx": padding_idx,
        "scale_grad_by_freq": scale,
        "grad_weight": tolist(dense_backward(IDS, GRAD_OUT, resolved, scale)),
    })

# All positions padding: an empty gradient (pytorch/pytorch#6211).
ALL_PAD = np.array([[3, 3]], dtype=np.int64)

out = {
    "generator": "tests/data/pytorch_embedding_options.py",
    "source": "formulas from torch/nn/functional.py, not a PyTorch run",
    "numpy_version": np.__version__,
    "num_embeddings": NUM,
    "embedding_dim": DIM,
    "table": tolist(TABLE),
    "ids": IDS.tolist(),
    "output": tolist(TABLE[IDS]),
    "grad_output": tolist(GRAD_OUT),
    "renorm": renorm_cases,
    "gradients": grad_cases,
    "all_padding": {
        "ids": ALL_PAD.tolist(),
        "padding_idx": 3,
        "grad_weight": tolist(dense_backward(ALL_PAD, np.ones((1, 2, DIM), dtype=f32), 3, False)),
    },
}
path = pathlib.Path(__file__).with_suffix(".json")
path.write_text(json.dumps(out, indent=1) + "\n")
print("wrote", path)
