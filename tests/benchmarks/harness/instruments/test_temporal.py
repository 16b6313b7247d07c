"""Gradient through time: the profile that shows a recurrent net's vanishing gradient."""

import keras
import numpy as np
import pytest

from helpers import make_record, temporal_log

from gradzoo import zoo
from gradzoo.benchmarks.analysis import verdicts
from gradzoo.benchmarks.harness.instruments.temporal import TemporalProbe, early_late_ratio

pytestmark = pytest.mark.parity


def _probe(model, x, y):
    model.compile(optimizer="sgd", loss="mse")
    probe = TemporalProbe(x, y, keras.losses.MeanSquaredError())
    model.fit(x, y, epochs=1, batch_size=len(x), verbose=0, callbacks=[probe])
    return probe.summary()


def _batch(steps=30, n=16):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, steps, 2)).astype("float32"), rng.normal(size=(n, 1)).astype("float32")


def test_profile_has_one_value_per_step_at_init_and_each_epoch():
    x, y = _batch()
    s = _probe(zoo.build("rnn_simple", (30, 2), 1, units=8), x, y)
    assert s["epochs"] == [0, 1]
    assert all(len(p) == 30 and np.all(np.isfinite(p)) for p in s["profiles"])


def test_a_model_that_reads_only_the_last_step_has_no_early_gradient():
    inputs = keras.Input((30, 2))
    last = keras.layers.Lambda(lambda t: t[:, -1, :])(inputs)
    s = _probe(keras.Model(inputs, keras.layers.Dense(1)(last)), *_batch())
    assert s["early_late_ratio"][0] == 0.0


def test_large_recurrent_init_amplifies_early_steps():
    x, y = _batch()
    s = _probe(zoo.build("rnn_large_init", (30, 2), 1, units=32), x, y)
    assert s["early_late_ratio"][0] > 10


def test_early_late_ratio_and_verdict():
    assert early_late_ratio([1e-9] * 10 + [1.0] * 10) == pytest.approx(1e-9)
    assert early_late_ratio([1.0]) is None
    # A healthy layer ratio (1.0), but the gradient through time vanishes: the profile decides.
    assert verdicts.verdict(make_record("rnn_simple", ratio=1.0, temporal=temporal_log([0.5, 1e-6]))) == "vanishing"
    assert verdicts.verdict(make_record("rnn_simple", ratio=1.0, temporal=temporal_log([0.5, 0.3]))) == "healthy"
