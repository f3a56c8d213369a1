"""Writes keras_auc.json: reference values from the real tf_keras 2.21 for the AUC metric
(tf.keras.metrics.AUC with multi_label=False, from_logits=False): the metric alone, batch by
batch, and compiled into a small model (fit history with validation data, evaluate).

    python3 -m venv /tmp/tfk
    /tmp/tfk/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0
    /tmp/tfk/bin/python tests/data/keras_auc.py

Deterministic: every weight is set explicitly (dyadic values, exact in float32) and written
into the JSON, fit() runs with shuffle=False on one CPU thread with op determinism and oneDNN
off, and keras.backend.clear_session() starts every model case so automatic names restart at
`embedding`, `dense`, `auc`. Rerunning gives a byte-identical file.

Tensors are {dtype, shape, data}: data flattened row-major (C order), as in the other files of
this folder; NaN is written as the string "NaN". Floats are float32 values as Keras computed
them, in Python's shortest round-trip repr (parse as f64, cast to f32: exact).

How tf_keras 2.21 computes AUC (tf_keras/src/metrics/confusion_metrics.py class AUC,
tf_keras/src/utils/metrics_utils.py update_confusion_matrix_variables and
_update_confusion_matrix_variables_optimized), as recorded here:
- thresholds: [0 - 1e-7] + [(i + 1) / (n - 1) for i in range(n - 2)] + [1 + 1e-7]
  (n = num_thresholds > 1, else ValueError). They are evenly spaced, so Keras always takes the
  "optimized" path: no comparison with the threshold values at all. Each prediction is
  clipped to [0, 1] and put in bucket max(ceil(p * (n - 1)) - 1, 0) (float32 arithmetic);
  a bucket's weighted label counts are summed, and tp/fp at threshold i are the sums of the
  buckets >= i (reverse cumsum); fn = total positives - tp, tn = total negatives - fp. So a
  prediction counts as above threshold i > 0 exactly when float32(p * (n - 1)) > i, every
  prediction counts at threshold 0 (-1e-7), none at the last (1 + 1e-7). A NaN prediction
  lands in no bucket (its int32 cast is negative and unsorted_segment_sum drops it) but is in
  the totals: it counts as below every threshold.
- y_true is cast to bool: any non-zero label is a positive (a soft label 0.25 counts as a
  whole positive; so do 2.0, -1.0 and NaN, which tf_keras 2.21 does NOT refuse: see
  `unchecked_labels`).
- sample_weight of shape (batch,) against y_pred (batch, k) gets a trailing axis (losses_utils
  squeeze_or_expand_dimensions) and is broadcast over k; predictions and labels are then
  flattened (multi_label=False). Weights multiply the 0/1 labels: true_labels = y * w,
  false_labels = (1 - y) * w.
- The four variables are float32, shape (n,), added to once per update_state.
- result(), all float32: ROC: x = fp / (fp + tn), y = tp / (tp + fn) (divide_no_nan);
  PR (minoring/majoring): x = recall, y = tp / (tp + fp); heights = (y[:-1] + y[1:]) / 2
  (interpolation), min (minoring) or max (majoring); AUC = sum((x[:-1] - x[1:]) * heights).
  PR with interpolation is Davis & Goadrich's interpolation (AUC.interpolate_pr_auc):
  dtp = tp[:-1] - tp[1:], p = tp + fp, dp = p[:-1] - p[1:], slope = dtp / max(dp, 0),
  intercept = tp[1:] - slope * p[1:], ratio = p[:-1] / max(p[1:], 0) where both > 0 else 1,
  AUC = sum(slope * (dtp + intercept * log(ratio)) / max(tp[1:] + fn[1:], 0)), every
  division divide_no_nan.
- compile(metrics=["AUC"]) gives an AUC() object named "auc" (in a fresh session; Keras 2
  names a second default instance "auc_1"); History has "auc" and "val_auc". The string "auc"
  is not known to tf_keras 2.21 (keras.metrics.get returns the string, fit fails on its first
  batch: see `lowercase_name`). The model output's Keras mask (if any) would be the sample
  weight; here GlobalAveragePooling1D consumes the Embedding mask and the output has none.
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

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_auc.json")
F = np.float32


# ----- helpers --------------------------------------------------------------------------
def strict_json(value):
    """NaN and infinities as strings: strict JSON readers (serde_json) refuse bare NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strict_json(v) for v in value]
    return value


