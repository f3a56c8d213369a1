"""Writes keras_functional.json: reference values from the real tf_keras 2.21 for the
functional API of issue 8 (several inputs and outputs, shared layers, merge layers, masks,
Keras 2 JSON and summaries).

    python3 -m venv /tmp/tfk
    /tmp/tfk/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0
    /tmp/tfk/bin/python tests/data/keras_functional.py

Deterministic: every weight is set explicitly (dyadic values, exact in float32) and written
into the JSON, fit() runs with shuffle=False on one CPU thread with op determinism, and
keras.backend.clear_session() starts every case so automatic names restart at `embedding`,
`dense`, `input_1`, `model`. Rerunning gives a byte-identical file.

Tensors are {dtype, shape, data}: data flattened row-major (C order), as in the other files of
this folder. Floats are float32 values as Keras computed them, written with Python's shortest
round-trip repr (parse as f64, cast to f32: exact).

What tf_keras 2.21 does here (checked against a float64 NumPy re-implementation, which
matches every weight after every epoch within 2e-7 once these are followed):
- The gradients of all lookups of a shared Embedding arrive as one IndexedSlices; the
  optimizer sums duplicate rows (unsorted_segment_sum) before the update.
- SGD(momentum) with a row-sparse gradient: m = 0.9 m for every row, m[rows] -= lr g, then
  table += m for every row: a row looked up once keeps moving, a row never looked up stays.
- RMSprop: v = rho v for every row, v[rows] += (1 - rho) g^2, then only the looked-up rows
  move by lr g / sqrt(v + epsilon) (epsilon inside the square root).
- Adam: alpha = lr sqrt(1 - beta_2^t) / (1 - beta_1^t) with float32 powers of float32 betas,
  but the slots use (1 - beta) rounded from float64 (0.001, not 1 - 0.999f = 0.00099998713):
  each step is about 6.4e-6 (relative) shorter than the same formula in one precision.
- binary_crossentropy after a sigmoid (and sparse_categorical_crossentropy after a softmax)
  is computed from the logits: no clipping to [1e-7, 1 - 1e-7].
- With oneDNN on (TensorFlow's default on x86) values move by up to 3e-5 relative where they
  are near zero; tests want an absolute tolerance next to rtol 1e-5.
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # plain Eigen kernels

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.threading.set_inter_op_parallelism_threads(1)
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.experimental.enable_op_determinism()

import tf_keras as keras  # noqa: E402
from tf_keras.src.saving.legacy.saved_model import json_utils  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_functional.json")


# ----- helpers --------------------------------------------------------------------------
def tensor(a, **extra):
    a = np.asarray(a)
    if a.dtype == np.bool_:
        dtype, data = "bool", [bool(v) for v in a.ravel()]
    elif np.issubdtype(a.dtype, np.integer):
        dtype, data = str(a.dtype), [int(v) for v in a.ravel()]
    else:
        dtype, data = "float32", [float(v) for v in a.astype(np.float32).ravel()]
    return {**extra, "dtype": dtype, "shape": list(a.shape), "data": data}


def plain(value):
    """A config as JSON values, the way tf_keras' own to_json encodes it."""
    return json.loads(json.dumps(value, default=json_utils.get_json_type))


def weight_name(variable):
    name = variable.name
    return name[:-2] if name.endswith(":0") else name


def weights_of(model):
    return [
        tensor(w.numpy(), name=weight_name(w), trainable=bool(w.trainable))
        for w in model.weights
    ]


def values(rows, seed, scale=1.0):
    """Deterministic dyadic values (multiples of 1/256) in [-scale/2, scale/2]."""
    rng = np.random.default_rng(seed)
    v = rng.uniform(-0.5 * scale, 0.5 * scale, size=rows)
    return (np.round(v * 256) / 256).astype(np.float32)


def summary_text(model):
    lines = []
    model.summary(print_fn=lambda line, *a, **k: lines.append(line))
    return "\n".join(lines)


def fresh():
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)


def optimizer_variables(optimizer):
    return [tensor(v.numpy(), name=weight_name(v)) for v in optimizer.variables()]


