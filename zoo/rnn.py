"""The RNN family: a tanh SimpleRNN whose gradient vanishes over long
recurrences, next to LSTM, GRU and IRNN, and a large-init SimpleRNN whose
gradient explodes, next to the same net trained with gradient clipping.

Inputs are sequences `(steps, features)`, or `(steps,)` integer tokens when
`vocab_size` is given (an Embedding then comes first). The head reads the last
hidden state (many-to-one) unless `sequence_output=True`, which gives one
output per step (many-to-many, e.g. the copy-memory task).
"""

from __future__ import annotations

import keras
from keras import layers

from gradzoo.zoo.components import check_choice, check_positive_int, initializer
from gradzoo.zoo.registry import register

CELLS = ("simple", "lstm", "gru")
RNN_ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")


def build_rnn(
    input_shape,
    num_outputs: int,
    *,
    cell: str = "simple",
    units: int = 128,
    num_layers: int = 1,
    activation: str = "tanh",
    kernel_initializer: str = "glorot_uniform",
    recurrent_initializer: str = "orthogonal",
    sequence_output: bool = False,
    vocab_size: int | None = None,
    embedding_dim: int = 64,
    name: str = "rnn",
):
    """Builds a stacked recurrent net with a linear head.

    Layers are named `embedding` (token inputs only), `rnn_0` .. `rnn_{L-1}`
    (0 = nearest the input) and `head`.

    Args:
        input_shape: `(steps, features)`, or `(steps,)` with `vocab_size`.
        num_outputs: width of the linear head (logits or regression outputs).
        cell: `"simple"` (Elman RNN), `"lstm"` (Hochreiter & Schmidhuber 1997)
            or `"gru"` (Cho et al. 2014). Defaults to `"simple"`.
        units: hidden units per layer. Defaults to `128`.
        num_layers: stacked recurrent layers. Defaults to `1`.
        activation: the state activation, `"tanh"` or `"relu"` (IRNN) etc.
            Defaults to `"tanh"`.
        kernel_initializer: input-to-hidden init. Defaults to `"glorot_uniform"`.
        recurrent_initializer: hidden-to-hidden init. Defaults to `"orthogonal"`.
        sequence_output: one output per step instead of one per sequence.
            Defaults to `False`.
        vocab_size: if set, inputs are token ids and an Embedding of
            `embedding_dim` comes first. Defaults to `None`.
        embedding_dim: Defaults to `64`.
        name: the model's name.

    Returns:
        An uncompiled `keras.Model`.
    """
    check_choice("cell", cell, CELLS)
    check_positive_int("units", units)
    check_positive_int("num_layers", num_layers)
    check_choice("activation", activation, RNN_ACTIVATIONS)
    initializer(kernel_initializer, "kernel_initializer")
    initializer(recurrent_initializer, "recurrent_initializer")
    expected_rank = 1 if vocab_size is not None else 2
    if len(input_shape) != expected_rank:
        raise ValueError(
            f"`input_shape` must be {'(steps,) token ids' if vocab_size else '(steps, features)'}. "
            f"Received: input_shape={input_shape}"
        )
    if vocab_size is not None:
        check_positive_int("vocab_size", vocab_size, minimum=2)
        check_positive_int("embedding_dim", embedding_dim)

    cls = {"simple": layers.SimpleRNN, "lstm": layers.LSTM, "gru": layers.GRU}[cell]
    inputs = keras.Input(shape=input_shape, name="inputs", dtype="int32" if vocab_size else "float32")
    x = inputs
    if vocab_size is not None:
        x = layers.Embedding(vocab_size, embedding_dim, name="embedding")(x)
    for i in range(num_layers):
        kwargs = dict(
            units=units,
            kernel_initializer=initializer(kernel_initializer),
            recurrent_initializer=initializer(recurrent_initializer),
            return_sequences=sequence_output or i < num_layers - 1,
            name=f"rnn_{i}",
        )
        # LSTM/GRU gates keep their sigmoid; `activation` is the candidate/state one.
        x = cls(activation=activation, **kwargs)(x)
    outputs = layers.Dense(num_outputs, name="head")(x)
    return keras.Model(inputs, outputs, name=name)


