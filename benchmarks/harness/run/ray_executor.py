"""Runs a suite's runs as Ray tasks, on this machine or on a Ray cluster.

`RayExecutor` is the `--executor ray` of `gradzoo run`: every run that
`run_suite` hands it becomes one Ray task asking for `cpus_per_run` CPUs and
`gpus_per_run` GPUs. The task trains the run with `run_one` on whichever node
Ray picks and returns the record as JSON data; the driver (the `gradzoo run`
process) rebuilds it and writes it into OUT, so workers need no shared
filesystem. The driver's own `benchmarks` and `zoo` packages travel with the
tasks (Ray `py_modules`), so a worker runs the driver's code and needs only the
dependencies (Keras, the backend, Ray) installed.

A worker keeps its run's epoch checkpoints in its node's temporary directory:
when Ray retries a task whose worker died (once) on the same node, the run
resumes at its last epoch; elsewhere it starts again. A task that raises is
not retried: its run is reported as failed and the other runs go on.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import socket
import tempfile
from pathlib import Path

from gradzoo.benchmarks.errors import UserError
from gradzoo.benchmarks.harness.run.local_executor import Outcome
from gradzoo.benchmarks.harness.records import RunRecord
from gradzoo.benchmarks.harness.plan.spec import RunSpec

INSTALL = 'pip install -e ".[ray]"'
CONNECT_TIMEOUT_S = 5.0  # how long an --address may take to answer before it counts as down
DEFAULT_PORT = {"ray://": 10001, "": 6379}  # Ray Client's port, and the head's GCS port
CHECKPOINT_ROOT = "gradzoo-ray"  # under each node's temporary directory


def import_ray():
    """Ray, or a one-sentence `UserError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError(f"--executor ray needs Ray, which is not installed here; install it with `{INSTALL}`.") from None
    return ray


def check_address(address: str, timeout_s: float = None) -> None:
    """Raises a `UserError` unless a Ray head answers at `address` within `timeout_s` seconds.

    `ray.init(address=...)` keeps retrying an address that does not answer for
    minutes; this checks first that the port accepts a connection and speaks
    gRPC (as the head's GCS and Ray Client servers do).

    Args:
        address: `HOST:PORT` (the head's GCS port, 6379 by default) or
            `ray://HOST:PORT` (Ray Client, 10001 by default).
        timeout_s: defaults to `CONNECT_TIMEOUT_S`.
    """
    import grpc

    timeout_s = CONNECT_TIMEOUT_S if timeout_s is None else timeout_s
    scheme = "ray://" if address.startswith("ray://") else ""
    host, colon, port = address.removeprefix(scheme).rpartition(":")
    if not colon:
        host, port = port, str(DEFAULT_PORT[scheme])
    if not host or not port.isdigit():
        raise UserError(f"--address must be HOST:PORT or ray://HOST:PORT of a Ray head. Received: {address!r}")
    down = (f"No Ray cluster answers at --address {address} within {timeout_s:g} s; start one there with "
            "`ray start --head`, or give the head's HOST:PORT (6379 by default) or ray://HOST:10001.")  # fmt: skip
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError:
        raise UserError(down) from None
    channel = grpc.insecure_channel(f"{host}:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout_s)
    except grpc.FutureTimeoutError:
        raise UserError(down) from None
    finally:
        channel.close()


def _train_task(spec: RunSpec) -> dict:
    """Runs on a Ray worker: trains one run, returns its record as JSON data."""
    from gradzoo.benchmarks.harness.run.checkpoints import RunCheckpoint
    from gradzoo.benchmarks.harness.run.run_one import run_one

    checkpoints = Path(tempfile.gettempdir()) / CHECKPOINT_ROOT
    record = run_one(spec, checkpoint_dir=checkpoints, executor="ray")
    RunCheckpoint(checkpoints, spec.run_id).remove()
    return record.to_json()


class RayExecutor:
    """Hands each run to a Ray task; the driver writes the records.

    Args:
        address: a Ray head to connect to (`HOST:PORT` or `ray://HOST:PORT`);
            `None`: `$RAY_ADDRESS` if set, else a new Ray instance on this
            machine for this executor (never one that `ray start` left: a
            crashed one would make `ray.init` wait for it for minutes). A
            Ray this process has already started is used as it is.
        cpus_per_run: CPUs each task asks for; also the threads TensorFlow
            and OpenMP use in it, so tasks sharing a node do not oversubscribe
            its cores. Defaults to `1`.
        gpus_per_run: GPUs each task asks for (fractions share a GPU).
            Defaults to `0`.
        capacity: how many tasks to keep in flight; `None`: as many as the
            cluster's nodes fit at once with these requests.
        verbose: show Ray's own log lines and the workers' output.

    Raises (from `connect`, before any run starts):
        UserError: Ray is not installed, the address does not answer, or no
            node of the cluster has the CPUs or GPUs one run asks for.
    """

    name = "ray"

    def __init__(self, address=None, cpus_per_run: float = 1, gpus_per_run: float = 0, capacity: int | None = None,
                 verbose: bool = False):  # fmt: skip
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.cpus_per_run, self.gpus_per_run = cpus_per_run, gpus_per_run
        self.capacity = capacity
        self.verbose = verbose
        self._ray = None
        self._owns_ray = False
        self._in_flight: dict = {}  # ObjectRef -> RunSpec

    # --- connecting -------------------------------------------------------------------------
    def connect(self) -> None:
        """Connects to (or starts) Ray and checks the cluster can run one task; idempotent."""
        if self._ray is not None:
            return
        ray = import_ray()
        if not ray.is_initialized():
            if self.address:
                check_address(self.address)
            try:
                ray.init(address=self.address or "local", runtime_env=self._code(), include_dashboard=False,
                         log_to_driver=self.verbose, logging_level=logging.INFO if self.verbose else logging.ERROR)  # fmt: skip
            except (ConnectionError, RuntimeError) as err:
                raise UserError(_connect_failure(self.address, err)) from None
            self._owns_ray = True
        self._ray = ray
        try:
            self._check_cluster()
        except UserError:
            self.stop()
            raise

    def _check_cluster(self) -> None:
        ray = self._ray
        nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        where = f"the Ray cluster at {self.address}" if self.address else "the local Ray instance"
        if self.gpus_per_run and not ray.cluster_resources().get("GPU", 0):
            raise UserError(f"--gpus-per-run {self.gpus_per_run:g} asks for GPUs, but {where} has none; "
                            "leave it at 0 or connect to a cluster with GPU nodes.")  # fmt: skip
        slots = [self._fits(node) for node in nodes]
        if not any(slots):
            most = max((node.get("CPU", 0) for node in nodes), default=0)
            gpus = max((node.get("GPU", 0) for node in nodes), default=0)
            raise UserError(f"No node of {where} has the {self.cpus_per_run:g} CPUs and {self.gpus_per_run:g} GPUs one "
                            f"run asks for (the largest has {most:g} CPUs and {gpus:g} GPUs); lower --cpus-per-run "
                            "or --gpus-per-run.")  # fmt: skip
        if self.capacity is None:
            self.capacity = sum(slots)

    def _fits(self, node: dict) -> int:
        """How many runs a node can train at once with this executor's requests."""
        fits = int(node.get("CPU", 0) // self.cpus_per_run) if self.cpus_per_run else 1 << 20
        if self.gpus_per_run:
            fits = min(fits, int(node.get("GPU", 0) // self.gpus_per_run))
        return fits

    @staticmethod
    def _code() -> dict:
        """The driver's code, shipped to the workers (Ray takes local directories only at `ray.init`).

        The workers import it as `gradzoo`, so what ships is one `gradzoo/` folder holding `zoo/` and
        `benchmarks/`: in a source checkout those sit beside `gradzoo/`, so they are staged together first.
        """
        import gradzoo

        package = Path(gradzoo.__file__).resolve().parent
        if not (package / "zoo").is_dir():
            stage = Path(tempfile.mkdtemp(prefix="gradzoo-ray-code-")) / "gradzoo"
            atexit.register(shutil.rmtree, stage.parent, ignore_errors=True)
            skip = shutil.ignore_patterns("weights", "__pycache__", "*.pyc")
            shutil.copytree(package, stage, ignore=skip)
            for name in ("zoo", "benchmarks"):
                shutil.copytree(package.parent / name, stage / name, ignore=skip)
            package = stage
        return {
            "py_modules": [str(package)],
            # Not needed to train: the shipped pretrained weights (megabytes) and bytecode.
            "excludes": ["weights/", "__pycache__/", "*.pyc"],
        }

    def _env_vars(self, devices: int) -> dict:
        """What a task's worker process needs in its environment."""
        from gradzoo.benchmarks.harness.run.environment import source_commit

        threads = str(max(1, int(self.cpus_per_run)))
        env = {"OMP_NUM_THREADS": threads, "TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": threads,
               "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}  # fmt: skip
        commit = source_commit()
        if commit:
            env["GRADZOO_GIT_COMMIT"] = commit  # the shipped copy has no .git to read it from
        if os.environ.get("KERAS_BACKEND"):
            env["KERAS_BACKEND"] = os.environ["KERAS_BACKEND"]  # a run is for the driver's backend
        if devices > 1 and not self.gpus_per_run:
            # Data parallel on CPU workers: JAX splits its CPU by this flag (TensorFlow ignores it and
            # splits its own). It also keeps these tasks off workers whose backend started on one device.
            env["XLA_FLAGS"] = f"${{XLA_FLAGS}} --xla_force_host_platform_device_count={devices}"
        return env

    # --- the executor interface -------------------------------------------------------------
    def start(self, out_dir) -> None:
        self.connect()
        self._remote = self._ray.remote(_train_task)
        self._options = {}

    def submit(self, spec: RunSpec) -> None:
        if spec.devices not in self._options:
            self._options[spec.devices] = dict(
                num_cpus=self.cpus_per_run,
                num_gpus=self.gpus_per_run,
                max_retries=1,  # once more when the worker process died; never for an exception of the run
                retry_exceptions=False,
                runtime_env={"env_vars": self._env_vars(spec.devices)},
            )
        self._in_flight[self._remote.options(**self._options[spec.devices]).remote(spec)] = spec

    def wait(self) -> list[Outcome]:
        """Blocks until at least one task ends; returns the outcomes of all that have."""
        refs = list(self._in_flight)
        self._ray.wait(refs, num_returns=1)
        ready, _ = self._ray.wait(refs, num_returns=len(refs), timeout=0)
        return [self._outcome(ref, self._in_flight.pop(ref)) for ref in ready]

    def _outcome(self, ref, spec: RunSpec) -> Outcome:
        ray = self._ray
        try:
            return Outcome(spec, RunRecord.from_json(ray.get(ref)))
        except ray.exceptions.RayTaskError as err:  # the run raised: not retried
            cause = err.cause if err.cause is not None else err
            text = " ".join(str(cause).split()) if isinstance(cause, UserError) else _first_line(cause)
            return Outcome(spec, error=text, detail=str(err))
        except ray.exceptions.RayError as err:  # the worker or its node died, twice; or the task was cancelled
            return Outcome(spec, error=f"its Ray worker failed ({type(err).__name__}): {_first_line(err)}", detail=str(err))

    def running(self) -> int:
        return len(self._in_flight)

    def stop(self) -> None:
        """Cancels the tasks still in flight and, if this executor started Ray, shuts it down."""
        if self._ray is None:
            return
        for ref in self._in_flight:
            self._ray.cancel(ref, force=True)
        self._in_flight.clear()
        if self._owns_ray:
            self._ray.shutdown()
        self._ray, self._owns_ray = None, False


def _connect_failure(address, err: BaseException) -> str:
    """One sentence for a `ray.init` that failed: a missing token says what to do about it."""
    causes = []
    while err is not None and len(causes) < 10:
        causes.append(err)
        err = err.__cause__ or err.__context__
    if any("AuthenticationError" in type(e).__name__ or "InvalidAuthToken" in str(e) for e in causes):
        return (f"The Ray cluster at --address {address} requires its authentication token; give it to this process "
                "(RAY_AUTH_MODE=token, with the head's token in ~/.ray/auth_token or $RAY_AUTH_TOKEN).")  # fmt: skip
    return f"Could not connect to the Ray cluster at --address {address}: {_first_line(causes[0])}"


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
