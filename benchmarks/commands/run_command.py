"""`gradzoo run [SUITE] --out DIR`: train a suite's runs, write one record each, then the tables.

Everything that can be checked is checked before the first run trains: the
suite (keys, overrides, optimizer and dataset parameters, every model built at
its input shape), that the real datasets it needs are prepared, that OUT can be
written (its own entries too: `gradzoo.benchmarks.harness.run.out_dir`), and that no other
`gradzoo run` holds OUT. Unreadable records in OUT are named, moved aside to
`OUT/records/unreadable/` (never overwritten) and their runs trained again.
SIGTERM and Ctrl-C stop the suite with a line saying where and the command
that resumes it (`gradzoo.benchmarks.commands.stopping`).

`--executor ray` hands the runs to Ray tasks (`gradzoo.benchmarks.harness.run.ray_executor`;
checked first too: Ray installed, the address answering, the GPUs asked for
present) and `--devices N` trains each run data parallel (checked first: the
devices present, the batches splitting evenly). A run that fails on a Ray
worker is reported in one line and the others go on; the command then ends
with exit status 1 after writing the tables, so a script sees that the suite is
incomplete, and rerunning it retries just those runs.
"""

from __future__ import annotations

import argparse
import math
import sys
import tomllib

from gradzoo.benchmarks.commands.options import PRECISIONS, positive_int
from gradzoo.benchmarks.errors import UserError
from gradzoo.benchmarks.harness.plan.suite_checks import DEFAULT_LIMITS, Limits

DEFAULT_OUT = "runs"
EXECUTORS = ("local", "ray")


def add(subparsers) -> None:
    from gradzoo.benchmarks.backends import BACKENDS

    p = subparsers.add_parser("run", help="run a benchmark suite (default: quick) and write records and tables")
    p.add_argument("suite", nargs="?", default="quick", metavar="SUITE_OR_FILE",
                   help="a shipped suite name (see `gradzoo list`) or the path of a .toml suite file (default: quick)")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                   help=f"output directory (default: {DEFAULT_OUT}/; the reference results live in results/)")
    p.add_argument("--seeds", type=positive_int, metavar="N", help="evaluation seeds 0..N-1 (default: the suite's)")
    p.add_argument("--epochs", type=positive_int, metavar="E", help="override every run's epoch count (trials too)")
    p.add_argument("--no-gradients", action="store_true", help="do not record gradient norms")
    p.add_argument("--tensorboard", metavar="DIR",
                   help="also write each run's gradient norms, clip rate and activation fractions as TensorBoard "
                        "events to DIR/<run_id>/ (`tensorboard --logdir DIR`)")
    p.add_argument("--data-dir", metavar="DIR", help="prepared tensorflow-datasets directory (else $GRADZOO_TFDS_DIR)")
    p.add_argument("--backend", choices=BACKENDS, help="Keras backend (default: $KERAS_BACKEND, else tensorflow)")
    p.add_argument("--precision", choices=PRECISIONS, help="Keras dtype policy (default: the suite's, else float32)")
    p.add_argument("--devices", type=positive_int, metavar="N",
                   help="train each run across N local devices, data parallel (default: the suite's, else 1)")
    p.add_argument("--dry-run", action="store_true",
                   help="check the suite and print how many runs it plans, without training or creating OUT")
    limits = p.add_argument_group(
        "limits (a suite file can come from anywhere: a plan larger than these is refused before anything starts; "
        "raise one on purpose for a suite you mean to run)")
    limits.add_argument("--max-runs", type=positive_int, metavar="N", default=DEFAULT_LIMITS.runs,
                        help=f"most runs in the plan, tuning trials included (default: {DEFAULT_LIMITS.runs})")
    limits.add_argument("--max-seeds", type=positive_int, metavar="N", default=DEFAULT_LIMITS.seeds,
                        help=f"most evaluation seeds, from the suite or --seeds (default: {DEFAULT_LIMITS.seeds})")
    limits.add_argument("--max-params", type=positive_int, metavar="N", default=DEFAULT_LIMITS.params,
                        help=f"most parameters of any one model, counted without allocating it (default: {DEFAULT_LIMITS.params})")
    scale = p.add_argument_group("running on Ray (see docs/ray-and-devices.md)")
    scale.add_argument("--executor", choices=EXECUTORS, default="local",
                       help="local: one run after another in this process (default); ray: runs as Ray tasks")
    scale.add_argument("--address", metavar="ADDR",
                       help="the Ray head, HOST:PORT or ray://HOST:PORT (default: $RAY_ADDRESS, else a local Ray)")
    scale.add_argument("--cpus-per-run", type=positive_number, metavar="N", help="CPUs each Ray task asks for (default: 1)")
    scale.add_argument("--gpus-per-run", type=non_negative_number, metavar="N", help="GPUs each Ray task asks for (default: 0)")
    p.set_defaults(func=run)


