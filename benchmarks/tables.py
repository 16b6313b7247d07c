"""Records -> tidy pandas tables -> CSV and Markdown.

`write_tables(out_dir)` reads every record under `out_dir/records/` and writes
`convergence.csv` (one row per run), `gradients.csv` (one row per run, epoch and
layer), and `comparison.csv` / `comparison.md` (each baseline beside its
mitigated partner, mean ± std over seeds, the difference and the verdicts).
Nothing here is typed by hand: rerun it and the tables follow the records.
"""

from __future__ import annotations

import math
from pathlib import Path

from benchmarks import verdicts
from benchmarks.records import load_records

CONVERGENCE_COLUMNS = [
    "suite", "group", "sweep", "pair", "model", "role", "dataset", "seed", "epochs", "epochs_run",
    "final_train_loss", "final_val_loss", "metric_name", "metric_mode", "chance", "target",
    "final_val_metric", "best_val_metric", "test_metric", "steps_to_target", "epochs_to_target",
    "seconds_to_target", "diverged", "diverged_step", "verdict", "grad_ratio_first_last",
    "temporal_ratio_early_late", "max_global_grad_norm", "clip_rate", "train_s", "setup_s", "samples_per_s", "num_params", "run_id",
]


def _sweep_label(sweep: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(sweep.items()))


def pair_of(record: dict) -> str:
    """The baseline a record is compared against (its own name for a baseline)."""
    model = record["model"]
    return model["name"] if model["role"] == "baseline" else model["baseline"]


def convergence_table(records):
    """One row per run: the columns of `CONVERGENCE_COLUMNS` plus one per swept key."""
    import pandas as pd

    rows = []
    for r in records:
        c, s, d = r["config"], r["summary"], r["dataset"]
        row = {
            "suite": c["suite"],
            "group": c["group"],
            "sweep": _sweep_label(c["sweep"]),
            "pair": pair_of(r),
            "model": c["model"],
            "role": r["model"]["role"],
            "dataset": c["dataset"],
            "seed": c["seed"],
            "epochs": c["epochs"],
            "epochs_run": s["epochs_run"],
            "final_train_loss": s["final_train_loss"],
            "final_val_loss": s["final_val_loss"],
            "metric_name": d["metric"],
            "metric_mode": d["metric_mode"],
            "chance": d["chance"],
            "target": d["target"],
            "final_val_metric": s["final_val_metric"],
            "best_val_metric": s["best_val_metric"],
            "test_metric": s["test_metric"],
            "steps_to_target": s["steps_to_target"],
            "epochs_to_target": s["epochs_to_target"],
            "seconds_to_target": s["seconds_to_target"],
            "diverged": r["diverged"],
            "diverged_step": r["diverged_step"],
            "verdict": verdicts.verdict(r),
            "grad_ratio_first_last": verdicts.first_last_ratio(r),
            "temporal_ratio_early_late": verdicts.temporal_ratio(r),
            "max_global_grad_norm": verdicts.max_global_norm(r),
            "clip_rate": verdicts.clip_rate(r),
            "train_s": s["train_s"],
            "setup_s": s["setup_s"],
            "samples_per_s": s["samples_per_s"],
            "num_params": s["num_params"],
            "run_id": r["run_id"],
        }
        for key, value in c["sweep"].items():
            row[key] = value
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=CONVERGENCE_COLUMNS)
    extra = [k for k in table.columns if k not in CONVERGENCE_COLUMNS]
    return table[CONVERGENCE_COLUMNS + extra]