def tensor(a, **extra):
    a = np.asarray(a)
    if np.issubdtype(a.dtype, np.integer):
        dtype, data = str(a.dtype), [int(v) for v in a.ravel()]
    else:
        dtype, data = "float32", [float(v) for v in a.astype(F).ravel()]
    return {**extra, "dtype": dtype, "shape": list(a.shape), "data": data}


def plain(value):
    return json.loads(json.dumps(value, default=json_utils.get_json_type))


def weight_name(variable):
    name = variable.name
    return name[:-2] if name.endswith(":0") else name


def weights_of(model):
    return [
        tensor(w.numpy(), name=weight_name(w), trainable=bool(w.trainable))
        for w in model.weights
    ]


def dyadic(shape, seed, scale=1.0):
    """Deterministic dyadic values (multiples of 1/256) in [-scale/2, scale/2]."""
    rng = np.random.default_rng(seed)
    v = rng.uniform(-0.5 * scale, 0.5 * scale, size=shape)
    return (np.round(v * 256) / 256).astype(F)


def floats(logs):
    return {k: float(v) for k, v in logs.items()}


# ----- (a) the metric alone -------------------------------------------------------------
CONFIGS = [
    {"num_thresholds": 200, "curve": "ROC", "summation_method": "interpolation"},
    {"num_thresholds": 200, "curve": "PR", "summation_method": "interpolation"},
    {"num_thresholds": 200, "curve": "ROC", "summation_method": "minoring"},
    {"num_thresholds": 200, "curve": "ROC", "summation_method": "majoring"},
    {"num_thresholds": 200, "curve": "PR", "summation_method": "minoring"},
    {"num_thresholds": 200, "curve": "PR", "summation_method": "majoring"},
    {"num_thresholds": 5, "curve": "ROC", "summation_method": "interpolation"},
    {"num_thresholds": 5, "curve": "PR", "summation_method": "interpolation"},
    {"num_thresholds": 2, "curve": "ROC", "summation_method": "interpolation"},
]


def on_thresholds():
    """Predictions exactly on Keras' float32 thresholds k/199 and their float32
    neighbours, with ties."""
    ks = [1, 2, 50, 99, 100, 150, 198]
    on = [F(k / 199) for k in ks]
    below = [np.nextafter(v, F(0)) for v in on]
    above = [np.nextafter(v, F(1)) for v in on]
    keras_thresholds = [F(t) for t in keras.metrics.AUC().thresholds]
    return on, below, above, keras_thresholds


