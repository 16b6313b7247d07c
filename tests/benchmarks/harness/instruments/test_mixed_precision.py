"""Under mixed precision the recorder reports the true gradient: bfloat16 norms
match float32, loss-scaled float16 norms are unscaled, and a step whose scaled
gradient overflows is counted as skipped, not taken for a divergence.

Marked `parity`: `.ci/run` runs them again under KERAS_BACKEND=jax, where a
`LossScaleOptimizer` is reached through `stateless_apply`, not `apply`.
"""

import keras
import numpy as np
import pytest

from gradzoo.benchmarks.cli import main
from gradzoo.benchmarks.harness import records as records_mod
from gradzoo.benchmarks.harness.instruments.recorder import GradientRecorder
from gradzoo.benchmarks.harness.run.run_one import dtype_policy

pytestmark = pytest.mark.parity

XENT = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
# bfloat16 keeps 8 significant bits (a relative rounding of 2**-9 = 0.2% per
# operation); over this 5-layer net the per-layer norms of the first step agree
# with float32 to about 0.2% (measured: 0.18% on TensorFlow, 0.11% on JAX). The
# tolerance leaves room for other kernels' rounding; a missed loss scale
# (a factor 2**15) or a policy that did not apply (exact equality) fails.
BFLOAT16_RTOL = 2e-2
# float16 keeps 11 significant bits: measured 0.02-0.04%.
FLOAT16_RTOL = 5e-3


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 8)).astype("float32"), rng.integers(0, 3, size=n).astype("int32")


def _tanh_mlp():
    x_in = keras.Input((8,))
    h = x_in
    for i in range(4):
        h = keras.layers.Dense(32, activation="tanh", name=f"dense_{i}")(h)
    # Logits in float32, as the Keras mixed-precision guide advises for the last layer.
    logits = keras.layers.Dense(3, name="head", dtype="float32")(h)
    return keras.Model(x_in, logits)


@pytest.fixture(scope="module")
def initial_weights():
    keras.utils.set_random_seed(0)
    return _tanh_mlp().get_weights()


def _first_step(precision, weights, optimizer=None, batch_size=64, epochs=1):
    """Builds the net under `precision` with `weights` and fits it with a recorder."""
    with dtype_policy(precision):
        model = _tanh_mlp()
    model.set_weights(weights)
    model.compile(optimizer=optimizer or keras.optimizers.SGD(0.1), loss=XENT)
    recorder = GradientRecorder(first_steps=1000)
    x, y = _data()
    model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0, callbacks=[recorder])
    return model, recorder.summary()


def test_bfloat16_norms_match_float32(initial_weights):
    _, reference = _first_step("float32", initial_weights)
    model, mixed = _first_step("mixed_bfloat16", initial_weights)
    assert model.get_layer("dense_0").compute_dtype == "bfloat16"
    assert not mixed["loss_scaled"] and mixed["overflow_steps"] == 0
    np.testing.assert_allclose(mixed["norms"][0], reference["norms"][0], rtol=BFLOAT16_RTOL)
    assert mixed["norms"][0] != reference["norms"][0]  # the step did run in bfloat16


def test_float16_loss_scaled_norms_are_unscaled(initial_weights):
    _, reference = _first_step("float32", initial_weights)
    model, mixed = _first_step("mixed_float16", initial_weights)
    # Keras wraps the optimizer at compile; its gradients carry a scale of 2**15.
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.get_layer("dense_0").compute_dtype == "float16"
    assert mixed["loss_scaled"] and mixed["overflow_steps"] == 0 and mixed["nonfinite_step"] is None
    np.testing.assert_allclose(mixed["norms"][0], reference["norms"][0], rtol=FLOAT16_RTOL)
    np.testing.assert_allclose(mixed["global_norm_pre"][0], reference["global_norm_pre"][0], rtol=FLOAT16_RTOL)


def test_overflowing_steps_are_counted_as_skipped_not_as_divergence(initial_weights):
    # A scale of 2**40 overflows float16 (largest finite value 65504) in the
    # backward pass; the optimizer skips each such step and halves the scale,
    # until the scaled gradient fits. Growth is off for this short fit, so the
    # number of halvings is log2(initial / final scale) exactly.
    initial = 2.0**40
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1), initial_scale=initial)
    model, summary = _first_step("mixed_float16", initial_weights, optimizer=optimizer, batch_size=8, epochs=5)
    halvings = round(np.log2(initial / float(keras.ops.convert_to_numpy(model.optimizer.dynamic_scale))))

    assert summary["nonfinite_step"] is None  # not a divergence: the fit went on
    assert summary["steps_seen"] == 5 * 8
    assert 10 <= summary["overflow_steps"] == halvings < summary["steps_seen"]
    # The steps after the last overflow are recorded with finite, unscaled norms.
    last = np.array(summary["norms"][-1])
    assert np.all(np.isfinite(last)) and np.all(last < 100)
    assert np.all(np.isfinite(summary["epoch"]["mean"][-1]))


def test_precision_and_backend_are_chosen_on_the_command_line_and_recorded(tmp_path):
    suite = tmp_path / "one.toml"
    suite.write_text(
        'epochs = 1\nbatch_size = 32\n[[runs]]\nname = "one"\nmodels = ["mlp_he_relu_bn"]\ndataset = "mnist1d"\n'
        'dataset_params = { num_samples = 200, shape = "flat" }\nmodel_overrides = { depth = 3, width = 16 }\n'
    )
    backend = keras.backend.backend()
    argv = ["run", str(suite), "--out", str(tmp_path / "out"), "--backend", backend, "--precision", "mixed_bfloat16"]
    assert main(argv) == 0
    (record,) = records_mod.load_records(tmp_path / "out")
    assert record.config.precision == "mixed_bfloat16"
    assert record.config.backend == record.env.backend == backend
    assert record.status == "completed" and record.summary.overflow_steps == 0
    assert np.all(np.isfinite(record.gradients.epoch.mean[0]))
