"""What a model is made of, as far as its gradient is concerned.

`anatomy(model)` reads, from the layers and their weights alone, what the
doctor's suggestions rest on: which activation follows each weight layer, the
scale of each kernel (std * sqrt(fan_in), the "gain": He-normal init gives
about 1.41, LeCun and Glorot about 1, the zoo's N(0, 0.05) about 0.57 for 128
inputs), normalization layers, skip connections (merge layers such as `Add`)
and recurrent layers; and from these, which of the zoo's fixes (`gradzoo.zoo.FIXES`) the
model already applies, so that the doctor never advises one it has. It reads nothing from a layer's config that a user could
have written differently (the weights, not the initializer's name, say how
large the init is), so it works the same on a freshly built and a loaded model.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np

from gradzoo.benchmarks.harness.instruments.gradnorms import layer_groups

SATURATING = ("sigmoid", "tanh", "hard_sigmoid", "softsign")
RECTIFYING = ("relu", "leaky_relu", "relu6", "elu", "gelu", "silu", "swish", "selu", "prelu", "mish", "softplus")
_ACTIVATION_LAYERS = {"ReLU": "relu", "LeakyReLU": "leaky_relu", "PReLU": "prelu", "ELU": "elu", "Softmax": "softmax"}
_NORMALIZATION = (keras.layers.BatchNormalization, keras.layers.LayerNormalization, keras.layers.GroupNormalization)
_MERGES = (keras.layers.Add, keras.layers.Concatenate, keras.layers.Average, keras.layers.Maximum,
           keras.layers.Minimum, keras.layers.Multiply, keras.layers.Subtract)  # fmt: skip
_RECURRENT = {keras.layers.SimpleRNN: "simple", keras.layers.LSTM: "lstm", keras.layers.GRU: "gru"}
# Kernel gains that mark an init as small or large next to He (sqrt(2) ~ 1.41) and LeCun/Glorot (~1).
SMALL_GAIN = 0.8
LARGE_GAIN = 2.0
# A ReLU stack's kernels below this gain (Glorot or LeCun scale, ~1, or smaller) shrink the signal at every layer.
BELOW_HE = 1.2
# Merges that give the gradient a shorter path when their inputs come from different depths
# (Multiply is left out: a squeeze-and-excitation gate multiplies a branch, it is no shortcut).
_SKIP_MERGES = ("Add", "Average", "Concatenate")
_CLIP_ARGS = ("clipnorm", "clipvalue", "global_clipnorm")


@dataclasses.dataclass
class WeightLayer:
    """One weight layer (in `layer_groups` order, input side first)."""

    name: str
    kind: str  # the layer's class name, e.g. "Dense", "Conv1D", "LSTM"
    activation: str | None  # the activation its output goes through next, if known
    gain: float | None  # std(kernel) * sqrt(fan_in)
    recurrent: str | None  # "simple", "lstm" or "gru" for recurrent layers
    normalized: bool = False  # a normalization layer sits between it and its activation


@dataclasses.dataclass
class Anatomy:
    """The parts of a model that decide how its gradient flows.

    Attributes:
        model_type: `"sequential"`, `"functional"` or `"subclassed"`.
        weight_layers: every weight layer, input side first (normalization
            layers, which hold only scale and offset, are left out).
        normalization: the number of BatchNorm/LayerNorm/GroupNorm layers.
        merges: the number of merge layers (skip connections); `None` for a
            subclassed model, whose graph cannot be read.
        recurrent: the recurrent kinds present (`"simple"`, `"lstm"`, `"gru"`).
        skips: the merge layers whose inputs come from different depths of the
            graph (skip connections); `None` for a subclassed model.
        fixes: the zoo fixes (keys of `gradzoo.zoo.FIXES`) the model already
            applies, see `applied_fixes`.
    """

    model_type: str
    weight_layers: list[WeightLayer]
    normalization: int
    merges: int | None
    recurrent: list[str]
    skips: int | None = None
    fixes: list[str] = dataclasses.field(default_factory=list)

    @property
    def hidden(self) -> list[WeightLayer]:
        """The weight layers before the last one (the output layer's activation is the task's, not a choice)."""
        return [w for w in self.weight_layers[:-1] if w.recurrent is None]

    def count(self, activations) -> int:
        return sum(w.activation in activations for w in self.hidden)

    @property
    def family(self) -> str:
        """The zoo family the model is closest to: `"rnn"` with recurrent layers, `"cnn"` with convolutions, else `"mlp"`."""
        if self.recurrent:
            return "rnn"
        return "cnn" if any(w.kind.startswith("Conv") for w in self.weight_layers) else "mlp"

    @property
    def median_gain(self) -> float | None:
        gains = [w.gain for w in self.hidden if w.gain is not None]
        return float(np.median(gains)) if gains else None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def model_type(model) -> str:
    if isinstance(model, keras.Sequential):
        return "sequential"
    try:
        model.inputs  # noqa: B018  (functional models have symbolic inputs; subclassed ones raise)
    except (AttributeError, ValueError):
        return "subclassed"
    return "functional"


def activation_of(layer) -> str | None:
    """The name of a layer's own activation, or of an activation layer; `None` for linear or none."""
    name = _ACTIVATION_LAYERS.get(type(layer).__name__)
    if name:
        return name
    fn = getattr(layer, "activation", None)
    if fn is None:
        return None
    try:
        name = keras.activations.serialize(fn)
    except (ValueError, TypeError):
        return None
    if isinstance(name, dict):  # a configured activation, e.g. {"class_name": "LeakyReLU", ...}
        name = str(name.get("class_name", "")).lower() or None
    return None if name in (None, "linear") else name


