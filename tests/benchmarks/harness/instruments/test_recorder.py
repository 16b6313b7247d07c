"""The gradient recorder measures what an independent computation measures, and
leaves the model as it found it.

Marked `parity`: `.ci/run` runs them again under KERAS_BACKEND=jax, where batch
callbacks run in a worker thread and the recorder must reorder what it reads.
"""

import json
import threading

import keras
import numpy as np
import pytest

from gradzoo import zoo
from gradzoo.benchmarks.harness.instruments.autodiff import loss_and_gradients
from gradzoo.benchmarks.harness.instruments.gradnorms import gradient_stats, layer_groups
from gradzoo.benchmarks.harness.instruments.recorder import LOG_KEY, GradientRecorder

pytestmark = pytest.mark.parity

XENT = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def batch(shape, n=32, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, *shape)).astype("float32"), rng.integers(0, classes, size=n).astype("int32")


def small_mlp(hidden=16, inputs=8, outputs=3, **dense_kwargs):
    """A user's own functional model, nothing from the zoo."""
    x_in = keras.Input((inputs,))
    h = keras.layers.Dense(hidden, activation="relu", name="hidden", **dense_kwargs)(x_in)
    return keras.Model(x_in, keras.layers.Dense(outputs, name="out", **dense_kwargs)(h))


def layer_norms(model, grads):
    groups = layer_groups(model.trainable_variables)
    return [np.sqrt(sum(float(np.sum(np.square(grads[i]))) for i in g["indices"])) for g in groups]


class LogKeys(keras.callbacks.Callback):
    """Remembers the keys of every train batch's logs."""

    def __init__(self):
        super().__init__()
        self.keys = set()

    def on_train_batch_end(self, batch, logs=None):
        self.keys.update(logs)


@pytest.mark.parametrize(
    "name, shape, overrides",
    [
        # BatchNorm runs in training mode in both computations, so they agree.
        ("mlp_he_relu_bn", (40,), dict(depth=3, width=32)),
        ("rnn_lstm", (6, 2), dict(units=8)),
    ],
)
def test_step0_norms_equal_an_independent_gradient_computation(name, shape, overrides):
    model = zoo.build(name, shape, 3, **overrides)
    x, y = batch(shape)
    _, grads = loss_and_gradients(model, XENT, x, y)  # same weights, before any update
    expected = layer_norms(model, grads)

    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=XENT)
    recorder = GradientRecorder()
    model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0, callbacks=[recorder])
    summary = recorder.summary()

    assert summary["steps"] == [0]
    names = [g["name"] for g in layer_groups(model.trainable_variables)]
    assert [layer["name"] for layer in summary["layers"]] == names
    np.testing.assert_allclose(summary["norms"][0], expected, rtol=1e-4)
    np.testing.assert_allclose(summary["global_norm_pre"][0], np.sqrt(np.sum(np.square(expected))), rtol=1e-4)
    assert all(n > 0 for n in summary["norms"][0])
    json.dumps(summary)


@pytest.mark.parametrize("clip", [None, "clipnorm", "global_clipnorm"])
def test_post_clip_norm_is_the_norm_of_the_update_actually_applied(clip):
    c = 0.05
    model = small_mlp()
    x, y = batch((8,))
    _, grads = loss_and_gradients(model, XENT, x, y)
    var_norms = np.array([np.linalg.norm(g) for g in grads])
    assert var_norms.min() > c  # every variable's gradient gets clipped
    before = [np.array(v) for v in model.trainable_variables]

    # Plain SGD with lr=1: the update is exactly the (clipped) gradient.
    model.compile(optimizer=keras.optimizers.SGD(1.0, **({clip: c} if clip else {})), loss=XENT)
    recorder = GradientRecorder()
    model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0, callbacks=[recorder])
    summary = recorder.summary()
    pre, post = summary["global_norm_pre"][0], summary["global_norm_post"][0]
    applied = np.sqrt(sum(np.sum(np.square(np.array(v) - b)) for v, b in zip(model.trainable_variables, before)))

    np.testing.assert_allclose(pre, np.linalg.norm(var_norms), rtol=1e-4)
    np.testing.assert_allclose(post, applied, rtol=1e-4)
    if clip == "clipnorm":  # each variable clipped on its own
        np.testing.assert_allclose(post, np.sqrt(np.sum(np.minimum(var_norms, c) ** 2)), rtol=1e-4)
    elif clip == "global_clipnorm":
        np.testing.assert_allclose(post, min(pre, c), rtol=1e-4)
    else:
        assert post == pre
    assert summary["clipped"] == [clip is not None]
    assert summary["epoch"]["clip_rate"] == [1.0 if clip else 0.0]
    if clip:
        assert post < pre