def streams():
    on, below, above, thresholds = on_thresholds()
    rng = np.random.default_rng(7)
    out = []

    # 1: 0/1 labels, ties, predictions on the thresholds and next to them, 0 and 1.
    p1 = np.array(on[:4] + below[:4] + [0.0, 1.0], F).reshape(-1, 1)
    y1 = np.array([1, 0, 1, 1, 0, 0, 1, 0, 0, 1], F).reshape(-1, 1)
    p2 = np.array(above[:4] + on[4:] + [0.5, 0.5, 0.5], F).reshape(-1, 1)
    y2 = np.array([0, 1, 1, 0, 1, 0, 1, 1, 0, 0], F).reshape(-1, 1)
    p3 = np.array([thresholds[1], thresholds[100], thresholds[198], thresholds[0] + 0,
                   below[6], above[6], 0.25, 0.25], F).reshape(-1, 1)
    y3 = np.array([1, 0, 1, 0, 1, 0, 1, 0], F).reshape(-1, 1)
    out.append({
        "id": "ties_and_thresholds",
        "note": "0/1 labels; predictions exactly on float32(k/199), on Keras' float32 "
        "thresholds, their float32 neighbours, ties (0.5 x3, 0.25 x2), 0 and 1",
        "batches": [(y1, p1, None), (y2, p2, None), (y3, p3, None)],
    })

    # 2: soft labels and 0/1 sample weights (masks), 2-D predictions with a per-row weight.
    p = dyadic((4, 3), 3, scale=1.0) + F(0.5)
    y = np.array([[0.25, 0, 1], [1, 0.5, 0], [0, 0, 0.75], [1, 1, 0]], F)
    w = np.array([1, 0, 1, 1], F)
    p_b = dyadic((5, 1), 4, scale=1.0) + F(0.5)
    y_b = np.array([[0.5], [0], [1], [0], [1]], F)
    w_b = np.array([1, 1, 0, 1, 1], F)
    p_c = dyadic((3, 3), 5, scale=1.0) + F(0.5)
    y_c = np.array([[1, 0, 0], [0, 0.125, 1], [0, 1, 0]], F)
    out.append({
        "id": "soft_labels_and_masks",
        "note": "soft labels (any non-zero label is a positive); sample weights 0/1 of "
        "shape (batch,) against predictions (batch, 3) and (batch, 1): one weight per row, "
        "broadcast over the last axis; the last batch has no weights",
        "batches": [(y, p, w), (y_b, p_b, w_b), (y_c, p_c, None)],
    })

    # 3: a larger random stream (dyadic predictions, random labels), one batch all masked.
    batches = []
    for i, size in enumerate((16, 16, 9, 7)):
        pr = (np.round(rng.uniform(0, 1, size) * 256) / 256).astype(F).reshape(-1, 1)
        yr = rng.integers(0, 2, size).astype(F).reshape(-1, 1)
        wr = np.zeros(size, F) if i == 2 else None
        batches.append((yr, pr, wr))
    out.append({
        "id": "random",
        "note": "48 random dyadic predictions with random 0/1 labels in 4 batches; the "
        "third batch is masked out entirely (weights 0: nothing changes)",
        "batches": batches,
    })

    # 4: edge cases: only positives first, predictions outside [0, 1], a NaN prediction.
    out.append({
        "id": "edges",
        "note": "a first batch of positives only (no negatives yet: ROC x is 0 everywhere); "
        "then predictions outside [0, 1] (clipped), a NaN prediction (below every "
        "threshold), labels of shape (batch,) against predictions (batch, 1)",
        "batches": [
            (np.array([[1], [1], [1]], F), np.array([[0.2], [0.7], [0.9]], F), None),
            (np.array([[0], [1], [0], [1]], F),
             np.array([[1.5], [-0.5], [0.3], [np.nan]], F), None),
            (np.array([0, 1, 0], F), np.array([[0.1], [0.6], [0.8]], F), None),
        ],
    })
    return out


def run_stream(stream, config):
    """Each batch's update_state, then the result (and the four variables)."""
    m = keras.metrics.AUC(**config)
    results, counts = [], []
    for y, p, w in stream["batches"]:
        m.update_state(tf.constant(y), tf.constant(p),
                       sample_weight=None if w is None else tf.constant(w))
        results.append(float(m.result()))
        counts.append({
            "true_positives": tensor(m.true_positives.numpy()),
            "false_positives": tensor(m.false_positives.numpy()),
            "true_negatives": tensor(m.true_negatives.numpy()),
            "false_negatives": tensor(m.false_negatives.numpy()),
        })
    return results, counts


def metric_alone():
    """Per stream and num_thresholds: the batches, the four variables after each batch
    (they do not depend on curve or summation_method) and each config's results."""
    cases = []
    for stream in streams():
        for n in sorted({c["num_thresholds"] for c in CONFIGS}, reverse=True):
            configs = [c for c in CONFIGS if c["num_thresholds"] == n]
            runs = []
            counts = None
            for config in configs:
                results, these = run_stream(stream, config)
                assert counts is None or json.dumps(counts) == json.dumps(these)
                counts = these
                runs.append({"config": config, "results": results})
            cases.append({
                "id": f"{stream['id']}/{n}",
                "note": stream["note"],
                "num_thresholds": n,
                "batches": [
                    {"y_true": tensor(y), "y_pred": tensor(p),
                     "sample_weight": None if w is None else tensor(w), **c}
                    for (y, p, w), c in zip(stream["batches"], counts)
                ],
                "runs": runs,
            })
    return cases


def unchecked_labels():
    """What tf_keras 2.21 does with labels outside [0, 1]: no assertion, they are cast to
    bool (positives). ndkeras refuses them instead."""
    out = []
    for label in (2.0, -1.0, float("nan")):
        y = np.array([[label], [0], [1], [0]], F)
        p = np.array([[0.9], [0.8], [0.2], [0.6]], F)
        m = keras.metrics.AUC()
        m.update_state(y, p)
        same = keras.metrics.AUC()
        same.update_state(np.array([[1], [0], [1], [0]], F), p)
        out.append({
            "y_true": tensor(y),
            "y_pred": tensor(p),
            "keras_result": float(m.result()),
            "keras_result_with_label_1": float(same.result()),
            "raised": None,
        })
    return out