class Graph:
    """Builds a tf_keras functional model and records it in plain fields at the same time.

    `layers` are in creation order (so automatic names come out the same when a test creates
    them in this order) with the constructor arguments used; `calls` are the nodes in call
    order: layer name, the ids of its input tensors (an input's id is its name) and the id of
    its output tensor. A layer named in several calls is one shared object.
    """

    def __init__(self):
        self.inputs, self.layer_specs, self.calls = [], [], []
        self.tensors = {}

    def input(self, name, shape, dtype):
        self.tensors[name] = keras.Input(shape=shape, dtype=dtype, name=name)
        self.inputs.append({"name": name, "shape": [None, *shape], "dtype": dtype})
        return name

    def layer(self, class_name, **args):
        layer = getattr(keras.layers, class_name)(**args)
        self.layer_specs.append(
            {"name": layer.name, "class_name": class_name, "args": plain(args)}
        )
        return layer

    def call(self, layer, inputs, out):
        if isinstance(inputs, list):
            result = layer([self.tensors[i] for i in inputs])
        else:
            result = layer(self.tensors[inputs])
            inputs = [inputs]
        self.tensors[out] = result
        self.calls.append({"layer": layer.name, "inputs": inputs, "output": out})
        return out

    def model(self, outputs):
        model = keras.Model(
            inputs=[self.tensors[i["name"]] for i in self.inputs],
            outputs=[self.tensors[o] for o in outputs],
        )
        return model, {
            "kind": "functional",
            "name": model.name,
            "inputs": self.inputs,
            "layers": self.layer_specs,
            "calls": self.calls,
            "outputs": outputs,
            "output_names": list(model.output_names),
            "model_layers": [layer.name for layer in model.layers],
        }


