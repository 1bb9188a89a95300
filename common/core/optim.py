"""Optimizers and step-indexed learning-rate schedules with traced numbers.

The optimizer's *structure* (SGD or AdamW, Nesterov or not, which leaves get
weight decay, clipping on or off) is static. Every *number* (peak learning
rate, momentum, weight decay, schedule boundaries and factors) is a traced
`jnp` scalar in the `hparams` pytree passed to the jitted step, so changing
any of them never recompiles. The step computes `lr(step)` from those traced
values and writes the numbers into optax's `inject_hyperparams` state before
each update.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

_OPTIMIZERS = ("sgd", "adamw", "adamw_split", "sgld")
_SGLD_STREAM = 0x5C1D   # the Langevin noise's key stream
_SCHEDULES = ("constant", "piecewise", "cosine")
_WD_MASKS = ("all", "kernels")


# Leaves under this top-level params key are stacked over a leading member
# axis (`common.models.ensemble`): a matrix per member has ndim > 2.
_MEMBER_AXIS_KEY = "members"


def _kernel_mask(params):
  """True for weight matrices/filters (ndim > 1), false for biases and BN;
  an ensemble's stacked leaves (under `members`) count one axis less."""
  def is_kernel(path, p):
    first = getattr(path[0], "key", None) if path else None
    return p.ndim > (2 if first == _MEMBER_AXIS_KEY else 1)
  return jax.tree_util.tree_map_with_path(is_kernel, params)


def split_param_labels(params, plain_names: tuple[str, ...] = ("bias",)):
  """`adamw_split`'s groups: "plain" for leaves named in `plain_names`.

  Args:
    params: a parameter pytree (nested dicts, as flax makes them).
    plain_names: a leaf whose path contains one of these names is "plain"
      (no decay, no clipping), e.g. ("bias", "codebook") for QLAE
      (`config.optim.plain_param_names`).

  Returns:
    The same structure with a label string per leaf.
  """
  def label(path, _):
    names = {getattr(k, "key", getattr(k, "name", None)) for k in path}
    return "plain" if names & set(plain_names) else "decayed"
  return jax.tree_util.tree_map_with_path(label, params)


@functools.lru_cache(maxsize=None)
def make_optimizer(name: str, nesterov: bool = False,
                   weight_decay_mask: str = "all",
                   clip_grad_norm: bool = False,
                   plain_param_names: tuple[str, ...] = ("bias",)
                   ) -> optax.GradientTransformation:
  """Builds the (cached, so `jit` reuses compilations) optimizer structure.

  `sgld`: stochastic gradient Langevin dynamics, `theta <- theta - lr
  (grad + wd theta) + sqrt(2 lr T) xi` (`langevin_noise`), with the traced
  temperature `T` and the run's seed as its noise seed.

  SGD matches `torch.optim.SGD(momentum, nesterov, weight_decay)`: the decay
  is added to the gradient before momentum, no dampening.

  `adamw_split` splits the parameters in two groups (as latent
  quantization, Hsu et al. 2023, kylehkhsu/latent_quantization
  `models/ae.py`): weights get element-wise gradient clipping to the traced
  `clip_value` then AdamW with the traced `weight_decay`; the leaves named in
  `plain_param_names` (`split_param_labels`) get plain Adam (no decay, no
  clipping), both at the same learning rate.

  Args:
    name: one of `sgd`, `adamw`, `adamw_split`, `sgld`.
    nesterov: Nesterov momentum (SGD only).
    weight_decay_mask: `all` (PyTorch's default: every parameter, BN too) or
      `kernels` (only leaves with ndim > 1; ndim > 2 for an ensemble's
      stacked members).
    clip_grad_norm: whether to clip the global gradient norm to the traced
      hyperparameter `clip_grad_norm`.
    plain_param_names: `adamw_split`'s plain-Adam leaves (by name).
  """
  if name not in _OPTIMIZERS:
    raise ValueError(f"unknown optimizer {name!r}; allowed: {_OPTIMIZERS}")
  if weight_decay_mask not in _WD_MASKS:
    raise ValueError(f"unknown weight_decay_mask {weight_decay_mask!r}; "
                     f"allowed: {_WD_MASKS}")
  mask = None if weight_decay_mask == "all" else _kernel_mask

  def clip(max_norm):
    return [optax.clip_by_global_norm(max_norm)] if clip_grad_norm else []

  if name == "sgd":
    def sgd(learning_rate, momentum, weight_decay, max_norm):
      return optax.chain(
          *clip(max_norm),
          optax.add_decayed_weights(weight_decay, mask),
          optax.trace(decay=momentum, nesterov=nesterov),
          optax.scale_by_learning_rate(learning_rate))
    return optax.inject_hyperparams(sgd)(
        learning_rate=0.0, momentum=0.0, weight_decay=0.0, max_norm=1.0)

  if name == "sgld":
    def sgld(learning_rate, temperature, weight_decay, max_norm, noise_seed):
      return optax.chain(
          *clip(max_norm),
          optax.add_decayed_weights(weight_decay, mask),
          optax.scale_by_learning_rate(learning_rate),
          langevin_noise(learning_rate, temperature, noise_seed))
    return optax.inject_hyperparams(sgld)(
        learning_rate=0.0, temperature=0.0, weight_decay=0.0, max_norm=1.0,
        noise_seed=0.0)

  if name == "adamw_split":
    if clip_grad_norm or weight_decay_mask != "all":
      raise ValueError(
          "adamw_split has its own decay groups and element-wise clipping "
          "(optim.clip_value); leave optim.clip_grad_norm=0 and "
          "optim.weight_decay_mask='all'")

    def adamw_split(learning_rate, b1, b2, eps, weight_decay, clip_value):
      return optax.multi_transform(
          {"decayed": optax.chain(
              optax.clip(clip_value),
              optax.adamw(learning_rate, b1=b1, b2=b2, eps=eps,
                          weight_decay=weight_decay)),
           "plain": optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)},
          functools.partial(split_param_labels,
                            plain_names=tuple(plain_param_names)))
    return optax.inject_hyperparams(adamw_split)(
        learning_rate=0.0, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0,
        clip_value=1.0)

  def adamw(learning_rate, b1, b2, eps, weight_decay, max_norm):
    return optax.chain(
        *clip(max_norm),
        optax.adamw(learning_rate, b1=b1, b2=b2, eps=eps,
                    weight_decay=weight_decay, mask=mask))
  return optax.inject_hyperparams(adamw)(
      learning_rate=0.0, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0,
      max_norm=1.0)