def gradients_table(records):
    """Tidy per-epoch gradient norms: one row per run, epoch and layer."""
    import pandas as pd

    rows = []
    for r in records:
        g = r.get("gradients")
        if not g:
            continue
        c = r["config"]
        for e, (mins, means, maxs) in enumerate(zip(g["epoch"]["min"], g["epoch"]["mean"], g["epoch"]["max"]), start=1):
            for layer, lo, mean, hi in zip(g["layers"], mins, means, maxs):
                rows.append({
                    "run_id": r["run_id"], "suite": c["suite"], "group": c["group"], "sweep": _sweep_label(c["sweep"]),
                    "model": c["model"], "role": r["model"]["role"], "seed": c["seed"], "epoch": e,
                    "layer": layer["name"], "depth_index": layer["depth_index"], "kind": layer["kind"],
                    "grad_norm_min": lo, "grad_norm_mean": mean, "grad_norm_max": hi,
                })
    columns = ["run_id", "suite", "group", "sweep", "model", "role", "seed", "epoch", "layer", "depth_index", "kind",
               "grad_norm_min", "grad_norm_mean", "grad_norm_max"]
    return pd.DataFrame(rows, columns=columns)


_COMPARED = ["best_val_metric", "final_val_metric", "steps_to_target", "grad_ratio_first_last",
             "temporal_ratio_early_late", "train_s"]


def _majority(values):
    values = [v for v in values if v]
    return max(set(values), key=values.count) if values else None


def comparison_table(convergence):
    """Each baseline beside each mitigated partner run in the same group and sweep point."""
    import pandas as pd

    rows = []
    if convergence.empty:
        return pd.DataFrame()
    keys = ["suite", "group", "sweep", "dataset"]
    for (suite, group, sweep, dataset), runs in convergence.groupby(keys, sort=False, dropna=False):
        for baseline in runs.loc[runs.role == "baseline", "model"].unique():
            base = runs[runs.model == baseline]
            for mitigated in runs.loc[(runs.role == "mitigated") & (runs.pair == baseline), "model"].unique():
                mit = runs[runs.model == mitigated]
                row = {
                    "suite": suite, "group": group, "sweep": sweep, "dataset": dataset,
                    "baseline": baseline, "mitigated": mitigated,
                    "metric_name": base.metric_name.iloc[0], "metric_mode": base.metric_mode.iloc[0],
                    "chance": base.chance.iloc[0], "target": base.target.iloc[0],
                    "seeds": int(min(len(base), len(mit))),
                }
                for col in _COMPARED:
                    b = pd.to_numeric(base[col], errors="coerce")
                    m = pd.to_numeric(mit[col], errors="coerce")
                    row[f"baseline_{col}_mean"], row[f"baseline_{col}_std"] = b.mean(), b.std(ddof=0)
                    row[f"mitigated_{col}_mean"], row[f"mitigated_{col}_std"] = m.mean(), m.std(ddof=0)
                    row[f"{col}_diff"] = m.mean() - b.mean()
                row["baseline_reached_target"] = f"{int(base.steps_to_target.notna().sum())}/{len(base)}"
                row["mitigated_reached_target"] = f"{int(mit.steps_to_target.notna().sum())}/{len(mit)}"
                row["baseline_diverged"] = f"{int(base.diverged.sum())}/{len(base)}"
                row["mitigated_diverged"] = f"{int(mit.diverged.sum())}/{len(mit)}"
                row["baseline_verdict"] = _majority(list(base.verdict))
                row["mitigated_verdict"] = _majority(list(mit.verdict))
                rows.append(row)
    return pd.DataFrame(rows)


def format_number(value, digits=3) -> str:
    """A number for tables and prose: `3.2e-7`, `0.85`, `12`, `1.2e4`; `–` for missing.

    Args:
        value: a Python or NumPy number, `None` or NaN (both shown as `–`);
            anything else is shown with `str`.
        digits: significant digits between 1e-2 and 10**digits. Defaults to `3`.
    """
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # NumPy scalars: their ints are not `int`
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, int) or (value.is_integer() and abs(value) < 1e4):
        return str(int(value))
    if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e4):
        mantissa, exponent = f"{value:.1e}".split("e")
        return f"{mantissa.removesuffix('.0')}e{int(exponent)}"
    if abs(value) >= 10**digits:
        return f"{value:.0f}"
    return f"{value:.{digits}g}"