def test_retention_keeps_first_steps_then_every_stride_th_and_folds_epochs():
    x, y = batch((8,), n=160)
    model = small_mlp()
    model.compile(optimizer="adam", loss=XENT)
    recorder = GradientRecorder(first_steps=3, stride=4)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[recorder])  # 10 steps an epoch
    summary = recorder.summary()

    assert summary["steps"] == [0, 1, 2, 3, 7, 11, 15, 19]
    assert summary["steps_seen"] == 20
    assert len(summary["norms"]) == len(summary["global_norm_pre"]) == len(summary["global_norm_post"]) == 8
    assert all(len(row) == 2 for row in summary["norms"])  # hidden, out
    epoch = summary["epoch"]
    for key in epoch:
        assert len(epoch[key]) == 2, key
    lo, mean, hi = (np.array(epoch[k]) for k in ("min", "mean", "max"))
    assert np.all(lo <= mean) and np.all(mean <= hi) and np.all(lo > 0)
    # The kept steps of epoch 0 lie inside that epoch's range.
    first = np.array([row for step, row in zip(summary["steps"], summary["norms"]) if step < 10])
    assert np.all(first >= lo[0] * (1 - 1e-6)) and np.all(first <= hi[0] * (1 + 1e-6))
    assert summary["nonfinite_step"] is None
    json.dumps(summary)


def test_a_diverging_run_stops_and_says_when():
    # Keras's own TerminateOnNaN test: Constant(1e5) kernels overflow float32.
    init = keras.initializers.Constant(1e5)
    model = keras.Sequential(
        [keras.Input((10,))] + [keras.layers.Dense(10, activation="relu", kernel_initializer=init) for _ in range(3)]
        + [keras.layers.Dense(1, kernel_initializer=init)]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="mse")
    x = np.abs(np.random.default_rng(0).normal(size=(64, 10))).astype("float32")
    y = np.ones((64, 1), "float32")
    recorder = GradientRecorder()
    sync_threads = []
    if hasattr(model, "jax_state_sync"):
        # On JAX the batch callback runs in a worker thread; syncing the state
        # from there (what `Callback.model` does) races the train loop.
        plain_sync = model.jax_state_sync

        def jax_state_sync():
            sync_threads.append(threading.current_thread())
            plain_sync()

        model.jax_state_sync = jax_state_sync
    epochs, steps_per_epoch = 5, 4
    model.fit(x, y, batch_size=16, epochs=epochs, verbose=0, callbacks=[recorder])
    summary = recorder.summary()

    assert all(t is threading.main_thread() for t in sync_threads)
    assert summary["nonfinite_step"] == 0
    assert model.stop_training
    assert summary["steps_seen"] < epochs * steps_per_epoch
    assert summary["steps"][0] == 0
    assert len(summary["epoch"]["mean"]) == 1


def test_an_overflowing_layer_leaves_the_other_layers_norms_finite():
    model = small_mlp()
    groups = layer_groups(model.trainable_variables, model)
    grads = [np.ones(v.shape, "float32") for v in model.trainable_variables]
    grads[0][0, 0] = np.inf  # hidden/kernel
    stats = keras.ops.convert_to_numpy(gradient_stats([keras.ops.convert_to_tensor(g) for g in grads], groups))
    hidden, out, pre, post = stats
    assert np.isinf(hidden) and np.isinf(pre) and np.isinf(post)
    np.testing.assert_allclose(out, np.sqrt(16 * 3 + 3), rtol=1e-6)


