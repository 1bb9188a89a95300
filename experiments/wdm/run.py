"""Runner of the WDM study (`config.runner`): for each number of digits n,
train the encoder with each objective, then linear-probe all n classes.

Uses the harness's pieces: the config and overrides (arms x seeds),
`common.optim`'s AdamW with traced numbers and its schedules, and the
`MetricWriter` (metrics.jsonl per run). The protocol (self-supervised pairs,
then a frozen linear probe, swept over n) is not the classification loop,
hence a runner. Training is a jitted `lax.scan` over steps; batches are drawn
on device from `(seed, step)` alone and split over the `("data",)` mesh of
`common.sharding` (data-parallel with global-batch semantics, see
`train_encoder`).
"""

from __future__ import annotations

import functools
import os
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import ml_collections as mlc
import numpy as np
import optax
from sklearn import datasets as sk_datasets
from sklearn import linear_model

from algos.ot import wdm
from common import config as config_lib
from common.core import logging_utils
from common.core import optim
from common.core import sharding as sharding_lib
from common.study import engine as study


def validate(config: mlc.ConfigDict) -> None:
  w = config.wdm
  if not w.num_digits or min(w.num_digits) < 1:
    raise ValueError(f"wdm.num_digits must be positive ints; got "
                     f"{w.num_digits}")
  if not 0 < w.train_pool < 1797:
    raise ValueError("wdm.train_pool must be in (0, 1797) (sklearn digits)")
  if config.method.wdm.gp_weight < 0:
    raise ValueError("method.wdm.gp_weight must be >= 0 (0 = CPC)")
  if config.train.steps <= 0 or config.train.batch_size < 2:
    raise ValueError("need train.steps > 0 and train.batch_size >= 2")
  sharding_lib.check_batch_size(config.train.batch_size, "train.batch_size")


def _pools(train_pool: int):
  """(train, test) pools: images `[m, 64]` in [0, 1], class index tables."""
  digits = sk_datasets.load_digits()
  images = (digits.images.reshape(-1, 64) / 16.0).astype(np.float32)
  pools = []
  for sl in (slice(0, train_pool), slice(train_pool, None)):
    imgs, labels = images[sl], digits.target[sl]
    members = [np.flatnonzero(labels == c) for c in range(10)]
    table = np.zeros((10, max(len(m) for m in members)), np.int32)
    for c, m in enumerate(members):
      table[c] = np.resize(m, table.shape[1])
    pools.append({"images": jnp.asarray(imgs), "table": jnp.asarray(table),
                  "counts": jnp.asarray([len(m) for m in members])})
  return pools


def sample_views(pool, rng: jax.Array, batch: int, n: int, noise: float):
  """Two views `[b, 64 n]` of `n` random classes, and the classes `[b, n]`.

  Each view draws its own image of every class (so only the classes are
  shared) and its own Gaussian pixel noise.
  """
  k_cls, k_x, k_y, k_nx, k_ny = jax.random.split(rng, 5)
  classes = jax.random.randint(k_cls, (batch, n), 0, 10)

  def view(k_img, k_noise):
    u = jax.random.uniform(k_img, (batch, n))
    idx = pool["table"][classes, (u * pool["counts"][classes]).astype(
        jnp.int32)]
    # Side by side: [b, n, 8, 8] -> [b, 8, 8 n].
    img = pool["images"][idx].reshape(batch, n, 8, 8).transpose(0, 2, 1, 3)
    img = img.reshape(batch, 64 * n)
    return img + noise * jax.random.normal(k_noise, img.shape)

  return view(k_x, k_nx), view(k_y, k_ny), classes


