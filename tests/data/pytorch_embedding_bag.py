"""Reference vectors for ndkeras' EmbeddingBag and SparseAdam, from PyTorch on CPU.

Writes pytorch_embedding_bag.json beside this file:

- "cases": nn.EmbeddingBag outputs and dense table gradients (sparse=False) for every mode,
  2-D and offsets inputs, include_last_offset, per_sample_weights, padding_idx (positive and
  negative), empty and all-padding bags, ties in max mode and repeated ids. The loss is
  sum(output * grad_output), so the table gradient is the backward of grad_output.
- "errors": the messages PyTorch raises for bad offsets and arguments (for reference).
- "sparse_adam": a few torch.optim.SparseAdam steps on nn.EmbeddingBag(sparse=True) and
  nn.Embedding(sparse=True) with repeated ids, minimising F.mse_loss(output, target) (mean
  over all elements, which is Keras' mean_squared_error for these shapes); the table after
  every step.

Run: python3 -m venv /tmp/pt && /tmp/pt/bin/pip install torch
     /tmp/pt/bin/python -P tests/data/pytorch_embedding_bag.py
(-P: tests/data/numpy, a folder of test files, would otherwise shadow the numpy package.)
"""

import json
import pathlib

import torch
import torch.nn.functional as F

torch.manual_seed(20261201)
NUM, DIM = 7, 4


def tolist(t):
    return t.detach().to(torch.float64).tolist()


def base_table():
    table = torch.randn(NUM, DIM, dtype=torch.float32)
    # Ties for max mode: row 5 repeats row 2 in columns 0 and 1, row 6 repeats row 3 whole.
    table[5, :2] = table[2, :2]
    table[6] = table[3]
    return table


TABLE = base_table()


def case(name, mode, ids, offsets=None, include_last_offset=False, psw=None, padding_idx=None):
    bag = torch.nn.EmbeddingBag.from_pretrained(
        TABLE.clone(),
        freeze=False,
        mode=mode,
        include_last_offset=include_last_offset,
        padding_idx=padding_idx,
        sparse=False,
    )
    ids_t = torch.tensor(ids, dtype=torch.int64)
    offsets_t = None if offsets is None else torch.tensor(offsets, dtype=torch.int64)
    psw_t = None if psw is None else torch.tensor(psw, dtype=torch.float32)
    out = bag(ids_t, offsets_t, per_sample_weights=psw_t)
    grad_output = torch.randn(out.shape, dtype=torch.float32)
    (out * grad_output).sum().backward()
    return {
        "name": name,
        "mode": mode,
        "ids": ids,
        "offsets": offsets,
        "include_last_offset": include_last_offset,
        "per_sample_weights": psw,
        "padding_idx": padding_idx,
        "output": tolist(out),
        "grad_output": tolist(grad_output),
        "table_gradient": tolist(bag.weight.grad),
    }


cases = []
two_d = [[1, 2, 4], [3, 3, 0], [6, 1, 1]]
for mode in ("sum", "mean", "max"):
    cases.append(case(f"{mode} 2-D", mode, two_d))
    # Bags: [1 2], [] (empty), [4 4 0], [5], [] (empty at the end).
    cases.append(case(f"{mode} offsets with empty bags", mode, [1, 2, 4, 4, 0, 5], [0, 2, 2, 5, 6]))
    cases.append(
        case(f"{mode} include_last_offset", mode, [3, 1, 2, 2, 6], [0, 1, 1, 5], include_last_offset=True)
    )
    cases.append(case(f"{mode} padding_idx 0, 2-D with an all-padding bag", mode, [[1, 0, 2], [0, 0, 0], [0, 4, 4]], padding_idx=0))
    cases.append(case(f"{mode} padding_idx -1 with offsets", mode, [6, 1, 6, 6, 2, 3], [0, 3, 4], padding_idx=-1))
cases.append(case("max ties: row 2 before row 5", "max", [[2, 5], [5, 2], [3, 6], [6, 3]]))
cases.append(case("max ties with offsets and repeated ids", "max", [2, 5, 2, 3, 6, 3], [0, 3]))
cases.append(case("sum per_sample_weights with offsets", "sum", [1, 2, 2, 4, 0], [0, 3, 3], psw=[0.5, -1.25, 2.0, 0.0, 3.5]))
cases.append(case("sum per_sample_weights 2-D", "sum", [[1, 1], [4, 2]], psw=[[1.5, -0.5], [2.0, 0.25]]))
cases.append(
    case(
        "sum per_sample_weights with padding_idx 2",
        "sum",
        [[2, 1, 3], [2, 2, 2]],
        psw=[[4.0, 0.5, -1.0], [1.0, 1.0, 1.0]],
        padding_idx=2,
    )
)
cases.append(
    case(
        "sum per_sample_weights include_last_offset",
        "sum",
        [0, 3, 6, 1],
        [0, 2, 4],
        include_last_offset=True,
        psw=[1.0, 2.0, 3.0, 4.0],
    )
)