class EpochWeights(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(weights_of(self.model))


def as_list(a):
    return a if isinstance(a, list) else [a]


def train_case(
    case_id, description, model, description_fields, initial, x, y, compile_args, fit_args,
    x_extra,
):
    """Sets `initial` (one array per entry of model.weights), compiles, fits, records."""
    model.set_weights(initial)
    model.compile(**compile_args)
    names = [i.name.split(":")[0] for i in model.inputs]
    predict_initial = as_list(model.predict(x, batch_size=fit_args["batch_size"], verbose=0))
    initial_weights = weights_of(model)
    recorder = EpochWeights()
    history = model.fit(
        x, y, shuffle=False, verbose=0, callbacks=[recorder], **fit_args
    )
    evaluate = model.evaluate(
        x, y, batch_size=fit_args["batch_size"], verbose=0, return_dict=True
    )
    predict_train = as_list(model.predict(x, batch_size=fit_args["batch_size"], verbose=0))
    predict_extra = as_list(model.predict(x_extra, verbose=0))
    optimizer = model.optimizer
    losses = compile_args["loss"]
    to_json = model.to_json()
    roundtrip = keras.models.model_from_json(to_json).to_json()
    return {
        "id": case_id,
        "description": description,
        "model": description_fields,
        "initial_weights": initial_weights,
        "x": [tensor(a, input=name) for a, name in zip(x, names)],
        "y": [tensor(a, output=name) for a, name in zip(y, model.output_names)],
        "x_extra": [tensor(a, input=name) for a, name in zip(x_extra, names)],
        "compile": {
            "optimizer": {
                "class_name": type(optimizer).__name__,
                "config": plain(optimizer.get_config()),
            },
            "loss": losses,
            "loss_weights": compile_args.get("loss_weights"),
        },
        "fit": {
            **fit_args,
            "shuffle": False,
            "samples": int(len(x[0])),
            "steps_per_epoch": int(-(-len(x[0]) // fit_args["batch_size"])),
        },
        "expected": {
            "predict_initial": [
                tensor(p, output=o) for p, o in zip(predict_initial, model.output_names)
            ],
            "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
            "weights_per_epoch": recorder.epochs,
            "optimizer_variables": optimizer_variables(optimizer),
            "evaluate": {k: float(v) for k, v in evaluate.items()},
            "predict_train": [
                tensor(p, output=o) for p, o in zip(predict_train, model.output_names)
            ],
            "predict_extra": [
                tensor(p, output=o) for p, o in zip(predict_extra, model.output_names)
            ],
            "to_json": to_json,
            "to_json_roundtrip_identical": roundtrip == to_json,
            "get_config": plain(model.get_config()),
            "summary": summary_text(model),
        },
    }


# ----- 1, 2: the two-input dot-product recommender --------------------------------------
USERS = np.array([[0], [1], [2], [3], [4], [5], [6], [0], [1], [2], [3], [4]], np.int32)
ITEMS = np.array([[0], [1], [2], [3], [4], [0], [1], [2], [3], [4], [0], [1]], np.int32)
LIKED = np.array([[1], [0], [1], [1], [0], [0], [1], [0], [1], [0], [1], [1]], np.float32)
USERS_EXTRA = np.array([[6], [0], [3]], np.int32)
ITEMS_EXTRA = np.array([[4], [4], [2]], np.int32)


def recommender(normalize):
    fresh()
    g = Graph()
    g.input("user", (1,), "int32")
    g.input("item", (1,), "int32")
    user_table = g.layer("Embedding", input_dim=7, output_dim=4)
    item_table = g.layer("Embedding", input_dim=5, output_dim=4)
    g.call(user_table, "user", "user_rows")
    g.call(item_table, "item", "item_rows")
    g.call(g.layer("Flatten"), "user_rows", "user_vector")
    g.call(g.layer("Flatten"), "item_rows", "item_vector")
    dot_args = {"axes": 1, "normalize": True} if normalize else {"axes": 1}
    g.call(g.layer("Dot", **dot_args), ["user_vector", "item_vector"], "score")
    g.call(g.layer("Dense", units=1, activation="sigmoid"), "score", "liked")
    model, description = g.model(["liked"])
    initial = [
        values((7, 4), 1),
        values((5, 4), 2),
        np.array([[1.5]], np.float32),
        np.array([0.125], np.float32),
    ]
    if normalize:
        return train_case(
            "recommender_dot_cosine",
            "As recommender_dot with Dot(axes=1, normalize=True) (cosine similarity of the "
            "two rows); the forward pass is the point (predict before and after one epoch).",
            model, description, initial, [USERS, ITEMS], [LIKED],
            {
                "optimizer": keras.optimizers.Adam(learning_rate=0.05),
                "loss": "binary_crossentropy",
            },
            {"epochs": 1, "batch_size": 4},
            [USERS_EXTRA, ITEMS_EXTRA],
        )
    return train_case(
        "recommender_dot",
        "Two-input recommender: user and item ids (shape (1,), int32) -> Embedding(7, 4) "
        "and Embedding(5, 4) -> Flatten -> Dot(axes=1) -> Dense(1, sigmoid); binary "
        "cross-entropy, Adam(0.05), 3 epochs of 3 batches of 4.",
        model, description, initial, [USERS, ITEMS], [LIKED],
        {
            "optimizer": keras.optimizers.Adam(learning_rate=0.05),
            "loss": "binary_crossentropy",
        },
        {"epochs": 3, "batch_size": 4},
        [USERS_EXTRA, ITEMS_EXTRA],
    )


# ----- 3: three id features, two sharing one table --------------------------------------
def ranker():
    fresh()
    g = Graph()
    for name in ("a", "b", "c"):
        g.input(name, (2,), "int32")
    shared = g.layer("Embedding", input_dim=10, output_dim=3)
    own = g.layer("Embedding", input_dim=6, output_dim=3)
    g.call(shared, "a", "a_rows")
    g.call(shared, "b", "b_rows")
    g.call(own, "c", "c_rows")
    for name in ("a", "b", "c"):
        g.call(g.layer("GlobalAveragePooling1D"), f"{name}_rows", f"{name}_mean")
    g.call(g.layer("Concatenate"), ["a_mean", "b_mean", "c_mean"], "features")
    g.call(g.layer("Dense", units=1), "features", "score")
    model, description = g.model(["score"])
    a = np.array(
        [[1, 2], [3, 3], [0, 9], [4, 5], [7, 1], [2, 8], [6, 6], [9, 0], [5, 4], [1, 7],
         [8, 3], [2, 2]], np.int32)
    b = np.array(
        [[2, 1], [5, 0], [9, 9], [4, 7], [1, 1], [3, 6], [0, 2], [8, 8], [5, 3], [7, 4],
         [6, 0], [2, 9]], np.int32)
    c = np.array(
        [[0, 1], [2, 3], [4, 5], [1, 1], [3, 0], [5, 2], [2, 4], [0, 0], [1, 5], [3, 3],
         [4, 2], [5, 1]], np.int32)
    y = np.array(
        [[0.5], [-1.0], [1.5], [0.25], [0.0], [2.0], [-0.5], [1.0], [0.75], [-1.25], [0.5],
         [1.25]], np.float32)
    initial = [
        values((10, 3), 3),
        values((6, 3), 4),
        values((9, 1), 5, scale=2.0),
        np.array([0.0625], np.float32),
    ]
    return train_case(
        "ranker_shared_table",
        "Three id inputs a, b, c of shape (2,); a and b share one Embedding(10, 3) object, "
        "c has its own Embedding(6, 3); GlobalAveragePooling1D per branch (three layers); "
        "Concatenate -> Dense(1); mse, SGD(0.1), 3 epochs of 3 batches of 4.",
        model, description, initial, [a, b, c], [y],
        {"optimizer": keras.optimizers.SGD(learning_rate=0.1), "loss": "mse"},
        {"epochs": 3, "batch_size": 4},
        [np.array([[9, 9], [0, 1]], np.int32), np.array([[3, 4], [9, 0]], np.int32),
         np.array([[5, 5], [0, 2]], np.int32)],
    )


# ----- 4: one table on two inputs, SGD with momentum ------------------------------------
def shared_momentum():
    fresh()
    g = Graph()
    g.input("left", (2,), "int32")
    g.input("right", (2,), "int32")
    table = g.layer("Embedding", input_dim=8, output_dim=3)
    g.call(table, "left", "left_rows")
    g.call(table, "right", "right_rows")
    g.call(g.layer("Flatten"), "left_rows", "left_flat")
    g.call(g.layer("Flatten"), "right_rows", "right_flat")
    g.call(g.layer("Add"), ["left_flat", "right_flat"], "sum")
    g.call(g.layer("Dense", units=1), "sum", "score")
    model, description = g.model(["score"])
    # Row 6 appears only in the first batch, row 7 never; in several samples one id is on
    # both inputs (and twice on one), so the two lookups' sparse gradients overlap.
    left = np.array(
        [[1, 2], [3, 1], [6, 0], [2, 2], [4, 5], [0, 3], [1, 4], [5, 2], [3, 3]], np.int32)
    right = np.array(
        [[2, 1], [1, 6], [0, 6], [5, 4], [2, 0], [3, 3], [4, 1], [2, 5], [0, 1]], np.int32)
    y = np.array([[1.0], [-0.5], [0.25], [2.0], [0.0], [-1.0], [0.5], [1.5], [-0.25]],
                 np.float32)
    initial = [
        values((8, 3), 6),
        values((6, 1), 7, scale=2.0),
        np.array([-0.125], np.float32),
    ]
    return train_case(
        "shared_embedding_momentum",
        "One Embedding(8, 3) object on two inputs left and right (shape (2,)); Flatten each; "
        "Add -> Dense(1); mse, SGD(0.1, momentum=0.9), 4 epochs of 3 batches of 3. Row 6 "
        "is looked up only in the first batch and row 7 never.",
        model, description, initial, [left, right], [y],
        {
            "optimizer": keras.optimizers.SGD(learning_rate=0.1, momentum=0.9),
            "loss": "mse",
        },
        {"epochs": 4, "batch_size": 3},
        [np.array([[7, 6], [1, 1]], np.int32), np.array([[6, 7], [0, 2]], np.int32)],
    )


# ----- 5: two outputs --------------------------------------------------------------------
def two_outputs():
    fresh()
    g = Graph()
    g.input("ids", (3,), "int32")
    g.call(g.layer("Embedding", input_dim=9, output_dim=4, mask_zero=True), "ids", "rows")
    g.call(g.layer("GlobalAveragePooling1D"), "rows", "mean")
    g.call(g.layer("Dense", units=1, activation="sigmoid", name="click"), "mean", "click")
    g.call(
        g.layer("Dense", units=3, activation="softmax", name="category"), "mean", "category"
    )
    model, description = g.model(["click", "category"])
    ids = np.array(
        [[1, 2, 0], [3, 0, 5], [8, 8, 8], [4, 0, 0], [2, 6, 7], [5, 1, 0], [7, 0, 3],
         [6, 6, 0], [1, 1, 1], [2, 3, 4], [8, 0, 0], [5, 7, 2]], np.int32)
    click = np.array([[1], [0], [1], [0], [1], [1], [0], [0], [1], [0], [1], [0]],
                     np.float32)
    category = np.array([0, 2, 1, 1, 0, 2, 2, 1, 0, 1, 2, 0], np.int32)
    initial = [
        values((9, 4), 8),
        values((4, 1), 9, scale=2.0),
        np.array([0.0], np.float32),
        values((4, 3), 10, scale=2.0),
        np.array([0.0625, -0.0625, 0.0], np.float32),
    ]
    return train_case(
        "two_outputs_masked",
        "One id input (shape (3,), 0 is padding) -> Embedding(9, 4, mask_zero=True) -> "
        "GlobalAveragePooling1D (masked mean) -> Dense(1, sigmoid, name='click') and "
        "Dense(3, softmax, name='category'); loss [binary_crossentropy, "
        "sparse_categorical_crossentropy] with loss_weights [1.0, 0.5]; RMSprop(0.01), 3 "
        "epochs of 3 batches of 4.",
        model, description, initial, [ids], [click, category],
        {
            "optimizer": keras.optimizers.RMSprop(learning_rate=0.01),
            "loss": ["binary_crossentropy", "sparse_categorical_crossentropy"],
            "loss_weights": [1.0, 0.5],
        },
        {"epochs": 3, "batch_size": 4},
        [np.array([[0, 0, 4], [8, 1, 0]], np.int32)],
    )


# ----- 6: merge and shape layers forward, with masks ------------------------------------
def mask_value(t):
    mask = getattr(t, "_keras_mask", None)
    return None if mask is None else tensor(mask.numpy())


def forward(case_id, class_name, args, inputs, note=None):
    """Calls one layer eagerly on concrete float tensors (no masks)."""
    layer = getattr(keras.layers, class_name)(**args)
    tensors = [tf.constant(a) for a in inputs]
    case = {
        "id": case_id,
        "class_name": class_name,
        "args": plain(args),
        "inputs": [tensor(a) for a in inputs],
    }
    if note:
        case["note"] = note
    try:
        out = layer(tensors[0] if class_name == "Reshape" else tensors)
        case["output"] = tensor(out.numpy())
        case["raised"] = None
    except Exception as e:  # recorded, not hidden
        case["raised"] = {"type": type(e).__name__, "message": str(e).split("\n")[0]}
    case["config"] = plain(layer.get_config())
    return case


def masked_embeddings():
    """Embedding(mask_zero=True) outputs feeding Concatenate and Add, called eagerly."""
    fresh()
    cases = []
    ids_a = np.array([[1, 0, 3], [0, 2, 4]], np.int32)
    ids_b = np.array([[5, 2, 0], [0, 1, 0]], np.int32)
    ids_c = np.array([[3, 0], [4, 1]], np.int32)
    table_a, table_b, table_c = values((5, 2), 11), values((6, 3), 12), values((5, 2), 13)

    def run(case_id, note, tables, ids, merge, merge_args, extra=None):
        fresh()
        embeddings, outs = [], []
        for table, x in zip(tables, ids):
            layer = keras.layers.Embedding(table.shape[0], table.shape[1], mask_zero=True)
            layer.build((None, x.shape[1]))
            layer.set_weights([table])
            embeddings.append(
                {"input_dim": table.shape[0], "output_dim": table.shape[1],
                 "mask_zero": True, "embeddings": tensor(table), "ids": tensor(x)}
            )
            outs.append(layer(tf.constant(x)))
        if extra is not None:
            outs.append(tf.constant(extra))
        merged_layer = getattr(keras.layers, merge)(**merge_args)
        case = {
            "id": case_id,
            "note": note,
            "embeddings": embeddings,
            "unmasked_input": None if extra is None else tensor(extra),
            "embedding_outputs": [tensor(o.numpy()) for o in outs[: len(tables)]],
            "embedding_masks": [mask_value(o) for o in outs[: len(tables)]],
            "class_name": merge,
            "args": plain(merge_args),
        }
        try:
            merged = merged_layer(outs)
            case["output"] = tensor(merged.numpy())
            case["output_mask"] = mask_value(merged)
            computed = merged_layer.compute_mask(
                outs, [getattr(o, "_keras_mask", None) for o in outs]
            )
            case["compute_mask"] = None if computed is None else tensor(computed.numpy())
            case["raised"] = None
        except Exception as e:
            case["raised"] = {"type": type(e).__name__, "message": str(e).split("\n")[0]}
        case["config"] = plain(merged_layer.get_config())
        cases.append(case)

    run("concatenate_masked_last_axis",
        "Concatenate(axis=-1) of two masked lookups: features joined; mask = AND of masks",
        [table_a, table_b], [ids_a, ids_b], "Concatenate", {"axis": -1})
    run("concatenate_masked_time_axis",
        "Concatenate(axis=1) of two masked lookups: the masks are concatenated in time",
        [table_a, table_c], [ids_a, ids_c], "Concatenate", {"axis": 1})
    run("concatenate_masked_and_unmasked_last_axis",
        "Concatenate(axis=-1) of a masked lookup and an unmasked float input: the unmasked "
        "one counts as all true",
        [table_a], [ids_a], "Concatenate", {"axis": -1},
        extra=values((2, 3, 2), 14))
    run("concatenate_masked_and_unmasked_time_axis",
        "Concatenate(axis=1) of a masked lookup and an unmasked float input with 2 features: "
        "tf_keras raises, since it concatenates the expanded mask (2, 3, 1) with "
        "ones_like(input) (2, 2, 2)",
        [table_a], [ids_a], "Concatenate", {"axis": 1},
        extra=values((2, 2, 2), 15))
    run("add_masked",
        "Add of two masked lookups of the same shape: mask = AND of masks",
        [table_a, table_c], [ids_a, np.array([[2, 0, 0], [0, 4, 1]], np.int32)], "Add", {})
    run("average_masked_and_unmasked",
        "Average of a masked lookup and an unmasked float input",
        [table_a], [ids_a], "Average", {}, extra=values((2, 3, 2), 16))
    return cases


def merges():
    fresh()
    a, b, c = values((2, 3), 17, 4.0), values((2, 3), 18, 4.0), values((2, 3), 19, 4.0)
    cases = []
    for name in ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"):
        cases.append(forward(name.lower(), name, {}, [a, b]))
    for name in ("Add", "Multiply", "Average", "Maximum", "Minimum"):
        cases.append(forward(name.lower() + "_three", name, {}, [a, b, c]))
    cases.append(forward("concatenate_2d", "Concatenate", {"axis": -1}, [a, b]))
    cases.append(forward("concatenate_2d_axis0_is_batch", "Concatenate", {"axis": 0}, [a, b],
                         note="axis 0 is the batch axis"))
    x = values((2, 3, 4), 20, 2.0)
    cases.append(forward("reshape_2_6", "Reshape", {"target_shape": [2, 6]}, [x]))
    cases.append(forward("reshape_minus1_2", "Reshape", {"target_shape": [-1, 2]}, [x]))
    p, q = values((2, 3, 4), 21, 2.0), values((2, 5, 4), 22, 2.0)
    r = values((2, 3, 4), 23, 2.0)
    u, v = values((2, 4), 24, 2.0), values((2, 4), 25, 2.0)
    cases.append(forward("dot_axes_2_2_3d", "Dot", {"axes": [2, 2]}, [p, q]))
    cases.append(forward("dot_axes_1_1_3d", "Dot", {"axes": [1, 1]}, [p, r]))
    cases.append(forward("dot_axes_minus1_normalize_3d", "Dot",
                         {"axes": -1, "normalize": True}, [p, q]))
    cases.append(forward("dot_axes_minus1_normalize_2d", "Dot",
                         {"axes": -1, "normalize": True}, [u, v]))
    cases.append(forward("dot_axes_1_2d", "Dot", {"axes": 1}, [u, v]))
    z = np.zeros((2, 4), np.float32)
    z[1] = u[1]
    cases.append(forward("dot_normalize_zero_vector", "Dot", {"axes": 1, "normalize": True},
                         [z, v], note="a zero row: l2_normalize divides by "
                         "sqrt(max(sum(x^2), 1e-12)), so the cosine is 0"))
    return cases


# ----- 7: a Sequential's JSON -----------------------------------------------------------
def sequential_json():
    fresh()
    model = keras.Sequential(
        [
            keras.Input(shape=(6,), dtype="int32"),
            keras.layers.Embedding(20, 3),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(1),
        ]
    )
    initial = [values((20, 3), 26), values((3, 1), 27, 2.0), np.array([0.25], np.float32)]
    model.set_weights(initial)
    x = np.array([[1, 2, 3, 4, 5, 6], [19, 0, 0, 7, 7, 7]], np.int32)
    to_json = model.to_json()
    return {
        "id": "sequential_input_embedding",
        "description": "Sequential([Input(shape=(6,), dtype='int32'), Embedding(20, 3), "
        "GlobalAveragePooling1D(), Dense(1)]): to_json() and get_config() as tf_keras 2.21 "
        "writes them.",
        "model": {
            "kind": "sequential",
            "name": model.name,
            "input": {"shape": [None, 6], "dtype": "int32"},
            "layers": [
                {"name": "embedding", "class_name": "Embedding",
                 "args": {"input_dim": 20, "output_dim": 3}},
                {"name": "global_average_pooling1d",
                 "class_name": "GlobalAveragePooling1D", "args": {}},
                {"name": "dense", "class_name": "Dense", "args": {"units": 1}},
            ],
            "model_layers": [layer.name for layer in model.layers],
        },
        "initial_weights": weights_of(model),
        "x": [tensor(x, input=model.inputs[0].name.split(":")[0])],
        "expected": {
            "predict": [tensor(model.predict(x, verbose=0))],
            "to_json": to_json,
            "to_json_roundtrip_identical":
                keras.models.model_from_json(to_json).to_json() == to_json,
            "get_config": plain(model.get_config()),
            "summary": summary_text(model),
        },
    }


def main():
    cases = [
        recommender(False),
        recommender(True),
        ranker(),
        shared_momentum(),
        two_outputs(),
    ]
    root = {
        "format_version": 1,
        "generator": "tests/data/keras_functional.py",
        "environment": {
            "tensorflow": tf.__version__,
            "tf_keras": keras.__version__,
            "numpy": np.__version__,
        },
        "conventions": {
            "tensor": "{dtype, shape, data}: data flattened row-major (C order); optional "
            "`name` (Keras weight path without ':0'), `trainable`, `input` or `output`",
            "float": "float32 values in Python's shortest round-trip repr: parse as f64, "
            "cast to f32 (exact)",
            "weights": "lists in model.weights order (a shared layer's weights once)",
            "names": "keras.backend.clear_session() before every case: automatic names "
            "start at `embedding`, `dense`, `model`, `input_1`",
            "model.calls": "nodes in call order: layer name, input tensor ids (an Input's "
            "id is its name), output tensor id; a layer in several calls is shared",
            "history": "Keras' fit history: per epoch, the mean over the epoch's batches "
            "(weighted by batch size) of the loss of each batch, computed before that "
            "batch's update",
            "weights_per_epoch": "all weights after each epoch (on_epoch_end)",
        },
        "training": cases,
        "masked_merges": masked_embeddings(),
        "merges": merges(),
        "sequential": sequential_json(),
    }
    with open(OUT, "w") as f:
        json.dump(root, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