def _rnn_builder(input_shape, num_outputs, **hparams):
    return build_rnn(input_shape, num_outputs, **hparams)


_SHAPES = ((40, 1), (50, 2))
_CLIP = 1.0  # Pascanu et al. 2013 clip the gradient norm at 1 (and report robustness to the exact value).

register(
    "rnn_simple",
    family="rnn",
    role="baseline",
    description="tanh SimpleRNN, 128 units: the gradient through time decays geometrically over long sequences.",
    defaults=dict(cell="simple", units=128, activation="tanh"),
    measured_through=("layers", "time"),
    example_input_shapes=_SHAPES,
    reference="Bengio et al. 1994; Pascanu et al. 2013",
)(_rnn_builder)

register(
    "rnn_lstm",
    family="rnn",
    role="mitigated",
    baseline="rnn_simple",
    description="LSTM, 128 units, clipnorm=1: the gated cell state carries the gradient across long delays.",
    defaults=dict(cell="lstm", units=128, activation="tanh"),
    optimizer={"clipnorm": _CLIP},
    fixes=("gating", "clipping"),
    measured_through=("layers", "time"),
    example_input_shapes=_SHAPES,
    reference="Hochreiter & Schmidhuber 1997; Pascanu et al. 2013 (clipping)",
)(_rnn_builder)

register(
    "rnn_gru",
    family="rnn",
    role="mitigated",
    baseline="rnn_simple",
    description="GRU, 128 units, clipnorm=1: update gates give the gradient a near-identity path.",
    defaults=dict(cell="gru", units=128, activation="tanh"),
    optimizer={"clipnorm": _CLIP},
    fixes=("gating", "clipping"),
    measured_through=("layers", "time"),
    example_input_shapes=_SHAPES,
    reference="Cho et al. 2014; Pascanu et al. 2013 (clipping)",
)(_rnn_builder)

register(
    "rnn_irnn",
    family="rnn",
    role="mitigated",
    baseline="rnn_simple",
    description="IRNN: ReLU SimpleRNN with identity recurrent init and N(0, 0.001) inputs, clipnorm=1.",
    defaults=dict(
        cell="simple", units=128, activation="relu", kernel_initializer="tiny_normal", recurrent_initializer="identity"
    ),
    # A ReLU recurrence with identity init is marginally stable: Le et al. use
    # small learning rates with clipping, hence 1e-4 here rather than 1e-3.
    optimizer={"learning_rate": 1e-4, "clipnorm": _CLIP},
    fixes=("identity_recurrence", "clipping"),
    measured_through=("layers", "time"),
    example_input_shapes=_SHAPES,
    reference="Le, Jaitly & Hinton 2015 (IRNN)",
)(_rnn_builder)

register(
    "rnn_large_init",
    family="rnn",
    role="baseline",
    description="tanh SimpleRNN with orthogonal recurrent init of gain 2: the gradient through time explodes.",
    defaults=dict(cell="simple", units=128, activation="tanh", recurrent_initializer="large_orthogonal"),
    optimizer={"name": "sgd", "learning_rate": 0.01, "momentum": 0.9},
    measured_through=("layers", "time"),
    example_input_shapes=_SHAPES,
    reference="Pascanu et al. 2013, sec. 2 (spectral radius > 1 is necessary for explosion)",
)(_rnn_builder)

register(
    "rnn_large_init_clipped",
    family="rnn",
    role="mitigated",
    baseline="rnn_large_init",
    description="The same exploding SimpleRNN trained with clipnorm=1: the update stays bounded.",
    defaults=dict(cell="simple", units=128, activation="tanh", recurrent_initializer="large_orthogonal"),
    optimizer={"name": "sgd", "learning_rate": 0.01, "momentum": 0.9, "clipnorm": _CLIP},
    fixes=("clipping",),
    measured_through=("layers", "time"),
    example_input_shapes=_SHAPES,
    reference="Pascanu et al. 2013 (gradient norm clipping)",
)(_rnn_builder)
