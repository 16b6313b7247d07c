"""`gradzoo pretrained list | show NAME`: the pretrained zoo models, their scores and histories."""

from __future__ import annotations

from gradzoo.benchmarks.errors import UserError


def add(subparsers) -> None:
    p = subparsers.add_parser("pretrained", help="list the pretrained zoo models, or show one's scores and history")
    p.add_argument("action", nargs="?", choices=("list", "show"), default="list", help="list (default) or show NAME")
    p.add_argument("name", nargs="?", metavar="NAME", help="a pretrained model, e.g. resnet_56_1d.mnist1d")
    p.add_argument("--json", action="store_true", help="with show: print the whole manifest entry as JSON")
    p.set_defaults(func=run)


def run(args) -> None:
    import json

    from gradzoo import zoo

    if args.action == "list":
        if args.name:
            raise UserError(f"`gradzoo pretrained list` takes no name; to see one model, run `gradzoo pretrained show {args.name}`.")
        _print_pretrained_list(zoo)
        return
    if not args.name:
        raise UserError("`gradzoo pretrained show` needs a NAME; `gradzoo pretrained list` names them.")
    try:
        info = zoo.pretrained_info(args.name)
    except ValueError as e:
        raise UserError(str(e)) from None
    if args.json:
        print(json.dumps(info, indent=1))
    else:
        _print_pretrained_info(info)


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _kv(d: dict) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in d.items())


def _print_pretrained_list(zoo) -> None:
    from gradzoo.zoo.pretrained import pretrained_entry

    names = zoo.list_pretrained()
    if not names:
        print("No pretrained models (run `gradzoo regenerate --only pretrained` to make them).")
        return
    width = max(len(n) for n in names) + 2
    print(f"{'name':<{width}}{'role':<11}{'test score':<19}{'epochs':<8}{'size':<9}{'gradients':<11}compare with")
    for name in names:
        e = pretrained_entry(name)
        if e is None:  # registered by the user: its `info` is free-form, so only where it comes from is known
            print(f"{name:<{width}}{'-':<11}{'-':<19}{'-':<8}{zoo.pretrained_info(name)['source']:<9}{'-':<11}-")
            continue
        score = e.test_metrics.get(e.metric)
        score = f"{e.metric} {score:.4g}" if score is not None else "-"
        print(f"{name:<{width}}{e.role:<11}{score:<19}{e.summary.epochs_run!s:<8}{f'{e.size_bytes / 1e6:.2f} MB':<9}"
              f"{e.gradients.verdict if e.gradients else '-':<11}{', '.join(e.compare_with) or '-'}")  # fmt: skip
    print('\nLoad one with `gradzoo.zoo.load_pretrained("NAME")`; `gradzoo pretrained show NAME` gives its history.')


def _print_pretrained_info(info: dict) -> None:
    from gradzoo.zoo.pretrained import pretrained_entry

    e = pretrained_entry(info["name"])
    if e is None:  # registered by the user: show what it was registered with
        print(f"{info['name']}  (registered)")
        extra = {k: v for k, v in info.items() if k not in ("name", "sha256", "source", "url", "path")}
        rows = [("info", _kv(extra))] if extra else []
        rows += [("file", info.get("url") or info.get("path")), ("sha256", info["sha256"])]
        for key, value in rows:
            print(f"  {key:<11}{value}")
        print(f'\nLoad it: zoo.load_pretrained("{info["name"]}")')
        return
    print(f"{e.name}  ({e.role}" + (f"; compare with {', '.join(e.compare_with)})" if e.compare_with else ")"))
    if e.description:
        print(f"  {e.description}")
    c = e.config
    rows = [("model", f"{e.model} ({e.summary.num_params:,} parameters)"),
            ("dataset", f"{e.dataset} ({_kv(e.dataset_params)})"),
            ("trained", f"{c['epochs']} epochs, batch size {c['batch_size']}, seed {c['seed']}, optimizer {_kv(e.optimizer)}"),
            ("test", f"{_kv(e.test_metrics)} (chance {_fmt(e.chance)}, target {_fmt(e.target)})")]  # fmt: skip
    g = e.gradients
    if g is not None:
        ratio = g.first_last_ratio
        rows.append(("gradients", f"{g.verdict}; first/last weight-layer ratio {_fmt(ratio[0])} in epoch 1, "
                                  f"{_fmt(ratio[-1])} in epoch {len(ratio)}; global norm max {_fmt(max(g.global_norm_max))}"))  # fmt: skip
        if g.temporal is not None:
            t = g.temporal.early_late_ratio
            rows.append(("", f"through time: early/late input-gradient ratio {_fmt(t[0])} at start, {_fmt(t[-1])} at the end"))
    rows += [("file", f"{info['path']} ({e.size_bytes / 1e6:.2f} MB)"), ("sha256", e.sha256)]
    for key, value in rows:
        print(f"  {key:<11}{value}")
    h = e.history
    print(f"\n  {'epoch':>5} {'loss':>10} {e.metric:>10} {'val_loss':>10} {'val_' + e.metric:>14}")
    for row in zip(h.epoch, h.loss, h.metric, h.val_loss, h.val_metric):
        cells = ["-" if v is None else f"{v:.4g}" for v in row[1:]]
        print(f"  {row[0]:>5} {cells[0]:>10} {cells[1]:>10} {cells[2]:>10} {cells[3]:>14}")
    print(f'\nLoad it: zoo.load_pretrained("{e.name}")')