def train_encoder(config: mlc.ConfigDict, n: int,
                  writer: logging_utils.MetricWriter | None = None):
  """Trains the encoder on n-digit views, data-parallel over every device.

  The batch of step t is drawn on device from `(seed, t)` as one global
  array and split over the `("data",)` mesh (`common.sharding`, as the
  harness does); parameters and optimizer state are replicated. The loss is
  the one of the global batch (the contrastive scores span all `b` pairs
  whatever the device count), so 1 and N devices train the same model up to
  the order of floating-point sums.

  Args:
    config: a wdm config (`config.train.batch_size` must be a multiple of
      the device count).
    n: number of digits side by side.
    writer: where the per-chunk train means go (None: not written).

  Returns:
    `(net, params, metrics, steps)`: the encoder module, its trained
    parameters, the last chunk's mean train metrics and the step count.
  """
  w, seed = config.wdm, config.seed
  batch = config.train.batch_size
  sharding_lib.check_batch_size(batch, "train.batch_size")
  mesh = sharding_lib.make_mesh()
  repl = sharding_lib.replicated(mesh)
  split_batch = sharding_lib.batch_sharded(mesh)
  train_pool, _ = _pools(w.train_pool)
  m = config.method.wdm
  net = wdm.Encoder(tuple(w.hidden), w.out_dim, bool(m.spectral_norm))
  key = jax.random.PRNGKey(seed)
  params = net.init(key, jnp.zeros((1, 64 * n)))["params"]
  tx = optim.make_optimizer("adamw")
  opt_state = tx.init(params)
  sched = optim.schedule_hparams(config.schedule, 1, config.train.steps)
  hp = {"gp_weight": jnp.float32(m.gp_weight),
        "optim": {k: jnp.float32(v) for k, v in
                  optim.optimizer_hparams(config.optim).items()}}

  def one_step(carry, step):
    params, opt_state = carry
    rng = jax.random.fold_in(key, step)
    k_data, k_gp = jax.random.split(rng)
    x, y, _ = sample_views(train_pool, k_data, batch, n, w.view_noise)
    # Each device computes on its block of the global batch.
    x = jax.lax.with_sharding_constraint(x, split_batch)
    y = jax.lax.with_sharding_constraint(y, split_batch)
    loss_fn = lambda p: wdm.wdm_loss(
        lambda v: net.apply({"params": p}, v), x, y, k_gp, hp["gp_weight"],
        bool(m.one_sided))
    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        params)
    lr = optim.learning_rate_at(config.schedule.name, sched, step)
    opt_state = optim.set_hyperparams(opt_state,
                                      {"learning_rate": lr, **hp["optim"]})
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), {
        "loss": loss, **metrics}

  @functools.partial(jax.jit, static_argnums=2, out_shardings=repl)
  def run_chunk(carry, start, length):
    carry, metrics = jax.lax.scan(one_step, carry, start + jnp.arange(length))
    return carry, jax.tree.map(jnp.mean, metrics)

  carry, done = sharding_lib.replicate((params, opt_state), mesh), 0
  metrics = {}
  while done < config.train.steps:
    length = min(config.train.log_every_steps, config.train.steps - done)
    carry, metrics = run_chunk(carry, jnp.int32(done), length)
    done += length
    metrics = jax.device_get(metrics)
    if writer is not None:
      writer.write(done, "train", metrics)
  return net, carry[0], metrics, done


def train_and_probe(config: mlc.ConfigDict, n: int, workdir: str
                    ) -> dict[str, float]:
  """Trains one encoder on n-digit views; linear-probes its codes.

  A run whose `metrics.jsonl` already holds its eval record is finished and
  is not retrained (an interrupted study resumes with the same command).
  """
  done_path = os.path.join(workdir, "metrics.jsonl")
  if os.path.exists(done_path):
    evals = [r for r in logging_utils.read_jsonl(done_path)
             if r["split"] == "eval"]
    if evals:
      return {k: v for k, v in evals[-1].items()
              if k not in ("step", "split")}
  w, seed = config.wdm, config.seed
  train_pool, test_pool = _pools(w.train_pool)
  key = jax.random.PRNGKey(seed)
  writer = logging_utils.MetricWriter(workdir, tensorboard=False)
  t0 = time.time()
  net, params, metrics, done = train_encoder(config, n, writer)
  train_seconds = time.time() - t0

  encode = jax.jit(lambda v: net.apply({"params": params}, v))
  feats = {}
  for split, pool, size, k in (("train", train_pool, w.probe_train, 1),
                               ("test", test_pool, w.probe_test, 2)):
    x, _, classes = sample_views(pool, jax.random.fold_in(key, 10 ** 6 + k),
                                 size, n, w.view_noise)
    feats[split] = (np.asarray(encode(x)), np.asarray(classes))
  mu = feats["train"][0].mean(0)
  sd = feats["train"][0].std(0) + 1e-6
  correct = []
  for pos in range(n):
    clf = linear_model.LogisticRegression(max_iter=2000, C=1.0)
    clf.fit((feats["train"][0] - mu) / sd, feats["train"][1][:, pos])
    correct.append(clf.predict((feats["test"][0] - mu) / sd)
                   == feats["test"][1][:, pos])
  correct = np.stack(correct, 1)
  result = {"probe_acc": 100.0 * float(correct.mean()),
            "probe_all_acc": 100.0 * float(correct.all(1).mean()),
            "final_mi_lower_bound": float(metrics["mi_lower_bound"]),
            "final_contrastive_acc": float(metrics["contrastive_acc"]),
            "train_seconds": train_seconds}
  writer.write(done, "eval", result)
  writer.close()
  return result