def test_hooks_come_off_after_fit_and_a_later_recorder_records_again():
    model = small_mlp()
    model.compile(optimizer="adam", loss=XENT)
    x, y = batch((8,), n=64)
    optimizer = model.optimizer
    for _ in range(2):  # plain, recorded, plain, recorded: JAX must not reuse a cached trace
        plain = LogKeys()
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[plain])
        assert plain.keys == {"loss"}
        recorder, seen = GradientRecorder(), LogKeys()
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[recorder, seen])
        assert recorder.summary()["steps"] == [0, 1, 2, 3]
        assert LOG_KEY not in seen.keys  # popped before later callbacks see it
        assert "apply" not in vars(optimizer) and optimizer.apply.__func__ is type(optimizer).apply
        for name in ("compute_metrics", "train_step"):
            assert name not in vars(model) and getattr(model, name).__func__ is getattr(type(model), name)
    history = model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[LogKeys()]).history
    assert set(history) == {"loss"}


class TwoDense(keras.Model):
    def __init__(self):
        super().__init__()
        self.first = keras.layers.Dense(16, activation="tanh", name="first")
        self.second = keras.layers.Dense(3, name="second")

    def call(self, x):
        return self.second(self.first(x))


@pytest.mark.parametrize("kind", ["sequential", "subclassed"])
def test_works_in_a_user_sequential_or_subclassed_model_with_validation(kind):
    if kind == "sequential":
        model = keras.Sequential(
            [
                keras.Input((8,)),
                keras.layers.Dense(16, activation="tanh", name="first"),
                keras.layers.Dense(3, name="second"),
            ]
        )
    else:
        model = TwoDense()
    model.compile(optimizer="adam", loss=XENT, metrics=["accuracy"])
    x, y = batch((8,), n=64)
    recorder = GradientRecorder()
    history = model.fit(x, y, batch_size=16, epochs=2, validation_data=(x, y), verbose=0, callbacks=[recorder])
    summary = recorder.summary()
    # Their variable paths start with the model's name: still one group per layer.
    assert [layer["name"] for layer in summary["layers"]] == ["first", "second"]
    assert summary["steps"] == list(range(8))
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_activation_stats_see_saturation_and_dead_units():
    x_in = keras.Input((20,))
    # Pre-activations of std ~ 10 * sqrt(20): almost every sigmoid is pinned at 0 or 1.
    wide = keras.initializers.RandomNormal(stddev=10.0)
    s = keras.layers.Dense(64, activation="sigmoid", kernel_initializer=wide, name="sig")(x_in)
    # A bias of -100 keeps every ReLU at zero for every input: all dead.
    d = keras.layers.Dense(32, bias_initializer=keras.initializers.Constant(-100.0), name="pre")(x_in)
    d = keras.layers.Activation("relu", name="dead_relu")(d)
    out = keras.layers.Dense(3, name="out")(keras.layers.Concatenate(name="cat")([s, d]))
    model = keras.Model(x_in, out)
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss=XENT)
    x, y = batch((20,), n=64)
    recorder = GradientRecorder(probe_x=x)
    model.fit(x, y, batch_size=32, epochs=2, verbose=0, callbacks=[recorder])
    acts = recorder.summary()["activations"]

    assert acts["layers"] == [{"name": "sig", "activation": "sigmoid"}, {"name": "dead_relu", "activation": "relu"}]
    assert len(acts["per_epoch"]) == 2
    saturated, dead = acts["per_epoch"][-1]
    assert saturated > 0.8
    assert dead == 1.0


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(first_steps=-1), "first_steps"),
        (dict(first_steps=2.5), "first_steps"),
        (dict(first_steps=True), "first_steps"),
        (dict(stride=0), "stride"),
        (dict(stride="10"), "stride"),
        (dict(stride=False), "stride"),
    ],
)
def test_bad_retention_arguments_are_named(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`.*Received: {argument}="):
        GradientRecorder(**kwargs)


def test_config_round_trips():
    recorder = GradientRecorder(first_steps=7, stride=3, stop_on_nonfinite=False)
    assert GradientRecorder(**recorder.get_config()).get_config() == recorder.get_config()
