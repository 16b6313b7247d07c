"""Named building blocks every zoo family shares: initializers, activations,
normalization layers and optimizers, each chosen by a string so that a run
record (JSON) can say exactly what was used and a suite can ablate one knob.
"""

from __future__ import annotations

import keras
from keras import layers

from gradzoo.zoo.checks import check_choice, check_positive_int  # noqa: F401  (the builders import them from here)

# name -> factory. Each entry says why it is in the zoo.
INITIALIZERS = {
    # The "naive" init of early deep nets, N(0, 0.05) whatever the fan-in (the
    # classic Keras RandomNormal default). With 128-unit sigmoid layers each
    # layer scales the backward signal by ~0.25 * 0.05 * sqrt(128) ~ 0.14.
    "small_normal": lambda: keras.initializers.RandomNormal(stddev=0.05),
    # Le et al. 2015 (IRNN) input weights: N(0, 0.001).
    "tiny_normal": lambda: keras.initializers.RandomNormal(stddev=0.001),
    # Glorot & Bengio 2010: variance 2 / (fan_in + fan_out), for tanh/sigmoid.
    "glorot_uniform": lambda: keras.initializers.GlorotUniform(),
    "glorot_normal": lambda: keras.initializers.GlorotNormal(),
    # He et al. 2015: variance 2 / fan_in, for the ReLU family.
    "he_normal": lambda: keras.initializers.HeNormal(),
    "he_uniform": lambda: keras.initializers.HeUniform(),
    # LeCun et al. 1998: variance 1 / fan_in, the one SELU assumes.
    "lecun_normal": lambda: keras.initializers.LecunNormal(),
    # Saxe et al. 2014: orthogonal, norm-preserving (Keras's recurrent default).
    "orthogonal": lambda: keras.initializers.Orthogonal(),
    # Le et al. 2015 (IRNN) recurrent matrix.
    "identity": lambda: keras.initializers.Identity(),
    # Variance 8 / fan_in: four times He, so with ReLU each layer doubles the
    # signal and the gradient (2^depth): the exploding baseline.
    "large_normal": lambda: keras.initializers.VarianceScaling(
        scale=8.0, mode="fan_in", distribution="untruncated_normal"
    ),
    # Orthogonal with gain 2: every singular value of the recurrent matrix is 2,
    # above the 1/gamma bound of Pascanu et al. 2013, so gradients can explode.
    "large_orthogonal": lambda: keras.initializers.Orthogonal(gain=2.0),
}

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "selu", "gelu", "linear")
NORMALIZATIONS = ("none", "batch", "layer")

# Activations whose output saturates (derivative ~ 0 at the ends) and those
# whose units can die (output 0 for every input): the recorder watches both.
SATURATING = ("sigmoid", "tanh")
RECTIFYING = ("relu",)


def initializer(name: str, argument: str = "initializer"):
    """A fresh Keras initializer for a name in `INITIALIZERS`."""
    check_choice(argument, name, tuple(INITIALIZERS))
    return INITIALIZERS[name]()


def activation_layer(name: str, layer_name: str):
    """A named activation layer; PReLU and LeakyReLU are layers of their own."""
    check_choice("activation", name, ACTIVATIONS)
    if name == "prelu":
        return layers.PReLU(name=layer_name)
    if name == "leaky_relu":
        return layers.LeakyReLU(negative_slope=0.01, name=layer_name)
    return layers.Activation(name, name=layer_name)


def normalization_layer(name: str, layer_name: str):
    """A named normalization layer, or `None` for `"none"`."""
    check_choice("normalization", name, NORMALIZATIONS)
    if name == "batch":
        return layers.BatchNormalization(name=layer_name)
    if name == "layer":
        return layers.LayerNormalization(name=layer_name)
    return None


OPTIMIZERS = ("adam", "sgd", "rmsprop", "adamw")


def make_optimizer(settings: dict):
    """A Keras optimizer from a settings dict such as a spec's `optimizer`.

    Args:
        settings: `{"name": "adam", "learning_rate": 1e-3, "clipnorm": 1.0, ...}`;
            every key but `name` is passed to the optimizer's constructor, and
            `None` values are dropped. `learning_rate` may also be a step
            schedule, `{"boundaries": [32000, 48000], "values": [0.1, 0.01, 0.001]}`
            (learning rate per optimizer step, as in He et al. 2016).

    Returns:
        A new `keras.optimizers.Optimizer`.
    """
    settings = dict(settings)
    name = settings.pop("name", "adam")
    check_choice("optimizer", name, OPTIMIZERS)
    kwargs = {k: v for k, v in settings.items() if v is not None}
    lr = kwargs.get("learning_rate")
    if isinstance(lr, dict):
        if set(lr) != {"boundaries", "values"} or len(lr["values"]) != len(lr["boundaries"]) + 1:
            raise ValueError(
                "A `learning_rate` schedule needs `boundaries` (steps) and one more `values` than boundaries. "
                f"Received: learning_rate={lr}"
            )
        kwargs["learning_rate"] = keras.optimizers.schedules.PiecewiseConstantDecay(
            [int(b) for b in lr["boundaries"]], [float(v) for v in lr["values"]]
        )
    cls = {
        "adam": keras.optimizers.Adam,
        "sgd": keras.optimizers.SGD,
        "rmsprop": keras.optimizers.RMSprop,
        "adamw": keras.optimizers.AdamW,
    }[name]
    import inspect

    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs", "name")]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(
            f"`{unknown[0]}` is not a setting of the {name!r} optimizer; accepted: {', '.join(accepted)}. "
            f"Received: {unknown[0]}={kwargs[unknown[0]]!r}"
        )
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"Invalid settings for optimizer {name!r}: {e}. Received: {settings}") from None
