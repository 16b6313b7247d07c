"""Running a plan: every pending run once, each record written atomically by this process.

`run_suite(plan, out_dir)` skips every run that already has a readable record
in `out_dir/records/` (so a suite killed at any moment resumes, losing at most
the epoch in flight: runs keep epoch checkpoints), asks the plan again after
each record (a tuned group's evaluation runs start once its trials are in), and
hands the runs to an executor:

- `LocalExecutor`: one run after another in this process (the default);
- `gradzoo.benchmarks.harness.run.ray_executor.RayExecutor`: Ray tasks on a cluster; the
  records come back to this process, which writes them, so workers need no
  shared filesystem.

Whatever the executor, no run id is handed out twice by one `run_suite`.
"""

from __future__ import annotations

import dataclasses
import os

from gradzoo.benchmarks.harness import records as records_mod
from gradzoo.benchmarks.harness.run.checkpoints import RunCheckpoint
from gradzoo.benchmarks.harness.plan.run_plan import Plan
from gradzoo.benchmarks.harness.records.quarantine import move_aside
from gradzoo.benchmarks.harness.plan.spec import RunSpec


@dataclasses.dataclass
class Outcome:
    """What became of one run handed to an executor."""

    spec: RunSpec
    record: records_mod.RunRecord | None = None
    error: str | None = None  # a failed run: one line saying why
    detail: str | None = None  # a failed run: all that is known, e.g. a Ray worker's traceback


class LocalExecutor:
    """Runs one spec at a time in this process, with epoch checkpoints in the output directory.

    An exception inside a run propagates (a bug keeps its traceback; a
    `UserError` reaches the CLI as one sentence). With `tensorboard_dir`, each
    run's gradient recorder writes TensorBoard events to `tensorboard_dir/<run_id>/`.
    """

    name = "local"
    capacity = 1

    def __init__(self, progress_factory=None, tensorboard_dir=None):
        self.progress_factory = progress_factory
        self.tensorboard_dir = tensorboard_dir
        self._queue: list[RunSpec] = []

    def start(self, out_dir) -> None:
        self.out_dir = out_dir

    def submit(self, spec: RunSpec) -> None:
        self._queue.append(spec)

    def wait(self) -> list[Outcome]:
        from gradzoo.benchmarks.harness.run.run_one import run_one

        import keras

        spec = self._queue.pop(0)
        progress = self.progress_factory(spec) if self.progress_factory else None
        try:
            record = run_one(spec, progress, checkpoint_dir=self.out_dir, executor=self.name,
                             tensorboard_dir=self.tensorboard_dir)  # fmt: skip
        finally:
            # A suite builds a model per run in one process: without this, the
            # backend's graphs and caches grow with every run (GBs over a long suite).
            keras.utils.clear_session(free_memory=True)
        return [Outcome(spec, record)]

    def running(self) -> int:
        return len(self._queue)

    def stop(self) -> None:
        self._queue.clear()


def run_suite(plan: Plan, out_dir, executor=None, on_record=None, on_failure=None, on_status=None) -> dict:
    """Runs every run of `plan` that has no readable record yet in `out_dir`.

    Args:
        plan: the suite's `Plan`.
        out_dir: the output directory; records go to `out_dir/records/`.
        executor: a `LocalExecutor` (the default) or another executor with
            `start`, `submit`, `wait`, `running`, `stop` and `capacity`.
        on_record: called with each new record, after it is written.
        on_failure: called with each `Outcome` whose run failed; without it a
            failure raises `RuntimeError`.
        on_status: called with `(done, running, pending)` counts whenever they change.

    Returns:
        `{"ran": [...ids], "skipped": [...ids], "failed": [...ids], "moved": [...paths]}`, where `moved`
        lists the unreadable records that were in the way of a new one, moved aside
        (`gradzoo.benchmarks.harness.records.quarantine`) rather than overwritten.
    """
    executor = executor or LocalExecutor()
    recorded = {r.run_id: r for r in records_mod.scan(out_dir).records}
    skipped = {s.run_id for s in plan.specs(recorded)[0] if s.run_id in recorded}
    ran, failed, handed, moved = [], [], set(), []
    executor.start(out_dir)
    try:
        while True:
            specs, waiting = plan.specs(recorded)
            pending = [s for s in specs if s.run_id not in recorded and s.run_id not in handed]
            while pending and executor.running() < executor.capacity:
                spec = pending.pop(0)
                handed.add(spec.run_id)
                executor.submit(spec)
            if on_status:
                on_status(len(ran), executor.running(), len(pending) + waiting)
            if executor.running() == 0:
                break
            for outcome in executor.wait():
                if outcome.record is None:
                    failed.append(outcome.spec.run_id)
                    if on_failure is None:
                        raise RuntimeError(f"Run {outcome.spec.run_id} failed: {outcome.error}")
                    on_failure(outcome)
                    continue
                path = records_mod.record_path(out_dir, outcome.record.run_id)
                if os.path.lexists(path):  # one it could not read: the user's still, so moved rather than overwritten
                    moved.append(move_aside(out_dir, path))
                records_mod.write_record(out_dir, outcome.record)
                RunCheckpoint(out_dir, outcome.record.run_id).remove()
                recorded[outcome.record.run_id] = outcome.record
                ran.append(outcome.record.run_id)
                if on_record:
                    on_record(outcome.record)
    finally:
        executor.stop()
    return {"ran": ran, "skipped": sorted(skipped), "failed": failed, "moved": moved}