def run(args) -> None:
    import keras
    from tqdm.auto import tqdm

    from gradzoo.benchmarks.analysis.claims import SUITE_COPIES, write_claims
    from gradzoo.benchmarks.analysis.formatting import format_number, plural
    from gradzoo.benchmarks.analysis.tables import write_tables
    from gradzoo.benchmarks.commands.stopping import exit_status, resume_command, sigterm_as_interrupt
    from gradzoo.benchmarks.datasets import check_available
    from gradzoo.benchmarks.harness.run.devices import check_precision
    from gradzoo.benchmarks.harness.run.local_executor import LocalExecutor, run_suite
    from gradzoo.benchmarks.harness.run.out_dir import check_entries
    from gradzoo.benchmarks.harness.plan.run_plan import Plan
    from gradzoo.benchmarks.harness.records import scan
    from gradzoo.benchmarks.harness.records.quarantine import move_aside
    from gradzoo.benchmarks.harness.plan.suites import check_builds, load_suite, resolve_path
    from gradzoo.benchmarks.storage import DirectoryLock, ensure_writable_dir, write_atomic

    if args.tensorboard and args.no_gradients:
        raise UserError("--tensorboard writes the recorded gradient norms, so it cannot go with --no-gradients; drop one of them.")
    if args.tensorboard and args.executor == "ray":
        raise UserError("--tensorboard writes events where each run trains, which on Ray is another machine's disk; "
                        "use it with the local executor.")  # fmt: skip
    # What is asked is checked first (nothing is created for a mistyped suite), then OUT, then nothing else can stop it.
    _check_scale_options(args)  # first: TensorFlow splits a CPU into devices only before it runs anything
    limits = Limits(runs=args.max_runs, seeds=args.max_seeds, params=args.max_params)
    suite = load_suite(args.suite, limits=limits)
    plan = Plan(suite, seeds=args.seeds, epochs=args.epochs, record_gradients=not args.no_gradients, data_dir=args.data_dir,
                backend=keras.backend.backend(), precision=args.precision, devices=args.devices, limits=limits)  # fmt: skip
    check_precision(args.precision or suite.precision)
    _check_data_parallel(plan, args.devices or suite.devices)
    for dataset in dict.fromkeys(g.dataset for g in suite.groups):
        check_available(dataset, args.data_dir)
    check_builds(suite, limits)
    if args.dry_run:
        trials = sum(s.phase == "tune" for s in plan.specs({})[0])
        print(f"Suite {suite.name!r}: {plural(plan.size(), 'run')} ({plural(trials, 'tuning trial')}, "
              f"{plural(len(plan.eval_seeds), 'evaluation seed')}); "
              f"every check passed. Nothing was trained and {args.out} was not touched (--dry-run).")  # fmt: skip
        return 0
    executor = _ray_executor(args) if args.executor == "ray" else LocalExecutor()
    out = ensure_writable_dir(args.out)
    check_entries(out, files=[f"{SUITE_COPIES}/{suite.name}.toml"])
    tensorboard = ensure_writable_dir(args.tensorboard, "--tensorboard") if args.tensorboard else None
    with DirectoryLock(out):
        found = scan(out)
        for path, reason in found.problems:
            # Still the user's (a newer gradzoo's, or edited by hand): moved, never overwritten by the new run.
            print(f"Unreadable record, trained again: {reason} Moved aside to {move_aside(out, path)}.")
        write_atomic(out / SUITE_COPIES / f"{suite.name}.toml", resolve_path(args.suite).read_bytes())

        recorded = {r.run_id: r for r in found.records}
        specs, waiting = plan.specs(recorded)
        done = sum(s.run_id in recorded for s in specs)
        trials = sum(s.phase == "tune" for s in specs)
        total = plan.size()
        print(f"Suite {suite.name!r}: {total} runs ({trials} tuning trials), {done} already recorded in {out}/records, "
              f"{total - done} to run ({keras.backend.backend()} backend).")  # fmt: skip

        outer = tqdm(total=total - done, desc="suite", unit="run", position=0)
        inner = {}
        where = {"started": done, "finished": done, "spec": None, "epoch": 0}  # for the line when stopped

        def progress_factory(spec):
            where.update(started=where["started"] + 1, spec=spec, epoch=0)
            label = f"{spec.model} seed {spec.seed}" + (" (tuning)" if spec.phase == "tune" else "")
            inner["bar"] = bar = tqdm(total=spec.epochs, desc=label, unit="epoch", position=1, leave=False)

            def progress(kind, value):
                if kind == "epoch":
                    bar.update(1)
                    where["epoch"] = value + 1
                elif kind == "resumed":
                    bar.update(value)
                    where["epoch"] = value
                    tqdm.write(f"  {spec.model} on {spec.dataset} (seed {spec.seed}): resumed at epoch {value + 1} "
                               f"of {spec.epochs} from its checkpoint.")  # fmt: skip
                elif kind == "discarded":
                    tqdm.write(f"  {spec.model} on {spec.dataset} (seed {spec.seed}): its checkpoint cannot be used "
                               f"({value}); discarded, training from epoch 1.")  # fmt: skip

            return progress

        def on_record(record):
            if "bar" in inner:
                inner.pop("bar").close()
            outer.update(1)
            where["finished"] += 1
            if record.diverged:
                c = record.config
                tqdm.write(f"  {record.label} on {c.dataset} (seed {c.seed}) diverged at step {record.diverged_step}: recorded.")

        def on_status(done_now, running, pending):
            outer.set_postfix_str(f"{running} running, {pending} pending")

        failures = []

        def on_failure(outcome):
            spec = outcome.spec
            failures.append(spec.run_id)
            tqdm.write(f"  Run {spec.run_id} ({spec.model} on {spec.dataset}, seed {spec.seed}) failed: {outcome.error}")
            if args.verbose and outcome.detail:
                tqdm.write(outcome.detail)

        if executor.name == "ray":
            print(f"Ray: up to {executor.capacity} runs at a time, {executor.cpus_per_run:g} CPUs and "
                  f"{executor.gpus_per_run:g} GPUs each; records are written here, into {out}/records.")  # fmt: skip
        else:
            executor.progress_factory = progress_factory
            executor.tensorboard_dir = tensorboard
        try:
            with sigterm_as_interrupt():
                result = run_suite(plan, out, executor, on_record=on_record, on_failure=on_failure, on_status=on_status)
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM
            _close(inner, outer)
            print(f"gradzoo: {_stopped_at(where, total, out)}\nResume with: {resume_command(args.argv)}", file=sys.stderr)
            return exit_status(stop)
        finally:
            _close(inner, outer)

        for path in result["moved"]:  # found unreadable only when its run's new record was written
            print(f"Unreadable record moved aside to {path}, its run's new record written in its place.")
        final = scan(out).records
        recorded = {r.run_id: r for r in final}
        for group, point, model, tuning in plan.choices(recorded):
            where = f"{group.name}" + (f" at {', '.join(f'{k}={v}' for k, v in point.items())}" if point else "")
            chosen = ", ".join(f"{k}={format_number(v)}" for k, v in tuning.chosen.items())
            source = "" if tuning.trials else f" (tuned in suite {tuning.source.split('/')[0]!r})"
            print(f"Tuned {model} in {where}: {chosen}{source}")
        paths = write_tables(out, final)
        paths.update(write_claims(out, final))
        print(f"{len(result['ran'])} runs trained. Tables: {', '.join(str(p) for p in paths.values())}")
        print(f"Report: gradzoo report --results {out}")
        if tensorboard is not None:
            print(f"TensorBoard: tensorboard --logdir {tensorboard}")
        if failures:
            print(f"gradzoo: {len(failures)} run(s) failed (lines above; --verbose shows their tracebacks); every other "
                  "run is recorded. Rerun the same command to try the failed ones again.", file=sys.stderr)  # fmt: skip
            return 1
        return 0


