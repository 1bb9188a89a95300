"""The model registry: constructors registered by decorator, found by
scanning `common/models`, `algos/` and `experiments/` (see
`common.registry`).

    @register_model("small_cnn")
    class SmallCNN(nn.Module): ...

A constructor takes `num_classes` first and the module's other attributes as
keyword arguments (`config.model.kwargs`, plus `dtype`).
"""

from __future__ import annotations

from common import registry

MODELS = registry.Registry("model", ("common.models", "algos", "experiments"),
                           "register_model")
register_model = MODELS.register
