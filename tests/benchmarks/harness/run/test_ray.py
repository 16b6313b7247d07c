"""`gradzoo run --executor ray` on a local Ray instance (2 CPUs): the same runs and numbers as the local
executor, records written once by the driver, a killed driver resumed, a cluster without GPUs refused.

One Ray instance serves the module; like `gradzoo run`, it ships the driver's code to its workers.
"""

import gzip
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import cli_error

ray = pytest.importorskip("ray")

from gradzoo.benchmarks.cli import main  # noqa: E402
from gradzoo.benchmarks.harness import records as records_mod  # noqa: E402
from gradzoo.benchmarks.harness.plan.run_plan import Plan  # noqa: E402
from gradzoo.benchmarks.harness.run.ray_executor import RayExecutor  # noqa: E402
from gradzoo.benchmarks.harness.plan.suites import load_suite  # noqa: E402

SUITE = """
epochs = 2
batch_size = 32
seeds = 2
[[runs]]
name = "ray"
models = ["mlp_he_relu_bn", "mlp_sigmoid_deep"]
dataset = "mnist1d"
dataset_params = { num_samples = 600, shape = "flat" }
model_overrides = { depth = 3, width = 16 }
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    # Workers inherit the environment Ray starts with: the test session's dataset cache.
    os.environ.setdefault("GRADZOO_CACHE", str(tmp_path_factory.getbasetemp() / "gradzoo-cache"))
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=RayExecutor._code())
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    path = tmp_path_factory.mktemp("suite") / "ray.toml"
    path.write_text(SUITE)
    return path


@pytest.fixture(scope="module")
def local_out(suite, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    assert main(["run", str(suite), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def resumed(cluster, suite, tmp_path_factory):
    """A Ray driver (its own process, connected by --address) killed with -9 after its first record,
    then the same command again, in this process. Returns what the test needs to look at."""
    out = tmp_path_factory.mktemp("ray")
    cmd = [sys.executable, "-m", "gradzoo.benchmarks.cli", "run", str(suite), "--out", str(out), "--executor", "ray",
           "--address", cluster]  # fmt: skip
    proc = subprocess.Popen(cmd, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 180
    while time.time() < deadline and not list(out.glob("records/*.json.gz")) and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    survivors = {p.name: p.read_bytes() for p in out.glob("records/*.json.gz")}

    handed = []
    submit = RayExecutor.submit

    def counting_submit(self, spec):
        handed.append(spec.run_id)
        submit(self, spec)

    RayExecutor.submit = counting_submit
    try:
        status = main(["run", str(suite), "--out", str(out), "--executor", "ray"])
    finally:
        RayExecutor.submit = submit
    return {"out": out, "survivors": survivors, "handed": handed, "status": status}


def _numbers(record):
    """What a run measured; not when or where it ran, or how long it took."""
    s = record.summary
    return {
        "loss": record.history.loss, "val_metric": record.history.val_metric, "test_metric": s.test_metric,
        "test_loss": s.test_loss, "steps_run": s.steps_run, "norms": record.gradients.norms,
        "global_norm_pre": record.gradients.global_norm_pre,
    }  # fmt: skip


def test_a_killed_ray_driver_resumes_and_records_every_run_once(resumed, suite):
    out, survivors = resumed["out"], resumed["survivors"]
    total = Plan(load_suite(suite)).size()
    assert resumed["status"] == 0
    assert 1 <= len(survivors) < total, "the driver should have been killed mid-suite"
    for blob in survivors.values():
        json.loads(gzip.decompress(blob))  # written whole by the driver, never a partial file
    ids = [records_mod.read_record(p).run_id for p in out.glob("records/*.json.gz")]
    assert len(ids) == len(set(ids)) == total
    for name, blob in survivors.items():
        assert (out / "records" / name).read_bytes() == blob  # recorded runs were skipped, not trained again
    # The second driver handed out exactly the runs that had no record, each once.
    assert sorted(resumed["handed"]) == sorted(set(ids) - {n.removesuffix(".json.gz") for n in survivors})


def test_ray_gives_the_local_executors_run_ids_and_numbers(resumed, local_out):
    local = {r.run_id: r for r in records_mod.load_records(local_out)}
    remote = {r.run_id: r for r in records_mod.load_records(resumed["out"])}
    assert sorted(remote) == sorted(local)
    for run_id, record in remote.items():
        assert record.env.executor == "ray" and local[run_id].env.executor == "local"
        assert record.env.git_commit == local[run_id].env.git_commit
        ours, theirs = _numbers(record), _numbers(local[run_id])
        for key in ours:
            np.testing.assert_allclose(np.asarray(ours[key], float), np.asarray(theirs[key], float), rtol=1e-5,
                                       err_msg=f"{record.label} seed {record.config.seed}: {key}")  # fmt: skip


def test_gpus_per_run_on_a_cluster_without_gpus_is_refused_before_training(cluster, suite, tmp_path, capsys):
    err = cli_error(main, ["run", str(suite), "--out", str(tmp_path / "out"), "--executor", "ray",
                           "--gpus-per-run", "1"], capsys)  # fmt: skip
    assert "--gpus-per-run 1 asks for GPUs, but the local Ray instance has none" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
