"""The fixes: what a mitigated zoo model changes against its baseline, as data.

Every zoo model declares its fixes when it registers (`register(..., fixes=...)`),
from the closed vocabulary below, and what its gradient can be measured
through (`measured_through=("layers", "time")`). The benchmark's evidence, the
doctor's advice and the run planner read these declarations, never a model's
name, so a new pair is understood from its registration alone:

```python
from gradzoo import zoo
zoo.get_spec("rnn_lstm").fixes                # ('gating', 'clipping')
zoo.FIXES["gating"].paper                     # 'Hochreiter & Schmidhuber 1997; Cho et al. 2014'
zoo.measured_through("rnn_lstm")              # frozenset({'layers', 'time'})
```
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Fix:
    """One known remedy for vanishing or exploding gradients.

    Attributes:
        key: the name models declare, e.g. `"skip_connections"`.
        name: what a user reads, e.g. `"residual (skip) connections"`.
        changes: the part of the training setup it changes: `"init"`,
            `"activation"`, `"normalization"`, `"architecture"`, `"cell"` or
            `"optimizer"`.
        paper: where it comes from.
    """

    key: str
    name: str
    changes: str
    paper: str


FIXES: dict[str, Fix] = {
    f.key: f
    for f in (
        Fix("he_init", "He-normal init (variance 2/fan_in)", "init", "He et al. 2015, Delving Deep into Rectifiers"),
        Fix("glorot_init", "Glorot (Xavier) or LeCun-scale init (variance about 1/fan_in)", "init",
            "Glorot & Bengio 2010, Understanding the difficulty of training deep feedforward neural networks"),
        Fix("relu", "ReLU-family (non-saturating) activations", "activation", "Nair & Hinton 2010; Glorot et al. 2011"),
        Fix("batch_norm", "normalization between each weight layer and its activation", "normalization",
            "Ioffe & Szegedy 2015, Batch Normalization"),
        Fix("skip_connections", "residual (skip) connections", "architecture",
            "He et al. 2016, Deep Residual Learning for Image Recognition"),
        Fix("self_normalization", "SELU activations with LeCun-normal init", "activation",
            "Klambauer et al. 2017, Self-Normalizing Neural Networks"),
        Fix("gating", "LSTM/GRU gated cells", "cell", "Hochreiter & Schmidhuber 1997; Cho et al. 2014"),
        Fix("identity_recurrence", "a ReLU recurrence with identity recurrent init (IRNN)", "init",
            "Le, Jaitly & Hinton 2015"),
        Fix("clipping", "gradient clipping", "optimizer", "Pascanu et al. 2013, On the difficulty of training RNNs"),
    )
}

# "layers": per weight layer gradient norms; "time": the gradient reaching each input step (a recurrence).
MEASURES = ("layers", "time")


def check_fixes(name: str, fixes) -> tuple[str, ...]:
    """`fixes` as a tuple of known keys; ValueError in one sentence naming the first unknown one."""
    if isinstance(fixes, str):
        fixes = (fixes,)
    fixes = tuple(fixes)
    for fix in fixes:
        if fix not in FIXES:
            raise ValueError(f"Model {name!r} declares an unknown fix {fix!r}; known fixes: {', '.join(FIXES)}.")
    if len(set(fixes)) != len(fixes):
        raise ValueError(f"Model {name!r} declares a fix twice. Received: fixes={fixes}")
    return fixes


def check_measures(name: str, measures) -> frozenset[str]:
    """`measures` as a frozenset of `MEASURES`; ValueError in one sentence otherwise."""
    if isinstance(measures, str):
        measures = (measures,)
    measures = frozenset(measures)
    unknown = sorted(measures - set(MEASURES))
    if unknown or not measures:
        raise ValueError(f"Model {name!r} must be measured through some of {MEASURES}. Received: measured_through={sorted(measures)}")
    return measures
