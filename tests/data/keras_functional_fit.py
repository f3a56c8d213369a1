"""Writes keras_functional_fit.json: reference values from the real tf_keras 2.21 for training
functional models through fit(): several outputs with metrics, validation_data and
validation_split, EarlyStopping on a two-input model, and a Sequential next to the same
model written with the functional API.

    python3 -m venv /tmp/tfk
    /tmp/tfk/bin/pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0
    /tmp/tfk/bin/python tests/data/keras_functional_fit.py

It reuses the helpers of keras_functional.py beside it (the `Graph` recorder, `tensor`,
`values`, `weights_of`, ...), hence the same settings: every weight set explicitly (dyadic
values, exact in float32) and written into the JSON, fit() with shuffle=False on one CPU
thread with op determinism and oneDNN off, keras.backend.clear_session() before every model
so automatic names restart at `embedding`, `dense`, `model`. Rerunning gives a
byte-identical file.

Tensors are {dtype, shape, data} as in the other files of this folder. Floats are float32
values as Keras computed them, in Python's shortest round-trip repr (parse as f64, cast to
f32: exact).

What tf_keras 2.21 reports (engine/training.py, engine/compile_utils.py, callbacks.py):
- The epoch logs, and so History's keys (History appends its series in the order of the
  first epoch's logs), are: `loss`; with several outputs each output's `{output}_loss`
  (unweighted) in output order; the metrics, output by output and within an output in the
  order of compile's list, named by the metric's name with one output and
  `{output}_{name}` with several (the name is the string given: "accuracy", "mae"); then the
  same with `val_` in front when there is validation data. `history_keys` records that order
  (JSON objects have none).
- evaluate(return_dict=True): the same keys as the training part, in the same order.
- `loss` is sum(loss_weight * output loss); `{output}_loss` is the output's own loss.
- A flat metrics list applies every metric to every output; "accuracy" resolves per output
  (binary accuracy for the one-unit sigmoid output, sparse categorical accuracy for the
  softmax output with integer targets).
- validation_split: the first floor(n * (1 - split)) samples train, the rest validate
  (before any shuffling).
- A flat metrics list with "mae" on the softmax output with integer targets of shape (n,):
  Keras expands the targets to (n, 1) and broadcasts them against the (n, 3)
  probabilities: mean over the 3 columns of |label - p|, which for labels 0, 1, 2 is the
  constant 1/3, 2/3, 5/3 whatever the probabilities (they sum to 1).
- EarlyStopping(restore_best_weights=True) puts the best epoch's weights back when it stops.
- A keras.Sequential and the same layers as keras.Model(inputs, outputs) train identically:
  the same history (keys and values) and weights, bit for bit (`keras_identical`).
"""

import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ next to the data
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

# Importing it sets the TensorFlow determinism options before tf_keras is used.
import keras_functional as kf  # noqa: E402
from keras_functional import Graph, fresh, plain, tensor, values, weights_of  # noqa: E402

import json  # noqa: E402

keras = kf.keras
tf = kf.tf

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_functional_fit.json")


# ----- helpers --------------------------------------------------------------------------
def f32(v):
    return float(np.float32(v))


def history_record(history):
    return {
        "history_keys": list(history.history.keys()),
        "history": {k: [f32(v) for v in vs] for k, vs in history.history.items()},
        "epochs_run": len(history.epoch),
    }


def evaluate_record(model, x, y):
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    return {
        "evaluate_keys": list(result.keys()),
        "evaluate": {k: f32(v) for k, v in result.items()},
    }


def compile_record(optimizer, loss, loss_weights, metrics):
    return {
        "optimizer": {
            "class_name": type(optimizer).__name__,
            "config": plain(optimizer.get_config()),
        },
        "loss": loss,
        "loss_weights": loss_weights,
        "metrics": metrics,
    }


def arrays(xs, names, key):
    return [tensor(a, **{key: n}) for a, n in zip(xs, names)]


def input_names(model):
    return [i.name.split(":")[0] for i in model.inputs]


