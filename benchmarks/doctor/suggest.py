"""Suggestions: what to change, why (the user's own numbers) and the evidence (gradzoo's records).

Each rule below looks for one architecture symptom that the measurements say
is hurting: saturating activations with small init and no normalization, ReLU
layers with too small (Glorot-scale) or too large init, a deep stack without
skip connections (unless a too-large init explains an explosion), a plain RNN
whose gradient through time has collapsed or is collapsing during the probe, a gated RNN whose gates have not yet
opened, an explosion with no clipping, dead ReLUs (unless the probe diverged,
which kills every unit). No suggestion advises a fix the model already
applies (`Anatomy.fixes`: normalization before each activation, skip
connections, gates, clipping, He init, non-saturating activations): its
advice names only what is missing, and one with nothing missing is dropped.
Each suggestion cites the best-matching pair of the shipped evidence
(`gradzoo.benchmarks.doctor.evidence`): the closest depth or sequence length, pairs
that show the fix turning a vanishing or exploding baseline healthy first.

Ranking: `score = coverage + strength`, where `coverage` is the fraction of
the network the symptom covers (weight layers in unhealthy regions, input
steps whose gradient vanished, or all of it for an explosion) and `strength`
(0 to 1) is how well gradzoo's runs back the fix: half the share of its pairs
that turned an unhealthy baseline healthy, half the median gain in best
validation score as a fraction of the distance from chance to the target,
counted half when the fix was run only in another model family (a CNN's
skip connections, cited for an MLP).
"""

from __future__ import annotations

import math
import statistics

import numpy as np

from gradzoo.benchmarks.analysis.formatting import format_number, percent
from gradzoo.benchmarks.analysis.verdicts import EXPLODING_NORM, VANISHING_RATIO
from gradzoo.benchmarks.doctor.anatomy import BELOW_HE, LARGE_GAIN, RECTIFYING, SATURATING, SMALL_GAIN
from gradzoo.benchmarks.doctor.evidence_types import Evidence, EvidencePair

HE_GAIN = math.sqrt(2)
DEAD_FRACTION = 0.5  # a ReLU layer with at least this share of dead units is named
# A plain RNN whose through-time gradient falls this many fold during the short probe is collapsing
# as it trains (the zoo's SimpleRNN on adding: 0.1 to 0.3 at init, 4e-4 to 3e-3 after 50 steps of 128,
# 2e-26 at the end of training).
COLLAPSE = 10
INDIRECT = 0.5  # the weight of evidence from another model family than the user's


def about(value) -> str:
    """Two significant digits, as prose quotes evidence: `6.8e-18`, `18`, `0.37`."""
    return format_number(value, digits=2)


def _pick(evidence: Evidence, fix: str, weight_layers=None, length=None, family=None) -> EvidencePair | None:
    """The evidence pair closest to the user's model: same family, then a pair that shows the fix, then depth/length, then seeds."""
    return _closest(evidence.pairs(fix), fix, weight_layers, length, family)


def _closest(pairs: list[EvidencePair], fix: str, weight_layers=None, length=None, family=None) -> EvidencePair | None:
    def distance(a, b):
        return abs(math.log(a / b)) if a and b else 0.0

    def key(p):
        b, m = p.baseline, p.mitigated
        # Clipping bounds the update, not the raw gradient: its pairs show it on an exploding baseline.
        shows = b.verdict == "exploding" if fix == "clipping" else b.verdict != "healthy" and m.verdict == "healthy"
        return (family is not None and p.family != family, not shows,
                round(distance(p.weight_layers, weight_layers) + distance(p.length, length), 6),
                -p.seeds, -_gain(p), p.suite or "", p.group or "", p.sweep)  # fmt: skip

    return min(pairs, key=key) if pairs else None


def _gain(p: EvidencePair) -> float:
    """The mitigated model's gain in best validation score, as a fraction of |target - chance| (0 to 1)."""
    b, m = p.baseline.best_score, p.mitigated.best_score
    if b is None or m is None or p.target is None or p.chance is None or abs(p.target - p.chance) <= 0:
        return 0.0
    gain = (m - b) if p.metric_mode == "max" else (b - m)
    span = abs(p.target - p.chance)
    return min(1.0, max(0.0, gain / span))


def strength(evidence: Evidence, fix: str, family: str | None = None) -> float:
    """How well gradzoo's runs back a fix, from 0 (no run) to 1 (see the module docstring).

    Pairs of the user's model family (mlp, cnn, rnn) are the evidence; when the
    fix was only run in other families, their strength counts half.
    """
    pairs = evidence.pairs(fix)
    direct = [p for p in pairs if p.family == family]
    discount = 1.0 if direct or family is None else INDIRECT
    pairs = direct or pairs
    if not pairs:
        return 0.0
    fixed = statistics.mean(p.baseline.verdict != "healthy" and p.mitigated.verdict == "healthy" for p in pairs)
    return discount * (0.5 * fixed + 0.5 * statistics.median(_gain(p) for p in pairs))