class LangevinState(NamedTuple):
  count: jax.Array   # updates drawn so far (int32 scalar)


def langevin_noise(learning_rate, temperature, noise_seed
                   ) -> optax.GradientTransformation:
  """Adds `sqrt(2 lr T) xi`, `xi ~ N(0, I)` per element, to the updates.

  After `scale_by_learning_rate` this makes stochastic gradient Langevin
  dynamics (Welling & Teh 2011): `theta <- theta - lr grad U + sqrt(2 lr T)
  xi` samples `exp(-U / T)` as `lr -> 0`. With `U` a *mean* loss over `N`
  examples (+ weight decay), `T = 1 / N` samples the Bayes posterior
  `p(D | theta) N(0, 1 / (N wd))`. The noise of update `count` is drawn
  from `fold_in(fold_in(key(_SGLD_STREAM), noise_seed), count)`: every
  leaf element gets its own (ensemble members stacked in a leaf are
  independent chains), and a resumed run draws the same noise.
  """
  def init(params):
    del params
    return LangevinState(count=jnp.zeros([], jnp.int32))

  def update(updates, state, params=None):
    del params
    key = jax.random.fold_in(jax.random.fold_in(
        jax.random.PRNGKey(_SGLD_STREAM),
        jnp.asarray(noise_seed).astype(jnp.int32)), state.count)
    leaves, treedef = jax.tree.flatten(updates)
    keys = jax.random.split(key, max(len(leaves), 1))
    scale = jnp.sqrt(2.0 * learning_rate * temperature)
    noisy = [u + (scale * jax.random.normal(k, u.shape, jnp.float32)
                  ).astype(u.dtype) for u, k in zip(leaves, keys)]
    return treedef.unflatten(noisy), LangevinState(count=state.count + 1)

  return optax.GradientTransformation(init, update)


