"""Records -> tidy pandas tables -> CSV and Markdown.

`write_tables(out_dir)` reads every record under `out_dir/records/` and writes
`convergence.csv` (one row per run, tuning trials included, marked by `phase`),
`gradients.csv.gz` (one row per run, epoch and layer, gzip-compressed), and `comparison.csv` /
`comparison.md` (each baseline beside its mitigated partner, evaluation runs
only, mean ± std over seeds, the difference, the verdicts and what each model
was tuned over). Every registered instrument (`gradzoo.benchmarks.harness.instruments`) adds its
`columns` to `convergence.csv`, its `compared` ones to the comparison and its `layer_columns` to
`gradients.csv.gz`. Nothing here is typed by hand: rerun it and the tables follow
the records. Every file is written atomically.
"""

from __future__ import annotations

import gzip

from pathlib import Path

from gradzoo.benchmarks.analysis.fixes import fixes_of
from gradzoo.benchmarks.analysis import verdicts
from gradzoo.benchmarks.analysis.formatting import format_mean_std, format_number, md_cell, md_code, md_escape
from gradzoo.benchmarks.harness.instruments import registered
from gradzoo.benchmarks.harness.records import RunRecord, scan
from gradzoo.benchmarks.storage import write_atomic

# The run's own columns; every registered instrument's `columns` follow `verdict` (see `convergence_columns`).
RUN_COLUMNS = [
    "suite", "group", "phase", "sweep", "tuned_over", "pair", "model", "registry_model", "role", "dataset", "seed",
    "epochs", "epochs_run", "final_train_loss", "final_val_loss", "metric_name", "metric_mode", "chance", "target",
    "final_val_metric", "best_val_metric", "test_metric", "steps_to_target", "epochs_to_target", "seconds_to_target",
    "diverged", "diverged_step", "verdict", "optimizer", "precision", "backend", "train_s", "setup_s", "samples_per_s",
    "num_params", "resumed_at_epoch", "run_id",
]  # fmt: skip
_GRADIENT_ROW_COLUMNS = ["run_id", "suite", "group", "phase", "sweep", "model", "role", "seed", "epoch", "layer"]


def convergence_columns() -> list[str]:
    """The columns of `convergence.csv` (before the swept keys): the run's, with the instruments' after `verdict`."""
    at = RUN_COLUMNS.index("verdict") + 1
    return RUN_COLUMNS[:at] + [c for i in registered() for c in i.columns] + RUN_COLUMNS[at:]


def gradient_columns() -> list[str]:
    """The columns of `gradients.csv.gz`: which run, epoch and layer, then every instrument's `layer_columns`."""
    return _GRADIENT_ROW_COLUMNS + [c for i in registered() for c in i.layer_columns]


def _optimizer_text(record: RunRecord) -> str:
    settings = record.optimizer
    parts = [str(settings.get("name", ""))] + [f"{k}={format_number(v) if isinstance(v, float) else v}"
                                                for k, v in sorted(settings.items()) if k != "name"]  # fmt: skip
    return " ".join(parts)


def convergence_row(r: RunRecord) -> dict:
    """One run as a row of `convergence.csv`."""
    c, s, d = r.config, r.summary, r.dataset
    row = {
        "suite": c.suite, "group": c.group, "phase": c.phase, "sweep": r.sweep_label, "tuned_over": c.tuned_over or "",
        "pair": r.pair, "model": r.label, "registry_model": c.model, "role": r.model.role, "dataset": c.dataset,
        "seed": c.seed, "epochs": c.epochs, "epochs_run": s.epochs_run, "final_train_loss": s.final_train_loss,
        "final_val_loss": s.final_val_loss, "metric_name": d.metric, "metric_mode": d.metric_mode, "chance": d.chance,
        "target": d.target, "final_val_metric": s.final_val_metric, "best_val_metric": r.best_score,
        "test_metric": s.test_metric, "steps_to_target": s.steps_to_target, "epochs_to_target": s.epochs_to_target,
        "seconds_to_target": s.seconds_to_target, "diverged": r.diverged, "diverged_step": r.diverged_step,
        "verdict": verdicts.verdict(r), "optimizer": _optimizer_text(r), "precision": c.precision, "backend": c.backend,
        "train_s": s.train_s, "setup_s": s.setup_s, "samples_per_s": s.samples_per_s, "num_params": s.num_params,
        "resumed_at_epoch": s.resumed_at_epoch, "run_id": r.run_id,
    }  # fmt: skip
    for instrument in registered():
        log = r.instruments.get(instrument.key)
        row.update(dict.fromkeys(instrument.columns) if log is None else instrument.table_columns(log))
    for key, value in c.sweep.items():
        row[key] = value
    return row


