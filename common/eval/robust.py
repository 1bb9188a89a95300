"""Robust accuracy under L-inf attacks (`config.eval.name =
"robust_classification"`).

Reports, on the whole eval split, the clean accuracy and the accuracy on
FGSM and PGD-k examples of the trained model (eval mode: BatchNorm on
running statistics), each attack maximising the model's own cross-entropy
(`common.eval.attacks`) in [0, 1] pixel space. Settings live in
`config.eval.robust` (`default_config()`); the defaults are the CIFAR-10
protocol of the MTARD code (`attack_pgd`: eps 8/255, 20 steps of 0.003,
uniform random start). Randomness is a function of `config.seed` and the
batch number, so an evaluation is reproducible.

Metrics: `clean_acc`, `fgsm_acc`, `pgd<k>_acc` (percent), and `error`
(clean error, percent), so tables can put it beside `classification`'s.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np

from common import config as config_lib
from common.core import sharding as sharding_lib
from common.eval import attacks
from common.eval import evaluators


def default_config() -> mlc.ConfigDict:
  """`config.eval.robust`."""
  return mlc.ConfigDict(dict(
      eps=8.0 / 255.0,
      step_size=0.003,       # PGD step (official attack_pgd)
      pgd_steps=20,
      start="uniform",       # PGD random start (common.eval.attacks)
      fgsm=True,             # also report FGSM accuracy
      bounded=True))         # clip to [0, 1] pixels (False: vector inputs)


RULES = {
    "eval.robust.eps": config_lib.at_least(0.0),
    "eval.robust.step_size": config_lib.at_least(0.0),
    "eval.robust.pgd_steps": config_lib.at_least(0, integer=True),
    "eval.robust.start": config_lib.one_of(*attacks.START_KINDS),
}


@functools.partial(jax.jit, static_argnames=(
    "model", "preprocess", "steps", "start", "fgsm", "bounded"))
def _correct(variables: Any, batch: dict[str, jax.Array], rng: jax.Array,
             eps: jax.Array, step_size: jax.Array, *, model: Any,
             preprocess: Any, steps: int, start: str, fgsm: bool,
             bounded: bool) -> dict[str, jax.Array]:
  """`{"clean", "fgsm", "pgd"}`: `[b]` bool correctness of one batch."""
  pixels, to_input = attacks.pixel_view(preprocess.normalize,
                                        preprocess(batch, None))
  bounds = (0.0, 1.0) if bounded else None
  logits = lambda u: model.apply(variables, to_input(u),
                                 train=False)["logits"]
  loss = attacks.cross_entropy_loss(logits, batch["label"])
  hit = lambda u: jnp.argmax(logits(u), -1) == batch["label"]
  out = {"clean": hit(pixels)}
  if fgsm:
    out["fgsm"] = hit(attacks.fgsm(loss, pixels, eps=eps, bounds=bounds))
  if steps:
    out["pgd"] = hit(attacks.pgd(loss, pixels, eps=eps, step_size=step_size,
                                 steps=steps, rng=rng, start=start,
                                 bounds=bounds))
  return out


def robust_accuracies(setup: Any, state: Any,
                      settings: mlc.ConfigDict | None = None
                      ) -> dict[str, float]:
  """Clean / FGSM / PGD-k accuracy (percent) of `state` on the eval split."""
  r = settings or setup.config.eval.robust
  config_lib.check_rules(mlc.ConfigDict({"eval": {"robust": r}}), RULES)
  variables = {"params": state.params, **state.model_state}
  eps, step = jnp.float32(r.eps), jnp.float32(r.step_size)
  key = jax.random.fold_in(jax.random.PRNGKey(setup.config.seed), 0xA77AC)
  sums: dict[str, float] = {}
  count = 0
  for i, batch in enumerate(setup.eval_batches()):
    out = _correct(variables, batch, jax.random.fold_in(key, i), eps, step,
                   model=setup.model, preprocess=setup.parts.preprocess,
                   steps=int(r.pgd_steps), start=r.start, fgsm=bool(r.fgsm),
                   bounded=bool(r.bounded))
    mask = (sharding_lib.gather_to_host(batch["mask"]) if "mask" in batch
            else None)
    for name, hits in out.items():
      hits = sharding_lib.gather_to_host(hits)
      hits = hits if mask is None else hits[mask.astype(bool)]
      sums[name] = sums.get(name, 0.0) + float(np.sum(hits))
    count += int(len(hits))
  names = {"clean": "clean_acc", "fgsm": "fgsm_acc",
           "pgd": f"pgd{int(r.pgd_steps)}_acc"}
  result = {names[k]: 100.0 * v / max(count, 1) for k, v in sums.items()}
  result["error"] = 100.0 - result["clean_acc"]
  return result


@evaluators.register_evaluator("robust_classification")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  """`robust_accuracies` with `config.eval.robust` (see the module doc)."""
  if "robust" not in setup.config.eval:
    raise ValueError("eval.name='robust_classification' needs "
                     "config.eval.robust = common.eval.robust."
                     "default_config() (attack settings)")
  return robust_accuracies(setup, state)
