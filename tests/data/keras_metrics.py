"""Writes keras_metrics.json: reference values from the real tf_keras 2.21 for compiled
metrics (compile(metrics=[...]), fit history, evaluate) and for the accuracy functions on
ties.

    python3 -m venv /tmp/tfk
    /tmp/tfk/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0
    /tmp/tfk/bin/python tests/data/keras_metrics.py

Deterministic: every weight is set explicitly (dyadic values, exact in float32) and written
into the JSON, fit() runs with shuffle=False on one CPU thread with op determinism and oneDNN
off, and keras.backend.clear_session() starts every case so automatic names restart at
`embedding`, `dense`, `sequential`. Rerunning gives a byte-identical file.

Tensors are {dtype, shape, data}: data flattened row-major (C order), as in the other files of
this folder. Floats are float32 values as Keras computed them, written with Python's shortest
round-trip repr (parse as f64, cast to f32: exact).

How tf_keras 2.21 computes what is recorded here (tf_keras/src/engine/compile_utils.py,
metrics/base_metric.py, utils/metrics_utils.py):
- The string "accuracy" (or "acc") in compile() is resolved from the SHAPES of the first batch,
  not from the loss: last dimension of the output == 1 -> binary_accuracy; else y_true of lower
  rank than the output, or y_true's last dimension == 1 -> sparse_categorical_accuracy; else
  categorical_accuracy. The metric keeps the name "accuracy". A 1-unit linear regression output
  therefore gets binary_accuracy (threshold 0.5) against real-valued targets.
- Every string or function metric is wrapped in MeanMetricWrapper(fn, name=<the string>):
  "mae" -> mean_absolute_error named "mae", "mse" -> mean_squared_error named "mse".
- A metric's state is (total, count) in float32: each batch adds sum(fn(y_true, y_pred)) (one
  value per sample: fn reduces the last axis) and the number of those values. result() is
  total / count, so an epoch's value is the mean over all samples of the epoch, each computed
  with the weights in force before its batch's update. The loss tracker is a Mean updated
  with (batch mean loss, sample_weight=batch size): also a per-sample mean.
- Metrics are not reset between the training batches of an epoch; the logs after each batch
  are the running means (recorded in batch_logs). Validation runs after the epoch's last
  update, on a fresh state, with the fit batch size.
- binary_accuracy: y_pred > threshold (strictly greater), cast to 0/1, compared with y_true by
  exact equality; mean over the last axis. 0.5 counts as 0.
- categorical_accuracy: argmax(y_true) == argmax(y_pred); argmax ties pick the lowest index
  (also in y_true: an all-zero row is class 0).
- top_k (sparse or not): tf.math.in_top_k. A target whose score ties the k-th largest counts
  as in the top k (so k=1 on an all-equal row is 1.0, where categorical_accuracy counts only
  class 0); k >= number of classes gives 1.0 unless a prediction is not finite (a row with a
  NaN or inf is never in the top k).
- compile() applies the output's Keras mask (if any) as sample weight to the metrics; here
  GlobalAveragePooling1D consumes the Embedding mask, the output has none, and the metrics
  are plain per-sample means (the mask only changes the pooled mean).
"""

import json
import math
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

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_metrics.json")

EPOCHS = 2
BATCH_SIZE = 3
LEARNING_RATE = 0.1


# ----- helpers --------------------------------------------------------------------------
def strict_json(value):
    """NaN and infinities as the strings "NaN", "Infinity", "-Infinity": strict JSON
    readers (serde_json) refuse Python's bare NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strict_json(v) for v in value]
    return value


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


def fresh():
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)


def logs_as_floats(logs):
    return {k: float(v) for k, v in logs.items()}


class BatchLogs(keras.callbacks.Callback):
    """The logs fit passes after each training batch: running means since the epoch began."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append([])

    def on_train_batch_end(self, batch, logs=None):
        self.epochs[-1].append(logs_as_floats(logs))


def metric_record(m):
    """What one compiled metric object is: name, class, wrapped function, config."""
    fn = getattr(m, "_fn", None)
    return {
        "name": m.name,
        "class_name": type(m).__name__,
        "fn": None if fn is None else fn.__name__,
        "config": plain({k: v for k, v in m.get_config().items() if k != "fn"}),
    }


def metric_spec(metric):
    """A compile() metrics entry as JSON: a string, or a Metric object's class and config."""
    if isinstance(metric, str):
        return metric
    return {"class_name": type(metric).__name__, "config": plain(metric.get_config())}


