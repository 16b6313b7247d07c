"""Rewrites a results folder's older plain-JSON records (`<id>.json`) as `<id>.json.gz`.

```bash
python -m gradzoo.benchmarks.harness.records.compact results      # or any OUT of an older gradzoo
```

Each record is read (and so validated), written in the current form, read back
and compared with what was read, and only then is the old file removed. A record
that cannot be read is left as it is and named. Reading older files needs no
conversion (gradzoo reads both forms): this is for folders that are shared or
committed, where the compact form is about a fifth of the size.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from gradzoo.benchmarks.errors import RecordError
from gradzoo.benchmarks.harness.records.files import LEGACY_SUFFIX, read_record, record_files, write_record


def compact(out_dir) -> tuple[int, list[str]]:
    """Converts every readable `.json` record of `out_dir`; returns how many and the unreadable ones' reasons."""
    converted, problems = 0, []
    for path in record_files(out_dir).values():
        if not path.name.endswith(LEGACY_SUFFIX):  # `.json.gz` does not end so
            continue
        try:
            record = read_record(path)
            back = read_record(write_record(out_dir, record))
        except RecordError as err:
            problems.append(str(err))
            continue
        # Compared through the strict-JSON form, where NaN is a pointer (NaN != NaN); the gradient log is
        # rounded on purpose (see `codec`).
        if _without_logs(back).to_json() != _without_logs(record).to_json():
            raise AssertionError(f"{path.name}: the compact record does not read back as the original")
        path.unlink()
        converted += 1
    return converted, problems


def _without_logs(record):
    return dataclasses.replace(record, instruments={})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gradzoo.benchmarks.harness.records.compact", description=__doc__.split("\n")[0])
    parser.add_argument("out", help="an output folder holding records/")
    args = parser.parse_args(argv)
    converted, problems = compact(args.out)
    for line in problems:
        print(f"Left as it is, unreadable: {line}", file=sys.stderr)
    print(f"{converted} records rewritten as .json.gz in {args.out}/records.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
