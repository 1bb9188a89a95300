"""Runner of the Monge-gap study: map fitting with lambda swept, vs ICNN dual.

`regjax run monge_gap` dispatches here (`config.runner`). Each (task, arm,
seed) fits a residual MLP map T(x) = x + MLP(x) with the loss of
`algos.ot.monge_gap.map_loss` (the "ICNN" arm trains ott-jax's
`W2NeuralDual` instead), then scores it on held-out samples with
`algos.ot.monge_gap.map_metrics`.

Harness pieces used: configs (`common.config`), the whole-state orbax
checkpoints (`common.checkpoint` with `common.train_state.TrainState`: a run
resumes from its last checkpoint), JSONL logging (`common.logging_utils`),
stateless randomness (the batch of step t is a function of (seed, t)) and
traced hyperparameters (lambda and the epsilons are jnp scalars passed to
the jitted step), and data parallelism over the `("data",)` mesh of
`common.sharding` (batch split over devices, replicated state, global-batch
loss; see `make_train_step`). ott's ICNN trainer has its own loop: that arm
is neither checkpointed nor sharded (it runs on the default device).
"""

from __future__ import annotations

import functools
import json
import os
import time
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np
import optax
from ott import datasets as ott_datasets
from ott.tools.gaussian_mixture import gaussian

from algos.ot import monge_gap
from common.core import checkpoint as checkpoint_lib
from common import config as config_lib
from common.core import logging_utils
from common.core import sharding as sharding_lib
from common.study import engine as study_lib
from common.core.train_state import TrainState

METRICS = ("fit", "map_cost", "ot_cost", "cost_gap", "map_error")


class ResidualMLP(nn.Module):
  """T(x) = x + MLP(x): starts near the identity, like ott's examples."""
  hidden: Sequence[int]

  @nn.compact
  def __call__(self, x):
    h = x
    for width in self.hidden:
      h = nn.gelu(nn.Dense(width)(h))
    return x + nn.Dense(x.shape[-1], kernel_init=nn.initializers.zeros)(h)


# ------------------------------------------------------------------ tasks
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


def make_task(name: str, dim: int = 2):
  """(sample(rng, n) -> (x [n, d], y [n, d]), true_map or None)."""
  if name == "gaussian":
    src, tgt = _gaussian_pair(dim)
    def sample(rng, n):
      kx, ky = jax.random.split(rng)
      return src.sample(kx, n), tgt.sample(ky, n)
    return sample, lambda x: src.transport(tgt, x)
  source_name, sep, target_name = name.partition("->")
  if not sep:
    raise ValueError(f"unknown task {name!r}; use 'gaussian' or "
                     f"'<ott mixture>-><ott mixture>' with names simple, "
                     f"circle, square_five, square_four")
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


# -------------------------------------------------------------- training
def _hparams(ot: mlc.ConfigDict) -> dict[str, jax.Array]:
  return {k: jnp.asarray(float(ot[k]), jnp.float32)
          for k in monge_gap.HPARAM_NAMES}