# The layers of every case: Input(ids, int32) -> Embedding -> GlobalAveragePooling1D -> Dense.
def build(seq_len, input_dim, output_dim, mask_zero, units, activation):
    layers = [
        keras.Input(shape=(seq_len,), dtype="int32"),
        keras.layers.Embedding(input_dim, output_dim, mask_zero=mask_zero),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(units, activation=activation),
    ]
    model = keras.Sequential(layers)
    description = {
        "kind": "sequential",
        "input": {"shape": [None, seq_len], "dtype": "int32"},
        "layers": [
            {
                "name": model.layers[0].name,
                "class_name": "Embedding",
                "args": {"input_dim": input_dim, "output_dim": output_dim,
                         "mask_zero": mask_zero},
            },
            {"name": model.layers[1].name, "class_name": "GlobalAveragePooling1D",
             "args": {}},
            {
                "name": model.layers[2].name,
                "class_name": "Dense",
                "args": {"units": units, "activation": activation or "linear"},
            },
        ],
        "model_layers": [layer.name for layer in model.layers],
    }
    return model, description


def initial_weights(input_dim, output_dim, units, seed):
    return [
        values((input_dim, output_dim), seed, scale=2.0),
        values((output_dim, units), seed + 1, scale=4.0),
        values((units,), seed + 2, scale=0.5),
    ]


def numpy_metrics(name, y, p, k=None):
    """float64 re-computation of one metric from the predictions (per-sample mean)."""
    y = np.asarray(y, np.float64)
    p = np.asarray(p, np.float64)
    if name in ("mae", "mean_absolute_error"):
        return float(np.mean(np.abs(y - p)))
    if name in ("mse", "mean_squared_error"):
        return float(np.mean((y - p) ** 2))
    if name == "binary_accuracy":
        return float(np.mean(y == (p > 0.5)))
    if name == "categorical_accuracy":
        return float(np.mean(np.argmax(y, -1) == np.argmax(p, -1)))
    if name == "sparse_categorical_accuracy":
        return float(np.mean(y.reshape(-1) == np.argmax(p, -1)))
    if name == "in_top_k":
        labels = y.reshape(-1).astype(int)
        target = p[np.arange(len(labels)), labels]
        return float(np.mean(np.sum(p > target[:, None], axis=-1) < k))
    raise KeyError(name)