def convergence_table(records):
    """One row per run: the columns of `convergence_columns()` plus one per swept key."""
    import pandas as pd

    columns = convergence_columns()
    table = pd.DataFrame([convergence_row(r) for r in records])
    if table.empty:
        return pd.DataFrame(columns=columns)
    extra = [k for k in table.columns if k not in columns]
    return table[columns + extra]


def gradients_table(records):
    """Tidy per-epoch, per-layer values (gradient norms and every instrument's `layer_columns`): one row per run, epoch and layer."""
    import pandas as pd

    rows = []
    for r in records:
        c = r.config
        run = {"run_id": r.run_id, "suite": c.suite, "group": c.group, "phase": c.phase, "sweep": r.sweep_label,
               "model": r.label, "role": r.model.role, "seed": c.seed}  # fmt: skip
        by_place: dict = {}  # (epoch, layer) -> row, in the order instruments first name them
        for instrument in registered():
            log = r.instruments.get(instrument.key)
            for values in instrument.layer_rows(log) if log is not None and instrument.layer_columns else []:
                by_place.setdefault((values["epoch"], values["layer"]), dict(run)).update(values)
        rows += by_place.values()
    return pd.DataFrame(rows, columns=gradient_columns())


def compared_columns() -> list[str]:
    """The columns the comparison sets side by side: scores, every instrument's `compared`, then the time."""
    return ["best_val_metric", "final_val_metric", "steps_to_target", *(c for i in registered() for c in i.compared), "train_s"]


def tuning_text(tuned_over) -> str:
    """What a model's evaluation runs were tuned over, for tables: `untuned` when nothing was searched."""
    values = sorted({t for t in tuned_over if isinstance(t, str) and t})
    return "; ".join(values) if values else "untuned"


def comparison_table(convergence):
    """Each baseline beside each mitigated partner run in the same group and sweep point (evaluation runs only)."""
    import pandas as pd

    rows = []
    if convergence.empty:
        return pd.DataFrame()
    convergence = convergence[convergence.phase == "eval"]
    keys = ["suite", "group", "sweep", "dataset"]
    for (suite, group, sweep, dataset), runs in convergence.groupby(keys, sort=False, dropna=False):
        for baseline in runs.loc[runs.role == "baseline", "model"].unique():
            base = runs[runs.model == baseline]
            for mitigated in runs.loc[(runs.role == "mitigated") & (runs.pair == baseline), "model"].unique():
                mit = runs[runs.model == mitigated]
                row = {
                    "suite": suite, "group": group, "sweep": sweep, "dataset": dataset,
                    "baseline": baseline, "mitigated": mitigated, "fixes": " + ".join(fixes_of(mit.registry_model.iloc[0])),
                    "metric_name": base.metric_name.iloc[0], "metric_mode": base.metric_mode.iloc[0],
                    "chance": base.chance.iloc[0], "target": base.target.iloc[0],
                    "seeds": int(min(len(base), len(mit))),
                    "baseline_tuning": tuning_text(base.tuned_over), "mitigated_tuning": tuning_text(mit.tuned_over),
                    "baseline_optimizer": base.optimizer.iloc[0], "mitigated_optimizer": mit.optimizer.iloc[0],
                }  # fmt: skip
                for col in compared_columns():
                    b = pd.to_numeric(base[col], errors="coerce")
                    m = pd.to_numeric(mit[col], errors="coerce")
                    row[f"baseline_{col}_mean"], row[f"baseline_{col}_std"] = b.mean(), b.std(ddof=0)
                    row[f"mitigated_{col}_mean"], row[f"mitigated_{col}_std"] = m.mean(), m.std(ddof=0)
                    row[f"{col}_diff"] = m.mean() - b.mean()
                row["baseline_reached_target"] = f"{int(base.steps_to_target.notna().sum())}/{len(base)}"
                row["mitigated_reached_target"] = f"{int(mit.steps_to_target.notna().sum())}/{len(mit)}"
                row["baseline_diverged"] = f"{int(base.diverged.sum())}/{len(base)}"
                row["mitigated_diverged"] = f"{int(mit.diverged.sum())}/{len(mit)}"
                row["baseline_verdict"] = verdicts.majority(list(base.verdict))
                row["mitigated_verdict"] = verdicts.majority(list(mit.verdict))
                rows.append(row)
    return pd.DataFrame(rows)


