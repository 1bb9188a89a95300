"""Study hook: each arm's perplexity gap to full precision (bars)."""

from __future__ import annotations

import os
from typing import Any, Mapping

from common.study import artifacts


def perplexity_figure(configs: Mapping[str, Any], workdir: str,
                      runs: Mapping[str, Mapping[int, Any]]
                      ) -> dict[str, str]:
  """Writes `<workdir>/perplexity_gap.png`: quantised minus full-precision
  held-out perplexity (lower is better; 0 = no loss from quantising)."""
  del configs
  gaps = {arm: {seed: {"gap": r["finetuned/perplexity"]
                       - r["pretrained/perplexity"]}
                for seed, r in by_seed.items()}
          for arm, by_seed in artifacts.final_metrics(runs).items()}
  path = artifacts.bar_chart(
      gaps, ["gap"], os.path.join(workdir, "perplexity_gap.png"),
      ylabel="quantised - full-precision perplexity", xlabels=[""])
  return {"perplexity_gap": path}
