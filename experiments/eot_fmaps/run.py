"""Runner of the EOT-fmaps study (`config.runner`): train on shape pairs,
evaluate the mean geodesic error on test pairs without / with test-time
entropic-OT refinement.

Uses the harness's pieces: the config and overrides, `common.optim`'s AdamW
with traced numbers and its cosine schedule, `TrainState` + `Checkpointer`
(a finished run resumes from its checkpoint instead of retraining) and the
`MetricWriter` (metrics.jsonl). The protocol (pairs of meshes, per-pair
refinement) is not the classification loop, hence a runner.
"""

from __future__ import annotations

import functools
import itertools
import os
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
import optax

from algos.geometry import laplace_beltrami as lb
from algos.ot import eot_fmaps
from algos.ot import eot_fmaps_net
from common.core import checkpoint
from common import config as config_lib
from common.core import logging_utils
from common.core import optim
from common.study import engine as study
from common.data import meshes
from common.data import meshes_synthetic
from common.core.train_state import TrainState


def validate(config: mlc.ConfigDict) -> None:
  e = config.eot
  allowed = ("synthetic",) + tuple(meshes.BENCHMARKS)
  if e.dataset not in allowed:
    raise ValueError(f"eot.dataset={e.dataset!r}; allowed: {allowed}")
  if e.num_train_shapes < 2 or e.num_test_shapes < 2:
    raise ValueError("need >= 2 train and >= 2 test shapes")
  if config.train.steps <= 0:
    raise ValueError("set train.steps > 0 (pairs seen in training)")
  eot_fmaps_net.make_hparams(**config.method.eot_fmaps.to_dict())


def _spectral(verts, faces, e) -> dict[str, np.ndarray]:
  basis = lb.laplacian_eigenbasis(verts, faces, e.num_evecs)
  wks = lb.wave_kernel_signature(basis["evals"], basis["evecs"],
                                 basis["mass"], e.wks_count)
  return {"descriptors": wks.astype(np.float32),
          **{k: basis[k].astype(np.float32)
             for k in ("evals", "evecs", "evecs_trans")}}


def load_shapes(config: mlc.ConfigDict, seed: int):
  """(train shapes, test shapes, test geodesics, test correspondences)."""
  e = config.eot
  if e.dataset == "synthetic":
    coll = meshes_synthetic.make_collection(
        e.num_train_shapes + e.num_test_shapes, e.data_seed + seed,
        e.mesh_level, e.deform_strength)
    train_idx = range(e.num_train_shapes)
    test_idx = range(e.num_train_shapes, len(coll.verts))
    train = meshes.ShapeCollection(*[[getattr(coll, f)[i] for i in train_idx]
                                     for f in ("names", "verts", "faces",
                                               "corr")])
    test = meshes.ShapeCollection(*[[getattr(coll, f)[i] for i in test_idx]
                                    for f in ("names", "verts", "faces",
                                              "corr")])
  else:
    if not e.benchmark_root:
      raise ValueError(f"eot.dataset={e.dataset} needs "
                       f"--config.eot.benchmark_root=<folder with off/ and "
                       f"corres/>")
    train = meshes.load_benchmark(e.benchmark_root, e.dataset, "train") if (
        e.dataset != "SHREC19_r") else meshes.load_benchmark(
            e.benchmark_root, e.dataset, "test")
    test = meshes.load_benchmark(e.benchmark_root, e.dataset, "test")
  prep = lambda c: [_spectral(v, f, e) for v, f in zip(c.verts, c.faces)]
  geo = [lb.geodesic_distances(v, f).astype(np.float32)
         for v, f in zip(test.verts, test.faces)]
  return prep(train), prep(test), geo, test.corr


def _make_steps(config: mlc.ConfigDict):
  e = config.eot
  net = eot_fmaps_net.SpectralDiffusionNet(e.width, e.out_dim, e.num_blocks)
  loss = functools.partial(eot_fmaps_net.pair_loss, net=net,
                           num_projections=e.num_projections, p=e.p,
                           sinkhorn_sigma=e.sinkhorn_sigma,
                           sinkhorn_iters=e.sinkhorn_iters)
  tx = optim.make_optimizer("adamw", clip_grad_norm=config.optim.clip_grad_norm
                            > 0)

  @jax.jit
  def train_step(state, hp, sched, optim_hp, x, y):
    rng = jax.random.fold_in(state.rng, state.step)
    (value, terms), grads = jax.value_and_grad(loss, has_aux=True)(
        state.params, hp, x, y, rng)
    lr = optim.learning_rate_at("cosine", sched, state.step)
    opt_state = optim.set_hyperparams(state.opt_state,
                                      {"learning_rate": lr, **optim_hp})
    updates, opt_state = tx.update(grads, opt_state, state.params)
    state = state.replace(step=state.step + 1, opt_state=opt_state,
                          params=optax.apply_updates(state.params, updates))
    return state, {"loss": value, "learning_rate": lr, **terms}

  refine_tx = optax.chain(optax.clip_by_global_norm(e.refine_clip),
                          optax.adam(e.refine_lr))

  @jax.jit
  def refine(params, hp, x, y, rng):
    """`refine_steps` Adam steps on this pair's entropic-OT objective."""
    def body(carry, k):
      p, s = carry
      grads = jax.grad(lambda q: loss(q, hp, x, y, jax.random.fold_in(
          rng, k), refine=True)[0])(p)
      updates, s = refine_tx.update(grads, s, p)
      return (optax.apply_updates(p, updates), s), None
    (params, _), _ = jax.lax.scan(body, (params, refine_tx.init(params)),
                                  jnp.arange(e.refine_steps))
    return params

  predict = jax.jit(functools.partial(eot_fmaps_net.predict_p2p, net))
  return net, tx, train_step, refine, predict