# ----- 1, 2: two outputs ----------------------------------------------------------------
IDS = np.array(
    [[1, 2, 0], [3, 0, 5], [8, 8, 8], [4, 0, 0], [2, 6, 7], [5, 1, 0], [7, 0, 3],
     [6, 6, 0], [1, 1, 1], [2, 3, 4], [8, 0, 0], [5, 7, 2]], np.int32)
CLICK = np.array([[1], [0], [1], [0], [1], [1], [0], [0], [1], [0], [1], [0]], np.float32)
CATEGORY = np.array([0, 2, 1, 1, 0, 2, 2, 1, 0, 1, 2, 0], np.int32)
IDS_VAL = np.array([[3, 4, 0], [7, 7, 1], [2, 0, 0], [6, 5, 8]], np.int32)
CLICK_VAL = np.array([[0], [1], [1], [0]], np.float32)
CATEGORY_VAL = np.array([2, 0, 1, 1], np.int32)


def two_outputs_model():
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
    model.set_weights([
        values((9, 4), 8),
        values((4, 1), 9, scale=2.0),
        np.array([0.0], np.float32),
        values((4, 3), 10, scale=2.0),
        np.array([0.0625, -0.0625, 0.0], np.float32),
    ])
    return model, description


def two_outputs(case_id, text, x, y, fit_args, validation, metrics, callbacks=()):
    model, description = two_outputs_model()
    optimizer = keras.optimizers.RMSprop(learning_rate=0.01)
    loss = ["binary_crossentropy", "sparse_categorical_crossentropy"]
    loss_weights = [1.0, 0.5]
    model.compile(optimizer=optimizer, loss=loss, loss_weights=loss_weights, metrics=metrics)
    # Before fit: a learning-rate callback changes the optimizer's config.
    compiled = compile_record(optimizer, loss, loss_weights, metrics)
    initial = weights_of(model)
    made = [make() for make, _ in callbacks]
    history = model.fit(
        x, y, shuffle=False, verbose=0, callbacks=made, **fit_args, **validation
    )
    names = input_names(model)
    record = {
        "id": case_id,
        "description": text,
        "model": description,
        "initial_weights": initial,
        "x": arrays(x, names, "input"),
        "y": arrays(y, model.output_names, "output"),
        "compile": compiled,
        "fit": {**fit_args, "shuffle": False},
        "expected": {
            **history_record(history),
            **evaluate_record(model, x, y),
            "final_weights": weights_of(model),
        },
    }
    if callbacks:
        record["callbacks"] = [spec for _, spec in callbacks]
        stop = made[-1]
        record["expected"].update({
            "stopped_epoch": int(stop.stopped_epoch),
            "best_epoch": int(stop.best_epoch),
            "best": f32(stop.best),
            "lr_after_fit": f32(keras.backend.get_value(model.optimizer.learning_rate)),
        })
    if "validation_data" in validation:
        vx, vy = validation["validation_data"]
        record["x_val"] = arrays(vx, names, "input")
        record["y_val"] = arrays(vy, model.output_names, "output")
    else:
        record["fit"]["validation_split"] = validation["validation_split"]
    return record


TWO_OUTPUTS = (
    "One id input (shape (3,), 0 is padding) -> Embedding(9, 4, mask_zero=True) -> "
    "GlobalAveragePooling1D -> Dense(1, sigmoid, name='click') and Dense(3, softmax, "
    "name='category'); loss [binary_crossentropy, sparse_categorical_crossentropy], "
    "loss_weights [1.0, 0.5]; RMSprop(0.01), 4 epochs of 3 batches of 4"
)


def two_outputs_validation_data():
    return two_outputs(
        "two_outputs_validation_data",
        TWO_OUTPUTS + ", metrics ['accuracy'] (both outputs), validation_data of 4 "
        "samples; evaluate on the training data after fit (batch 32).",
        [IDS], [CLICK, CATEGORY], {"epochs": 4, "batch_size": 4},
        {"validation_data": ([IDS_VAL], [CLICK_VAL, CATEGORY_VAL])},
        ["accuracy"],
    )


