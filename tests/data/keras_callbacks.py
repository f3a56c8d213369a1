"""Writes keras_callbacks.json: reference values from the real tf_keras 2.21 for the training
callbacks EarlyStopping, ModelCheckpoint (save_best_only), LearningRateScheduler,
ReduceLROnPlateau and TerminateOnNaN.

    python3 -m venv /tmp/tfk
    /tmp/tfk/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0
    /tmp/tfk/bin/python tests/data/keras_callbacks.py

Deterministic: every weight is set explicitly (dyadic values, exact in float32) and written
into the JSON, fit() runs with shuffle=False on one CPU thread with op determinism and oneDNN
off, and keras.backend.clear_session() starts every case so automatic names restart at
`embedding`, `dense`, `sequential`. Rerunning gives a byte-identical file (the checkpoint of
the ModelCheckpoint case goes to a temporary directory; only its file name is recorded).

Tensors are {dtype, shape, data}: data flattened row-major (C order), as in the other files of
this folder. Floats are float32 values as Keras computed them, written with Python's shortest
round-trip repr (parse as f64, cast to f32: exact). Non-finite floats are the strings "NaN",
"Infinity", "-Infinity".

Every case trains the same model from the same initial weights on the same data:
Input((4,), int32) -> Embedding(10, 3, input_length=4) -> GlobalAveragePooling1D ->
Dense(1, sigmoid); binary_crossentropy; SGD(learning_rate=0.5); metrics ["accuracy"];
8 training samples in 2 batches of 4, shuffle=False, 4 validation samples (one batch).
The data were picked so that val_loss falls for three epochs (minimum at epoch index 2, i.e.
the third epoch) and then rises every epoch; `reference_run` is 30 epochs without callbacks.

How tf_keras 2.21 behaves (tf_keras/src/callbacks.py, engine/training.py):
- Callback order: the user's callbacks in list order, then History (appended last), so
  History records whatever earlier callbacks wrote into the epoch logs (the `lr` key).
- EarlyStopping: direction from mode; mode "auto" is `greater` iff the monitor name ends with
  "acc", "accuracy" or "auc", else `less`. min_delta is stored as abs(min_delta), negated for
  `less`. Improvement is monitor_op(current - min_delta, reference): for `less`,
  current + |min_delta| < best; for `greater`, current - |min_delta| > best (strict).
  on_train_begin: wait=0, stopped_epoch=0, best=+inf (less) or -inf (greater),
  best_weights=None, best_epoch=0. on_epoch_end(epoch): nothing at all while
  epoch < start_from_epoch (or the monitor is missing); if restore_best_weights and no weights
  kept yet, keep the current weights (best_epoch=epoch); then wait += 1 FIRST; on improvement
  best=current, best_epoch=epoch, weights kept, and wait reset to 0 only if baseline is None
  or the current value is also an improvement over the baseline, then return (never stops on
  an improving epoch); otherwise stop (model.stop_training, stopped_epoch=epoch) when
  wait >= patience and epoch > 0. on_train_end: if restore_best_weights and best weights
  were kept, set them, WHETHER OR NOT training stopped early.
- ModelCheckpoint(save_best_only): at each epoch end, save when monitor_op(current, best)
  (no min_delta), best starting at +-inf (or initial_value_threshold).
- LearningRateScheduler: on_epoch_begin sets lr = schedule(epoch, float(current lr)) (the
  learning-rate variable is float32); on_epoch_end writes logs["lr"] = the lr in force (a
  float32 NumPy scalar). The epoch logs already hold loss, metrics and val_*, so history's
  keys become [loss, accuracy, val_loss, val_accuracy, lr]. Without a callback that writes
  it there is no "lr" key at all.
- ReduceLROnPlateau: on_epoch_end first writes logs["lr"] = the lr used during this epoch
  (before any reduction), then: if in cooldown, cooldown_counter -= 1 and wait = 0;
  improvement (mode min/auto-without-"acc": current < best - min_delta) sets best and wait=0;
  else, when not in cooldown, wait += 1 and if wait >= patience: if lr > float32(min_lr),
  lr = max(lr * factor, min_lr), cooldown_counter = cooldown, wait = 0.
- TerminateOnNaN: after every training batch, if the batch logs' "loss" (the running mean of
  the epoch so far) is NaN or +-inf, model.stop_training = True; fit leaves the batch loop
  right away, but the epoch still ends normally: validation runs and on_epoch_end is called,
  so history has that (partial) epoch with its NaN/inf values. Only the training "loss" is
  looked at: in terminate_on_nan_lr_1e12 epoch 0's val_loss is already NaN (finite training
  loss) and training goes on into epoch 1.
"""