def _close(inner: dict, outer) -> None:
    if "bar" in inner:
        inner.pop("bar").close()
    outer.close()


def _stopped_at(where: dict, total: int, out) -> str:
    """Where an interrupted suite stopped, in one sentence: the run, its model and seed, and the epoch in flight."""
    finished = where["finished"]
    kept = ("no run had finished yet" if finished == 0 else
            f"the {finished} finished record{' is' if finished == 1 else 's are'} kept in {out}/records")  # fmt: skip
    spec = where["spec"]
    if spec is None or where["started"] == where["finished"]:  # between runs, or on Ray (no per-run progress)
        return f"Stopped after {where['finished']} of {total} runs; {kept}."
    return (f"Stopped at run {where['started']} of {total} ({spec.model} on {spec.dataset}, seed {spec.seed}, epoch "
            f"{where['epoch'] + 1} of {spec.epochs}); {kept}, and this run "
            f"{'resumes from its last finished epoch' if where['epoch'] else 'starts again'}.")  # fmt: skip


def positive_number(text: str) -> float:
    """An argparse `type`: a number > 0."""
    value = non_negative_number(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, received {text!r}")
    return value


def non_negative_number(text: str) -> float:
    """An argparse `type`: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, received {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, received {text!r}")
    return value


def _check_scale_options(args) -> None:
    """The executor's options go together, and (local runs) this machine has the devices a run asks for."""
    from gradzoo.benchmarks.errors import UserError
    from gradzoo.benchmarks.harness.run.devices import check_devices

    devices = args.devices or _suite_devices(args.suite)
    if args.executor != "ray":
        for option in ("address", "cpus_per_run", "gpus_per_run"):
            if getattr(args, option) is not None:
                raise UserError(f"--{option.replace('_', '-')} applies to --executor ray only; add --executor ray or drop it.")
        check_devices(devices)
    elif devices > 1 and args.gpus_per_run and args.gpus_per_run < devices:
        raise UserError(f"--devices {devices} trains each run across {devices} GPUs, so it needs --gpus-per-run "
                        f"{devices} or more. Received: --gpus-per-run {args.gpus_per_run:g}")  # fmt: skip


def _suite_devices(name_or_path) -> int:
    """The suite file's `devices`, read without `load_suite`, which starts TensorFlow (it makes optimizers)."""
    from gradzoo.benchmarks.harness.plan.suites import resolve_path

    try:
        value = tomllib.loads(resolve_path(name_or_path).read_text(encoding="utf-8")).get("devices", 1)
    except (OSError, ValueError, UnicodeDecodeError):  # load_suite says next what is wrong with the file
        return 1
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 1 else 1


def _check_data_parallel(plan, devices: int) -> None:
    """Every known run's batches and clipping suit `devices` (see `gradzoo.benchmarks.harness.run.devices`)."""
    from gradzoo.benchmarks.errors import UserError
    from gradzoo.benchmarks.harness.run.devices import batch_problem, clipping_problem
    from gradzoo.benchmarks.harness.plan.spec import optimizer_settings

    for spec in plan.specs({})[0]:
        problem = clipping_problem(devices, optimizer_settings(spec.model, spec.optimizer))
        problem = problem or batch_problem(devices, spec.batch_size, {})
        if problem:
            raise UserError(f"Suite {plan.suite.name!r}, group {spec.group!r}: {problem}")


def _ray_executor(args):
    """A `RayExecutor`, connected: Ray installed, the address answering, the cluster able to run one task."""
    from gradzoo.benchmarks.harness.run.ray_executor import RayExecutor

    executor = RayExecutor(address=args.address, cpus_per_run=args.cpus_per_run or 1, gpus_per_run=args.gpus_per_run or 0,
                           verbose=args.verbose)  # fmt: skip
    executor.connect()
    return executor
