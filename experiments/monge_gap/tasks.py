"""The Monge-gap study's point clouds (a generator) and held-out metrics.

Tasks (`config.data.kwargs.task`; also `dim`, and `num_test` held-out
points):
* "gaussian": a fixed pair of `dim`-d Gaussians (the same for every seed),
  whose OT map is known in closed form (ott's `Gaussian.transport`);
* "<source>-><target>": two of ott's 2-d Gaussian mixtures ("simple",
  "circle", "square_five", "square_four"), sampled statelessly.

The generator `ot_pair` draws batches {"x": source [b, d], "y": target
[b, d]} on device from `(seed, step)`. The evaluator `ot_map` scores the
method's map on `num_test` held-out points of each measure, drawn from
the key `10_000 + seed` (a stream no train step uses): fit S_eps(T#mu, nu)
(relative eps `EPSILON_EVAL`), map cost, exact (Hungarian) OT cost, cost
gap and, for "gaussian", the error to the true map
(`algos.ot.monge_gap.map_metrics`).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from ott import datasets as ott_datasets
from ott.tools.gaussian_mixture import gaussian

from algos.ot import monge_gap
from common import config as config_lib
from common.data import procedural
from common.eval import evaluators

MIXTURES = ("simple", "circle", "square_five", "square_four")
EPSILON_EVAL = 0.01     # the fit metric's epsilon, a fraction of the mean cost
_HELD_OUT_STREAM = 10_000

Sampler = Callable[[jax.Array, int], tuple[jax.Array, jax.Array]]


def _gaussian_pair(dim: int):
  """A fixed source/target Gaussian pair (same for all seeds)."""
  rng = np.random.default_rng(1234)

  def cov():
    a = rng.normal(size=(dim, dim))
    return a @ a.T / dim + 0.2 * np.eye(dim)
  src = gaussian.Gaussian.from_mean_and_cov(jnp.zeros(dim), jnp.asarray(cov()))
  tgt = gaussian.Gaussian.from_mean_and_cov(jnp.asarray(rng.normal(size=dim)),
                                            jnp.asarray(cov()))
  return src, tgt


def make_task(name: str, dim: int = 2
              ) -> tuple[Sampler, Callable[[jax.Array], jax.Array] | None]:
  """`(sample(rng, n) -> (x [n, d], y [n, d]), true_map or None)`."""
  if name == "gaussian":
    src, tgt = _gaussian_pair(dim)

    def sample(rng, n):
      kx, ky = jax.random.split(rng)
      return src.sample(kx, n), tgt.sample(ky, n)
    return sample, lambda x: src.transport(tgt, x)
  source_name, sep, target_name = name.partition("->")
  if not sep or source_name not in MIXTURES or target_name not in MIXTURES:
    raise config_lib.ConfigError(
        f"config.data.kwargs.task={name!r} is not allowed: expected "
        f"'gaussian' or '<source>-><target>' with mixtures from "
        f"{list(MIXTURES)}")
  if dim != 2:
    raise config_lib.ConfigError(f"config.data.kwargs.dim={dim}: the mixture "
                                 f"task {name!r} is 2-d")
  # ott's GaussianMixture holds the centres, scale and std; we sample the
  # same law statelessly (its iterator carries an rng we cannot fold in).
  mixes = [ott_datasets.GaussianMixture(n, batch_size=1,
                                        rng=jax.random.PRNGKey(0))
           for n in (source_name, target_name)]

  def draw(mix, rng, n):
    k1, k2 = jax.random.split(rng)
    means = jax.random.choice(k1, jnp.asarray(mix.centers, jnp.float32), (n,))
    return mix.scale * means + mix.std**2 * jax.random.normal(k2, (n, 2))

  def sample(rng, n):
    kx, ky = jax.random.split(rng)
    return draw(mixes[0], kx, n), draw(mixes[1], ky, n)
  return sample, None


DEFAULTS = dict(task="gaussian", dim=2, num_test=500)
RULES = {
    "dim": config_lib.at_least(1, integer=True),
    "num_test": config_lib.at_least(2, integer=True),
}


def settings(config: Any) -> dict[str, Any]:
  """The task's settings (`config.data.kwargs` over `DEFAULTS`), checked."""
  kw = procedural.settings(config, DEFAULTS, RULES)
  make_task(kw["task"], kw["dim"])   # raises on an unknown task
  return kw


@procedural.register_generator("ot_pair")
def make(config: Any) -> procedural.Generator:
  """Batches {"x": [b, d] source points, "y": [b, d] target points}."""
  kw = settings(config)
  pair, _ = make_task(kw["task"], kw["dim"])

  def sample(rng, n):
    x, y = pair(rng, n)
    return {"x": x, "y": y}
  return procedural.Generator(sample=sample,
                              example=procedural.example_from(sample),
                              eval_examples=kw["num_test"])


def held_out(config: Any) -> dict[str, jax.Array]:
  """The run's held-out points {"x", "y"} `[num_test, d]` (fixed per seed)."""
  kw = settings(config)
  pair, _ = make_task(kw["task"], kw["dim"])
  x, y = pair(jax.random.PRNGKey(_HELD_OUT_STREAM + config.seed),
              kw["num_test"])
  return {"x": x, "y": y}


@evaluators.register_evaluator("ot_map")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  """Held-out map metrics of the method's "mapped" output."""
  cfg = setup.config
  test = held_out(cfg)
  mapped = evaluators.predict(setup, state, test, ("mapped",))["mapped"]
  kw = settings(cfg)
  _, true_map = make_task(kw["task"], kw["dim"])
  return monge_gap.map_metrics(
      mapped, test["x"], test["y"], EPSILON_EVAL,
      true_mapped=None if true_map is None else true_map(test["x"]))
