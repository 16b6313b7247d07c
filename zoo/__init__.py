"""gradzoo's model zoo: paired architectures that suffer vanishing or exploding
gradients (baselines) and the same tasks with a known fix (mitigated).

```python
from gradzoo import zoo
zoo.list_models(family="mlp")            # ['mlp_sigmoid_deep', 'mlp_he_relu_bn', ...]
zoo.pairs()                              # [('mlp_sigmoid_deep', 'mlp_he_relu_bn'), ...]
model = zoo.build("resnet_56_1d", (40, 1), 10)
optimizer = zoo.make_optimizer(zoo.get_spec("rnn_lstm").optimizer)
```
"""

from gradzoo.zoo.registry import ModelSpec, architecture_name, build, get_spec, list_models, measured_through, pairs, register
from gradzoo.zoo.components import make_optimizer

# Importing the family modules registers their models.
from gradzoo.zoo import mlp as _mlp  # noqa: F401,E402
from gradzoo.zoo import cnn as _cnn  # noqa: F401,E402
from gradzoo.zoo import rnn as _rnn  # noqa: F401,E402
from gradzoo.zoo.pretrained import list_pretrained, load_pretrained, pretrained_info, register_pretrained  # noqa: E402

__all__ = ["ModelSpec", "architecture_name", "build", "get_spec", "list_models", "measured_through", "pairs", "register", "make_optimizer",
           "list_pretrained", "pretrained_info", "load_pretrained", "register_pretrained"]
