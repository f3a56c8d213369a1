"""Writes the NumPy fixtures of tests/io_npy.rs with the real NumPy (run once; the outputs
are committed, so the tests need no Python). `python3 make_fixtures.py` in this folder."""
import numpy as np
from safetensors.numpy import save_file

table = (np.arange(12, dtype=np.float32).reshape(4, 3) - 5.5) / 4
np.save("table_f32.npy", table)
np.save("table_f64.npy", table.astype(np.float64) + 1e-9)
np.save("table_fortran.npy", np.asfortranarray(table))
np.save("table_big_endian.npy", table.astype(">f4"))
np.save("ids_int64.npy", np.arange(6, dtype=np.int64))
np.save("vector_f32.npy", np.array([1.5, -2.5], dtype=np.float32))
np.savez("weights.npz", **{"embedding/embeddings": table, "dense/kernel": np.ones((3, 1), np.float32), "dense/bias": np.zeros(1, np.float32)})
np.savez_compressed("compressed.npz", table=table, other=np.full((2, 2), 7.0, np.float32))
save_file({"embed_tokens.weight": table, "norm.weight": np.ones(3, np.float32),
           "f16": table.astype(np.float16), "ids": np.arange(4, dtype=np.int64)}, "model.safetensors")