def _where(p: EvidencePair) -> str:
    b, m = p.baseline.model, p.mitigated.model
    size = f"depth-{p.depth}" if p.depth else f"length-{p.length}" if p.length else "reference"
    seeds = f"{p.seeds} seed" + ("s" if p.seeds != 1 else "")
    family = f" {p.family.upper()}" if p.family else ""
    return f"in the zoo's {size}{family} pair (`{b}` → `{m}` on {p.dataset}, {seeds})"


def _score(p: EvidencePair) -> str:
    b, m = p.baseline.best_score, p.mitigated.best_score
    better = "higher" if p.metric_mode == "max" else "lower"
    return (f"the best validation {p.metric} from {about(b)} to {about(m)} ({better} is better; "
            f"chance {about(p.chance)})")  # fmt: skip


def evidence_sentence(evidence: Evidence, fix: str, weight_layers=None, length=None, family=None) -> str:
    """The numbers that back a fix, from the closest pair of the evidence; says so when there is none."""
    from gradzoo.benchmarks.doctor.evidence import FIXES

    p = _pick(evidence, fix, weight_layers, length, family)
    if p is None:
        return f"gradzoo's reference records hold no run of {FIXES[fix]} yet, so this rests on the measurements above alone."
    b, m = p.baseline, p.mitigated
    if fix == "clipping":
        clip = f", which shrank {percent(m.clip_rate)} of updates" if m.clip_rate is not None else ""
        moved = (f"the raw global norm peaked at {about(b.peak_global_norm)} without and "
                 f"{about(m.peak_global_norm)} with {m.clipping or 'clipping'}{clip}")  # fmt: skip
        return f"{_where(p).replace('pair', 'runs with and without clipping')}, {moved}; it moved {_score(p)}."
    if b.early_late_ratio is not None and m.early_late_ratio is not None:
        moved = (f"the gradient reaching the first input steps, against the last ones, went from about "
                 f"{about(b.early_late_ratio)} to about {about(m.early_late_ratio)} at the end of training")  # fmt: skip
    else:
        moved = (f"the first/last-layer gradient ratio over epoch 1 went from about {about(b.first_last_ratio)} "
                 f"to about {about(m.first_last_ratio)}")  # fmt: skip
    return f"{_where(p)}, {FIXES[fix]}: {moved} ({b.verdict} → {m.verdict}), and {_score(p)}."


def _gating_sentence(evidence: Evidence, length=None) -> str:
    pairs = [p for p in evidence.pairs("gated_rnn")
             if p.mitigated.early_late_ratio_init is not None and p.mitigated.verdict == "healthy"]  # fmt: skip
    if not pairs:
        return evidence_sentence(evidence, "gated_rnn", length=length)
    p = _closest(pairs, "g", length=length)
    m = p.mitigated
    return (f"in the zoo's length-{p.length} run of `{m.model}` on {p.dataset}, the gradient reaching the first "
            f"input steps against the last ones went from about {about(m.early_late_ratio_init)} at initialization to "
            f"about {about(m.early_late_ratio)} at the end of training (best validation {p.metric} "
            f"{about(m.best_score)}).")  # fmt: skip


def _names(items) -> str:
    items = list(dict.fromkeys(items))
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# How each zoo fix (`gradzoo.zoo.FIXES`) is advised, in a sentence's words.
ADVICE = {
    "relu": "ReLU activations",
    "he_init": "He-normal init (`kernel_initializer=\"he_normal\"`)",
    "batch_norm": "a `BatchNormalization` layer between each weight layer and its activation",
}


def _use(advises) -> str:
    """The missing parts of He init + ReLU + BatchNorm as one instruction: `Use ReLU activations with ... and ...`."""
    rest = [ADVICE[f] for f in advises if f != "relu"]
    if "relu" not in advises:
        return f"Use {_names(rest)}."
    return f"Use {ADVICE['relu']}" + (f" with {_names(rest)}." if rest else ".")


