"""`--executor ray` when things go wrong: Ray missing, an address that does not answer, options that need
Ray, a run that fails on its worker (reported, the suite goes on, exit 1), a worker killed mid-run
(retried once, resumed from its epoch checkpoint)."""

import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import DATA, cli_error

ray = pytest.importorskip("ray")

from gradzoo.benchmarks.cli import main  # noqa: E402
from gradzoo.benchmarks.harness.run import ray_executor  # noqa: E402
from gradzoo.benchmarks.harness import records as records_mod  # noqa: E402

TINY = str(DATA / "tiny.toml")
GROUP = """
[[runs]]
name = "{name}"
models = ["mlp_he_relu_bn"]
dataset = "mnist1d"
dataset_params = {{ num_samples = {samples}, shape = "flat" }}
model_overrides = {{ depth = 3, width = 16 }}
"""


@pytest.fixture
def no_ray_running():
    if ray.is_initialized():
        ray.shutdown()


def test_without_ray_it_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without Ray gives `import ray`
    err = cli_error(main, ["run", TINY, "--out", str(tmp_path / "out"), "--executor", "ray"], capsys)
    assert err == 'gradzoo: error: --executor ray needs Ray, which is not installed here; install it with `pip install -e ".[ray]"`.\n'
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, fragment", [
    (["--executor", "dask"], "argument --executor: invalid choice: 'dask' (choose from 'local', 'ray')"),
    (["--address", "10.0.0.1:6379"], "--address applies to --executor ray only; add --executor ray or drop it."),
    (["--gpus-per-run", "1"], "--gpus-per-run applies to --executor ray only"),
    (["--executor", "ray", "--cpus-per-run", "0"], "--cpus-per-run: expected a positive number, received '0'"),
    (["--executor", "ray", "--address", "10.0.0.1:http"], "--address must be HOST:PORT or ray://HOST:PORT of a Ray head"),
])  # fmt: skip
def test_bad_executor_options_are_one_sentence(args, fragment, tmp_path, capsys, no_ray_running):
    err = cli_error(main, ["run", TINY, "--out", str(tmp_path / "out"), *args], capsys)
    assert fragment in err and err.splitlines()[-1].startswith("gradzoo")  # argparse's usage, then one line
    assert not (tmp_path / "out").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_address_that_does_not_answer_is_refused_within_seconds(tmp_path, capsys, monkeypatch, no_ray_running):
    monkeypatch.setattr(ray_executor, "CONNECT_TIMEOUT_S", 1.0)
    closed = f"127.0.0.1:{_free_port()}"
    with socket.socket() as silent:  # accepts connections, never speaks: not a Ray head either
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        for address in (closed, f"127.0.0.1:{silent.getsockname()[1]}"):
            start = time.monotonic()
            err = cli_error(main, ["run", TINY, "--out", str(tmp_path / "out"), "--executor", "ray",
                                   "--address", address], capsys)  # fmt: skip
            assert time.monotonic() - start < 20
            assert f"No Ray cluster answers at --address {address} within 1 s; start one there with" in err
            assert err.count("\n") == 1 and not ray.is_initialized() and not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if ray.is_initialized():
        ray.shutdown()
    os.environ.setdefault("GRADZOO_CACHE", str(tmp_path_factory.getbasetemp() / "gradzoo-cache"))
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_a_run_that_fails_on_its_worker_is_reported_and_the_others_go_on(cluster, tmp_path, capsys):
    # 600 examples split 432/48/120: every batch of 32 halves evenly. 640 leave 461 training examples,
    # whose last batch of 13 cannot be split across 2 devices: that run fails on its worker, not before.
    suite = tmp_path / "mixed.toml"
    suite.write_text("epochs = 1\nbatch_size = 32\n" + GROUP.format(name="even", samples=600)
                     + GROUP.format(name="uneven", samples=640))  # fmt: skip
    out = tmp_path / "out"
    assert main(["run", str(suite), "--out", str(out), "--executor", "ray", "--devices", "2"]) == 1
    said = capsys.readouterr()
    (record,) = records_mod.load_records(out)
    assert record.config.group == "even" and record.config.devices == 2 and record.env.executor == "ray"
    assert len(record.env.hardware.devices) == 2  # trained data parallel on its worker's two CPU devices
    failed = [line for line in said.out.splitlines() + said.err.splitlines() if " failed: " in line]
    assert len(failed) == 1 and "(mlp_he_relu_bn on mnist1d, seed 0) failed: Run " in failed[0]
    assert "the 461 train examples end in a batch of 13" in failed[0]
    assert "1 run(s) failed" in said.err and "Rerun the same command" in said.err


def _train_task_pids() -> list[int]:
    """Ray workers running a gradzoo run: Ray titles a worker by the task it runs."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(b"ray::_train_task"):
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds Ray's worker through /proc")
def test_a_worker_killed_mid_run_is_retried_once_and_resumes_from_its_epoch(cluster, tmp_path, capsys):
    suite = tmp_path / "long.toml"
    suite.write_text("epochs = 12\nbatch_size = 16\n" + GROUP.format(name="long", samples=1200))
    out = tmp_path / "out"
    killed = {}

    def kill_after_two_epochs():
        deadline = time.time() + 240
        while time.time() < deadline and not killed:
            for state in (Path(ray_executor.tempfile.gettempdir()) / ray_executor.CHECKPOINT_ROOT).glob(
                    "checkpoints/*/state.json"):  # fmt: skip
                try:
                    epoch = int(state.read_text().split('"epoch":')[1].split(",")[0])
                except (OSError, IndexError, ValueError):
                    continue
                pids = _train_task_pids()
                if epoch >= 2 and pids:
                    os.kill(pids[0], signal.SIGKILL)
                    killed["epoch"] = epoch
            time.sleep(0.02)

    killer = threading.Thread(target=kill_after_two_epochs, daemon=True)
    killer.start()
    assert main(["run", str(suite), "--out", str(out), "--executor", "ray"]) == 0
    killer.join()
    assert killed, "the worker should have been killed mid-run"
    (record,) = records_mod.load_records(out)
    assert record.summary.resumed_at_epoch is not None and record.summary.resumed_at_epoch >= killed["epoch"]
    assert record.history.epoch == list(range(1, 13)) and " failed: " not in capsys.readouterr().out
    assert not list((Path(ray_executor.tempfile.gettempdir()) / ray_executor.CHECKPOINT_ROOT).glob(
        f"checkpoints/{record.run_id}"))  # removed with the record returned  # fmt: skip
