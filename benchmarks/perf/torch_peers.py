"""PyTorch twins of zoo models: the peer a user would pick instead of Keras.

Each twin has the zoo model's architecture, read from its registry entry (depth,
widths, activation, normalization, shortcuts, cell, units), so a change in the
zoo changes the peer. Only speed is compared: initializers are PyTorch's own
(they do not change the cost of a step). BatchNorm takes Keras's epsilon and
momentum. Images are NCHW (PyTorch's native layout), sequences batch-first.

PyTorch is optional (the `peer` extra). `bench_gpu` runs the twins in a child
process (`python -m gradzoo.benchmarks.perf.torch_peers REQUEST.json`) that never
imports TensorFlow: in one process, TensorFlow's and PyTorch's OpenMP thread
pools fight over the cores (a twin ran 10-100x slower beside TensorFlow here).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch
from torch import nn

_ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "selu": nn.SELU, "elu": nn.ELU,
                "gelu": nn.GELU, "leaky_relu": nn.LeakyReLU, "linear": nn.Identity}  # fmt: skip


def _batch_norm(cls, channels):
    # Keras: epsilon 1e-3 and moving average 0.99 (PyTorch counts the other way: 0.01).
    return cls(channels, eps=1e-3, momentum=0.01)


class _Block(nn.Module):
    def __init__(self, c_in, c_out, stride, residual):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = _batch_norm(nn.BatchNorm2d, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = _batch_norm(nn.BatchNorm2d, c_out)
        self.residual, self.stride, self.extra = residual, stride, c_out - c_in

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        if self.residual:
            shortcut = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
            if self.extra:  # option A: zero-pad the channels, no weights
                shortcut = nn.functional.pad(shortcut, (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))
            y = y + shortcut
        return torch.relu(y)


class ResNet(nn.Module):
    """He et al. 2016's CIFAR net: 3x3 stem, three stages of n blocks, global pooling, linear head."""

    def __init__(self, depth, channels, classes, residual=True, widths=(16, 32, 64)):
        super().__init__()
        n = (depth - 2) // 6
        layers = [nn.Conv2d(channels, widths[0], 3, 1, 1, bias=False), _batch_norm(nn.BatchNorm2d, widths[0]), nn.ReLU()]
        c = widths[0]
        for s, w in enumerate(widths):
            for b in range(n):
                layers.append(_Block(c, w, 2 if (s > 0 and b == 0) else 1, residual))
                c = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c, classes)

    def forward(self, x):
        return self.head(self.body(x).mean(dim=(2, 3)))


class MLP(nn.Module):
    def __init__(self, inputs, classes, depth, width, activation, normalization):
        super().__init__()
        layers, fan_in = [nn.Flatten()], inputs
        for _ in range(depth):
            layers.append(nn.Linear(fan_in, width, bias=normalization != "batch"))
            if normalization == "batch":
                layers.append(_batch_norm(nn.BatchNorm1d, width))
            elif normalization == "layer":
                layers.append(nn.LayerNorm(width, eps=1e-3))
            layers.append(_ACTIVATIONS[activation]())
            fan_in = width
        layers.append(nn.Linear(fan_in, classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class RNN(nn.Module):
    """One recurrent layer read at its last step, then a linear head (many-to-one)."""

    def __init__(self, features, classes, cell, units, activation):
        super().__init__()
        if cell == "simple":
            self.rnn = nn.RNN(features, units, nonlinearity=activation, batch_first=True)
        else:
            self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](features, units, batch_first=True)
        self.head = nn.Linear(units, classes)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


def build_peer(peer: dict, input_shape, classes: int) -> nn.Module:
    """The PyTorch twin of a zoo model at an input shape (Keras layout: channels last).

    Args:
        peer: `{"name", "family", "hparams"}`: the zoo model's name, family and
            hyperparameters (its registry defaults with any overrides).

    Raises:
        ValueError: a zoo model or setting this module has no twin for.
    """
    family, h = peer["family"], peer["hparams"]
    if family == "cnn" and len(input_shape) == 3 and h.get("shortcut", "A") == "A":
        return ResNet(h["depth"], input_shape[-1], classes, residual=peer["name"].startswith("resnet"))
    if family == "mlp":
        inputs = 1
        for d in input_shape:
            inputs *= d
        return MLP(inputs, classes, h["depth"], h["width"], h["activation"], h.get("normalization", "none"))
    if family == "rnn" and h.get("num_layers", 1) == 1 and h.get("activation", "tanh") in ("tanh", "relu"):
        return RNN(input_shape[-1], classes, h["cell"], h["units"], h.get("activation", "tanh"))
    raise ValueError(f"No PyTorch twin for {peer['name']!r} at input shape {tuple(input_shape)}.")


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def train_throughput(model: nn.Module, x, y, batch_size: int, steps: int, epochs: int, autocast_dtype=None) -> float:
    """Samples/s of the fastest of `epochs` timed passes of `steps` SGD steps, after one untimed pass.

    Args:
        model: the twin.
        x, y: NumPy inputs (channels last for images; transposed here) and int labels.
        autocast_dtype: `torch.float16` / `torch.bfloat16` for mixed precision, else `None`.
    """
    dev = device()
    model = model.to(dev)
    xt = torch.as_tensor(x)
    if xt.ndim == 4:
        xt = xt.permute(0, 3, 1, 2).contiguous()
    xt, yt = xt.to(dev), torch.as_tensor(y, dtype=torch.long).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    scaler = torch.amp.GradScaler(dev.type, enabled=autocast_dtype == torch.float16)
    n = len(yt)

    def one_pass():
        for i in range(steps):
            lo = (i * batch_size) % max(1, n - batch_size + 1)
            xb, yb = xt[lo : lo + batch_size], yt[lo : lo + batch_size]
            opt.zero_grad(set_to_none=True)
            with torch.autocast(dev.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
                loss = loss_fn(model(xb), yb)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        if dev.type == "cuda":
            torch.cuda.synchronize()

    model.train()
    one_pass()
    best = float("inf")
    for _ in range(epochs):
        start = time.perf_counter()
        one_pass()
        best = min(best, time.perf_counter() - start)
    return steps * batch_size / best


def main(argv=None) -> None:
    """Child-process entry: reads `{"peer", "shape", "classes", "data", "batch", "steps", "epochs", "half"}`
    JSON (the inputs in an `.npz` file at `data`), prints `{"samples_per_s": ...}`."""
    request = json.loads(open((argv or sys.argv[1:])[0], encoding="utf-8").read())
    data = np.load(request["data"])
    torch.manual_seed(0)
    model = build_peer(request["peer"], request["shape"], request["classes"])
    dtype = {"mixed_float16": torch.float16, "mixed_bfloat16": torch.bfloat16}.get(request["half"])
    rate = train_throughput(model, data["x"], data["y"], request["batch"], request["steps"], request["epochs"], dtype)
    print(json.dumps({"samples_per_s": rate}))


if __name__ == "__main__":
    main()