def suggestions(d, parts, evidence: Evidence) -> list[dict]:
    """Ranked suggestions for a `Diagnosis` `d` of a model with `Anatomy` `parts`.

    Each has `fix` (the evidence it cites) and `advises` (the zoo fixes it
    asks for, none of which the model already applies).
    """
    out = []
    has = set(parts.fixes)

    def missing(*fixes) -> list[str]:
        return [f for f in fixes if f not in has]
    weights = len(d.layers) or 1
    vanishing = sum(layer["verdict"] == "vanishing" for layer in d.layers)
    exploding_layers = sum(layer["verdict"] == "exploding" for layer in d.layers)
    exploding = d.verdict == "exploding"
    hidden = parts.hidden
    gain = parts.median_gain
    length = d.model["input_shape"][0] if parts.recurrent and len(d.model["input_shape"]) >= 1 else None
    depth = len(parts.weight_layers)

    def add(fix, advises, change, why, coverage, sentence=None):
        if advises and set(advises) <= has:
            return  # everything it would advise is already there
        s = strength(evidence, fix, parts.family)
        sentence = sentence or evidence_sentence(evidence, fix, depth, length, parts.family)
        out.append({"fix": fix, "advises": list(advises), "change": change, "why": why, "evidence": sentence,
                    "coverage": round(coverage, 3), "strength": round(s, 3), "score": round(coverage + s, 3)})  # fmt: skip

    lost = (f"the gradient is below {format_number(VANISHING_RATIO)} of the last weight layer's in {vanishing} of "
            f"{len(d.layers)} weight layers")  # fmt: skip
    saturating = parts.count(SATURATING)
    if vanishing and hidden and saturating >= max(1, len(hidden) / 2):
        names = _names(w.activation for w in hidden if w.activation in SATURATING)
        why = [f"{names} activations after {saturating} of {len(hidden)} hidden weight layers (their derivative is at most "
               f"{'0.25' if names == 'sigmoid' else '1'})"]  # fmt: skip
        if gain is not None and gain < SMALL_GAIN:
            why.append(f"small init (kernel std × √fan_in = {about(gain)}; He init gives {about(HE_GAIN)})")
        if parts.normalization == 0:
            why.append("no normalization")
        advises = missing("relu", "he_init", "batch_norm")
        if advises:
            add("he_relu_bn", advises, _use(advises), "; ".join(why) + f": {lost}.", vanishing / weights)
        if evidence.pairs("selu_lecun"):
            add("selu_lecun", ["self_normalization"], "Or use SELU activations with LeCun-normal init (`kernel_initializer=\"lecun_normal\"`), "
                "which keep activations normalized without normalization layers.", "; ".join(why) + f": {lost}.",
                vanishing / weights)  # fmt: skip
    rectifying = parts.count(RECTIFYING)
    if vanishing and hidden and rectifying >= len(hidden) / 2 and parts.normalization == 0 and gain is not None and gain < BELOW_HE:
        add("he_init", ["he_init"], "Use He-normal init (`kernel_initializer=\"he_normal\"`, variance 2/fan_in) for the ReLU layers.",
            f"ReLU-family activations with kernel std × √fan_in = {about(gain)} (He init gives {about(HE_GAIN)}) and no "
            f"normalization: each layer shrinks the signal: {lost}.", vanishing / weights)  # fmt: skip
    large_init = exploding and rectifying and gain is not None and gain > LARGE_GAIN
    if large_init:
        add("he_init", ["he_init"], "Use He-normal init (`kernel_initializer=\"he_normal\"`, variance 2/fan_in) instead of a larger one.",
            f"kernel std × √fan_in = {about(gain)} (He init gives {about(HE_GAIN)}): with ReLU each layer multiplies the "
            f"signal and its gradient by about {about(gain / HE_GAIN)}.", 1.0)  # fmt: skip
    feedforward = [w for w in parts.weight_layers if w.recurrent is None]
    unhealthy = vanishing + exploding_layers
    # An explosion a too-large init explains is the init's, not the missing skips' (a ResNet with it explodes too).
    if len(feedforward) >= 10 and parts.skips == 0 and (vanishing or (exploding and not large_init)):
        what = lost if vanishing else _explosion_words(d)
        add("residual", ["skip_connections"], "Add residual (skip) connections: `x = keras.layers.Add()([x, block(x)])` around every one or two "
            "weight layers, so each layer has an identity path to the loss.",
            f"{len(feedforward)} weight layers in one stack with no skip connection: {what}.",
            1.0 if exploding else unhealthy / weights)  # fmt: skip
    t = d.temporal
    steps_lost = [r for r in d.regions if r["kind"] == "time" and r["verdict"] == "vanishing"]
    collapsing = _collapsing_share(t)
    if t is not None and (steps_lost or ("simple" in parts.recurrent and collapsing)):
        ratio = t["after_ratio"] if t["after"] is not None else t["init_ratio"]
        total = len(t["after"] or t["init"])
        share = sum(r["count"] for r in steps_lost) / total if steps_lost else collapsing
        reaching = (f"the gradient reaching the first {percent(t['edge_fraction'])} of the {total} input steps is "
                    f"{about(ratio)} of that reaching the last {percent(t['edge_fraction'])}")  # fmt: skip
        if t["after"] is not None:
            reaching += f" after the probe ({about(t['init_ratio'])} at the given weights)"
        if collapsing:
            reaching += f"; it fell more than {COLLAPSE}-fold during the probe in {percent(collapsing)} of the steps"
        unclipped = "clipping" not in has
        if "simple" in parts.recurrent:
            add("gated_rnn", ["gating", *missing("clipping")], "Replace the SimpleRNN layers with GRU or LSTM layers "
                "(`keras.layers.GRU(units)`)" + (", and clip the gradient norm (`clipnorm=1.0`)." if unclipped else "."),
                f"a plain (SimpleRNN) recurrence: {reaching}.", share)  # fmt: skip
        else:
            # Not a new fix: the gates are there; they need training (and clipping, if it is missing).
            add("gated_rnn", missing("clipping"), "Keep the gated cells and train longer"
                + (", with the gradient norm clipped (`clipnorm=1.0`)" if unclipped else "") + ": "
                "their gates can learn to carry the gradient back through time.",
                f"{_names(parts.recurrent).upper()} cells whose gates do not carry the gradient yet: {reaching}.", share,
                _gating_sentence(evidence, length))  # fmt: skip
    if exploding:
        add("clipping", ["clipping"], "Clip the gradient norm: give the optimizer `clipnorm=1.0` (e.g. "
            "`keras.optimizers.Adam(learning_rate=1e-3, clipnorm=1.0)`).", f"{_explosion_words(d)}.", 1.0)  # fmt: skip
    # After a non-finite step every unit reads as dead: that is the divergence, not a cause of it.
    if d.activations and d.activations.get("after") and not d.basis["diverged"]:
        dead = [(info["name"], v) for info, v in zip(d.activations["layers"], d.activations["after"])
                if info["activation"] == "relu" and v is not None and v >= DEAD_FRACTION]  # fmt: skip
        if dead:
            worst = max(v for _, v in dead)
            advises = missing("he_init", "batch_norm")
            options = {"he_init": "He-normal init", "batch_norm": "a `BatchNormalization` before each ReLU"}
            # A lower learning rate or LeakyReLU is no zoo fix: it is offered whatever the model has.
            add("he_relu_bn", advises, "Revive the dead ReLU units: " + ", ".join([options[f] for f in advises] + [
                "a lower learning rate, or LeakyReLU."]),
                f"{len(dead)} ReLU layers have at least {percent(DEAD_FRACTION)} dead units after the probe (up to "
                f"{percent(worst)}, in {_names(n for n, v in dead if v == worst)}): no gradient flows through a dead unit.",
                len(dead) / max(1, len(d.activations["layers"])), _dead_sentence(evidence))  # fmt: skip
    out.sort(key=lambda s: -s["score"])
    return out


