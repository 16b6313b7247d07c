"""`gradzoo run [SUITE] --out DIR`: train a suite's runs, write one record each, then the tables.

Everything that can be checked is checked before the first run trains: the
suite (keys, overrides, optimizer and dataset parameters, every model built at
its input shape), that the real datasets it needs are prepared, that OUT can be
written, and that no other `gradzoo run` holds OUT. Unreadable records in OUT
are named and their runs trained again.
"""

from __future__ import annotations

from benchmarks.checks import positive_int_arg as positive_int
from benchmarks.errors import UserError

DEFAULT_OUT = "runs"


def add(subparsers) -> None:
    from benchmarks.backends import BACKENDS
    from benchmarks.harness.suites import PRECISIONS

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
    p.set_defaults(func=run)


def run(args) -> None:
    import keras
    from tqdm.auto import tqdm

    from benchmarks.analysis.claims import SUITE_COPIES, write_claims
    from benchmarks.analysis.formatting import format_number
    from benchmarks.analysis.tables import write_tables
    from benchmarks.datasets import check_available
    from benchmarks.harness.devices import check_precision
    from benchmarks.harness.execute import LocalExecutor, run_suite
    from benchmarks.harness.plan import Plan
    from benchmarks.harness.records import scan
    from benchmarks.harness.suites import load_suite, resolve_path
    from benchmarks.storage import DirectoryLock, ensure_writable_dir, write_atomic

    if args.tensorboard and args.no_gradients:
        raise UserError("--tensorboard writes the recorded gradient norms, so it cannot go with --no-gradients; drop one of them.")
    # What is asked is checked first (nothing is created for a mistyped suite), then OUT, then nothing else can stop it.
    suite = load_suite(args.suite, check_models=True)
    plan = Plan(suite, seeds=args.seeds, epochs=args.epochs, record_gradients=not args.no_gradients,
                data_dir=args.data_dir, backend=keras.backend.backend(), precision=args.precision)  # fmt: skip
    check_precision(args.precision or suite.precision)
    for dataset in dict.fromkeys(g.dataset for g in suite.groups):
        check_available(dataset, args.data_dir)
    out = ensure_writable_dir(args.out)
    tensorboard = ensure_writable_dir(args.tensorboard, "--tensorboard") if args.tensorboard else None
    with DirectoryLock(out):
        found = scan(out)
        for line in found.problem_lines():
            print(f"Unreadable record, trained again: {line}")
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

        def progress_factory(spec):
            label = f"{spec.model} seed {spec.seed}" + (" (tuning)" if spec.phase == "tune" else "")
            inner["bar"] = bar = tqdm(total=spec.epochs, desc=label, unit="epoch", position=1, leave=False)

            def progress(kind, value):
                if kind == "epoch":
                    bar.update(1)
                elif kind == "resumed":
                    bar.update(value)
                    tqdm.write(f"  {spec.model} on {spec.dataset} (seed {spec.seed}): resumed at epoch {value + 1} "
                               f"of {spec.epochs} from its checkpoint.")  # fmt: skip

            return progress

        def on_record(record):
            if "bar" in inner:
                inner.pop("bar").close()
            outer.update(1)
            if record.diverged:
                c = record.config
                tqdm.write(f"  {record.label} on {c.dataset} (seed {c.seed}) diverged at step {record.diverged_step}: recorded.")

        def on_status(done_now, running, pending):
            outer.set_postfix_str(f"{running} running, {pending} pending")

        try:
            result = run_suite(plan, out, LocalExecutor(progress_factory, tensorboard_dir=tensorboard),
                               on_record=on_record, on_status=on_status)  # fmt: skip
        finally:
            if "bar" in inner:
                inner.pop("bar").close()
            outer.close()

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