import json
import math
import os
import tempfile

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

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_callbacks.json")

BATCH_SIZE = 4
LEARNING_RATE = 0.5


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


def f32(v):
    """A Keras scalar (Python float, NumPy float32/64) as the float32 value it holds."""
    return float(np.float32(v))


def f64(v):
    """A Keras scalar kept at its own precision (e.g. EarlyStopping.best, a Python float)."""
    return float(v)


def lr_of(model):
    return f32(keras.backend.get_value(model.optimizer.learning_rate))


# ----- data and model -------------------------------------------------------------------
# Found by searching random data for a val_loss curve with a clear interior minimum.
_rng = np.random.default_rng(5316)
X = _rng.integers(0, 10, (8, 4)).astype(np.int32)
X_VAL = _rng.integers(0, 10, (4, 4)).astype(np.int32)
Y = _rng.integers(0, 2, (8, 1)).astype(np.float32)
Y_VAL = _rng.integers(0, 2, (4, 1)).astype(np.float32)
INITIAL = [
    values((10, 3), 316, scale=2.0),
    values((3, 1), 317, scale=4.0),
    values((1,), 318, scale=0.5),
]


def build():
    model = keras.Sequential([
        keras.Input(shape=(4,), dtype="int32"),
        keras.layers.Embedding(10, 3, input_length=4),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    description = {
        "kind": "sequential",
        "input": {"shape": [None, 4], "dtype": "int32"},
        "layers": [
            {"name": model.layers[0].name, "class_name": "Embedding",
             "args": {"input_dim": 10, "output_dim": 3, "input_length": 4,
                      "mask_zero": False}},
            {"name": model.layers[1].name, "class_name": "GlobalAveragePooling1D",
             "args": {}},
            {"name": model.layers[2].name, "class_name": "Dense",
             "args": {"units": 1, "activation": "sigmoid"}},
        ],
        "model_layers": [layer.name for layer in model.layers],
    }
    return model, description


def compiled(learning_rate=LEARNING_RATE):
    fresh()
    model, description = build()
    model.set_weights(INITIAL)
    optimizer = keras.optimizers.SGD(learning_rate=learning_rate)
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
    compile_record = {
        "optimizer": {"class_name": type(optimizer).__name__,
                      "config": plain(optimizer.get_config())},
        "loss": "binary_crossentropy",
        "metrics": ["accuracy"],
    }
    return model, description, compile_record


class Recorder(keras.callbacks.Callback):
    """Put FIRST in the callback list: at each epoch end it sees the weights after the
    epoch's updates and the learning rate that was used during the epoch (before
    ReduceLROnPlateau changes it)."""

    def __init__(self):
        super().__init__()
        self.epochs = []
        self.weights = []
        self.lr = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(int(epoch))
        self.weights.append(weights_of(self.model))
        self.lr.append(lr_of(self.model))


def history_record(history):
    return {
        "history_keys": list(history.history.keys()),
        "history": {k: [f32(v) for v in vs] for k, vs in history.history.items()},
        "history_epoch": [int(e) for e in history.epoch],
        "epochs_run": len(history.epoch),
    }


def run_case(case_id, description_text, callbacks, callback_records, epochs, state_fn,
             learning_rate=LEARNING_RATE, extra_callbacks_after=(), extra_fn=None):
    model, description, compile_record = compiled(learning_rate)
    initial_recorded = weights_of(model)
    recorder = Recorder()
    made = callbacks()
    after = [cb() for cb in extra_callbacks_after]
    history = model.fit(
        X, Y, epochs=epochs, batch_size=BATCH_SIZE, shuffle=False, verbose=0,
        validation_data=(X_VAL, Y_VAL), callbacks=[recorder, *made, *after],
    )
    expected = {
        **history_record(history),
        "stop_training": bool(model.stop_training),
        "callback_state": [state_fn(cb) for cb in made],
        "lr_per_epoch": recorder.lr,
        "lr_after_fit": lr_of(model),
        "epoch_end_weights": recorder.weights,
        "final_weights": weights_of(model),
    }
    if extra_fn is not None:
        expected.update(extra_fn(model, made, after, recorder))
    return {
        "id": case_id,
        "description": description_text,
        "model": description,
        "initial_weights": initial_recorded,
        "x": tensor(X),
        "y": tensor(Y),
        "x_val": tensor(X_VAL),
        "y_val": tensor(Y_VAL),
        "compile": compile_record,
        "fit": {
            "epochs": epochs,
            "batch_size": BATCH_SIZE,
            "shuffle": False,
            "verbose": 0,
            "validation_data": "(x_val, y_val)",
            "validation_batch_size": BATCH_SIZE,
            "samples": int(len(X)),
            "steps_per_epoch": int(-(-len(X) // BATCH_SIZE)),
        },
        "callbacks": callback_records,
        "expected": expected,
    }


# ----- callbacks under test -------------------------------------------------------------
def op_name(op):
    return {np.less: "less", np.greater: "greater"}.get(op, repr(op))


def early_stopping_record(args):
    cb = keras.callbacks.EarlyStopping(**args)
    return {
        "class_name": "EarlyStopping",
        "args": plain(args),
        "derived": {"monitor_op": op_name(cb.monitor_op), "min_delta": f64(cb.min_delta)},
    }


def early_stopping_state(cb):
    return {
        "stopped_epoch": int(cb.stopped_epoch),
        "best": f64(cb.best),
        "wait": int(cb.wait),
        "best_epoch": int(cb.best_epoch),
        "has_best_weights": cb.best_weights is not None,
        "restored": bool(cb.restore_best_weights and cb.best_weights is not None),
    }


def early_stopping_case(case_id, text, args, epochs=30):
    return run_case(
        case_id, text, lambda: [keras.callbacks.EarlyStopping(**args)],
        [early_stopping_record(args)], epochs, early_stopping_state,
    )


def reference_run():
    """30 epochs without any callback: the curves the other cases cut short."""
    model, description, compile_record = compiled()
    recorder = Recorder()
    history = model.fit(X, Y, epochs=30, batch_size=BATCH_SIZE, shuffle=False, verbose=0,
                        validation_data=(X_VAL, Y_VAL), callbacks=[recorder])
    return {
        "id": "reference_no_callbacks",
        "description": "The same fit for 30 epochs with no callback (only History).",
        "initial_weights": [tensor(w) for w in INITIAL],
        "fit": {"epochs": 30, "batch_size": BATCH_SIZE, "shuffle": False},
        "expected": {
            **history_record(history),
            "val_loss_argmin": int(np.argmin(history.history["val_loss"])),
            "epoch_end_weights": recorder.weights,
            "final_weights": weights_of(model),
        },
    }


def cases_early_stopping():
    out = []
    out.append(early_stopping_case(
        "early_stopping_val_loss_patience2",
        "EarlyStopping(monitor='val_loss', patience=2), no restore, epochs=30: stops two "
        "epochs after the val_loss minimum; final weights are those of the last epoch run.",
        {"monitor": "val_loss", "patience": 2}))
    out.append(early_stopping_case(
        "early_stopping_val_loss_patience2_restore",
        "As early_stopping_val_loss_patience2 with restore_best_weights=True: same epochs, "
        "final weights = epoch_end_weights[best_epoch].",
        {"monitor": "val_loss", "patience": 2, "restore_best_weights": True}))
    out.append(early_stopping_case(
        "early_stopping_restore_without_stop",
        "EarlyStopping(monitor='val_loss', patience=100, restore_best_weights=True), "
        "epochs=8: never stops early (stopped_epoch 0), yet on_train_end still restores the "
        "best epoch's weights.",
        {"monitor": "val_loss", "patience": 100, "restore_best_weights": True}, epochs=8))
    out.append(early_stopping_case(
        "early_stopping_val_accuracy_min_delta",
        "EarlyStopping(monitor='val_accuracy', mode='auto' (-> greater), min_delta=0.01, "
        "patience=1, baseline=None): an equal val_accuracy is no improvement "
        "(current - 0.01 > best is false).",
        {"monitor": "val_accuracy", "mode": "auto", "min_delta": 0.01, "patience": 1,
         "baseline": None}))
    out.append(early_stopping_case(
        "early_stopping_val_accuracy_baseline",
        "As early_stopping_val_accuracy_min_delta with baseline=0.9, never beaten: wait is "
        "never reset, training stops at the first epoch that does not improve on best "
        "once wait >= patience.",
        {"monitor": "val_accuracy", "mode": "auto", "min_delta": 0.01, "patience": 1,
         "baseline": 0.9}))
    out.append(early_stopping_case(
        "early_stopping_val_loss_baseline_patience2",
        "EarlyStopping(monitor='val_loss', patience=2, baseline=0.6) (val_loss never gets "
        "below 0.6): epoch 0 improves on best (+inf) but not on the baseline, so wait stays "
        "1; epochs 1 and 2 improve (no stop on an improving epoch, wait grows 2, 3); epoch "
        "3 is the first non-improving epoch and stops at once. Without the baseline "
        "(early_stopping_val_loss_patience2) it stops one epoch later.",
        {"monitor": "val_loss", "patience": 2, "baseline": 0.6}))
    out.append(early_stopping_case(
        "early_stopping_val_loss_baseline_restore",
        "EarlyStopping(monitor='val_loss', patience=2, baseline=0.6, "
        "restore_best_weights=True): weights restored from the best epoch although no "
        "epoch beat the baseline.",
        {"monitor": "val_loss", "patience": 2, "baseline": 0.6,
         "restore_best_weights": True}))
    out.append(early_stopping_case(
        "early_stopping_val_accuracy_start_from_epoch2",
        "As early_stopping_val_accuracy_min_delta with start_from_epoch=2: epochs 0 and 1 "
        "are ignored entirely (wait and best untouched), monitoring begins at epoch 2.",
        {"monitor": "val_accuracy", "mode": "auto", "min_delta": 0.01, "patience": 1,
         "baseline": None, "start_from_epoch": 2}))
    out.append(early_stopping_case(
        "early_stopping_val_loss_start_from_epoch2",
        "EarlyStopping(monitor='val_loss', patience=2, start_from_epoch=2).",
        {"monitor": "val_loss", "patience": 2, "start_from_epoch": 2}))
    out.append(early_stopping_case(
        "early_stopping_loss_mode_max",
        "EarlyStopping(monitor='loss', mode='max') (patience 0): the falling training loss "
        "never 'improves' after epoch 0, so training stops at epoch 1.",
        {"monitor": "loss", "mode": "max"}))
    return out


# ----- ModelCheckpoint ------------------------------------------------------------------
class CheckpointWatcher(keras.callbacks.Callback):
    """Put right after the ModelCheckpoint: records, per epoch, whether its `best` changed
    (a save happened) and the weights saved."""

    def __init__(self, checkpoint):
        super().__init__()
        self.checkpoint = checkpoint
        self.saved = []
        self.best_after = []
        self.saved_weights = []
        self._before = None

    def on_epoch_begin(self, epoch, logs=None):
        self._before = self.checkpoint.best

    def on_epoch_end(self, epoch, logs=None):
        best = self.checkpoint.best
        saved = best != self._before
        self.saved.append(bool(saved))
        self.best_after.append(f64(best))
        if saved:
            self.saved_weights.append({"epoch": int(epoch), "weights": weights_of(self.model)})


def model_checkpoint_case():
    args = {"monitor": "val_loss", "save_best_only": True, "save_weights_only": True}
    epochs = 10
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "best.weights.h5")
        holder = {}

        def make():
            cb = keras.callbacks.ModelCheckpoint(path, **args)
            holder["cb"] = cb
            return [cb]

        def watcher():
            holder["watch"] = CheckpointWatcher(holder["cb"])
            return holder["watch"]

        def extra(model, made, after, recorder):
            watch = holder["watch"]
            fresh()
            reload, _ = build()
            reload.load_weights(path)
            saved_epochs = [e for e, s in enumerate(watch.saved) if s]
            return {
                "saved_per_epoch": watch.saved,
                "saved_epochs": saved_epochs,
                "best_after_epoch": watch.best_after,
                "checkpoint_best": f64(holder["cb"].best),
                "checkpoint_file_weights": weights_of(reload),
                "checkpoint_file_equals_epoch_end_weights_of": saved_epochs[-1],
            }

        case = run_case(
            "model_checkpoint_save_best_only",
            "ModelCheckpoint('best.weights.h5', monitor='val_loss', save_best_only=True, "
            "save_weights_only=True), epochs=10, followed by a watcher that notes when the "
            "checkpoint's `best` changed (= a save). checkpoint_file_weights are the weights "
            "read back from the file after fit (those of the last epoch that improved).",
            make,
            [{"class_name": "ModelCheckpoint",
              "args": {"filepath": "best.weights.h5", **args},
              "derived": {"monitor_op": "less", "initial_best": "Infinity",
                          "mode": "auto", "save_freq": "epoch"}}],
            epochs,
            lambda cb: {"best": f64(cb.best)},
            extra_callbacks_after=(watcher,),
            extra_fn=extra,
        )
    return case


# ----- learning rate --------------------------------------------------------------------
def schedule(epoch, lr):
    return lr * 0.5 if epoch >= 2 else lr


def learning_rate_scheduler_case():
    epochs = 6
    return run_case(
        "learning_rate_scheduler_halve_from_epoch2",
        "LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch >= 2 else lr), epochs=6: "
        "lr 0.5, 0.5, 0.25, 0.125, ... (set at each epoch's beginning from the current "
        "float32 lr); history['lr'] holds the lr of each epoch.",
        lambda: [keras.callbacks.LearningRateScheduler(schedule)],
        [{"class_name": "LearningRateScheduler",
          "args": {"schedule": "lambda epoch, lr: lr * 0.5 if epoch >= 2 else lr",
                   "verbose": 0}}],
        epochs,
        lambda cb: {},
    )


def reduce_lr_case():
    args = {"monitor": "val_loss", "factor": 0.5, "patience": 1, "min_lr": 0.01,
            "cooldown": 0, "min_delta": 1e-4}
    return run_case(
        "reduce_lr_on_plateau",
        "ReduceLROnPlateau(monitor='val_loss', factor=0.5, patience=1, min_lr=0.01, "
        "cooldown=0, min_delta=1e-4), epochs=15. history['lr'] (and lr_per_epoch) is the "
        "lr used during each epoch; a reduction decided at the end of epoch e applies from "
        "epoch e+1.",
        lambda: [keras.callbacks.ReduceLROnPlateau(**args)],
        [{"class_name": "ReduceLROnPlateau", "args": plain(args),
          "derived": {"monitor_op": "current < best - min_delta", "initial_best": "Infinity"}}],
        15,
        lambda cb: {"best": f64(cb.best), "wait": int(cb.wait),
                    "cooldown_counter": int(cb.cooldown_counter)},
    )


def reduce_lr_cooldown_case():
    args = {"monitor": "val_loss", "factor": 0.5, "patience": 1, "min_lr": 0.01,
            "cooldown": 2, "min_delta": 1e-4}
    return run_case(
        "reduce_lr_on_plateau_cooldown2",
        "As reduce_lr_on_plateau with cooldown=2.",
        lambda: [keras.callbacks.ReduceLROnPlateau(**args)],
        [{"class_name": "ReduceLROnPlateau", "args": plain(args),
          "derived": {"monitor_op": "current < best - min_delta", "initial_best": "Infinity"}}],
        15,
        lambda cb: {"best": f64(cb.best), "wait": int(cb.wait),
                    "cooldown_counter": int(cb.cooldown_counter)},
    )


# ----- TerminateOnNaN -------------------------------------------------------------------
class BatchWatcher(keras.callbacks.Callback):
    """Put after TerminateOnNaN: the batch logs it saw and stop_training after it."""

    def __init__(self):
        super().__init__()
        self.batches = []
        self._epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = int(epoch)

    def on_train_batch_end(self, batch, logs=None):
        self.batches.append({
            "epoch": self._epoch,
            "batch": int(batch),
            "logs": {k: f32(v) for k, v in (logs or {}).items()},
            "stop_training": bool(self.model.stop_training),
        })


def terminate_on_nan_case(case_id, learning_rate, text):
    holder = {}

    def watcher():
        holder["w"] = BatchWatcher()
        return holder["w"]

    def extra(model, made, after, recorder):
        batches = holder["w"].batches
        stop = next((b for b in batches if b["stop_training"]), None)
        return {
            "batch_logs": batches,
            "stopped_at": None if stop is None else {"epoch": stop["epoch"],
                                                     "batch": stop["batch"]},
            "batches_run": len(batches),
        }

    return run_case(
        case_id, text,
        lambda: [keras.callbacks.TerminateOnNaN()],
        [{"class_name": "TerminateOnNaN", "args": {}}],
        30,
        lambda cb: {},
        learning_rate=learning_rate,
        extra_callbacks_after=(watcher,),
        extra_fn=extra,
    )


def terminate_on_nan_cases():
    return [
        terminate_on_nan_case(
            "terminate_on_nan_lr_1e12", 1e12,
            "TerminateOnNaN with SGD(learning_rate=1e12), epochs=30: epoch 0 ends with a "
            "huge but finite loss; the first batch of epoch 1 gives a NaN running-mean loss, "
            "stop_training is set and the batch loop ends at once (batch 1 of epoch 1 never "
            "runs), yet validation still runs and epoch 1 is recorded in history (loss NaN). "
            "batch_logs are the logs of every training batch run, with stop_training as "
            "seen right after TerminateOnNaN."),
        terminate_on_nan_case(
            "terminate_on_nan_lr_1e30", 1e30,
            "TerminateOnNaN with SGD(learning_rate=1e30), epochs=30: the loss of epoch 0's "
            "second (last) batch is already NaN; training stops after epoch 0."),
    ]


def csv_logger_case():
    directory = tempfile.mkdtemp()
    path = os.path.join(directory, "log.csv")

    def text_after(model, made, after, recorder):
        first = open(path, "rb").read().decode()
        # A second fit appends to the file, with another separator and no validation data.
        model.fit(
            X, Y, epochs=2, batch_size=BATCH_SIZE, shuffle=False, verbose=0,
            callbacks=[keras.callbacks.CSVLogger(path, separator=";", append=True)],
        )
        appended = open(path, "rb").read().decode()
        os.remove(path)
        os.rmdir(directory)
        return {"csv_text": first, "csv_text_appended": appended,
                "weights_after_append": weights_of(model)}

    return run_case(
        "csv_logger",
        "CSVLogger('log.csv'), epochs=3 with validation data: the file's text (header "
        "'epoch' + sorted log keys, rows ending in \\r\\n, floats as Python's repr); then a "
        "second fit(epochs=2) without validation data and CSVLogger(separator=';', "
        "append=True): no second header, the val_ columns of the first header filled with "
        "NA (Keras adds val_ keys when the logs have none).",
        lambda: [keras.callbacks.CSVLogger(path)],
        [{"class_name": "CSVLogger", "args": {"filename": "log.csv"}}],
        3,
        lambda cb: {},
        extra_fn=text_after,
    )


def main():
    root = {
        "format_version": 1,
        "generator": "tests/data/keras_callbacks.py",
        "environment": {
            "tensorflow": tf.__version__,
            "tf_keras": keras.__version__,
            "numpy": np.__version__,
        },
        "conventions": {
            "tensor": "{dtype, shape, data}: data flattened row-major (C order); optional "
            "`name` (Keras weight path without ':0') and `trainable`",
            "float": "float32 values in Python's shortest round-trip repr: parse as f64, "
            "cast to f32 (exact); callback_state `best` and `derived.min_delta` are the "
            "callback's own value (Python float: the float32 logged value widened, or "
            "+-Infinity); non-finite floats as \"NaN\", \"Infinity\", \"-Infinity\"",
            "weights": "lists in model.weights order: embedding/embeddings, dense/kernel, "
            "dense/bias",
            "epochs": "0-based epoch indices everywhere (Keras' own; its messages print "
            "epoch + 1)",
            "history": "history.history in Keras' key order (history_keys); history_epoch "
            "the epoch indices run; epochs_run = len(history_epoch)",
            "callback_state": "per callback under test, its attributes after fit returned",
            "lr_per_epoch": "optimizer learning rate read at each epoch's end by a callback "
            "placed first (before the callbacks under test): the lr used for that epoch's "
            "updates; lr_after_fit the optimizer's lr when fit returned",
            "epoch_end_weights": "weights at each epoch's end (after its updates, before "
            "any restore); final_weights after fit returned",
            "callbacks": "the callbacks under test in list order; fit's list is [recorder, "
            "*callbacks, *watchers] and History is appended last by Keras",
        },
        "reference_run": reference_run(),
        "cases": [
            *cases_early_stopping(),
            model_checkpoint_case(),
            learning_rate_scheduler_case(),
            reduce_lr_case(),
            reduce_lr_cooldown_case(),
            *terminate_on_nan_cases(),
            csv_logger_case(),
        ],
    }
    with open(OUT, "w") as f:
        json.dump(strict_json(root), f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