def num_thresholds_errors():
    out = {}
    for n in (1, 0):
        try:
            keras.metrics.AUC(num_thresholds=n)
            out[str(n)] = None
        except ValueError as e:
            out[str(n)] = {"type": "ValueError", "message": str(e)}
    return out


# ----- (b) compiled into a model ----------------------------------------------------------
IDS = np.array(
    [[1, 2, 3, 0], [4, 5, 0, 0], [6, 7, 8, 9], [2, 2, 0, 0], [9, 1, 5, 3], [3, 0, 0, 0],
     [7, 7, 4, 1], [8, 6, 2, 0], [5, 9, 9, 4], [1, 1, 6, 0], [4, 8, 0, 0], [2, 7, 3, 5],
     [6, 6, 6, 0], [3, 9, 1, 0], [5, 0, 0, 0], [8, 4, 2, 7]], np.int32)
Y = np.array([1, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1, 0, 0], F).reshape(-1, 1)
IDS_VAL = np.array([[1, 5, 9, 0], [2, 4, 6, 8], [3, 3, 7, 0], [6, 0, 0, 0],
                    [7, 1, 2, 0], [9, 9, 4, 3]], np.int32)
Y_VAL = np.array([0, 1, 1, 0, 1, 0], F).reshape(-1, 1)
EPOCHS = 3
BATCH_SIZE = 4
LEARNING_RATE = 0.5


class Margins(keras.callbacks.Callback):
    """The smallest distance, in units of the bucket width, between a prediction the metric
    sees (each training batch before its update, validation after each epoch) and a bucket
    boundary: a reimplementation whose forward pass differs from TensorFlow's by a few ulps
    gets the same buckets only if this is not tiny."""

    def __init__(self, x, x_val, n):
        super().__init__()
        self.x, self.x_val, self.n = x, x_val, n
        self.smallest = math.inf

    def see(self, p):
        scaled = p.astype(np.float64).ravel() * (self.n - 1)
        self.smallest = min(self.smallest, float(np.min(np.abs(scaled - np.round(scaled)))))

    def on_train_batch_begin(self, batch, logs=None):
        x = self.x[batch * BATCH_SIZE:(batch + 1) * BATCH_SIZE]
        self.see(self.model(tf.constant(x)).numpy())

    def on_epoch_end(self, epoch, logs=None):
        self.see(self.model(tf.constant(self.x_val)).numpy())


