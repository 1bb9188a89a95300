"""DSE vs binned entropy as measures of intrinsic dimension (analysis).

For each intrinsic dimension d = 1..`manifold.max_dim`: `manifold.n` points
with coordinates drawn `manifold.kind` ("gaussian": N(0, I_d); "cube":
uniform on [-sqrt 3, sqrt 3]^d, unit variance) times `manifold.scale`, put
into R^`manifold.ambient` by a random orthonormal frame, plus isotropic
Gaussian noise of std `manifold.noise` in every ambient coordinate. Both
entropies are computed on the same cloud; the metrics of one seed are each
entropy per d and its Spearman correlation with d (a constant sequence has
no monotone trend: correlation 0), and its spread (max - min over d).
"""

from __future__ import annotations

import ml_collections as mlc
import numpy as np
from scipy import stats

import jax.numpy as jnp

from algos.analysis import dse as dse_lib
from common import config as config_lib
from common.protocols import analysis

KINDS = ("gaussian", "cube")
RULES = {
    "manifold.kind": config_lib.one_of(*KINDS),
    "manifold.n": config_lib.at_least(4, integer=True),
    "manifold.ambient": config_lib.at_least(1, integer=True),
    "manifold.max_dim": config_lib.at_least(2, integer=True),
    "manifold.scale": config_lib.greater_than(0.0),
    "manifold.noise": config_lib.at_least(0.0),
    "manifold.sigma": config_lib.greater_than(0.0),
    "manifold.t": config_lib.greater_than(0.0),
    "manifold.alpha": config_lib.between(0.0, 1.0),
    "manifold.bins": config_lib.at_least(2, integer=True),
}


def default_config() -> mlc.ConfigDict:
  """The `manifold` section: the paper's d = 1..10 in R^100, official
  DSE defaults (sigma 10, t 1) and the official binning (2 per dim)."""
  return mlc.ConfigDict(dict(kind="gaussian", n=500, ambient=100, max_dim=10,
                             scale=3.0, noise=0.0, sigma=10.0, t=1.0,
                             alpha=0.0, bins=2))


def point_cloud(cfg: mlc.ConfigDict, d: int, seed: int) -> np.ndarray:
  """`[n, ambient]` float32 points on a d-dim flat manifold plus noise."""
  rng = np.random.default_rng([seed, d])
  if cfg.kind == "gaussian":
    x = rng.normal(size=(cfg.n, d))
  else:
    x = rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), size=(cfg.n, d))
  frame, _ = np.linalg.qr(rng.normal(size=(cfg.ambient, d)))
  z = cfg.scale * x @ frame.T + cfg.noise * rng.normal(
      size=(cfg.n, cfg.ambient))
  return z.astype(np.float32)


def _spearman(values: list[float], dims: list[int]) -> float:
  if np.ptp(values) == 0.0:
    return 0.0
  return float(stats.spearmanr(dims, values)[0])


def run(config: mlc.ConfigDict) -> dict[str, float]:
  cfg = config.manifold
  if cfg.max_dim > cfg.ambient:
    raise config_lib.ConfigError(
        f"config.manifold.max_dim={cfg.max_dim} exceeds manifold.ambient="
        f"{cfg.ambient}: the manifold must fit in the ambient space")
  dims = list(range(1, cfg.max_dim + 1))
  out, dse_vals, cse_vals = {}, [], []
  for d in dims:
    z = jnp.asarray(point_cloud(cfg, d, config.seed))
    h = float(dse_lib.dse(z, cfg.sigma, cfg.t, cfg.alpha))
    c = float(dse_lib.binned_entropy(z, cfg.bins))
    out[f"dse_d{d}"], out[f"cse_d{d}"] = h, c
    dse_vals.append(h)
    cse_vals.append(c)
  out.update(dse_spearman=_spearman(dse_vals, dims),
             cse_spearman=_spearman(cse_vals, dims),
             dse_spread=float(np.ptp(dse_vals)),
             cse_spread=float(np.ptp(cse_vals)),
             log2_n=float(np.log2(cfg.n)))
  return out


def validate(config: mlc.ConfigDict) -> None:
  config_lib.check_rules(config, RULES)


@analysis.register_analysis("dse_manifold")
def make() -> analysis.Analysis:
  return analysis.Analysis(
      run=run, validate=validate,
      smoke={"manifold.n": 40, "manifold.max_dim": 3, "manifold.ambient": 8})