def optimizer_hparams(cfg: Any, seed: int = 0) -> dict[str, float]:
  """The traced numbers of `config.optim` (`seed`: the run's, for SGLD's
  noise; `sgld` reads the opt-in key `optim.temperature`)."""
  hp = {"weight_decay": cfg.weight_decay,
        "max_norm": cfg.clip_grad_norm if cfg.clip_grad_norm > 0 else 1.0}
  if cfg.name == "sgld":
    temperature = cfg.get("temperature", None)
    if temperature is None or not float(temperature) >= 0.0:
      raise ValueError(
          f"optim.name='sgld' needs optim.temperature >= 0 (1 / N samples "
          f"the Bayes posterior of a mean loss over N examples); got "
          f"{temperature!r}")
    hp.update(temperature=temperature, noise_seed=seed)
  elif cfg.name == "sgd":
    hp["momentum"] = cfg.momentum
  elif cfg.name == "adamw_split":
    del hp["max_norm"]
    hp.update(b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, clip_value=cfg.clip_value)
  else:
    hp.update(b1=cfg.b1, b2=cfg.b2, eps=cfg.eps)
  return {k: float(v) for k, v in hp.items()}


def schedule_hparams(cfg: Any, steps_per_epoch: int,
                     total_steps: int) -> dict[str, Any]:
  """The traced numbers of `config.schedule`, converted from epochs to steps.

  Args:
    cfg: `config.schedule` with `name`, `learning_rate` (peak),
      `warmup_epochs`, `boundaries_epochs` (piecewise), `decay_factor`.
    steps_per_epoch: optimizer steps per epoch.
    total_steps: length of the run (cosine decays to 0 over it).
  """
  if cfg.name not in _SCHEDULES:
    raise ValueError(f"unknown schedule {cfg.name!r}; allowed: {_SCHEDULES}")
  boundaries = [round(e * steps_per_epoch) for e in cfg.boundaries_epochs]
  return {
      "learning_rate": float(cfg.learning_rate),
      "warmup_steps": float(round(cfg.warmup_epochs * steps_per_epoch)),
      "total_steps": float(total_steps),
      "boundaries": jnp.asarray(boundaries or [0], jnp.float32),
      "decay_factor": float(cfg.decay_factor if boundaries else 1.0),
  }


def learning_rate_at(name: str, hp: dict[str, jax.Array],
                     step: jax.Array) -> jax.Array:
  """Learning rate of optimizer step `step` (0-indexed) under schedule `name`.

  * `constant`: `lr`.
  * `piecewise`: `lr * decay_factor ** #{boundaries <= step}` (PyTorch
    MultiStepLR applied per epoch when boundaries are whole epochs).
  * `cosine`: `0.5 * lr * (1 + cos(pi * t))`, t = progress after warmup.
  All start with a linear warmup from 0 over `warmup_steps` (0 = none).
  """
  step = step.astype(jnp.float32)
  lr = hp["learning_rate"]
  if name == "piecewise":
    lr = lr * hp["decay_factor"] ** jnp.sum(step >= hp["boundaries"])
  elif name == "cosine":
    span = jnp.maximum(hp["total_steps"] - hp["warmup_steps"], 1.0)
    t = jnp.clip((step - hp["warmup_steps"]) / span, 0.0, 1.0)
    lr = 0.5 * lr * (1.0 + jnp.cos(jnp.pi * t))
  warmup = jnp.minimum((step + 1.0) / jnp.maximum(hp["warmup_steps"], 1.0),
                       1.0)
  return lr * jnp.where(hp["warmup_steps"] > 0, warmup, 1.0)


def _is_injected(node) -> bool:
  # optax's inject_hyperparams state (InjectStatefulHyperparamsState in
  # optax >= 0.2.3): a named tuple with the numbers in `hyperparams`.
  return (isinstance(node, tuple) and hasattr(node, "_fields")
          and "hyperparams" in node._fields and "inner_state" in node._fields)


def set_hyperparams(opt_state, values: dict[str, jax.Array]):
  """Returns `opt_state` with `inject_hyperparams`' numbers replaced.

  The injected state may sit inside wrappers (`masked_optimizer`'s
  `multi_transform`); every `InjectHyperparamsState` found is updated.
  """
  def replace(node):
    if not _is_injected(node):
      return node
    hyper = dict(node.hyperparams)
    for k, v in values.items():
      hyper[k] = jnp.asarray(v, hyper[k].dtype)
    return node._replace(hyperparams=hyper)
  return jax.tree.map(replace, opt_state, is_leaf=_is_injected)


def masked_optimizer(tx: optax.GradientTransformation, mask
                     ) -> optax.GradientTransformation:
  """`tx` on the leaves where `mask` is True, zero updates (and no
  optimizer moments) on the others; `tx` itself when all are True."""
  leaves = jax.tree.leaves(mask)
  if all(leaves):
    return tx
  labels = jax.tree.map(lambda m: "train" if m else "frozen", mask)
  return optax.multi_transform({"train": tx, "frozen": optax.set_to_zero()},
                               labels)
