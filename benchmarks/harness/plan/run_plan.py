"""A suite's runs: tuning trials first, then evaluation runs at each model's chosen setting.

`Plan(suite, ...)` knows every run a suite asks for. The trials (and every
evaluation run that needs no trial) are known at once; an evaluation run of a
tuned group becomes known when all of its model's trials are recorded, because
its setting is their winner. `plan.specs(records)` returns what can run given
the records so far; executors call it again after each record, so a group's
evaluation runs start as soon as its trials are done.
"""

from __future__ import annotations

import dataclasses

from gradzoo.benchmarks.errors import UserError
from gradzoo.benchmarks.harness.records import RunRecord, TuningInfo
from gradzoo.benchmarks.harness.plan.spec import RunSpec
from gradzoo.benchmarks.harness.plan.suite_checks import DEFAULT_LIMITS, Limits, check_plan_size, plan_runs
from gradzoo.benchmarks.harness.plan.suites import Group, Suite
from gradzoo.benchmarks.harness.plan.tuning import choose, split_setting


@dataclasses.dataclass
class Plan:
    """The runs of a suite with the CLI's overrides.

    Attributes:
        suite: the loaded suite.
        seeds: evaluation seeds (`None`: the suite's, `0..seeds-1`).
        epochs: every run's epochs instead of the suite's (trials included).
        record_gradients: attach the gradient recorder.
        data_dir: prepared tensorflow-datasets directory.
        backend: the Keras backend the runs are for.
        precision, devices: instead of the suite's.
        limits: the largest plan accepted (`gradzoo.benchmarks.harness.plan.suite_checks`);
            the seeds and runs are counted, and refused, before any is listed.
    """

    suite: Suite
    seeds: int | None = None
    epochs: int | None = None
    record_gradients: bool = True
    data_dir: str | None = None
    backend: str = "tensorflow"
    precision: str | None = None
    devices: int | None = None
    limits: Limits = DEFAULT_LIMITS

    def __post_init__(self):
        seeds = self.seeds if self.seeds is not None else self.suite.seeds
        check_plan_size(self.suite, seeds, self.seeds is not None, self.limits)
        self.eval_seeds = list(range(seeds))
        for group in self.suite.groups:
            if group.tune is not None and group.tune.seed in self.eval_seeds:
                raise UserError(
                    f"Suite {self.suite.name!r}, group {group.name!r}: the tuning seed {group.tune.seed} is also an "
                    f"evaluation seed (0..{len(self.eval_seeds) - 1}); set `tune.seed` apart from them."
                )

    # --- building specs ----------------------------------------------------------------
    def _spec(self, group: Group, point: dict, model: str, seed: int, setting: dict, **fields) -> RunSpec:
        parts = split_setting({**group.per_model.get(model, {}), **point, **setting})
        return RunSpec(
            model=model,
            dataset=group.dataset,
            seed=seed,
            epochs=self.epochs if self.epochs is not None else group.epochs,
            batch_size=group.batch_size,
            model_overrides={**group.model_overrides, **parts["model"]},
            dataset_params={**group.dataset_params, **parts["dataset"]},
            optimizer={**group.optimizer, **parts["optimizer"]},
            suite=self.suite.name,
            group=group.name,
            sweep=dict(point),
            record_gradients=self.record_gradients,
            backend=self.backend,
            precision=self.precision or self.suite.precision,
            devices=self.devices or self.suite.devices,
            data_dir=self.data_dir,
            **fields,
        )

    def trials(self, group: Group, point: dict, model: str) -> list[RunSpec]:
        """A model's tuning trials at one sweep point, in search order (empty for an untuned group)."""
        if group.tune is None:
            return []
        specs = []
        for setting in group.tune.settings():
            spec = self._spec(group, point, model, group.tune.seed, setting, phase="tune", tuned_over=group.tune.text)
            if group.tune.epochs is not None and self.epochs is None:
                spec = spec.replace(epochs=group.tune.epochs)
            specs.append(spec)
        return specs

    def choice(self, group: Group, point: dict, model: str, records: dict) -> TuningInfo | None:
        """How the model's setting at `point` was chosen; `None` while a trial is unrecorded (or untuned)."""
        if group.tune is not None:
            trials = [records.get(s.run_id) for s in self.trials(group, point, model)]
            if any(r is None for r in trials):
                return None
            return choose(trials, group.tune, f"{self.suite.name}/{group.name}")
        if group.tuned_in is not None:
            space = group.tuned_space
            return TuningInfo(space=space.space, method=space.method, budget=space.budget, seed=space.seed,
                              epochs=group.tuned_epochs, trials=[], chosen=dict(group.tuned_choice[model]),
                              source=f"{group.tuned_in}/{group.name}")  # fmt: skip
        return None

    def specs(self, records: dict[str, RunRecord]) -> tuple[list[RunSpec], int]:
        """The runs known given `records` (run id -> record), in file order, and how many still wait on trials.

        Returns:
            `(specs, waiting)`: every trial, every evaluation run whose setting is
            known, and the number of evaluation runs whose trials are not all
            recorded yet.
        """
        specs, waiting = [], 0
        for group in self.suite.groups:
            for point in group.points():
                for model in group.models:
                    specs += self.trials(group, point, model)
                    tuning = self.choice(group, point, model, records)
                    if group.tune is not None and tuning is None:
                        waiting += len(self.eval_seeds)
                        continue
                    setting = tuning.chosen if tuning is not None else {}
                    for seed in self.eval_seeds:
                        specs.append(self._spec(group, point, model, seed, setting, phase="eval",
                                                tuned_over=group.tuned_over, tuning=tuning))  # fmt: skip
        unique = list({s.run_id: s for s in specs}.values())
        return unique, waiting

    def size(self) -> int:
        """How many runs the whole plan has, trials included."""
        return plan_runs(self.suite, len(self.eval_seeds))

    def choices(self, records: dict) -> list[tuple[Group, dict, str, TuningInfo]]:
        """Every tuned model's choice known so far: `(group, point, model, tuning)`."""
        out = []
        for group in self.suite.groups:
            if group.tune is None and group.tuned_in is None:
                continue
            for point in group.points():
                for model in group.models:
                    tuning = self.choice(group, point, model, records)
                    if tuning is not None:
                        out.append((group, point, model, tuning))
        return out
