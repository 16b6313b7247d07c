"""What reading a results folder costs: the validating record reader against bare decompress + parse.

Every record gradzoo reads is checked (regular file, size and nesting caps,
every field's kind and domain through pydantic). This prints, for a folder of
records, the median wall time of `scan()` (cold: its per-process cache is
cleared each repeat) beside the floor that any reader pays, reading the bytes,
decompressing and `json.loads`, so the price of the checks is the difference.

Usage:
    python -m gradzoo.benchmarks.perf.bench_records                    # results/ (the reference records)
    python -m gradzoo.benchmarks.perf.bench_records --results runs --repeats 7
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import time

from gradzoo.benchmarks.commands.options import positive_int


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gradzoo.benchmarks.perf.bench_records", description=__doc__.split("\n")[0])
    parser.add_argument("--results", default="results", help="a folder holding records/ (default: results)")
    parser.add_argument("--repeats", type=positive_int, default=5, help="timed repeats; the median is printed (default: 5)")
    args = parser.parse_args(argv)

    from gradzoo.benchmarks.harness.records import files

    paths = list(files.record_files(args.results).values())
    files.scan(args.results)  # imports and pydantic's validators built once, outside the timing

    def parse_only():
        for path in paths:
            data = path.read_bytes()
            json.loads(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)

    def validated():
        files._CACHE.clear()
        files.scan(args.results)

    rows = []
    for label, fn in (("read + decompress + json.loads", parse_only), ("scan(): validated records", validated)):
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        rows.append((label, statistics.median(times)))
    size = sum(p.stat().st_size for p in paths)
    print(f"{len(paths)} records, {size / 1e6:.1f} MB on disk, in {args.results}/records; median of {args.repeats}:")
    for label, seconds in rows:
        print(f"  {label:34s} {seconds:6.2f} s  ({seconds / len(paths) * 1e3:.1f} ms per record)")
    print(f"  the checks cost {rows[1][1] - rows[0][1]:.2f} s in all ({rows[1][1] / rows[0][1]:.2f}x the bare parse)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
