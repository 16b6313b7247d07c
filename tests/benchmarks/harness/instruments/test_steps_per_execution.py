"""With `steps_per_execution > 1` the recorder still records every step.

Keras then hands the callbacks the logs of every K-th step only; the recorder's
in-graph `StepBuffer` carries the others. Marked `parity`: on JAX the buffer's
state must be threaded through the jitted step as metric state.
"""

import warnings

import keras
import numpy as np
import pytest

from gradzoo.benchmarks.harness.instruments.recorder import GradientRecorder

pytestmark = pytest.mark.parity

XENT = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _data(n=160):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 8)).astype("float32"), rng.integers(0, 3, size=n).astype("int32")


def _functional():
    x_in = keras.Input((8,))
    h = keras.layers.Dense(16, activation="relu", name="hidden")(x_in)
    return keras.Model(x_in, keras.layers.Dense(3, name="out")(h))


def _sequential():
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)])


def _fit(build, steps_per_execution, epochs=2, **fit_kwargs):
    keras.utils.set_random_seed(0)
    model = build()
    model.compile(optimizer=keras.optimizers.SGD(0.1, clipnorm=0.5), loss=XENT, steps_per_execution=steps_per_execution)
    recorder = GradientRecorder(first_steps=1000)
    x, y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "records only the last step" fallback
        model.fit(x, y, batch_size=16, epochs=epochs, shuffle=False, verbose=0, callbacks=[recorder], **fit_kwargs)
    return model, recorder.summary()


@pytest.mark.parametrize("build", [_functional, _sequential], ids=["functional", "sequential"])
def test_every_step_is_recorded_as_with_one_step_per_execution(build):
    # 10 steps an epoch in executions of 4: the last one is short (2 steps).
    _, single = _fit(build, 1)
    model, multi = _fit(build, 4)
    assert multi["steps"] == single["steps"] == list(range(20)) and multi["steps_seen"] == 20
    np.testing.assert_allclose(multi["norms"], single["norms"], rtol=1e-5)
    np.testing.assert_allclose(multi["global_norm_post"], single["global_norm_post"], rtol=1e-5)
    assert multi["clipped"] == single["clipped"] and any(multi["clipped"])
    for key in ("min", "mean", "max"):
        np.testing.assert_allclose(multi["epoch"][key], single["epoch"][key], rtol=1e-5)
    # The buffer adds nothing a user sees: no log entry, no history column.
    assert set(model.evaluate(*_data(), verbose=0, return_dict=True)) == {"loss"}
    assert set(model.history.history) == {"loss"}


def test_a_second_fit_reuses_the_buffer_and_counts_on():
    model, first = _fit(_functional, 4, epochs=1)
    recorder = GradientRecorder(first_steps=1000)
    model.fit(*_data(), batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[recorder])
    assert recorder.summary()["steps"] == list(range(10)) and first["steps"] == list(range(10))
    assert [m.name for m in model.metrics].count("gradzoo_step_buffer") == 1


def test_a_subclassed_model_falls_back_with_a_warning():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden, self.out = keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)

        def call(self, x):
            return self.out(self.hidden(x))

    model = Net()
    model.compile(optimizer="sgd", loss=XENT, steps_per_execution=4)
    recorder = GradientRecorder()
    with pytest.warns(UserWarning, match="records only the last step of each execution"):
        model.fit(*_data(64), batch_size=16, epochs=1, verbose=0, callbacks=[recorder])
    assert recorder.summary()["steps_seen"] == 1  # one execution of 4 steps