def finite_values(values) -> list:
    """The finite numbers among `values` (`None`, NaN and +-inf left out)."""
    return [v for v in values if v is not None and isinstance(v, (int, float)) and math.isfinite(v)]


def percent(fraction) -> str:
    """`0.25` -> `25%`."""
    return f"{100 * fraction:.0f}%"


CLIP_KEYS = ("clipnorm", "global_clipnorm", "clipvalue")


def clipping_setting(record: dict) -> str | None:
    """The clipping setting of a run, e.g. `clipnorm=1`, or `None`."""
    settings = record.get("optimizer") or {}
    parts = [f"{k}={format_number(settings[k])}" for k in CLIP_KEYS if settings.get(k)]
    return ", ".join(parts) or None


def format_mean_std(mean, std) -> str:
    """`mean ± std` with `format_number`; `–` when the mean is missing."""
    if format_number(mean) == "–":
        return "–"
    return f"{format_number(mean)} ± {format_number(std)}"


def comparison_markdown(comparison) -> str:
    """The comparison as a Markdown table (mean ± std over seeds)."""
    header = ["suite", "group", "sweep", "dataset", "metric", "baseline", "mitigated", "seeds",
              "best val (baseline)", "best val (mitigated)", "diff", "reached target",
              "grad ratio first/last layer", "grad ratio early/late steps", "verdicts"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in comparison.iterrows():
        metric = f"{r.metric_name} ({'higher' if r.metric_mode == 'max' else 'lower'} is better; chance {format_number(r.chance)}, target {format_number(r.target)})"
        cells = [
            r.suite, r.group, r.sweep or "–", r.dataset, metric, f"`{r.baseline}`", f"`{r.mitigated}`", str(r.seeds),
            format_mean_std(r.baseline_best_val_metric_mean, r.baseline_best_val_metric_std),
            format_mean_std(r.mitigated_best_val_metric_mean, r.mitigated_best_val_metric_std),
            format_number(r.best_val_metric_diff),
            f"{r.baseline_reached_target} vs {r.mitigated_reached_target}",
            f"{format_number(r.baseline_grad_ratio_first_last_mean)} vs {format_number(r.mitigated_grad_ratio_first_last_mean)}",
            f"{format_number(r.baseline_temporal_ratio_early_late_mean)} vs {format_number(r.mitigated_temporal_ratio_early_late_mean)}",
            f"{r.baseline_verdict} vs {r.mitigated_verdict}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_tables(out_dir) -> dict:
    """Regenerates every table of `out_dir` from its records; returns the paths."""
    out_dir = Path(out_dir)
    records = load_records(out_dir)
    convergence = convergence_table(records)
    gradients = gradients_table(records)
    comparison = comparison_table(convergence)
    paths = {
        "convergence": out_dir / "convergence.csv",
        "gradients": out_dir / "gradients.csv",
        "comparison_csv": out_dir / "comparison.csv",
        "comparison_md": out_dir / "comparison.md",
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    convergence.to_csv(paths["convergence"], index=False)
    gradients.to_csv(paths["gradients"], index=False)
    comparison.to_csv(paths["comparison_csv"], index=False)
    text = "# Comparison: each baseline beside its mitigated partner\n\n"
    text += "Generated from the run records by `gradzoo run` / `gradzoo report`; mean ± std over seeds.\n"
    text += (f"Verdicts: vanishing if the first weight layer's gradient is below {verdicts.VANISHING_RATIO:g} of the "
             "last's over epoch 1 (for recurrent nets: if the gradient reaching the first 10% of input steps is below "
             f"{verdicts.VANISHING_RATIO:g} of that reaching the last 10%, at the end of training); exploding if a raw "
             f"global gradient norm exceeds {verdicts.EXPLODING_NORM:g} or the run diverged; else healthy.\n\n")
    paths["comparison_md"].write_text(text + (comparison_markdown(comparison) if not comparison.empty else "No pair has records yet.\n"))
    return paths