def two_outputs_mae_validation_data():
    return two_outputs(
        "two_outputs_mae_validation_data",
        TWO_OUTPUTS + ", metrics ['accuracy', 'mae'] (both outputs: on 'category' mae "
        "compares the integer targets, expanded to (n, 1), with each of the 3 "
        "probabilities), validation_data of 4 samples; evaluate on the training data "
        "after fit (batch 32).",
        [IDS], [CLICK, CATEGORY], {"epochs": 4, "batch_size": 4},
        {"validation_data": ([IDS_VAL], [CLICK_VAL, CATEGORY_VAL])},
        ["accuracy", "mae"],
    )


def two_outputs_callbacks():
    stop_args = {"monitor": "val_category_accuracy", "patience": 1,
                 "restore_best_weights": True}
    return two_outputs(
        "two_outputs_callbacks",
        TWO_OUTPUTS.replace("4 epochs", "up to 8 epochs") + ", metrics ['accuracy'], "
        "validation_data of 4 samples, callbacks [LearningRateScheduler(lr * 0.5 from epoch "
        "1 on), EarlyStopping(monitor='val_category_accuracy', patience=1, "
        "restore_best_weights=True)] (mode auto: the name ends in 'accuracy', so higher is "
        "better); the scheduler adds `lr` to the logs, after every val_ key; evaluate on "
        "the training data after fit (restored weights).",
        [IDS], [CLICK, CATEGORY], {"epochs": 8, "batch_size": 4},
        {"validation_data": ([IDS_VAL], [CLICK_VAL, CATEGORY_VAL])},
        ["accuracy"],
        [
            (lambda: keras.callbacks.LearningRateScheduler(
                lambda epoch, lr: lr * 0.5 if epoch >= 1 else lr),
             {"class_name": "LearningRateScheduler",
              "schedule": "lambda epoch, lr: lr * 0.5 if epoch >= 1 else lr"}),
            (lambda: keras.callbacks.EarlyStopping(**stop_args),
             {"class_name": "EarlyStopping", "args": stop_args}),
        ],
    )


def two_outputs_validation_split():
    # 14 samples: the first floor(14 * 0.75) = 10 train (batches of 4, 4, 2), the last 4
    # validate.
    x = np.concatenate([IDS, IDS_VAL[:2]])
    click = np.concatenate([CLICK, CLICK_VAL[:2]])
    category = np.concatenate([CATEGORY, CATEGORY_VAL[:2]])
    return two_outputs(
        "two_outputs_validation_split",
        "The model of two_outputs_validation_data (metrics ['accuracy']) on 14 samples "
        "with validation_split=0.25: the first 10 train (batches of 4, 4, 2), the last 4 "
        "validate; 4 epochs; evaluate on all 14 samples after fit.",
        [x], [click, category], {"epochs": 4, "batch_size": 4},
        {"validation_split": 0.25},
        ["accuracy"],
    )


# ----- 3: a recommender with EarlyStopping ----------------------------------------------
USERS = np.array([[0], [1], [2], [3], [4], [5], [6], [0], [1], [2], [3], [4]], np.int32)
ITEMS = np.array([[0], [1], [2], [3], [4], [0], [1], [2], [3], [4], [0], [1]], np.int32)
LIKED = np.array([[1], [0], [1], [1], [0], [0], [1], [0], [1], [0], [1], [1]], np.float32)
# Held-out pairs whose loss falls for a few epochs and then rises (the model overfits).
# (Found by drawing random held-out sets: val_loss falls for epochs 0-3, its minimum, and
# rises from epoch 4, so EarlyStopping(patience=1) stops at epoch 4 and restores epoch 3.)
USERS_VAL = np.array([[4], [5], [0], [5]], np.int32)
ITEMS_VAL = np.array([[2], [2], [3], [1]], np.int32)
LIKED_VAL = np.array([[1], [0], [0], [0]], np.float32)
RECOMMENDER_EPOCHS = 20