def error_of(call):
    try:
        call()
    except Exception as e:  # noqa: BLE001 - we record whatever PyTorch raises
        return f"{type(e).__name__}: {e}"
    return None


ids = torch.tensor([1, 2, 0, 3])
errors = {
    "offsets[0] not 0": error_of(lambda: F.embedding_bag(ids, TABLE, torch.tensor([1, 2]))),
    "offsets past the end": error_of(lambda: F.embedding_bag(ids, TABLE, torch.tensor([0, 5]))),
    "decreasing offsets": error_of(lambda: F.embedding_bag(ids, TABLE, torch.tensor([0, 3, 1]), mode="sum")),
    "include_last_offset without offsets": error_of(
        lambda: F.embedding_bag(ids, TABLE, torch.tensor([], dtype=torch.int64), include_last_offset=True)
    ),
    "per_sample_weights in mean mode": error_of(
        lambda: F.embedding_bag(ids, TABLE, torch.tensor([0]), mode="mean", per_sample_weights=torch.ones(4))
    ),
    "per_sample_weights of another shape": error_of(
        lambda: F.embedding_bag(ids, TABLE, torch.tensor([0]), mode="sum", per_sample_weights=torch.ones(3))
    ),
    "2-D input with offsets": error_of(lambda: F.embedding_bag(ids.view(2, 2), TABLE, torch.tensor([0]))),
    "1-D input without offsets": error_of(lambda: F.embedding_bag(ids, TABLE)),
    "id out of range": error_of(lambda: F.embedding_bag(torch.tensor([1, 7]), TABLE, torch.tensor([0]))),
    "padding_idx out of range": error_of(lambda: torch.nn.EmbeddingBag(NUM, DIM, padding_idx=NUM)),
}


def sparse_adam_run(name, module, batches, lr=1e-3):
    """Steps of SparseAdam on `module` (built from TABLE), minimising mse against targets."""
    optimizer = torch.optim.SparseAdam(module.parameters(), lr=lr)
    steps = []
    for ids in batches:
        ids_t = torch.tensor(ids, dtype=torch.int64)
        with torch.no_grad():
            shape = module(ids_t).shape
        target = torch.randn(shape, dtype=torch.float32)
        optimizer.zero_grad()
        loss = F.mse_loss(module(ids_t), target)
        loss.backward()
        optimizer.step()
        steps.append({"ids": ids, "target": tolist(target), "loss": loss.item(), "table": tolist(module.weight)})
    return {"name": name, "learning_rate": lr, "initial_table": tolist(TABLE), "steps": steps}


bag_batches = [[[1, 1, 2], [4, 1, 0]], [[2, 2, 2], [5, 6, 1]], [[1, 3, 3], [0, 0, 4]], [[6, 6, 5], [1, 2, 3]]]
sparse_adam = [
    sparse_adam_run(
        "EmbeddingBag mean",
        torch.nn.EmbeddingBag.from_pretrained(TABLE.clone(), freeze=False, mode="mean", sparse=True),
        bag_batches,
    ),
    sparse_adam_run(
        "EmbeddingBag sum, padding_idx 0, lr 0.1",
        torch.nn.EmbeddingBag.from_pretrained(TABLE.clone(), freeze=False, mode="sum", sparse=True, padding_idx=0),
        bag_batches,
        lr=0.1,
    ),
    sparse_adam_run(
        "Embedding, lr 0.05",
        torch.nn.Embedding.from_pretrained(TABLE.clone(), freeze=False, sparse=True),
        [[[3, 3, 1]], [[1, 2, 2]], [[5, 3, 3]]],
        lr=0.05,
    ),
]

out = {
    "generator": "tests/data/pytorch_embedding_bag.py",
    "torch_version": torch.__version__,
    "num_embeddings": NUM,
    "embedding_dim": DIM,
    "table": tolist(TABLE),
    "cases": cases,
    "errors": errors,
    "sparse_adam": sparse_adam,
}
path = pathlib.Path(__file__).with_suffix(".json")
path.write_text(json.dumps(out, indent=1) + "\n")
print(f"wrote {path} ({len(cases)} cases)")