def comparison_markdown(comparison) -> str:
    """The comparison as a Markdown table (mean ± std over seeds)."""
    header = ["suite", "group", "sweep", "dataset", "metric", "baseline", "mitigated", "fix", "seeds",
              "best val (baseline)", "best val (mitigated)", "diff", "reached target",
              *(title for i in registered() for title in i.compared.values()), "verdicts", "tuned over", "optimizer"]  # fmt: skip
    measured = [col for i in registered() for col in i.compared]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in comparison.iterrows():
        better = "higher" if r.metric_mode == "max" else "lower"
        metric = f"{md_escape(r.metric_name)} ({better} is better; chance {format_number(r.chance)}, target {format_number(r.target)})"
        tuned = (md_escape(r.baseline_tuning) if r.baseline_tuning == r.mitigated_tuning
                 else f"baseline: {md_escape(r.baseline_tuning)}; mitigated: {md_escape(r.mitigated_tuning)}")  # fmt: skip
        cells = [
            md_escape(r.suite), md_escape(r.group), md_escape(r.sweep or "–"), md_escape(r.dataset), metric,
            md_code(r.baseline), md_code(r.mitigated), " + ".join(map(md_code, r.fixes.split(" + "))) if r.fixes else "–",
            str(r.seeds),
            format_mean_std(r.baseline_best_val_metric_mean, r.baseline_best_val_metric_std),
            format_mean_std(r.mitigated_best_val_metric_mean, r.mitigated_best_val_metric_std),
            format_number(r.best_val_metric_diff),
            f"{r.baseline_reached_target} vs {r.mitigated_reached_target}",
            *(f"{format_number(r[f'baseline_{col}_mean'])} vs {format_number(r[f'mitigated_{col}_mean'])}" for col in measured),
            f"{r.baseline_verdict} vs {r.mitigated_verdict}", tuned,
            f"{md_code(r.baseline_optimizer)} vs {md_code(r.mitigated_optimizer)}",
        ]
        lines.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_tables(out_dir, records=None) -> dict:
    """Regenerates every table of `out_dir` from its records (or the given ones); returns the paths."""
    out_dir = Path(out_dir)
    records = scan(out_dir).records if records is None else records
    convergence = convergence_table(records)
    comparison = comparison_table(convergence)
    paths = {
        "convergence": out_dir / "convergence.csv",
        "gradients": out_dir / "gradients.csv.gz",
        "comparison_csv": out_dir / "comparison.csv",
        "comparison_md": out_dir / "comparison.md",
    }
    write_atomic(paths["convergence"], convergence.to_csv(index=False))
    # One row per run, epoch and layer is the largest table by far; gzip (no timestamp, so the same
    # records give the same bytes) keeps it a tenth of the size, and pandas, zcat and R read it as it is.
    write_atomic(paths["gradients"], gzip.compress(gradients_table(records).to_csv(index=False).encode(), mtime=0))
    write_atomic(paths["comparison_csv"], comparison.to_csv(index=False))
    text = "# Comparison: each baseline beside its mitigated partner\n\n"
    text += ("Generated from the run records by `gradzoo run` / `gradzoo report`; evaluation runs only, mean ± std over "
             "seeds, each model at the setting it was tuned to (see `tuned over`).\n")  # fmt: skip
    text += f"Verdicts: {verdicts.VERDICT_RULE}.\n\n"
    write_atomic(paths["comparison_md"], text + (comparison_markdown(comparison) if not comparison.empty else "No pair has records yet.\n"))
    return paths