def _plot(summary, ns, path):
  fig, ax = plt.subplots(figsize=(4.5, 3.4))
  for arm, per_n in summary.items():
    mean = [per_n[str(n)]["probe_acc"]["mean"] for n in ns]
    std = [per_n[str(n)]["probe_acc"]["std"] or 0.0 for n in ns]
    ax.errorbar(ns, mean, yerr=std, marker="o", capsize=3, label=arm)
  ax.set_xlabel("number of digits n (MI = n log 10)")
  ax.set_ylabel("linear-probe accuracy (%)")
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def run_study(config: mlc.ConfigDict, workdir: str, seeds: Sequence[int],
              arms: Sequence[str] = (), command: str = ""
              ) -> study.StudyResult:
  validate(config)
  ns = list(config.wdm.num_digits)
  summary, runs = {}, {}
  for arm, overrides in study.study_arms(config, arms).items():
    summary[arm], runs[arm] = {}, {}
    for n in ns:
      res = []
      for seed in seeds:
        cfg = config_lib.apply_overrides(config, overrides + [f"seed={seed}"])
        r = train_and_probe(cfg, n, os.path.join(workdir, arm.replace(
            " ", "_"), f"n_{n}", f"seed_{seed}"))
        print(f"{arm} n={n} seed {seed}: {r}", flush=True)
        res.append(r)
        runs[arm][f"n{n}_seed{seed}"] = r
      summary[arm][str(n)] = {
          k: dict(zip(("mean", "std"), study._mean_std([r[k] for r in res])))  # pylint: disable=protected-access
          for k in ("probe_acc", "probe_all_acc", "final_mi_lower_bound")}
  fmt = lambda a: f"{a['mean']:.1f}" + (
      f" +- {a['std']:.1f}" if a["std"] is not None else "")
  lines = [f"Ours: multi-digits (sklearn digits, two views sharing the n "
           f"classes), batch {config.train.batch_size}, "
           f"{config.train.steps} steps, mean +- std over {len(seeds)} "
           f"seed(s). Linear-probe accuracy (%) per digit position / all n "
           f"correct. No paper numbers (different task).", "",
           "| arm | " + " | ".join(f"n={n}: per digit | n={n}: all"
                                   for n in ns) + " |",
           "|---|" + "---|---|" * len(ns)]
  for arm, per_n in summary.items():
    lines.append(f"| {arm} | " + " | ".join(
        f"{fmt(per_n[str(n)]['probe_acc'])} | "
        f"{fmt(per_n[str(n)]['probe_all_acc'])}" for n in ns) + " |")
  table = "\n".join(lines)
  result = study.write_results(
      workdir, table, seeds, summary, config, command,
      extra_paths={"plot": os.path.join(workdir, "probe_vs_n.png")},
      runs=runs)
  _plot(summary, ns, result.paths["plot"])
  return result


def smoke(config: mlc.ConfigDict, workdir: str) -> None:
  config = config_lib.apply_overrides(config, {
      "train.steps": 4, "train.log_every_steps": 2, "wdm.hidden": (16,),
      "wdm.out_dim": 8, "wdm.probe_train": 200, "wdm.probe_test": 100})
  validate(config)
  res = train_and_probe(config, 2, workdir)
  if not np.isfinite(res["probe_acc"]):
    raise AssertionError(f"non-finite smoke result {res}")