def train_case(case_id, description_text, model, description, initial, data, loss,
               metrics, checks):
    """Sets `initial`, compiles with SGD(0.1), fits, evaluates and records everything."""
    x, y, x_val, y_val = data
    model.set_weights(initial)
    optimizer = keras.optimizers.SGD(learning_rate=LEARNING_RATE)
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    names_after_compile = list(model.metrics_names)
    initial_recorded = weights_of(model)
    out = model(tf.constant(x))
    output_mask = getattr(out, "_keras_mask", None)
    evaluate_initial = model.evaluate(
        x, y, batch_size=BATCH_SIZE, verbose=0, return_dict=True
    )
    # evaluate() builds the compiled metrics; fit resets every metric at each epoch's start.
    batch_logs = BatchLogs()
    history = model.fit(
        x, y, epochs=EPOCHS, batch_size=BATCH_SIZE, shuffle=False, verbose=0,
        validation_data=(x_val, y_val), callbacks=[batch_logs],
    )
    evaluate = model.evaluate(x, y, verbose=0, return_dict=True)
    evaluate_b3 = model.evaluate(x, y, batch_size=BATCH_SIZE, verbose=0, return_dict=True)
    evaluate_list = model.evaluate(x, y, verbose=0)
    predict = model.predict(x, verbose=0)
    compiled = model.compiled_metrics
    recomputed = {name: numpy_metrics(fn, y, predict, **kw) for name, fn, kw in checks}
    return {
        "id": case_id,
        "description": description_text,
        "model": description,
        "initial_weights": initial_recorded,
        "x": tensor(x),
        "y": tensor(y),
        "x_val": tensor(x_val),
        "y_val": tensor(y_val),
        "compile": {
            "optimizer": {
                "class_name": type(optimizer).__name__,
                "config": plain(optimizer.get_config()),
            },
            "loss": loss,
            "metrics": [metric_spec(m) for m in metrics],
        },
        "fit": {
            "epochs": EPOCHS,
            "batch_size": BATCH_SIZE,
            "shuffle": False,
            "validation_data": "(x_val, y_val)",
            "validation_batch_size": BATCH_SIZE,
            "samples": int(len(x)),
            "steps_per_epoch": int(-(-len(x) // BATCH_SIZE)),
        },
        "expected": {
            "metrics_names_after_compile": names_after_compile,
            "metrics_names": list(model.metrics_names),
            "compiled_metrics": [metric_record(m) for m in compiled._metrics_in_order],
            "output_mask": None if output_mask is None else tensor(output_mask.numpy()),
            "evaluate_initial_batch_size_3": logs_as_floats(evaluate_initial),
            "history_keys": list(history.history.keys()),
            "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
            "batch_logs": batch_logs.epochs,
            "final_weights": weights_of(model),
            "evaluate": logs_as_floats(evaluate),
            "evaluate_batch_size": 32,
            "evaluate_batch_size_3": logs_as_floats(evaluate_b3),
            "evaluate_list": [float(v) for v in evaluate_list],
            "predict_after_training": tensor(predict),
            "numpy_recomputed_from_predict": recomputed,
        },
    }


# ----- data -------------------------------------------------------------------------------
IDS = np.array(
    [[1, 2, 3, 0], [4, 5, 0, 0], [6, 7, 8, 9], [2, 2, 0, 0], [9, 1, 5, 3], [3, 0, 0, 0],
     [7, 7, 4, 1], [8, 6, 2, 0], [5, 9, 9, 4]], np.int32)
IDS_VAL = np.array([[1, 5, 9, 0], [2, 4, 6, 8], [3, 3, 7, 0], [6, 0, 0, 0]], np.int32)
CLASSES = np.array([0, 2, 1, 3, 1, 0, 2, 3, 1], np.int32)
CLASSES_VAL = np.array([1, 3, 0, 2], np.int32)


def one_hot(labels, n):
    return np.eye(n, dtype=np.float32)[labels]


# ----- 1: binary ------------------------------------------------------------------------
def binary():
    fresh()
    model, description = build(4, 10, 3, True, 1, "sigmoid")
    x = IDS[:8]
    y = np.array([[1], [0], [1], [0], [1], [1], [0], [0]], np.float32)
    y_val = np.array([[0], [1], [1], [0]], np.float32)
    metrics = ["accuracy", "binary_accuracy", "mae", "mse"]
    case = train_case(
        "binary_masked",
        "Embedding(10, 3, mask_zero=True) -> GlobalAveragePooling1D (masked mean) -> "
        "Dense(1, sigmoid); binary_crossentropy; metrics accuracy (resolves to "
        "binary_accuracy), binary_accuracy, mae, mse; SGD(0.1), 2 epochs of 3 batches "
        "(3, 3, 2) of 8 samples, validation on 4.",
        model, description, initial_weights(10, 3, 1, 1),
        (x, y, IDS_VAL, y_val), "binary_crossentropy", metrics,
        [("accuracy", "binary_accuracy", {}), ("binary_accuracy", "binary_accuracy", {}),
         ("mae", "mae", {}), ("mse", "mse", {})],
    )
    # The mask: the Embedding output carries one, GlobalAveragePooling1D consumes it.
    emb = model.layers[0](tf.constant(x))
    pooled = model.layers[1](emb)
    table = model.layers[0].get_weights()[0].astype(np.float64)
    rows = table[x]
    keep = (x != 0)[..., None]
    masked_mean = (rows * keep).sum(1) / keep.sum(1)
    case["mask"] = {
        "embedding_output_mask": tensor(emb._keras_mask.numpy()),
        "pooled_output_mask": None if getattr(pooled, "_keras_mask", None) is None
        else tensor(pooled._keras_mask.numpy()),
        "pooled_equals_masked_mean": bool(np.allclose(pooled.numpy(), masked_mean,
                                                      atol=1e-6)),
        "pooled_equals_plain_mean": bool(np.allclose(pooled.numpy(), rows.mean(1),
                                                     atol=1e-6)),
        "metrics_affected_by_mask": False,
        "note": "the model output has no Keras mask (output_mask null), so compile's "
        "metrics get no mask sample weight: each metric is the plain mean over samples, "
        "numpy_recomputed_from_predict reproduces evaluate; the mask only shapes the pooled "
        "mean (padding rows left out)",
    }
    return case


# ----- 2: categorical -------------------------------------------------------------------
def categorical():
    fresh()
    model, description = build(4, 10, 3, False, 4, "softmax")
    y = one_hot(CLASSES, 4)
    metrics = [
        "accuracy",
        "categorical_accuracy",
        "top_k_categorical_accuracy",
        keras.metrics.TopKCategoricalAccuracy(k=2, name="top2"),
    ]
    return train_case(
        "categorical",
        "Embedding(10, 3) -> GlobalAveragePooling1D -> Dense(4, softmax); "
        "categorical_crossentropy on one-hot y; metrics accuracy (resolves to "
        "categorical_accuracy), categorical_accuracy, top_k_categorical_accuracy (k=5 > 4 "
        "classes: always 1), TopKCategoricalAccuracy(k=2, name='top2'); SGD(0.1), 2 epochs "
        "of 3 batches of 3, validation on 4.",
        model, description, initial_weights(10, 3, 4, 11),
        (IDS, y, IDS_VAL, one_hot(CLASSES_VAL, 4)), "categorical_crossentropy", metrics,
        [("accuracy", "categorical_accuracy", {}),
         ("categorical_accuracy", "categorical_accuracy", {})],
    )


# ----- 3: sparse ------------------------------------------------------------------------
def sparse():
    fresh()
    model, description = build(4, 10, 3, False, 4, "softmax")
    metrics = [
        "accuracy",
        "sparse_categorical_accuracy",
        keras.metrics.SparseTopKCategoricalAccuracy(k=2, name="top2"),
    ]
    case = train_case(
        "sparse_categorical",
        "As categorical with integer labels y of shape (9,) (int32) and "
        "sparse_categorical_crossentropy; metrics accuracy (resolves to "
        "sparse_categorical_accuracy), sparse_categorical_accuracy, "
        "SparseTopKCategoricalAccuracy(k=2, name='top2'). Same initial weights as "
        "categorical, so loss and weights match that case.",
        model, description, initial_weights(10, 3, 4, 11),
        (IDS, CLASSES, IDS_VAL, CLASSES_VAL), "sparse_categorical_crossentropy", metrics,
        [("accuracy", "sparse_categorical_accuracy", {}),
         ("sparse_categorical_accuracy", "sparse_categorical_accuracy", {}),
         ("top2", "in_top_k", {"k": 2})],
    )
    return case


# ----- 4: regression --------------------------------------------------------------------
def regression():
    fresh()
    model, description = build(4, 10, 3, False, 1, None)
    y = np.array([[0.5], [-1.0], [1.0], [0.0], [2.0], [1.0], [0.25], [0.0], [1.5]],
                 np.float32)
    y_val = np.array([[1.0], [0.0], [-0.5], [0.75]], np.float32)
    return train_case(
        "regression",
        "Embedding(10, 3) -> GlobalAveragePooling1D -> Dense(1) (linear); mse; metrics mae, "
        "mse, accuracy. 'accuracy' resolves to binary_accuracy because the output's last "
        "dimension is 1: (y_pred > 0.5) == y_true, so only targets exactly 0.0 or 1.0 can "
        "ever count. SGD(0.1), 2 epochs of 3 batches of 3, validation on 4.",
        model, description, initial_weights(10, 3, 1, 21),
        (IDS, y, IDS_VAL, y_val), "mse", ["mae", "mse", "accuracy"],
        [("mae", "mae", {}), ("mse", "mse", {}), ("accuracy", "binary_accuracy", {})],
    )


# ----- 5: ties --------------------------------------------------------------------------
def call(fn, y_true, y_pred, **kwargs):
    """One accuracy function on hand-made arrays: inputs, output (per sample) or error."""
    case = {
        "function": fn,
        "kwargs": kwargs,
        "y_true": tensor(y_true),
        "y_pred": tensor(y_pred),
    }
    try:
        out = getattr(keras.metrics, fn)(tf.constant(y_true), tf.constant(y_pred), **kwargs)
        case["output"] = tensor(out.numpy())
        case["raised"] = None
    except Exception as e:  # recorded, not hidden
        case["raised"] = {"type": type(e).__name__, "message": str(e).split("\n")[0]}
    return case


def ties_functions():
    f = np.float32
    half_below = np.nextafter(f(0.5), f(0.0))
    half_above = np.nextafter(f(0.5), f(1.0))
    cases = []
    cases.append(dict(call(
        "binary_accuracy",
        np.array([[0], [1], [0], [1], [0], [1], [1], [0]], f),
        np.array([[0.5], [0.5], [half_below], [half_below], [half_above], [half_above],
                  [1.0], [0.0]], f)),
        note="prediction exactly 0.5 counts as 0 (y_pred > threshold); the float32 "
        "neighbours of 0.5 on either side"))
    cases.append(dict(call(
        "binary_accuracy", np.array([[0], [1], [1]], f), np.array([[0.0], [0.0], [0.25]], f),
        threshold=0.0), note="threshold=0.0: 0.0 is not > 0.0"))
    cases.append(dict(call(
        "binary_accuracy",
        np.array([[1, 0, 1], [0, 0, 1]], f),
        np.array([[0.9, 0.5, 0.5], [0.2, 0.7, 0.6]], f)),
        note="several columns: mean over the last axis, one value per sample"))
    cases.append(dict(call(
        "binary_accuracy", np.array([[0.5], [1.0], [0.0]], f),
        np.array([[0.75], [0.75], [0.25]], f)),
        note="y_true not 0/1 never matches (exact equality with the thresholded 0/1)"))
    one_hot4 = np.eye(4, dtype=f)
    equal = np.full((4, 4), 0.25, f)
    cases.append(dict(call("categorical_accuracy", one_hot4, equal),
                      note="all-equal row: argmax is the lowest index, so only class 0 "
                      "matches"))
    cases.append(dict(call(
        "categorical_accuracy", one_hot4,
        np.array([[0.1, 0.4, 0.4, 0.1]] * 4, f)),
        note="tie between classes 1 and 2: class 1 (the first) wins"))
    cases.append(dict(call(
        "categorical_accuracy",
        np.array([[0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]], f),
        np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1], [0.1, 0.1, 0.1, 0.7]], f)),
        note="ties in y_true too: argmax(y_true) picks the lowest index (an all-zero row "
        "is class 0)"))
    labels = np.array([0, 1, 2, 3], np.int32)
    cases.append(dict(call("sparse_categorical_accuracy", labels, equal),
                      note="int labels of shape (4,), all-equal row: only class 0"))
    cases.append(dict(call("sparse_categorical_accuracy", labels.reshape(4, 1).astype(f),
                           np.array([[0.1, 0.4, 0.4, 0.1]] * 4, f)),
                      note="float labels of shape (4, 1) (squeezed); tie 1/2 -> class 1"))
    cases.append(dict(call("sparse_top_k_categorical_accuracy", labels, equal, k=1),
                      note="in_top_k: every class tied with the k-th largest is in the top k, "
                      "so k=1 on an all-equal row is 1 for every label (unlike argmax)"))
    boundary = np.array([[0.5, 0.2, 0.2, 0.1]] * 4, f)
    cases.append(dict(call("sparse_top_k_categorical_accuracy", labels, boundary, k=2),
                      note="classes 1 and 2 tie at the k=2 boundary: both in; class 3 not"))
    cases.append(dict(call("sparse_top_k_categorical_accuracy", labels, boundary, k=1)))
    cases.append(dict(call("top_k_categorical_accuracy", one_hot4, boundary, k=2),
                      note="as the sparse one, with argmax(y_true) as the label"))
    cases.append(dict(call("top_k_categorical_accuracy", one_hot4, boundary),
                      note="default k=5 >= 4 classes: always 1"))
    nonfinite = np.array([[np.nan, 0.2, 0.3, 0.5], [0.1, np.inf, 0.3, 0.5],
                          [0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25]], f)
    cases.append(dict(call("sparse_top_k_categorical_accuracy",
                           np.array([3, 0, 3, 0], np.int32), nonfinite, k=4),
                      note="k = number of classes: a row with NaN or inf is never in the "
                      "top k"))
    cases.append(dict(call("sparse_top_k_categorical_accuracy",
                           np.array([4, -1, 3], np.int32),
                           np.array([[0.1, 0.2, 0.3, 0.4]] * 3, f), k=2),
                      note="labels 4 and -1 are out of range [0, 4): not in the top k (no error); "
                      "label 3 is"))
    return cases


