"""The MLP family: a deep sigmoid net that vanishes, next to three fixes (He +
ReLU + BatchNorm; pre-activation residual blocks; SELU with LeCun init); a
30-layer ReLU net with Glorot init next to the same net with He init; and a
large-init ReLU net that explodes next to the same net trained with gradient
clipping.

Every knob is an override of `gradzoo.zoo.build`, so each fix can be ablated alone:
`gradzoo.zoo.build("mlp_sigmoid_deep", (40,), 10, activation="relu")` keeps the naive
init and changes only the activation.
"""

from __future__ import annotations

import keras
from keras import layers

from gradzoo.zoo.components import (
    ACTIVATIONS,
    activation_layer,
    check_positive_int,
    initializer,
    normalization_layer,
)
from gradzoo.zoo.registry import register

_EXAMPLE_SHAPES = ((40,), (40, 1), (28, 28, 1))


def build_mlp(
    input_shape,
    num_outputs: int,
    *,
    depth: int = 20,
    width: int = 128,
    activation: str = "sigmoid",
    initializer_name: str = "small_normal",
    normalization: str = "none",
    name: str = "mlp",
):
    """Builds a plain fully connected net.

    Layer `i` (0 = nearest the input) is `dense_{i}` -> optional `bn_{i}` /
    `ln_{i}` -> `act_{i}`; the head `head` is a linear Dense giving logits (or
    regression outputs). Inputs of any rank are flattened first.

    Args:
        input_shape: shape of one example, without the batch axis.
        num_outputs: width of the linear head.
        depth: number of hidden layers. Defaults to `20`.
        width: units per hidden layer. Defaults to `128`.
        activation: one of `gradzoo.zoo.components.ACTIVATIONS`. Defaults to `"sigmoid"`.
        initializer_name: kernel initializer for every Dense layer, one of
            `gradzoo.zoo.components.INITIALIZERS`. Defaults to `"small_normal"`.
        normalization: `"none"`, `"batch"` or `"layer"`, placed between each
            Dense and its activation (Ioffe & Szegedy 2015). Defaults to `"none"`.
        name: the model's name.

    Returns:
        An uncompiled `keras.Model`.
    """
    check_positive_int("depth", depth)
    check_positive_int("width", width)
    activation_layer(activation, "probe")  # validates before anything is built
    initializer(initializer_name, "initializer")
    normalization_layer(normalization, "probe")

    inputs = keras.Input(shape=input_shape, name="inputs")
    x = layers.Flatten(name="flatten")(inputs) if len(input_shape) != 1 else inputs
    for i in range(depth):
        norm = normalization_layer(normalization, f"{'bn' if normalization == 'batch' else 'ln'}_{i}")
        x = layers.Dense(
            width,
            kernel_initializer=initializer(initializer_name),
            # A bias before BatchNorm is cancelled by its mean subtraction.
            use_bias=normalization != "batch",
            name=f"dense_{i}",
        )(x)
        if norm is not None:
            x = norm(x)
        x = activation_layer(activation, f"act_{i}")(x)
    outputs = layers.Dense(num_outputs, kernel_initializer=initializer(initializer_name), name="head")(x)
    return keras.Model(inputs, outputs, name=name)


