"""`gradzoo doctor MODEL.keras (--dataset NAME [--param K=V ...] | --data FILE.npz)`: why doesn't my model train?

Everything that can be checked is checked before the probe trains, the data
before the model: the data exists, holds finite numbers and targets the loss
can take, and fits the model; the model loads in safe mode and has weights to
train; the output directory can be written. Each fault is one sentence naming
the array and row, or the file and what is in it, never a verdict on the model. Then the diagnosis: a text summary on the terminal, or JSON
with `--json`; with `--out DIR`, a one-page HTML report with the gradient-flow
figure, its Markdown and the JSON document.
"""

from __future__ import annotations

from gradzoo.benchmarks.commands.options import positive_int
from gradzoo.benchmarks.doctor.defaults import DEFAULT_BATCH, DEFAULT_STEPS


def add(subparsers) -> None:
    from gradzoo.benchmarks.backends import BACKENDS

    p = subparsers.add_parser(
        "doctor", help="diagnose a model's gradient: where it vanishes or explodes, and what to change",
        description="Measures a .keras model's per-layer gradient norms at its weights and over a short probe training "
                    "of a copy (the model file is never changed), judges each region of the network with the harness's "
                    "thresholds, and ranks fixes backed by gradzoo's own reference runs.",
    )  # fmt: skip
    p.add_argument("model", metavar="MODEL.keras", help="a model saved with model.save('name.keras'); loaded in safe mode")
    data = p.add_mutually_exclusive_group(required=True)
    data.add_argument("--dataset", metavar="NAME", help="a gradzoo dataset (see `gradzoo list`); its training split is used")
    data.add_argument("--data", metavar="FILE.npz",
                      help="an .npz file with arrays `x` (inputs, one example per row) and `y` (targets), "
                           "as written by numpy.savez(FILE, x=x, y=y); only the first rows the doctor uses are read")  # fmt: skip
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a dataset parameter, repeatable: --param length=50 --param shape=flat")
    p.add_argument("--steps", type=positive_int, default=DEFAULT_STEPS, metavar="N",
                   help=f"probe training steps on a copy of the model (default: {DEFAULT_STEPS})")
    p.add_argument("--batch-size", type=positive_int, metavar="B",
                   help=f"examples per probe step (default: the dataset's batch_size, else {DEFAULT_BATCH})")
    p.add_argument("--eager", action="store_true",
                   help="train the probe without compiling its train step: faster for a few steps of a deep model")
    p.add_argument("--seed", type=int, default=0, help="seeds the probe's data order and Keras's random state (default: 0)")
    p.add_argument("--json", action="store_true", help="print the diagnosis as JSON instead of the text summary")
    p.add_argument("--out", metavar="DIR", help="also write DIR/doctor.html (one page with the gradient-flow figure), "
                                                "DIR/doctor.md and DIR/diagnosis.json")  # fmt: skip
    p.add_argument("--data-dir", metavar="DIR", help="prepared tensorflow-datasets directory (else $GRADZOO_TFDS_DIR)")
    p.add_argument("--backend", choices=BACKENDS, help="Keras backend (default: $KERAS_BACKEND, else tensorflow)")
    p.set_defaults(func=run)


def run(args) -> None:
    import json

    from gradzoo.benchmarks.doctor import diagnose
    from gradzoo.benchmarks.doctor.loading import load_dataset_split, load_model_file, load_npz, parse_params
    from gradzoo.benchmarks.errors import UserError
    from gradzoo.benchmarks.storage import ensure_writable_dir

    if args.param and not args.dataset:
        raise UserError("--param sets a parameter of --dataset; an .npz file given with --data takes none.")
    if args.seed < 0:
        raise UserError(f"--seed must be an integer >= 0. Received: {args.seed}")
    params = parse_params(args.param)
    out = ensure_writable_dir(args.out) if args.out else None
    # The data first: an unknown dataset is named before a large model is read.
    if args.dataset:
        x, y, label = load_dataset_split(args.dataset, params, args.data_dir)
        batch_size = args.batch_size or int(params.get("batch_size", DEFAULT_BATCH))
    else:
        x, y, label = load_npz(args.data)
        batch_size = args.batch_size or DEFAULT_BATCH
    model = load_model_file(args.model)
    diagnosis = diagnose(model, x, y, steps=args.steps, batch_size=batch_size, seed=args.seed, data_label=label,
                         run_eagerly=args.eager)  # fmt: skip
    paths = diagnosis.write_html(out) if out is not None else None
    if args.json:
        print(json.dumps(diagnosis.to_json(), indent=1, allow_nan=False))
        return
    print(diagnosis.text(), end="")
    if paths is not None:
        print(f"\nReport: {paths['html']} (self-contained), {paths['json']}")