def recommender_model():
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
    g.call(g.layer("Dot", axes=1), ["user_vector", "item_vector"], "score")
    g.call(g.layer("Dense", units=1, activation="sigmoid"), "score", "liked")
    model, description = g.model(["liked"])
    model.set_weights([
        values((7, 4), 1),
        values((5, 4), 2),
        np.array([[1.5]], np.float32),
        np.array([0.125], np.float32),
    ])
    return model, description


def recommender_fit(callbacks):
    model, description = recommender_model()
    optimizer = keras.optimizers.Adam(learning_rate=0.05)
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
    compiled = compile_record(optimizer, "binary_crossentropy", None, ["accuracy"])
    initial = weights_of(model)
    history = model.fit(
        [USERS, ITEMS], LIKED, epochs=RECOMMENDER_EPOCHS, batch_size=4, shuffle=False,
        verbose=0, validation_data=([USERS_VAL, ITEMS_VAL], LIKED_VAL),
        callbacks=callbacks,
    )
    return model, description, compiled, initial, history


def recommender_early_stopping():
    args = {"monitor": "val_loss", "patience": 1, "restore_best_weights": True}
    stop = keras.callbacks.EarlyStopping(**args)
    model, description, compiled, initial, history = recommender_fit([stop])
    names = input_names(model)
    # The same fit without the callback: the curve EarlyStopping cut short.
    _, _, _, _, full = recommender_fit([])
    return {
        "id": "recommender_early_stopping",
        "description": "Two-input recommender: user and item ids (shape (1,), int32) -> "
        "Embedding(7, 4) and Embedding(5, 4) -> Flatten -> Dot(axes=1) -> Dense(1, "
        "sigmoid); binary_crossentropy, Adam(0.05), metrics ['accuracy'], batches of 4, "
        f"up to {RECOMMENDER_EPOCHS} epochs, validation_data of 4 held-out pairs, "
        "EarlyStopping(monitor='val_loss', patience=1, restore_best_weights=True). "
        "final_weights are the restored ones; evaluate is on the training data after fit.",
        "model": description,
        "initial_weights": initial,
        "x": arrays([USERS, ITEMS], names, "input"),
        "y": arrays([LIKED], model.output_names, "output"),
        "x_val": arrays([USERS_VAL, ITEMS_VAL], names, "input"),
        "y_val": arrays([LIKED_VAL], model.output_names, "output"),
        "compile": compiled,
        "fit": {"epochs": RECOMMENDER_EPOCHS, "batch_size": 4, "shuffle": False},
        "callbacks": [{"class_name": "EarlyStopping", "args": args}],
        "expected": {
            **history_record(history),
            "stopped_epoch": int(stop.stopped_epoch),
            "best_epoch": int(stop.best_epoch),
            "best": f32(stop.best),
            **evaluate_record(model, [USERS, ITEMS], LIKED),
            "final_weights": weights_of(model),
            "without_callback": history_record(full),
        },
    }


# ----- 4: a Sequential and the same model as a graph ------------------------------------
SEQ_X = np.array(
    [[1, 2, 3, 4], [5, 6, 7, 8], [9, 1, 1, 2], [3, 3, 0, 4], [8, 7, 6, 5], [2, 4, 6, 8],
     [1, 3, 5, 7], [0, 9, 0, 9], [4, 4, 4, 1], [6, 2, 9, 3]], np.int32)
SEQ_Y = np.array([[1], [0], [1], [1], [0], [1], [0], [0], [1], [0]], np.float32)
SEQ_X_VAL = np.array([[2, 2, 3, 9], [7, 5, 1, 0], [6, 8, 4, 4]], np.int32)
SEQ_Y_VAL = np.array([[1], [0], [1]], np.float32)
SEQ_INITIAL = [
    values((10, 3), 40, scale=2.0),
    values((3, 1), 41, scale=4.0),
    np.array([0.125], np.float32),
]
SEQ_LAYERS = [
    {"name": "table", "class_name": "Embedding",
     "args": {"input_dim": 10, "output_dim": 3, "mask_zero": False}},
    {"name": "mean", "class_name": "GlobalAveragePooling1D", "args": {}},
    {"name": "out", "class_name": "Dense", "args": {"units": 1, "activation": "sigmoid"}},
]