def make_train_step(model: nn.Module, tx: optax.GradientTransformation,
                    sample: Callable, batch_size: int, cost_fn=None,
                    mesh: jax.sharding.Mesh | None = None):
  """The jitted, data-parallel step; hparams are traced (a lambda sweep
  never recompiles).

  The batch of step t is drawn on device from `(state.rng, t)` as one global
  array and split over the `("data",)` mesh (`common.sharding`, as the
  harness does); the state is replicated. The fitting loss and the Monge
  gap are those of the global batch (Sinkhorn couples all `batch_size`
  points whatever the device count), so 1 and N devices train the same map
  up to the order of floating-point sums.

  `cost_fn` is the Monge gap's cost (an ott `CostFn`; default squared
  Euclidean), the knob `notebooks/monge_gap_cost.ipynb` forks.
  """
  sharding_lib.check_batch_size(batch_size, "ot.batch_size")
  mesh = mesh or sharding_lib.make_mesh()
  repl = sharding_lib.replicated(mesh)
  split_batch = sharding_lib.batch_sharded(mesh)

  @functools.partial(jax.jit, out_shardings=(repl, repl))
  def step(state: TrainState, hparams: dict[str, jax.Array]):
    rng = jax.random.fold_in(state.rng, state.step)
    x, y = sample(rng, batch_size)
    x = jax.lax.with_sharding_constraint(x, split_batch)
    y = jax.lax.with_sharding_constraint(y, split_batch)
    def loss_fn(params):
      return monge_gap.map_loss(hparams, lambda z: model.apply(params, z),
                                x, y, cost_fn=cost_fn)
    (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(
        state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    return state.replace(step=state.step + 1,
                         params=optax.apply_updates(state.params, updates),
                         opt_state=opt_state), metrics
  return step


def fit_mlp_map(config: mlc.ConfigDict, workdir: str, seed: int,
                sample: Callable) -> Callable:
  """Trains (or resumes) the MLP map of one run, data-parallel; returns
  map_fn."""
  ot = config.ot
  model = ResidualMLP(tuple(ot.hidden))
  tx = optax.adam(ot.learning_rate)
  mesh = sharding_lib.make_mesh()
  rng = jax.random.PRNGKey(seed)
  params = model.init(jax.random.fold_in(rng, 1), jnp.zeros((1, ot.dim)))
  state = TrainState(step=jnp.asarray(0, jnp.int32), params=params,
                     opt_state=tx.init(params), model_state={},
                     method_state={}, rng=jax.random.fold_in(rng, 2))
  state = sharding_lib.replicate(state, mesh)
  repl = sharding_lib.replicated(mesh)
  abstract = jax.tree.map(
      lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=repl), state)
  ckpt = checkpoint_lib.Checkpointer(workdir, max_to_keep=1)
  restored = ckpt.restore_latest(abstract)
  state = restored if restored is not None else state
  writer = logging_utils.MetricWriter(workdir, tensorboard=False)
  step_fn = make_train_step(model, tx, sample, ot.batch_size, mesh=mesh)
  hparams = sharding_lib.replicate(_hparams(ot), mesh)
  while int(state.step) < ot.steps:
    state, metrics = step_fn(state, hparams)
    t = int(state.step)
    if t % ot.log_every == 0 or t == ot.steps:
      metrics = jax.device_get(metrics)
      if not all(np.isfinite(v) for v in metrics.values()):
        raise FloatingPointError(f"non-finite metrics at step {t}: {metrics}")
      writer.write(t, "train", metrics)
    if t % ot.checkpoint_every == 0 or t == ot.steps:
      ckpt.save(state)
  writer.close()
  ckpt.close()
  params = state.params
  return jax.jit(lambda z: model.apply(params, z))


def fit_icnn_map(config: mlc.ConfigDict, seed: int, sample: Callable):
  """ott-jax's W2 neural dual (ICNN potentials, Makkuva et al. 2020)."""
  from ott.neural.methods import neuraldual  # pylint: disable=g-import-not-at-top
  from ott.neural.networks import icnn  # pylint: disable=g-import-not-at-top
  ot = config.ot
  rng = jax.random.PRNGKey(seed)

  def loader(which):
    t = 0
    while True:
      t += 1
      yield sample(jax.random.fold_in(jax.random.fold_in(rng, 7), t),
                   ot.batch_size)[which]
  dim = ot.dim
  if ot.icnn_conjugate == "lbfgs":     # ott's defaults (slow on CPU)
    icnn_kwargs = {}
  elif ot.icnn_conjugate == "lbfgs_short":
    # A cheaper conjugate solve (ott's FenchelConjugateLBFGS class defaults:
    # gtol 1e-3, 10 line-search steps; `icnn_conjugate_max_iter` L-BFGS
    # steps instead of the default solver's 20 at gtol 1e-5).
    from ott.neural.networks.layers import conjugate  # pylint: disable=g-import-not-at-top
    icnn_kwargs = dict(conjugate_solver=conjugate.FenchelConjugateLBFGS(
        max_iter=ot.icnn_conjugate_max_iter))
  elif ot.icnn_conjugate == "none":
    # No per-sample L-BFGS conjugate solves (~5 s/step on 2 shared cores):
    # g is trained with Makkuva et al.'s objective amortisation instead.
    icnn_kwargs = dict(conjugate_solver=None, amortization_loss="objective")
  else:
    raise ValueError(f"ot.icnn_conjugate={ot.icnn_conjugate!r}; allowed: "
                     f"'lbfgs', 'lbfgs_short', 'none'")
  init_f, init_g, dual_kwargs = {}, {}, {}
  if ot.icnn_gaussian_init:
    # ott's ICNN option (Bunne et al. 2022): start each potential at the
    # linear Bures map between Gaussian fits of a sample of the two measures
    # (f: source -> target, g: target -> source). A training-stream sample,
    # never the held-out points. With W2NeuralDual's default positive-weight
    # projection that init is lost (measured: error to the true map 18.8 at
    # init vs 3.7 without it), so convexity is kept by ott's penalty on
    # negative weights instead (pos_weights=False, beta=1).
    x0, y0 = sample(jax.random.fold_in(rng, 11), ot.icnn_init_samples)
    init_f = {"gaussian_map_samples": (x0, y0), "pos_weights": False}
    init_g = {"gaussian_map_samples": (y0, x0), "pos_weights": False}
    dual_kwargs = {"pos_weights": False}
  solver = neuraldual.W2NeuralDual(
      dim, neural_f=icnn.ICNN(dim, dim_hidden=tuple(ot.icnn_hidden), **init_f),
      neural_g=icnn.ICNN(dim, dim_hidden=tuple(ot.icnn_hidden), **init_g),
      optimizer_f=optax.adam(ot.icnn_learning_rate, b1=0.5, b2=0.5),
      optimizer_g=optax.adam(ot.icnn_learning_rate, b1=0.5, b2=0.5),
      num_train_iters=ot.icnn_steps, valid_freq=max(ot.icnn_steps, 1),
      log_freq=max(ot.icnn_steps, 1), rng=jax.random.fold_in(rng, 3),
      **icnn_kwargs, **dual_kwargs)
  potentials = solver(loader(0), loader(1), loader(0), loader(1))
  # The map is the gradient of the trained ICNN f: grad f(x) = x - grad
  # f_dual(x) with ott's f_dual(x) = |x|^2 / 2 - f(x). We do not call
  # `potentials.transport`: in ott-jax 0.6 it pairs that f_dual (the
  # convention of the cost |x - y|^2 / 2) with `costs.SqEuclidean` (|x - y|^2,
  # twist x - grad f_dual(x) / 2), so it returns the midpoint
  # (x + grad f(x)) / 2. Measured on the Gaussian task: that midpoint map's
  # cost is 1/4 of the OT cost and its error to the true map 1/4 of the
  # identity's (README, "ICNN arm").
  grad_f_dual = jax.vmap(jax.grad(potentials.f))
  return jax.jit(lambda z: z - grad_f_dual(z))


def run_one(config: mlc.ConfigDict, workdir: str, seed: int) -> dict:
  """Fits one map and returns its held-out metrics (also in result.json)."""
  result_path = os.path.join(workdir, "result.json")
  if os.path.exists(result_path):
    with open(result_path) as f:
      return json.load(f)
  ot = config.ot
  sample, true_map = make_task(ot.task, ot.dim)
  start = time.time()
  if ot.model == "mlp":
    map_fn = fit_mlp_map(config, workdir, seed, sample)
  elif ot.model == "icnn":
    map_fn = fit_icnn_map(config, seed, sample)
  else:
    raise ValueError(f"ot.model={ot.model!r}; allowed: 'mlp', 'icnn'")
  # Held-out points: a stream no training step draws from.
  x_test, y_test = sample(jax.random.PRNGKey(10_000 + seed), ot.num_test)
  metrics = monge_gap.map_metrics(map_fn, x_test, y_test,
                                  epsilon_eval=ot.epsilon_eval,
                                  true_map=true_map)
  metrics["train_seconds"] = time.time() - start
  os.makedirs(workdir, exist_ok=True)
  with open(result_path, "w") as f:
    json.dump(metrics, f)
  return metrics


# ------------------------------------------------------------ runner API
def validate(config: mlc.ConfigDict) -> None:
  ot = config.ot
  if ot.model not in ("mlp", "icnn"):
    raise ValueError(f"ot.model={ot.model!r}; allowed: 'mlp', 'icnn'")
  for task in ot.tasks:
    make_task(task, ot.dim)
  if ot.lambda_monge_gap < 0:
    raise ValueError(f"ot.lambda_monge_gap={ot.lambda_monge_gap} must be >= 0")
  if ot.steps <= 0 or ot.batch_size <= 1 or ot.num_test <= 1:
    raise ValueError("ot.steps must be > 0, ot.batch_size and ot.num_test > 1")
  if ot.model == "mlp":
    sharding_lib.check_batch_size(ot.batch_size, "ot.batch_size")


def run_study(config: mlc.ConfigDict, workdir: str, seeds: Sequence[int],
              arms: Sequence[str] = (), command: str = ""):
  """Every task x arm x seed; the table and JSON under `workdir`."""
  validate(config)
  arm_overrides = study_lib.study_arms(config, arms)
  summary, runs = {}, {}
  for task in config.ot.tasks:
    for arm, overrides in arm_overrides.items():
      row = f"{task} / {arm}"
      finals = []
      for seed in seeds:
        cfg = config_lib.apply_overrides(
            config, overrides + [f"seed={seed}", f"ot.task={task}"])
        wd = os.path.join(workdir, task.replace(">", ""), arm, f"seed_{seed}")
        print(f"[monge_gap] {row} seed {seed}", flush=True)
        finals.append(run_one(cfg, wd, seed))
      runs[row] = finals
      summary[row] = {
          m: dict(zip(("mean", "std"),
                      study_lib._mean_std([f[m] for f in finals])))  # pylint: disable=protected-access
          for m in METRICS + ("train_seconds",) if m in finals[0]}
  lines = [f"Held-out metrics ({config.ot.num_test} points), mean +- std "
           f"over seeds {list(seeds)}. No paper numbers (the paper reports "
           f"other benchmarks).", "",
           "| task / arm | fit S_eps(T#mu, nu) | map cost | exact OT cost "
           "| cost gap | error to true map | train s |",
           "|---|---|---|---|---|---|---|"]
  for row, agg in summary.items():
    cells = []
    for m in METRICS + ("train_seconds",):
      if m not in agg:
        cells.append("-")
        continue
      std = agg[m]["std"]
      cells.append(f"{agg[m]['mean']:.4f}" +
                   (f" +- {std:.4f}" if std is not None else ""))
    lines.append(f"| {row} | " + " | ".join(cells) + " |")
  table = "\n".join(lines)
  return study_lib.write_results(workdir, table, seeds, summary, config,
                                 command, runs=runs)


def smoke(config: mlc.ConfigDict, workdir: str) -> None:
  """Two steps of each arm kind (MLP map, ICNN dual) on the first task.

  Tiny networks (hidden (8,), ICNN (8, 8)), batch 16 and 32 held-out
  points; the conjugate solver and everything else are the config's. The
  sizes do not depend on the variant, so the smoke of a second variant
  reuses the first one's compilations from the persistent cache.
  """
  validate(config)
  for model in ("mlp", "icnn"):
    cfg = config_lib.apply_overrides(config, {
        "ot.steps": 2, "ot.icnn_steps": 2, "ot.model": model,
        "ot.hidden": (8,), "ot.icnn_hidden": (8, 8), "ot.num_test": 32,
        "ot.batch_size": 16, "ot.task": config.ot.tasks[0]})
    metrics = run_one(cfg, os.path.join(workdir, model), 0)
    bad = {k: v for k, v in metrics.items() if not np.isfinite(v)}
    if bad:
      raise AssertionError(f"smoke run {model}: non-finite metrics {bad}")