def ties_models():
    """The same ties through compile/evaluate: zero Dense weights give sigmoid(0) = 0.5 and a
    uniform softmax for every sample."""
    cases = []
    for case_id, units, activation, loss, y, metrics in (
        ("binary_zero_weights", 1, "sigmoid", "binary_crossentropy",
         np.array([[1], [0], [1], [0], [0], [1]], np.float32),
         ["accuracy", "binary_accuracy"]),
        ("categorical_uniform_softmax", 4, "softmax", "categorical_crossentropy",
         one_hot(np.array([0, 1, 2, 3, 0, 2], np.int32), 4),
         ["accuracy", "top_k_categorical_accuracy",
          keras.metrics.TopKCategoricalAccuracy(k=1, name="top1")]),
        ("sparse_uniform_softmax", 4, "softmax", "sparse_categorical_crossentropy",
         np.array([0, 1, 2, 3, 0, 2], np.int32),
         ["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(k=1, name="top1")]),
    ):
        fresh()
        model, description = build(4, 10, 3, False, units, activation)
        initial = [
            values((10, 3), 31, scale=2.0),
            np.zeros((3, units), np.float32),
            np.zeros((units,), np.float32),
        ]
        model.set_weights(initial)
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=LEARNING_RATE),
                      loss=loss, metrics=metrics)
        x = IDS[:6]
        evaluate = model.evaluate(x, y, batch_size=BATCH_SIZE, verbose=0, return_dict=True)
        cases.append({
            "id": case_id,
            "model": description,
            "initial_weights": weights_of(model),
            "x": tensor(x),
            "y": tensor(y),
            "compile": {"loss": loss, "metrics": [metric_spec(m) for m in metrics]},
            "evaluate_batch_size": BATCH_SIZE,
            "expected": {
                "predict": tensor(model.predict(x, verbose=0)),
                "metrics_names": list(model.metrics_names),
                "compiled_metrics": [
                    metric_record(m) for m in model.compiled_metrics._metrics_in_order
                ],
                "evaluate": logs_as_floats(evaluate),
            },
        })
    return cases


