"""The `gradzoo` command line.

Heavy libraries (Keras, TensorFlow, pandas) are imported inside the commands,
never at module import, so `gradzoo --help` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _import_keras_quietly() -> None:
    """Imports Keras (and so its backend) with the process's stderr muted.

    TensorFlow's C++ runtime writes start-up lines (oneDNN, CUDA, CPU features)
    straight to file descriptor 2 while it loads, before any Python logging
    setting applies; a user who mistyped a suite name should see one sentence,
    not that. Python exceptions raised by the import still surface: stderr is
    restored before they propagate.
    """
    if "keras" in sys.modules:
        return
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr replaced, e.g. captured by a test runner
        import keras  # noqa: F401

        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        import keras  # noqa: F401
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)


class UserError(Exception):
    """A mistake in what the user asked for: printed as one sentence, exit 2."""


def _cmd_list(args) -> None:
    import zoo

    width = max(len(n) for n in zoo.list_models()) + 4
    print("Models, each baseline followed by its mitigated partners:")
    for family in ("mlp", "cnn", "rnn"):
        print(f"\n  [{family}]")
        for baseline in zoo.list_models(family=family, role="baseline"):
            spec = zoo.get_spec(baseline)
            print(f"  {baseline:<{width}}{spec.description}")
            for partner in spec.partners:
                print(f"    -> {partner:<{width - 3}}{zoo.get_spec(partner).description}")
    from benchmarks.data import list_datasets
    from benchmarks.suites import list_suites

    print("\nDatasets (embedded ones run offline):")
    rows = list_datasets()
    dw = max(len(r["name"]) for r in rows) + 2
    for row in rows:
        kind = "embedded" if row["embedded"] else "tfds"
        print(f"  {row['name']:<{dw}}{kind:<10}{row['description']}")
    print("\nSuites (gradzoo run SUITE):")
    for name, description in list_suites():
        print(f"  {name:<{dw}}{description}")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


def _output_dir(path: str) -> Path:
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {path!r} is a file; give a directory (it is created if missing).")
    return out


def _cmd_run(args) -> None:
    from benchmarks.suites import expand, load_suite

    out = _output_dir(args.out)
    suite = load_suite(args.suite)
    specs = expand(
        suite, seeds=args.seeds, epochs=args.epochs, record_gradients=not args.no_gradients, data_dir=args.data_dir
    )
    from tqdm.auto import tqdm

    from benchmarks import records as records_mod
    from benchmarks.runner import run_suite
    from benchmarks.tables import write_tables

    done = records_mod.recorded_ids(out)
    unique = list({s.run_id: s for s in specs}.values())
    todo = [s for s in unique if s.run_id not in done]
    print(f"Suite {suite.name!r}: {len(unique)} runs, {len(unique) - len(todo)} already recorded in {out}/records, {len(todo)} to run.")
    outer = tqdm(total=len(todo), desc="suite", unit="run", position=0)
    inner = {}  # the epoch bar of the run in flight

    def progress_factory(spec):
        outer.set_postfix_str(f"{spec.model} on {spec.dataset} seed {spec.seed}")
        inner["bar"] = tqdm(total=spec.epochs, desc=f"{spec.model}", unit="epoch", position=1, leave=False)
        return lambda kind, value, bar=inner["bar"]: bar.update(1) if kind == "epoch" else None

    def on_record(record):
        inner.pop("bar").close()
        outer.update(1)
        if record["diverged"]:
            c = record["config"]
            tqdm.write(f"  {c['model']} on {c['dataset']} (seed {c['seed']}) diverged at step {record['diverged_step']}: recorded.")

    try:
        run_suite(specs, out, progress_factory=progress_factory, on_record=on_record)
    finally:
        if "bar" in inner:
            inner.pop("bar").close()
        outer.close()
    paths = write_tables(out)
    print(f"Tables: {', '.join(str(p) for p in paths.values())}")


def _cmd_report(args) -> None:
    from benchmarks.report import build_report

    paths = build_report(args.results)
    print(f"Report: {paths['markdown']} and {paths['html']} (self-contained), "
          f"{len(paths['figures'])} figures in {paths['figures_dir']}")


def _cmd_pretrained(args) -> None:
    import json

    import zoo

    if args.action == "list":
        if args.name:
            raise UserError(f"`gradzoo pretrained list` takes no name; to see one model, run `gradzoo pretrained show {args.name}`.")
        _print_pretrained_list(zoo)
        return
    if not args.name:
        raise UserError("`gradzoo pretrained show` needs a NAME; `gradzoo pretrained list` names them.")
    info = zoo.pretrained_info(args.name)
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        _print_pretrained_info(info)


def _score(info: dict) -> str:
    metric, value = info.get("metric"), (info.get("test_metrics") or {}).get(info.get("metric"))
    return f"{metric} {value:.4g}" if metric and value is not None else "-"


def _print_pretrained_list(zoo) -> None:
    names = zoo.list_pretrained()
    if not names:
        print("No pretrained models (run `python -m benchmarks.train_pretrained` to make them).")
        return
    infos = [zoo.pretrained_info(n) for n in names]
    width = max(len(n) for n in names) + 2
    print(f"{'name':<{width}}{'role':<11}{'test score':<19}{'epochs':<8}{'size':<9}{'gradients':<11}compare with")
    for info in infos:
        epochs = (info.get("summary") or {}).get("epochs_run")
        size = info.get("size_bytes")
        print(
            f"{info['name']:<{width}}{info.get('role', '-'):<11}{_score(info):<19}{epochs or '-'!s:<8}"
            f"{f'{size / 1e6:.2f} MB' if size else info['source']:<9}{(info.get('gradients') or {}).get('verdict', '-'):<11}"
            f"{', '.join(info.get('compare_with', [])) or '-'}"
        )
    print('\nLoad one with `zoo.load_pretrained("NAME")`; `gradzoo pretrained show NAME` gives its history.')


def _print_pretrained_info(info: dict) -> None:
    def fmt(value):
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    def kv(d):
        return ", ".join(f"{k}={fmt(v)}" for k, v in d.items())

    print(f"{info['name']}  ({info.get('role', 'registered')}"
          + (f"; compare with {', '.join(info['compare_with'])})" if info.get("compare_with") else ")"))
    if info.get("description"):
        print(f"  {info['description']}")
    rows = []
    if "model" in info:
        params = (info.get("summary") or {}).get("num_params")
        rows.append(("model", info["model"] + (f" ({params:,} parameters)" if params else "")))
    if "dataset" in info:
        rows.append(("dataset", f"{info['dataset']} ({kv(info.get('dataset_params', {}))})"))
    if "config" in info:
        c = info["config"]
        rows.append(("trained", f"{c['epochs']} epochs, batch size {c['batch_size']}, seed {c['seed']}, "
                                f"optimizer {kv(info.get('optimizer', {}))}"))
    if info.get("test_metrics"):
        extra = f" (chance {fmt(info['chance'])}, target {fmt(info['target'])})" if "chance" in info else ""
        rows.append(("test", kv(info["test_metrics"]) + extra))
    g = info.get("gradients")
    if g:
        ratio = g["first_last_ratio"]
        rows.append(("gradients", f"{g['verdict']}; first/last weight-layer ratio {fmt(ratio[0])} in epoch 1, "
                                  f"{fmt(ratio[-1])} in epoch {len(ratio)}; global norm max {fmt(max(g['global_norm_max']))}"))
        t = g.get("temporal")
        if t:
            rows.append(("", f"through time: early/late input-gradient ratio {fmt(t['early_late_ratio'][0])} at start, "
                             f"{fmt(t['early_late_ratio'][-1])} at the end"))
    size = f" ({info['size_bytes'] / 1e6:.2f} MB)" if info.get("size_bytes") else ""
    rows.append(("file", f"{info.get('url') or info.get('path')}{size}"))
    rows.append(("sha256", info["sha256"]))
    for key, value in rows:
        print(f"  {key:<11}{value}")
    h = info.get("history")
    if h and h.get("epoch"):
        metric = info.get("metric", "metric")
        print(f"\n  {'epoch':>5} {'loss':>10} {metric:>10} {'val_loss':>10} {'val_' + metric:>14}")
        for row in zip(h["epoch"], h["loss"], h["metric"], h["val_loss"], h["val_metric"]):
            cells = ["-" if v is None else f"{v:.4g}" for v in row[1:]]
            print(f"  {row[0]:>5} {cells[0]:>10} {cells[1]:>10} {cells[2]:>10} {cells[3]:>14}")
    print(f'\nLoad it: zoo.load_pretrained("{info["name"]}")')


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradzoo",
        description="A Keras 3 model zoo and benchmark for vanishing and exploding gradients.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("list", help="show the models (grouped by pair), datasets and suites")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("run", help="run a benchmark suite (default: quick) and write records and tables")
    p.add_argument("suite", nargs="?", default="quick", metavar="SUITE_OR_FILE",
                   help="a shipped suite name (see `gradzoo list`) or the path of a .toml suite file (default: quick)")
    p.add_argument("--out", default="results", metavar="DIR", help="output directory (default: results)")
    p.add_argument("--seeds", type=_positive_int, metavar="N", help="run seeds 0..N-1 (default: the suite's)")
    p.add_argument("--epochs", type=_positive_int, metavar="E", help="override every run's epoch count")
    p.add_argument("--no-gradients", action="store_true", help="do not record gradient norms")
    p.add_argument("--data-dir", metavar="DIR", help="prepared tensorflow-datasets directory (else $GRADZOO_TFDS_DIR)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("report", help="turn a results directory's records into report.md, report.html and figures")
    p.add_argument("--results", default="results", metavar="DIR",
                   help="the directory `gradzoo run --out` wrote (default: results)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("pretrained", help="list the pretrained zoo models, or show one's scores and history")
    p.add_argument("action", nargs="?", choices=("list", "show"), default="list", help="list (default) or show NAME")
    p.add_argument("name", nargs="?", metavar="NAME", help="a pretrained model, e.g. resnet_20_1d.mnist1d")
    p.add_argument("--json", action="store_true", help="with show: print the whole manifest entry as JSON")
    p.set_defaults(func=_cmd_pretrained)
    return parser


def main(argv=None) -> int:
    """Entry point of the `gradzoo` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the output
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _import_keras_quietly()
        args.func(args)
    except (UserError, ValueError, FileNotFoundError, NotADirectoryError) as e:
        # A user's mistake: one sentence, no traceback, non-zero exit.
        print(f"gradzoo: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gradzoo: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