def _collapsing_share(t) -> float:
    """The share of input steps whose gradient, against the last steps', fell more than `COLLAPSE` fold during the probe."""
    if t is None or t["after"] is None or not t["init"]:
        return 0.0
    k = max(1, int(round(len(t["init"]) * t["edge_fraction"])))
    init, after = np.asarray(t["init"], dtype=np.float64), np.asarray(t["after"], dtype=np.float64)
    if not (init[-k:].mean() > 0 and after[-k:].mean() > 0):
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        fall = (after / after[-k:].mean()) / (init / init[-k:].mean())
    return float(np.mean(np.nan_to_num(fall, nan=1.0) < 1 / COLLAPSE))


def _explosion_words(d) -> str:
    b = d.basis
    if b["diverged"]:
        return f"the loss or gradient became non-finite at probe step {b['nonfinite_step']}"
    if b["peak_global_norm"] is not None and b["peak_global_norm"] > EXPLODING_NORM:
        return (f"the raw global gradient norm peaked at {about(b['peak_global_norm'])} during the probe (threshold "
                f"{format_number(EXPLODING_NORM)})")  # fmt: skip
    if b["basis"] == "early/late input steps":
        return f"the gradient reaching the first input steps is {about(b['ratio'])} times that reaching the last ones"
    return f"the first weight layer's gradient is {about(b['ratio'])} times the last's"


def _dead_sentence(evidence: Evidence) -> str:
    pairs = [p for p in evidence.pairs("he_relu_bn") if p.mitigated.dead is not None]
    if not pairs:
        return evidence_sentence(evidence, "he_relu_bn")
    p = _closest(pairs, "g")
    m = p.mitigated
    return (f"in the zoo's `{m.model}` on {p.dataset} (He init, BatchNorm before each ReLU), {percent(m.dead)} of "
            f"ReLU units were dead at the end of training, and it reached a best validation {p.metric} of "
            f"{about(m.best_score)} (chance {about(p.chance)}).")  # fmt: skip
