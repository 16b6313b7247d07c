"""The CNN family: CIFAR-style plain nets and ResNets of depth 6n+2
(He et al. 2016, "Deep Residual Learning for Image Recognition", sec. 4.2).

`plain_N` and `resnet_N` are identical but for the shortcuts: a 3x3 stem conv
with 16 filters, three stages of n blocks of two 3x3 convs (16, 32, 64 filters;
stride 2 at the start of stages 2 and 3), each conv followed by BatchNorm and
ReLU, then global average pooling and a linear head. He-normal init throughout.
In the paper plain-56 trains worse than plain-20 while ResNet-56 trains better:
the degradation problem that skip connections fix.

The 2-D nets take images `(height, width, channels)`; the `_1d` nets take
sequences `(steps, features)` such as MNIST-1D, with the same structure in 1-D.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from gradzoo.zoo.components import (
    activation_layer,
    check_choice,
    check_positive_int,
    initializer,
    normalization_layer,
)
from gradzoo.zoo.registry import register

VALID_DEPTHS = (20, 32, 44, 56, 110)
SHORTCUTS = ("A", "B")


@keras.saving.register_keras_serializable(package="gradzoo")
class ZeroPadShortcut(layers.Layer):
    """He et al. 2016 option A shortcut: parameter-free.

    Subsamples the spatial axes by `stride` and zero-pads the channel axis up to
    `channels`, so the identity path adds no weights.

    Args:
        stride: spatial subsampling factor.
        channels: number of output channels (>= input channels).
    """

    def __init__(self, stride: int, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.stride = stride
        self.channels = channels

    def call(self, x):
        spatial = len(x.shape) - 2
        if self.stride > 1:
            x = x[(slice(None),) + (slice(None, None, self.stride),) * spatial]
        extra = self.channels - x.shape[-1]
        if extra > 0:
            x = ops.pad(x, [[0, 0]] * (spatial + 1) + [[extra // 2, extra - extra // 2]])
        return x

    def compute_output_shape(self, input_shape):
        spatial = [None if d is None else -(-d // self.stride) for d in input_shape[1:-1]]
        return (input_shape[0], *spatial, self.channels)

    def get_config(self):
        return {**super().get_config(), "stride": self.stride, "channels": self.channels}


def build_resnet(
    input_shape,
    num_outputs: int,
    *,
    depth: int = 20,
    residual: bool = True,
    shortcut: str = "A",
    widths=(16, 32, 64),
    initializer_name: str = "he_normal",
    activation: str = "relu",
    normalization: str = "batch",
    name: str = "resnet",
):
    """Builds a CIFAR-style ResNet (or, with `residual=False`, its plain twin).

    Layers are named `stem_conv`, `stem_bn`, `stem_act`, then
    `stage{s}_block{b}_{conv1,bn1,act1,conv2,bn2,add,act2}` (s, b from 1) with
    `..._proj`/`..._proj_bn` (option B) or `..._pad` (option A) shortcuts, then
    `pool` and the linear `head`.

    Args:
        input_shape: `(h, w, c)` for a 2-D net or `(steps, c)` for a 1-D net.
        num_outputs: width of the linear head (logits).
        depth: total weighted layers, 6n+2: 20, 32, 44, 56 or 110 in the paper.
            Defaults to `20`.
        residual: add the shortcut connections. Defaults to `True`.
        shortcut: `"A"` (zero-padding identity, parameter-free, the paper's
            CIFAR choice) or `"B"` (1x1 conv projection + BatchNorm) where the
            shape changes. Defaults to `"A"`.
        widths: filters of the three stages. Defaults to `(16, 32, 64)`.
        initializer_name: conv/dense initializer. Defaults to `"he_normal"`.
        activation: Defaults to `"relu"`.
        normalization: `"batch"`, `"layer"` or `"none"`. Defaults to `"batch"`.
        name: the model's name.

    Returns:
        An uncompiled `keras.Model`.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(
            f"`depth` must be 6n+2 with n >= 1 (20, 32, 44, 56, 110 in He et al. 2016). Received: depth={depth!r}"
        )
    check_choice("shortcut", shortcut, SHORTCUTS)
    widths = tuple(widths)
    if len(widths) != 3:
        raise ValueError(f"`widths` must give the filters of 3 stages. Received: widths={widths!r}")
    for w in widths:
        check_positive_int("widths", w)
    activation_layer(activation, "probe")
    initializer(initializer_name, "initializer")
    normalization_layer(normalization, "probe")
    if len(input_shape) not in (2, 3):
        raise ValueError(
            f"`input_shape` must be (steps, channels) or (height, width, channels). Received: input_shape={input_shape}"
        )
    conv_cls = layers.Conv1D if len(input_shape) == 2 else layers.Conv2D
    n = (depth - 2) // 6

    def conv(filters, stride, layer_name, kernel=3):
        return conv_cls(
            filters,
            kernel,
            strides=stride,
            padding="same",
            use_bias=normalization != "batch",
            kernel_initializer=initializer(initializer_name),
            name=layer_name,
        )

    def norm(x, layer_name):
        layer = normalization_layer(normalization, layer_name)
        return layer(x) if layer is not None else x

    inputs = keras.Input(shape=input_shape, name="inputs")
    x = conv(widths[0], 1, "stem_conv")(inputs)
    x = norm(x, "stem_bn")
    x = activation_layer(activation, "stem_act")(x)
    for s, filters in enumerate(widths, start=1):
        for b in range(1, n + 1):
            prefix = f"stage{s}_block{b}"
            stride = 2 if (s > 1 and b == 1) else 1
            y = conv(filters, stride, f"{prefix}_conv1")(x)
            y = norm(y, f"{prefix}_bn1")
            y = activation_layer(activation, f"{prefix}_act1")(y)
            y = conv(filters, 1, f"{prefix}_conv2")(y)
            y = norm(y, f"{prefix}_bn2")
            if residual:
                shortcut_x = x
                if stride != 1 or x.shape[-1] != filters:
                    if shortcut == "A":
                        shortcut_x = ZeroPadShortcut(stride, filters, name=f"{prefix}_pad")(x)
                    else:
                        shortcut_x = conv(filters, stride, f"{prefix}_proj", kernel=1)(x)
                        shortcut_x = norm(shortcut_x, f"{prefix}_proj_bn")
                y = layers.Add(name=f"{prefix}_add")([y, shortcut_x])
            x = activation_layer(activation, f"{prefix}_act2")(y)
    pool_cls = layers.GlobalAveragePooling1D if len(input_shape) == 2 else layers.GlobalAveragePooling2D
    x = pool_cls(name="pool")(x)
    outputs = layers.Dense(num_outputs, kernel_initializer=initializer(initializer_name), name="head")(x)
    return keras.Model(inputs, outputs, name=name)