def build(mask_zero):
    model = keras.Sequential([
        keras.Input(shape=(4,), dtype="int32"),
        keras.layers.Embedding(10, 3, mask_zero=mask_zero),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    description = {
        "kind": "sequential",
        "input": {"shape": [None, 4], "dtype": "int32"},
        "layers": [
            {"name": model.layers[0].name, "class_name": "Embedding",
             "args": {"input_dim": 10, "output_dim": 3, "mask_zero": mask_zero}},
            {"name": model.layers[1].name, "class_name": "GlobalAveragePooling1D",
             "args": {}},
            {"name": model.layers[2].name, "class_name": "Dense",
             "args": {"units": 1, "activation": "sigmoid"}},
        ],
    }
    return model, description


def metric_spec(metric):
    if isinstance(metric, str):
        return metric
    return {"class_name": type(metric).__name__, "config": plain(metric.get_config())}


def model_case(case_id, text, mask_zero, seed, make_metrics):
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    metrics = make_metrics()  # after clear_session: a default AUC() is named "auc"
    model, description = build(mask_zero)
    model.set_weights([
        dyadic((10, 3), seed, scale=2.0),
        dyadic((3, 1), seed + 1, scale=4.0),
        dyadic((1,), seed + 2, scale=0.5),
    ])
    initial = weights_of(model)
    optimizer = keras.optimizers.SGD(learning_rate=LEARNING_RATE)
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=metrics)
    margins = Margins(IDS, IDS_VAL, 200)
    history = model.fit(
        IDS, Y, epochs=EPOCHS, batch_size=BATCH_SIZE, shuffle=False, verbose=0,
        validation_data=(IDS_VAL, Y_VAL), callbacks=[margins],
    )
    margins.see(model(tf.constant(IDS)).numpy())
    assert margins.smallest > 1e-3, (case_id, margins.smallest)
    evaluate = model.evaluate(IDS, Y, batch_size=BATCH_SIZE, verbose=0, return_dict=True)
    compiled = model.compiled_metrics._metrics_in_order
    return {
        "id": case_id,
        "description": text,
        "model": description,
        "initial_weights": initial,
        "x": tensor(IDS),
        "y": tensor(Y),
        "x_val": tensor(IDS_VAL),
        "y_val": tensor(Y_VAL),
        "compile": {
            "optimizer": {"class_name": type(optimizer).__name__,
                          "config": plain(optimizer.get_config())},
            "loss": "binary_crossentropy",
            "metrics": [metric_spec(m) for m in metrics],
        },
        "fit": {"epochs": EPOCHS, "batch_size": BATCH_SIZE, "shuffle": False,
                "validation_data": "(x_val, y_val)"},
        "expected": {
            "metrics_names": list(model.metrics_names),
            "compiled_metrics": [
                {"name": m.name, "class_name": type(m).__name__,
                 "config": plain(m.get_config())} for m in compiled
            ],
            "history_keys": list(history.history.keys()),
            "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
            "evaluate_batch_size": BATCH_SIZE,
            "evaluate": floats(evaluate),
            "smallest_bucket_margin": margins.smallest,
        },
    }


def models():
    return [
        model_case(
            "auc_string",
            "Embedding(10, 3) -> GlobalAveragePooling1D -> Dense(1, sigmoid); "
            "binary_crossentropy; metrics=['AUC'] (an AUC() named 'auc'); SGD(0.5), 3 epochs "
            "of 4 batches of 4, validation on 6; evaluate with batch_size=4.",
            False, 1, lambda: ["AUC"]),
        model_case(
            "auc_objects_masked",
            "As auc_string with Embedding(mask_zero=True), other weights and metrics=["
            "AUC(), AUC(curve='PR', name='pr_auc'), AUC(num_thresholds=20, "
            "summation_method='minoring', name='auc20')].",
            True, 11,
            lambda: [keras.metrics.AUC(), keras.metrics.AUC(curve="PR", name="pr_auc"),
                     keras.metrics.AUC(num_thresholds=20, summation_method="minoring",
                                       name="auc20")]),
    ]


def lowercase_name():
    """tf_keras 2.21 does not know the string "auc": keras.metrics.get("auc") returns the
    string itself and fit() fails on its first batch. ndkeras accepts it as AUC()."""
    keras.backend.clear_session()
    model, _ = build(False)
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["auc"])
    try:
        model.fit(IDS, Y, epochs=1, batch_size=BATCH_SIZE, verbose=0)
        raised = None
    except Exception as e:  # recorded, not hidden
        raised = {"type": type(e).__name__, "message": str(e).strip().splitlines()[-1]}
    return {
        "keras_metrics_get_auc": repr(keras.metrics.get("auc")),
        "keras_metrics_get_AUC": type(keras.metrics.get("AUC")).__name__,
        "fit_with_metrics_auc_raised": raised,
    }


def main():
    root = {
        "format_version": 1,
        "generator": "tests/data/keras_auc.py",
        "environment": {
            "tensorflow": tf.__version__,
            "tf_keras": keras.__version__,
            "numpy": np.__version__,
        },
        "conventions": {
            "tensor": "{dtype, shape, data}: data flattened row-major (C order)",
            "float": "float32 values in Python's shortest round-trip repr: parse as f64, "
            "cast to f32 (exact); NaN as the string \"NaN\"",
            "metric_alone": "one case per stream and num_thresholds: the batches given to "
            "update_state(y_true, y_pred, sample_weight) with the four float32 variables "
            "after each, and per config (curve, summation_method) the result after each "
            "batch",
            "models": "history.history per epoch and evaluate(return_dict=True) after fit",
        },
        "default_config": {k: v for k, v in plain(keras.metrics.AUC().get_config()).items()
                           if k != "name"},
        "metric_alone": metric_alone(),
        "unchecked_labels": unchecked_labels(),
        "num_thresholds_errors": num_thresholds_errors(),
        "models": models(),
        "lowercase_name": lowercase_name(),
    }
    with open(OUT, "w") as f:
        json.dump(strict_json(root), f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
