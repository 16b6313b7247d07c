"""`gradzoo regenerate`: every derived file (tables, claims, report, README blocks, the doctor's
evidence and example, optionally the pretrained weights) from the records, in one ordered run.

```bash
gradzoo regenerate                      # what is stale; a killed run resumes at the first step not done
gradzoo regenerate --check              # writes nothing; exit 1 and one line per stale file
gradzoo regenerate --only report readme
gradzoo regenerate --with-pretrained    # also retrains zoo/weights/ (minutes)
```

The steps and their outputs are listed in `gradzoo.benchmarks.regenerate.steps.STEPS`.
"""

from __future__ import annotations


def add(subparsers) -> None:
    from gradzoo.benchmarks.regenerate.runner import DEFAULT_RESULTS
    from gradzoo.benchmarks.regenerate.steps import STEP_NAMES

    p = subparsers.add_parser("regenerate", help="regenerate every file derived from the records (or --check them)")
    p.add_argument("--results", default=DEFAULT_RESULTS, metavar="DIR",
                   help=f"the results folder whose records/ to read (default: {DEFAULT_RESULTS})")  # fmt: skip
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 naming each committed derived file that differs from what the records give")  # fmt: skip
    p.add_argument("--only", nargs="+", metavar="STEP", help=f"run these steps only: {', '.join(STEP_NAMES)}")
    p.add_argument("--repo", metavar="DIR", help="the checkout whose README and doctor evidence to write "
                   "(default: the one this gradzoo runs from)")  # fmt: skip
    p.add_argument("--with-pretrained", action="store_true", help="also retrain the pretrained models (zoo/weights/)")
    p.set_defaults(func=run, needs_keras=False)  # only the steps that train load Keras, below


def run(args) -> int:
    from gradzoo.benchmarks.regenerate.runner import check, regenerate, select

    if not args.check and any(s.name in ("doctor-example", "pretrained") for s in select(args.only, args.with_pretrained)):
        from gradzoo.benchmarks.backends import choose_backend, import_keras_quietly

        choose_backend(None)
        import_keras_quietly()

    if args.check:
        stale = check(args.results, args.repo, only=args.only)
        print(f"{len(stale)} stale file(s)." if stale else "Every derived file is what the records give.")
        return 1 if stale else 0
    regenerate(args.results, args.repo, only=args.only, with_pretrained=args.with_pretrained)
    return 0