def train_and_evaluate(config: mlc.ConfigDict, workdir: str
                       ) -> dict[str, float]:
  """Trains (or restores) one run; returns the test geodesic errors."""
  e, seed = config.eot, config.seed
  train, test, geo, corr = load_shapes(config, seed)
  net, tx, train_step, refine, predict = _make_steps(config)
  hp = eot_fmaps_net.make_hparams(**config.method.eot_fmaps.to_dict())
  sched = optim.schedule_hparams(config.schedule, 1, config.train.steps)
  optim_hp = {k: jnp.asarray(v, jnp.float32)
              for k, v in optim.optimizer_hparams(config.optim).items()}
  key = jax.random.PRNGKey(seed)
  params = net.init(key, *(train[0][k] for k in (
      "descriptors", "evals", "evecs", "evecs_trans")))["params"]
  state = TrainState(step=jnp.asarray(0, jnp.int32), params=params,
                     opt_state=tx.init(params), model_state={},
                     method_state={}, rng=jax.random.fold_in(key, 1))
  ckpt = checkpoint.Checkpointer(workdir)
  restored = ckpt.restore_latest(jax.eval_shape(lambda: state))
  writer = logging_utils.MetricWriter(workdir, tensorboard=False)
  rng = np.random.default_rng(seed)
  pairs = rng.integers(0, len(train), size=(config.train.steps, 2))
  start = time.time()
  if restored is not None and int(restored.step) >= config.train.steps:
    state = restored
  else:
    for t in range(config.train.steps):
      i, j = pairs[t]
      j = (i + 1 + j % (len(train) - 1)) % len(train)   # never i == j
      state, metrics = train_step(state, hp, sched, optim_hp, train[i],
                                  train[j])
      if (t + 1) % config.train.log_every_steps == 0:
        writer.write(t + 1, "train", jax.device_get(metrics))
    ckpt.save(state)
  train_time = time.time() - start
  test_pairs = list(itertools.combinations(range(len(test)), 2))[
      :e.max_test_pairs]
  errs = {"plain": [], "refined": []}
  start = time.time()
  for a, b in test_pairs:
    x, y = test[a], test[b]
    for name, params in (("plain", state.params),
                         ("refined", refine(state.params, hp, x, y,
                                            jax.random.PRNGKey(a * 1000 + b))
                          if e.refine_steps > 0 else None)):
      if params is None:
        continue
      p2p = np.asarray(predict(params, x, y))
      errs[name].append(float(geo[a][corr[a], p2p[corr[b]]].mean()))
  result = {f"geo_error_{k}": 100.0 * float(np.mean(v))
            for k, v in errs.items() if v}
  result.update(train_seconds=train_time, eval_seconds=time.time() - start,
                test_pairs=len(test_pairs))
  writer.write(int(state.step), "eval", result)
  writer.close()
  ckpt.close()
  return result


def run_study(config: mlc.ConfigDict, workdir: str, seeds: Sequence[int],
              arms: Sequence[str] = (), command: str = ""
              ) -> study.StudyResult:
  validate(config)
  arm_overrides = study.study_arms(config, arms)
  rows, per_run = {}, {}
  for arm, overrides in arm_overrides.items():
    per_run[arm] = {}
    for seed in seeds:
      cfg = config_lib.apply_overrides(config, overrides + [f"seed={seed}"])
      res = train_and_evaluate(cfg, os.path.join(workdir, arm,
                                                 f"seed_{seed}"))
      per_run[arm][str(seed)] = res
      print(f"{arm} seed {seed}: {res}", flush=True)
    for kind, label in (("plain", arm), ("refined", arm + " + refine")):
      vals = [r[f"geo_error_{kind}"] for r in per_run[arm].values()
              if f"geo_error_{kind}" in r]
      if vals:
        rows[label] = {"geo_error": dict(zip(("mean", "std"),
                                             study._mean_std(vals)))}  # pylint: disable=protected-access
  n = len(seeds)
  lines = [f"Ours: {config.eot.dataset} ({config.data.name}), mean geodesic "
           f"error x100 (Dijkstra, / sqrt(area)), mean +- std over {n} "
           f"seed(s). No paper numbers (see README).", "",
           "| arm | ours: geodesic error (x100) |", "|---|---|"]
  for label, agg in rows.items():
    g = agg["geo_error"]
    lines.append(f"| {label} | {g['mean']:.2f}" + (
        f" +- {g['std']:.2f} |" if n > 1 else " |"))
  table = "\n".join(lines)
  return study.write_results(workdir, table, seeds, rows, config, command,
                             runs=per_run)


def smoke(config: mlc.ConfigDict, workdir: str) -> None:
  config = config_lib.apply_overrides(config, {
      "train.steps": 3, "train.log_every_steps": 1, "eot.num_train_shapes": 2,
      "eot.num_test_shapes": 2, "eot.mesh_level": 2, "eot.num_evecs": 10,
      "eot.wks_count": 8, "eot.width": 8, "eot.out_dim": 8,
      "eot.num_blocks": 1, "eot.num_projections": 8, "eot.refine_steps": 2})
  validate(config)
  res = train_and_evaluate(config, workdir)
  if not all(np.isfinite(res[k]) for k in ("geo_error_plain",
                                           "geo_error_refined")):
    raise AssertionError(f"non-finite smoke result {res}")
