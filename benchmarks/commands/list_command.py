"""`gradzoo list`: the models grouped by pair, the datasets and the suites."""

from __future__ import annotations


def add(subparsers) -> None:
    p = subparsers.add_parser("list", help="show the models (grouped by pair), datasets and suites")
    p.set_defaults(func=run)


def run(args) -> None:
    from gradzoo import zoo
    from gradzoo.benchmarks.datasets import list_datasets
    from gradzoo.benchmarks.harness.plan.suites import list_suites

    width = max(len(n) for n in zoo.list_models()) + 4
    print("Models, each baseline followed by its mitigated partners:")
    for family in ("mlp", "cnn", "rnn"):
        print(f"\n  [{family}]")
        for baseline in zoo.list_models(family=family, role="baseline"):
            spec = zoo.get_spec(baseline)
            print(f"  {baseline:<{width}}{spec.description}")
            for partner in spec.partners:
                print(f"    -> {partner:<{width - 3}}{zoo.get_spec(partner).description}")
    print("\nDatasets (embedded ones run offline):")
    rows = list_datasets()
    dw = max(len(r["name"]) for r in rows) + 2
    for row in rows:
        kind = "embedded" if row["embedded"] else "tfds"
        print(f"  {row['name']:<{dw}}{kind:<10}{row['description']}")
    print("\nSuites (gradzoo run SUITE):")
    suites = list_suites()
    sw = max(len(name) for name, _ in suites) + 2
    for name, description in suites:
        print(f"  {name:<{sw}}{description}")