def build_residual_mlp(
    input_shape,
    num_outputs: int,
    *,
    depth: int = 20,
    width: int = 128,
    activation: str = "relu",
    initializer_name: str = "he_normal",
    normalization: str = "batch",
    name: str = "mlp_residual",
):
    """Builds a fully connected net of pre-activation residual blocks (He et al. 2016b, "Identity
    Mappings in Deep Residual Networks", fig. 4e, with one Dense layer per block).

    `dense_0` maps the input to `width`; each later layer `i` adds a branch to
    the running sum: `x = x + dense_i(act_i(norm_i(x)))` (`add_i`), so every
    layer has an identity path to the loss and the gradient reaching `dense_0`
    is the head's plus every branch's. The sum is normalized and activated once
    more (`norm_out`, `act_out`) before the linear `head`. Like `build_mlp`, it
    has `depth` Dense layers before the head.

    Args:
        input_shape: shape of one example, without the batch axis.
        num_outputs: width of the linear head.
        depth: Dense layers before the head (>= 1). Defaults to `20`.
        width: units of every layer. Defaults to `128`.
        activation: one of `gradzoo.zoo.components.ACTIVATIONS`. Defaults to `"relu"`.
        initializer_name: kernel initializer, one of `gradzoo.zoo.components.INITIALIZERS`.
            Defaults to `"he_normal"`.
        normalization: `"batch"`, `"layer"` or `"none"`, inside each branch.
            Defaults to `"batch"`.
        name: the model's name.

    Returns:
        An uncompiled `keras.Model`.
    """
    check_positive_int("depth", depth)
    check_positive_int("width", width)
    activation_layer(activation, "probe")
    initializer(initializer_name, "initializer")
    normalization_layer(normalization, "probe")
    prefix = "bn" if normalization == "batch" else "ln"

    inputs = keras.Input(shape=input_shape, name="inputs")
    x = layers.Flatten(name="flatten")(inputs) if len(input_shape) != 1 else inputs
    x = layers.Dense(width, kernel_initializer=initializer(initializer_name), name="dense_0")(x)
    for i in range(1, depth):
        h = x
        norm = normalization_layer(normalization, f"{prefix}_{i}")
        if norm is not None:
            h = norm(h)
        h = activation_layer(activation, f"act_{i}")(h)
        h = layers.Dense(width, kernel_initializer=initializer(initializer_name), name=f"dense_{i}")(h)
        x = layers.Add(name=f"add_{i}")([x, h])
    norm = normalization_layer(normalization, f"{prefix}_out")
    if norm is not None:
        x = norm(x)
    x = activation_layer(activation, "act_out")(x)
    outputs = layers.Dense(num_outputs, kernel_initializer=initializer(initializer_name), name="head")(x)
    return keras.Model(inputs, outputs, name=name)


def _residual_builder(input_shape, num_outputs, initializer=None, **hparams):
    if initializer is not None:
        hparams["initializer_name"] = initializer
    return build_residual_mlp(input_shape, num_outputs, **hparams)


def _mlp_builder(input_shape, num_outputs, initializer=None, **hparams):
    # `initializer` is the public override name; the builder's own argument is
    # `initializer_name` so it does not shadow the helper of the same name.
    if initializer is not None:
        hparams["initializer_name"] = initializer
    return build_mlp(input_shape, num_outputs, **hparams)


register(
    "mlp_sigmoid_deep",
    family="mlp",
    role="baseline",
    description="20 x 128 sigmoid layers with N(0, 0.05) init: the gradient vanishes toward the input.",
    defaults=dict(depth=20, width=128, activation="sigmoid", initializer="small_normal", normalization="none"),
    example_input_shapes=_EXAMPLE_SHAPES,
    reference="Glorot & Bengio 2010, sec. 4 (sigmoid saturation in deep nets)",
)(_mlp_builder)

register(
    "mlp_he_relu_bn",
    family="mlp",
    role="mitigated",
    baseline="mlp_sigmoid_deep",
    description="Same 20 x 128 net with He-normal init, ReLU and BatchNorm: gradients stay comparable across depth.",
    defaults=dict(depth=20, width=128, activation="relu", initializer="he_normal", normalization="batch"),
    fixes=("he_init", "relu", "batch_norm"),
    example_input_shapes=_EXAMPLE_SHAPES,
    reference="He et al. 2015 (init); Nair & Hinton 2010 (ReLU); Ioffe & Szegedy 2015 (BatchNorm)",
)(_mlp_builder)

