"""Study hook: attention entropy per layer for each arm (bar chart).

Entropy collapse (deep layers) and overload (early layers) are read off
the per-layer mean attention entropy, normalised by its maximum, that the
`attention_entropy` evaluator reports as `entropy/layer_<i>`.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from common.study import artifacts


def entropy_figure(configs: Mapping[str, Any], workdir: str,
                   runs: Mapping[str, Mapping[int, Any]]) -> dict[str, str]:
  """Writes `<workdir>/layer_entropy.png`."""
  finals = artifacts.final_metrics(runs)
  layers = next(iter(configs.values())).model.kwargs.num_layers
  keys = [f"entropy/layer_{i}" for i in range(layers)]
  path = artifacts.bar_chart(
      finals, keys, os.path.join(workdir, "layer_entropy.png"),
      ylabel="attention entropy / max", xlabels=[f"layer {i}" for i in
                                                  range(layers)],
      title="mean attention entropy per layer (1 = uniform)")
  return {"layer_entropy": path}
