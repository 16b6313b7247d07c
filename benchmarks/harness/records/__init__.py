"""The run record: one typed JSON file per run (gzip-compressed), the single source of truth.

`RunRecord` is the only definition of the format. `gradzoo.benchmarks.harness.run.run_one`
builds it; tables, verdicts, claims, figures, reports, the README headline, the
doctor's evidence and the pretrained manifest read it through its attributes
and accessors, never through string keys.

A record is written once, atomically (`gradzoo.benchmarks.storage.write_atomic`), so a
run killed at any moment, even by SIGKILL, leaves either its complete record
or none. Its file is `records/<run_id>.json.gz`: compact strict JSON, gzip-compressed
(`zcat records/<id>.json.gz | jq .summary` reads one; Python's `gzip` and `json` too),
with the gradient log at the float32 precision it was measured in (its per-step arrays, which
only figures read, at 4 significant digits: see `codec.PER_STEP_DIGITS`). Older
`<run_id>.json` files (plain JSON) are still read. Reading treats a file as
untrusted: regular files only, a size and a nesting cap before parsing, and
every field checked for kind and domain (`records.types`). It is strict JSON: a non-finite number (a diverged run's NaN or
infinite loss or gradient norm) is written as `null`, and its JSON Pointer and
value are kept under the top-level `nonfinite` key (`{"/history/loss/3": "nan"}`),
so `jq` or JavaScript can read every record and loading restores the numbers
exactly.

Schema history (`schema`):

- 1: the first harness's records: an inline dict with bare `NaN` tokens.
  They load through `migrate_v1` (the typed fields a v1 run did not know get
  their neutral values), so old result folders keep working.
- 2: fixed fields for the gradient log (`gradients`, activation statistics
  inside it) and the gradient through time (`temporal`). (Its files became
  `.json.gz` without a schema change: the fields are the same.) They load
  through `migrate_v2`, unchanged on disk.
- 3: this module: every instrument's log under `instruments`, keyed by the
  instrument's key (`gradient_norms`, `activations`, `temporal`, and any
  registered instrument's), read as the log type its instrument registered
  (`register_log`); `RunRecord.gradients`, `.activations` and `.temporal`
  read the built-in ones.
"""

from gradzoo.benchmarks.harness.records.config import (
    ACTIVATIONS, CLIP_KEYS, GRADIENT_NORMS, PHASES, SCHEMA_VERSION, TEMPORAL, RunConfig, sweep_label,
)  # fmt: skip
from gradzoo.benchmarks.harness.records.files import (
    RECORDS_SUBDIR,
    SUFFIX,
    Scan,
    load_records,
    read_record,
    record_files,
    record_path,
    recorded_ids,
    records_dir,
    scan,
    write_record,
)
from gradzoo.benchmarks.harness.records.schema import (
    ActivationLayer,
    ActivationLog,
    DatasetSummary,
    EpochStats,
    Environment,
    GradientLog,
    Hardware,
    History,
    LayerInfo,
    ModelInfo,
    LOG_TYPES,
    RunRecord,
    Summary,
    TemporalLog,
    Trial,
    TuningInfo,
    register_log,
)

__all__ = [
    "ACTIVATIONS", "CLIP_KEYS", "GRADIENT_NORMS", "LOG_TYPES", "PHASES", "TEMPORAL", "RECORDS_SUBDIR", "SUFFIX", "SCHEMA_VERSION", "ActivationLayer", "ActivationLog", "DatasetSummary", "EpochStats",
    "Environment", "GradientLog", "Hardware", "History", "LayerInfo", "ModelInfo", "RunConfig", "RunRecord", "Scan",
    "Summary", "TemporalLog", "Trial", "TuningInfo", "load_records", "read_record", "register_log", "record_files", "record_path", "recorded_ids",
    "records_dir", "scan", "sweep_label", "write_record",
]