register(
    "mlp_residual",
    family="mlp",
    role="mitigated",
    baseline="mlp_sigmoid_deep",
    description="20 Dense layers of 128 in pre-activation residual blocks (BatchNorm, ReLU, He init): an identity path to every layer.",
    defaults=dict(depth=20, width=128, activation="relu", initializer="he_normal", normalization="batch"),
    fixes=("skip_connections", "he_init", "relu", "batch_norm"),
    example_input_shapes=_EXAMPLE_SHAPES,
    reference="He et al. 2016b, Identity Mappings in Deep Residual Networks (pre-activation blocks)",
)(_residual_builder)

register(
    "mlp_selu",
    family="mlp",
    role="mitigated",
    baseline="mlp_sigmoid_deep",
    description="20 x 128 SELU layers with LeCun-normal init, no normalization: activations self-normalize toward zero mean, unit variance.",
    defaults=dict(depth=20, width=128, activation="selu", initializer="lecun_normal", normalization="none"),
    fixes=("self_normalization",),
    example_input_shapes=_EXAMPLE_SHAPES,
    reference="Klambauer et al. 2017, Self-Normalizing Neural Networks",
)(_mlp_builder)

# He et al. 2015 train with SGD (momentum 0.9); Adam would rescale the tiny
# gradients of the Glorot net and hide the difference that init makes.
_INIT_SGD = {"name": "sgd", "learning_rate": 0.01, "momentum": 0.9}

register(
    "mlp_relu_glorot",
    family="mlp",
    role="baseline",
    description="30 x 128 ReLU layers with Glorot-normal init and no normalization: the signal's variance halves at every layer.",
    defaults=dict(depth=30, width=128, activation="relu", initializer="glorot_normal", normalization="none"),
    optimizer=_INIT_SGD,
    example_input_shapes=_EXAMPLE_SHAPES,
    reference="He et al. 2015, Delving Deep into Rectifiers, sec. 2.2 and fig. 3 (30-layer net with Xavier init stalls)",
)(_mlp_builder)

register(
    "mlp_relu_he",
    family="mlp",
    role="mitigated",
    baseline="mlp_relu_glorot",
    description="The same 30 x 128 ReLU net with He-normal init (variance 2/fan_in): the signal keeps its scale through every layer.",
    defaults=dict(depth=30, width=128, activation="relu", initializer="he_normal", normalization="none"),
    optimizer=_INIT_SGD,
    fixes=("he_init",),
    example_input_shapes=_EXAMPLE_SHAPES,
    reference="He et al. 2015, Delving Deep into Rectifiers, sec. 2.2",
)(_mlp_builder)

# SGD, because Adam's per-parameter normalization would hide the explosion the
# pair exists to show; the only difference between the two is clipnorm.
_EXPLODING_SGD = {"name": "sgd", "learning_rate": 0.01, "momentum": 0.9}

register(
    "mlp_relu_large_init",
    family="mlp",
    role="baseline",
    description="20 x 128 ReLU layers with variance 8/fan_in init: activations and gradients grow 2x per layer and explode.",
    defaults=dict(depth=20, width=128, activation="relu", initializer="large_normal", normalization="none"),
    optimizer=_EXPLODING_SGD,
    example_input_shapes=_EXAMPLE_SHAPES,
    reference="He et al. 2015, sec. 2.2 (a scale != 2/fan_in grows or shrinks the signal geometrically)",
)(_mlp_builder)

register(
    "mlp_relu_large_init_clipped",
    family="mlp",
    role="mitigated",
    baseline="mlp_relu_large_init",
    description="The same exploding net trained with gradient clipping (clipnorm=1): updates stay bounded.",
    defaults=dict(depth=20, width=128, activation="relu", initializer="large_normal", normalization="none"),
    optimizer={**_EXPLODING_SGD, "clipnorm": 1.0},
    fixes=("clipping",),
    example_input_shapes=_EXAMPLE_SHAPES,
    reference="Pascanu et al. 2013 (gradient norm clipping)",
)(_mlp_builder)

__all__ = ["build_mlp", "build_residual_mlp", "ACTIVATIONS"]
