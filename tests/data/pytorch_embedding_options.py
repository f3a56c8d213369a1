"""Reference vectors for ndkeras' PyTorch `nn.Embedding` options (padding_idx, max_norm,
norm_type, scale_grad_by_freq), from a real PyTorch run (CPU):

- outputs and renormalised tables: `F.embedding(ids, weight, max_norm=m, norm_type=p)` on a
  copy of the table (PyTorch's `embedding_renorm_` rescales, in place, each distinct row read
  whose norm is strictly above `max_norm`, by `max_norm / (norm + 1e-7)`);
- gradients: `nn.Embedding(..., padding_idx=p, scale_grad_by_freq=s)` (dense), backward of
  `(out * grad_output).sum()`; positions holding `padding_idx` give no gradient, and with
  `scale_grad_by_freq` each position's gradient is divided by its id's count in the input;
- an input made only of the padding id gives an all-zero gradient.

Run (the PyTorch wheel of PyPI works on a CPU):
     python3 -m venv /tmp/pt && /tmp/pt/bin/pip install torch numpy
     /tmp/pt/bin/python -P tests/data/pytorch_embedding_options.py
(-P: tests/data/numpy, a folder of test files, would otherwise shadow the numpy package.)
"""

import json
import pathlib

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)

f32 = np.float32
NUM, DIM = 6, 3
rng = np.random.default_rng(20261201)
TABLE = (rng.normal(size=(NUM, DIM)) * 1.5).astype(f32)
# Row 1 has norm exactly 1 in every p: strict `>` leaves it alone at max_norm 1.
TABLE[1] = np.array([1.0, 0.0, 0.0], dtype=f32)
# Row 4 is the padding row in the gradient cases; a non-zero value shows the output keeps it.
IDS = np.array([[1, 4, 1, 0], [5, 4, 4, 2]], dtype=np.int64)
GRAD_OUT = rng.normal(size=IDS.shape + (DIM,)).astype(f32)


def renorm(table, ids, max_norm, p):
    """The table after `F.embedding(ids, table, max_norm, norm_type)`, and its output."""
    weight = torch.tensor(table)
    with torch.no_grad():
        output = F.embedding(torch.tensor(ids), weight, max_norm=max_norm, norm_type=p)
    return weight.numpy(), output.numpy()


def dense_backward(ids, grad, padding_idx, scale_grad_by_freq):
    """The table's gradient for `(embedding(ids) * grad).sum()`."""
    layer = torch.nn.Embedding(
        NUM, DIM, padding_idx=padding_idx, scale_grad_by_freq=scale_grad_by_freq
    )
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(TABLE))
    out = layer(torch.tensor(ids))
    (out * torch.tensor(grad)).sum().backward()
    return layer.weight.grad.numpy()


def tolist(a):
    return np.asarray(a, dtype=np.float64).tolist()


renorm_cases = []
for max_norm, p in [(1.0, 2.0), (1.0, 1.0), (0.5, float("inf")), (1.25, 3.0), (100.0, 2.0)]:
    after, output = renorm(TABLE, IDS, max_norm, p)
    renorm_cases.append({
        "max_norm": max_norm,
        "norm_type": "inf" if p == float("inf") else p,
        "table_after": tolist(after),
        "output": tolist(output),
    })

grad_cases = []
for padding_idx, scale in [(None, False), (4, False), (-2, False), (None, True), (4, True)]:
    grad_cases.append({
        "padding_idx": padding_idx,
        "scale_grad_by_freq": scale,
        "grad_weight": tolist(dense_backward(IDS, GRAD_OUT, padding_idx, scale)),
    })

# All positions padding: an empty gradient (pytorch/pytorch#6211).
ALL_PAD = np.array([[3, 3]], dtype=np.int64)

out = {
    "generator": "tests/data/pytorch_embedding_options.py",
    "source": "a PyTorch run (CPU)",
    "torch_version": torch.__version__,
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
