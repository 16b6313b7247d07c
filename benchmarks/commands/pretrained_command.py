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


def _score(info: dict) -> str:
    metric, value = info.get("metric"), (info.get("test_metrics") or {}).get(info.get("metric"))
    return f"{metric} {value:.4g}" if metric and value is not None else "-"


def _print_pretrained_list(zoo) -> None:
    names = zoo.list_pretrained()
    if not names:
        print("No pretrained models (run `python -m gradzoo.benchmarks.train_pretrained` to make them).")
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
    print('\nLoad one with `gradzoo.zoo.load_pretrained("NAME")`; `gradzoo pretrained show NAME` gives its history.')


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