def _cnn_builder(residual: bool):
    def builder(input_shape, num_outputs, initializer=None, **hparams):
        if initializer is not None:
            hparams["initializer_name"] = initializer
        return build_resnet(input_shape, num_outputs, residual=residual, **hparams)

    return builder


_SHAPES_2D = ((32, 32, 3), (28, 28, 1))
_SHAPES_1D = ((40, 1),)
_REF = "He et al. 2016, sec. 4.2 and fig. 6 (CIFAR-10 plain vs ResNet, depths 20-110)"

for _depth in VALID_DEPTHS:
    for _suffix, _rank, _shapes, _what in (("", 3, _SHAPES_2D, "2-D"), ("_1d", 2, _SHAPES_1D, "1-D")):
        register(
            f"plain_{_depth}{_suffix}",
            family="cnn",
            role="baseline",
            description=f"{_what} plain CNN, {_depth} layers with BatchNorm and no shortcuts: deeper trains worse (degradation).",
            defaults=dict(depth=_depth, shortcut="A"),
            input_rank=_rank,
            example_input_shapes=_shapes,
            reference=_REF,
        )(_cnn_builder(residual=False))
        register(
            f"resnet_{_depth}{_suffix}",
            family="cnn",
            role="mitigated",
            baseline=f"plain_{_depth}{_suffix}",
            description=f"{_what} ResNet-{_depth}: the same net plus identity shortcuts that carry the gradient past every block.",
            defaults=dict(depth=_depth, shortcut="A"),
            fixes=("skip_connections",),
            input_rank=_rank,
            example_input_shapes=_shapes,
            reference=_REF,
        )(_cnn_builder(residual=True))
