"""Evaluator `text_corridor`: success and entropy of a corridor agent.

On `eval.text_corridor.worlds` held-out worlds of the training lengths
(`iid/`) and of the longer out-of-distribution lengths (`ood/`, generator
`corridor_worlds` settings): the success rate of sampled episodes
(`success`, `n_samples` per world, temperature 1, and pass@k over them),
of greedy episodes (`greedy_success`), the mean per-turn policy entropy
(`entropy`, nats) and the mean turns used (`turns`).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from common.data import corridor_worlds
from common.envs import text_corridor as tc
from common.eval import evaluators

DEFAULTS = dict(worlds=128, n_samples=4, max_turns=20, seed=1234)


@functools.partial(jax.jit, static_argnames=("model", "group_size",
                                             "max_turns", "greedy"))
def _play(model, params, worlds, rng, *, group_size, max_turns, greedy):
  ro = tc.rollout(model, params, worlds, rng, group_size=group_size,
                  max_turns=max_turns, greedy=greedy)
  mask = ro["completion_mask"]
  ent = jnp.sum(ro["entropies"] * mask) / jnp.maximum(jnp.sum(mask), 1.0)
  return ro["success"], ent, jnp.mean(ro["num_turns"])


def settings(config: Any) -> dict[str, Any]:
  return evaluators.section_settings(config, "text_corridor", DEFAULTS)


@evaluators.register_evaluator("text_corridor")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  s = settings(setup.config)
  kw = corridor_worlds.settings(setup.config)
  rng = jax.random.PRNGKey(s["seed"])
  out = {}
  for prefix, lo, hi in (("iid", kw["min_length"], kw["max_length"]),
                         ("ood", kw["ood_min_length"], kw["ood_max_length"])):
    k_world, k_play = jax.random.split(jax.random.fold_in(rng, lo * 100 + hi))
    worlds = tc.draw_worlds(k_world, s["worlds"], lo, hi)
    succ, ent, turns = jax.device_get(_play(
        setup.model, state.params, worlds, k_play,
        group_size=s["n_samples"], max_turns=s["max_turns"], greedy=False))
    g_succ, _, _ = jax.device_get(_play(
        setup.model, state.params, worlds, k_play, group_size=1,
        max_turns=s["max_turns"], greedy=True))
    per_world = np.asarray(succ).reshape(-1, s["n_samples"])
    out.update({f"{prefix}/success": float(per_world.mean()),
                f"{prefix}/pass@{s['n_samples']}": float(
                    per_world.max(1).mean()),
                f"{prefix}/greedy_success": float(np.mean(g_succ)),
                f"{prefix}/entropy": float(ent),
                f"{prefix}/turns": float(turns)})
  return out