def resolution():
    """What names resolve to outside compile (keras.metrics.get) for reference."""
    out = {}
    for name in ("accuracy", "acc", "binary_accuracy", "categorical_accuracy",
                 "sparse_categorical_accuracy", "top_k_categorical_accuracy", "mae", "mse"):
        fn = keras.metrics.get(name)
        out[name] = getattr(fn, "__name__", type(fn).__name__)
    return {
        "keras_metrics_get": out,
        "note": "outside compile, keras.metrics.get('accuracy') is the exact-equality "
        "function `accuracy`; compile() instead picks binary/categorical/"
        "sparse_categorical_accuracy from the shapes (see compiled_metrics of each case)",
    }


def main():
    root = {
        "format_version": 1,
        "generator": "tests/data/keras_metrics.py",
        "environment": {
            "tensorflow": tf.__version__,
            "tf_keras": keras.__version__,
            "numpy": np.__version__,
        },
        "conventions": {
            "tensor": "{dtype, shape, data}: data flattened row-major (C order); optional "
            "`name` (Keras weight path without ':0') and `trainable`",
            "float": "float32 values in Python's shortest round-trip repr: parse as f64, "
            "cast to f32 (exact)",
            "weights": "lists in model.weights order: embedding/embeddings, dense/kernel, "
            "dense/bias",
            "names": "keras.backend.clear_session() before every case: layer names "
            "`embedding`, `global_average_pooling1d`, `dense`",
            "history": "history.history in Keras' key order (history_keys): per epoch, "
            "loss and each metric as the mean over every sample of the epoch (each computed "
            "before its batch's update), then val_* computed after the epoch",
            "batch_logs": "per epoch, the logs after each training batch (running means)",
            "evaluate": "model.evaluate(x, y, return_dict=True) after fit, default "
            "batch_size 32 (one batch); evaluate_batch_size_3 the same with batch_size=3; "
            "evaluate_list the list form, in metrics_names order",
            "compiled_metrics": "model.compiled_metrics._metrics_in_order after fit: name, "
            "class, wrapped function (MeanMetricWrapper._fn) and config",
            "numpy_recomputed_from_predict": "float64 NumPy value of a metric from "
            "model.predict(x) after training: equals evaluate up to float32 rounding",
        },
        "training": [binary(), categorical(), sparse(), regression()],
        "ties": {
            "functions": ties_functions(),
            "models": ties_models(),
        },
        "resolution": resolution(),
    }
    with open(OUT, "w") as f:
        json.dump(strict_json(root), f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