def _flat_layers(model) -> list:
    """Every layer in order, nested models expanded (a Sequential inside a functional model, say)."""
    out = []
    for layer in model.layers:
        out.extend(_flat_layers(layer) if isinstance(layer, keras.Model) else [layer])
    return out


def _recurrent_kind(layer) -> str | None:
    inner = getattr(layer, "forward_layer", None) or layer  # Bidirectional wraps one per direction
    for cls, kind in _RECURRENT.items():
        if isinstance(inner, cls):
            return kind
    return None


def kernel_gain(layer) -> float | None:
    """std(kernel) * sqrt(fan_in) of a layer's first weight matrix, or `None` if it has none."""
    kernels = [v for v in layer.trainable_variables if len(v.shape) >= 2]
    if not kernels:
        return None
    k = np.asarray(keras.ops.convert_to_numpy(kernels[0]), dtype=np.float64)
    fan_in = int(np.prod(k.shape[:-1]))
    return float(k.std() * math.sqrt(fan_in)) if fan_in else None


def _graph_skips(config: dict) -> int:
    """Skip connections in a functional model's config: merges fed from different depths (nested models counted too)."""
    depth, skips = {}, 0
    for layer in config.get("layers", []):
        inner = layer.get("config", {})
        if isinstance(inner, dict) and "layers" in inner:
            skips += _graph_skips(inner)
        sources = [_history(t) for node in layer.get("inbound_nodes", []) for t in _tensors(node.get("args", []))]
        depths = [depth.get(name, 0) for name in sources if name]
        depth[layer.get("name") or inner.get("name")] = 1 + max(depths, default=0)
        if layer.get("class_name") in _SKIP_MERGES and len(set(depths)) > 1:
            skips += 1
    return skips


def _tensors(args):
    """The serialized Keras tensors in a node's arguments (a merge takes them as a list)."""
    for a in args:
        if isinstance(a, (list, tuple)):
            yield from _tensors(a)
        elif isinstance(a, dict) and a.get("class_name") == "__keras_tensor__":
            yield a


def _history(tensor: dict) -> str | None:
    history = tensor.get("config", {}).get("keras_history")
    return history[0] if history else None


def _clips(optimizer) -> bool:
    inner = getattr(optimizer, "inner_optimizer", None) or optimizer  # a LossScaleOptimizer wraps the user's
    return any(getattr(inner, arg, None) is not None for arg in _CLIP_ARGS)