def sequential_twin(kind):
    fresh()
    if kind == "sequential":
        model = keras.Sequential(
            [keras.Input(shape=(4,), dtype="int32", name="ids")]
            + [getattr(keras.layers, s["class_name"])(name=s["name"], **s["args"])
               for s in SEQ_LAYERS],
            name="twin",
        )
        description = {
            "kind": "sequential",
            "name": model.name,
            "input": {"shape": [None, 4], "dtype": "int32"},
            "layers": SEQ_LAYERS,
        }
    else:
        g = Graph()
        g.input("ids", (4,), "int32")
        previous = "ids"
        for s in SEQ_LAYERS:
            layer = g.layer(s["class_name"], name=s["name"], **s["args"])
            previous = g.call(layer, previous, s["name"])
        model, description = g.model([previous])
        model._name = "twin"
        description["name"] = "twin"
        # The recorded arguments without the explicit names (given to the Rust rebuilder
        # through the layer's `name`).
        for spec in description["layers"]:
            spec["args"].pop("name", None)
    model.set_weights(SEQ_INITIAL)
    optimizer = keras.optimizers.SGD(learning_rate=0.5, momentum=0.5)
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
    compiled = compile_record(optimizer, "binary_crossentropy", None, ["accuracy"])
    initial = weights_of(model)
    history = model.fit(
        SEQ_X, SEQ_Y, epochs=5, batch_size=4, shuffle=False, verbose=0,
        validation_data=(SEQ_X_VAL, SEQ_Y_VAL),
    )
    return {
        "kind": kind,
        "model": description,
        "model_class": type(model).__name__,
        "initial_weights": initial,
        "compile": compiled,
        "expected": {
            **history_record(history),
            **evaluate_record(model, SEQ_X, SEQ_Y),
            "final_weights": weights_of(model),
        },
    }


def sequential_and_functional():
    sequential = sequential_twin("sequential")
    functional = sequential_twin("functional")
    same = (
        sequential["expected"]["history"] == functional["expected"]["history"]
        and sequential["expected"]["history_keys"] == functional["expected"]["history_keys"]
        and sequential["expected"]["final_weights"] == functional["expected"]["final_weights"]
    )
    return {
        "id": "sequential_and_functional",
        "description": "Input((4,), int32, name='ids') -> Embedding(10, 3, name='table') -> "
        "GlobalAveragePooling1D(name='mean') -> Dense(1, sigmoid, name='out'), once as "
        "keras.Sequential and once as keras.Model(inputs, outputs), both named 'twin', with "
        "the same initial weights; binary_crossentropy, SGD(0.5, momentum=0.5), metrics "
        "['accuracy'], 5 epochs of batches of 4 (4, 4, 2), validation_data of 3 samples; "
        "evaluate on the training data after fit.",
        "x": tensor(SEQ_X, input="ids"),
        "y": tensor(SEQ_Y, output="out"),
        "x_val": tensor(SEQ_X_VAL, input="ids"),
        "y_val": tensor(SEQ_Y_VAL, output="out"),
        "fit": {"epochs": 5, "batch_size": 4, "shuffle": False},
        "keras_identical": same,
        "sequential": sequential,
        "functional": functional,
    }


def main():
    root = {
        "format_version": 1,
        "generator": "tests/data/keras_functional_fit.py",
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
            "weights": "lists in model.weights order",
            "model": "as in keras_functional.json (inputs, layers in creation order with "
            "their constructor arguments, calls, outputs)",
            "history_keys": "History.history's keys in Keras' order (the first epoch's "
            "logs); `history` holds the series by key",
            "evaluate_keys": "evaluate(return_dict=True)'s keys in Keras' order",
        },
        "cases": [
            two_outputs_validation_data(),
            two_outputs_mae_validation_data(),
            two_outputs_validation_split(),
            two_outputs_callbacks(),
            recommender_early_stopping(),
            sequential_and_functional(),
        ],
    }
    with open(OUT, "w") as f:
        json.dump(root, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