def applied_fixes(parts: Anatomy, optimizer=None) -> list[str]:
    """The zoo fixes (`gradzoo.zoo.FIXES` keys) a model already applies, read from its parts and optimizer.

    `batch_norm`: a normalization layer between every hidden weight layer and
    its activation; `skip_connections`: a merge fed from different depths;
    `gating`: LSTM or GRU layers; `clipping`: `clipnorm`, `clipvalue` or
    `global_clipnorm` on the optimizer; `relu`/`self_normalization`: most hidden
    activations are non-saturating / SELU; `he_init`/`glorot_init`: the median
    kernel gain is He's (about 1.41) or Glorot's/LeCun's (about 1).
    """
    fixes = set()
    activated = [w for w in parts.hidden if w.activation]
    if activated and all(w.normalized for w in activated):
        fixes.add("batch_norm")
    if parts.skips:
        fixes.add("skip_connections")
    if {"lstm", "gru"} & set(parts.recurrent):
        fixes.add("gating")
    if optimizer is not None and _clips(optimizer):
        fixes.add("clipping")
    if activated and sum(w.activation in RECTIFYING for w in activated) >= len(activated) / 2:
        fixes.add("relu")
    if activated and sum(w.activation == "selu" for w in activated) >= len(activated) / 2:
        fixes.add("self_normalization")
    gain = parts.median_gain
    if gain is not None and BELOW_HE <= gain <= LARGE_GAIN:
        fixes.add("he_init")
    elif gain is not None and SMALL_GAIN <= gain < BELOW_HE:
        fixes.add("glorot_init")
    return sorted(fixes)


def anatomy(model, optimizer=None) -> Anatomy:
    """Reads a built model's weight layers, activations, init scale, normalization, skips and recurrences.

    Args:
        model: a built `keras.Model`.
        optimizer: the optimizer it trains with, read for gradient clipping.
            Defaults to the model's own, if it is compiled.
    """
    flat = _flat_layers(model)
    top = {layer.name: layer for layer in model.layers}
    weights = []
    groups = [g for g in layer_groups(model.trainable_variables, model) if g["kind"] == "weight"]
    positions = {layer.name: i for i, layer in enumerate(flat)}
    for group in groups:
        layer = top.get(group["name"])
        if layer is None:
            continue
        inner = layer.layers if isinstance(layer, keras.Model) else [layer]
        last = inner[-1]
        activation = activation_of(last) if _recurrent_kind(last) is None else None
        normalized = False
        if activation is None and last.name in positions:
            # The activation that follows: the next activation layer before the next weight layer.
            for nxt in flat[positions[last.name] + 1:]:
                if nxt.trainable_variables and not isinstance(nxt, _NORMALIZATION):
                    break
                normalized = normalized or isinstance(nxt, _NORMALIZATION)
                activation = activation_of(nxt)
                if activation:
                    break
        recurrent = next((k for k in map(_recurrent_kind, inner) if k), None)
        if recurrent is not None:
            activation = activation_of(inner[0] if not hasattr(inner[0], "forward_layer") else inner[0].forward_layer)
        weights.append(WeightLayer(group["name"], type(last).__name__, activation, kernel_gain(layer), recurrent,
                                   normalized and activation is not None))  # fmt: skip
    kind = model_type(model)
    parts = Anatomy(
        model_type=kind,
        weight_layers=weights,
        normalization=sum(isinstance(layer, _NORMALIZATION) for layer in flat),
        merges=None if kind == "subclassed" else sum(isinstance(layer, _MERGES) for layer in flat),
        recurrent=sorted({k for k in map(_recurrent_kind, flat) if k}),
        skips=None if kind == "subclassed" else _model_skips(model),
    )
    parts.fixes = applied_fixes(parts, optimizer if optimizer is not None else getattr(model, "optimizer", None))
    return parts


def _model_skips(model) -> int:
    """Skip connections of a functional or Sequential model (a Sequential has none of its own)."""
    try:
        config = model.get_config()
    except NotImplementedError:  # a functional subclass without get_config
        return sum(isinstance(layer, _MERGES) for layer in _flat_layers(model))
    return _graph_skips(config) if isinstance(config, dict) else 0
