"""Policy-gradient-driven noise masks: a Beta policy regularises pretraining.

Paper: "Policy Gradient-Driven Noise Mask", Mehmet Can Yavuz, Yang Yang,
2024, arXiv:2406.14568. Official code:
https://github.com/ogrenenmakine/Policy-Gradient-Driven-Noise-Mask (PyTorch;
`_policy_gradient/` pretrains with masks, `_normal/` fine-tunes without).

A light policy network maps each (normalised) image to per-cell log
concentrations of a Beta distribution on a `grid x grid` mask
(`_policy_gradient/create_model.py`, `MaskGenerator`): a feature extractor,
then two heads `Linear-BN-ReLU-Linear-BN-ReLU-Linear(grid^2)` (BatchNorm on
batch statistics), mixed with running "base" logits,

  log_a = d * base_a + (1 - d) * head_a(x)      (d = `decay`, 0.9)
  base_a <- b * base_a + (1 - b) * mean_batch head_a(x)  (b = `base_decay`,
            0.99; detached; initialised U[0, 1) as `torch.rand`)

and the same for `log_b`. A mask `m ~ Beta(exp log_a, exp log_b)` is drawn
(no reparameterisation), upsampled to the image by nearest neighbour, blurred
by torchvision's Gaussian blur (`kernel`, `sigma`, reflect padding) and
multiplies the image: the classifier sees `x * blur(up(m))`.
(`_policy_gradient/train_one_epoch.py`.)

The objective, exactly as the official training step writes it (there is no
separate reward; CE is the mean cross-entropy of the masked batch):

  L = mean_i [ log sum_j p(m_ij) ] * CE            (p: the Beta density)

Both networks take their step on this one loss: the classifier's gradient is
`mean_i logsumexp_j log p(m_ij)` times the cross-entropy gradient (the
weight is not detached), the policy's is CE times the score of the masks,
i.e. REINFORCE with reward `-CE` and no baseline (with the cell
log-densities pooled by logsumexp rather than summed). The policy has its
own SGD (official: lr / 10, same momentum and weight decay, cosine to 0),
kept with its state in `method_state` and stepped through
`train_step.optimizer_step` (the second-player pattern); the classifier's
gradient goes back to the harness. At inference the policy is dropped
(`predict` is the plain forward); fine-tuning without masks is the
`finetune` protocol's second run with `cross_entropy`.

Config (`config.method.pg_noise_mask`): traced `policy_lr`,
`policy_momentum`, `policy_weight_decay`, `decay`, `base_decay`; static
`masks` ("policy"; "none" = plain cross-entropy, the conventional arm, one
forward, exactly `cross_entropy`), `grid`, `kernel`, `sigma`, `backbone`
("cnn" or "flatten"), `width` (the heads' and features' width),
`detach_weight` (False = official; True stops the classifier's gradient
through the log-density weight, so it trains on plain CE of masked images).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from algos.baselines import cross_entropy
from common import config as config_lib
from common.core import method as method_lib
from common.core import optim
from common.core import train_step as train_step_lib

MASKS = ("policy", "none")
BACKBONES = ("cnn", "flatten")
DEFAULTS = dict(masks="policy", grid=16, kernel=5, sigma=1.0,
                backbone="cnn", width=64, detach_weight=False,
                policy_lr=0.01, policy_momentum=0.9,
                policy_weight_decay=1e-4, decay=0.9, base_decay=0.99)
RULES = {"policy_lr": config_lib.at_least(0.0),
         "policy_momentum": config_lib.between(0.0, 1.0),
         "policy_weight_decay": config_lib.at_least(0.0),
         "decay": config_lib.between(0.0, 1.0),
         "base_decay": config_lib.between(0.0, 1.0),
         "grid": config_lib.at_least(1, integer=True),
         "kernel": config_lib.at_least(1, integer=True),
         "sigma": config_lib.greater_than(0.0),
         "width": config_lib.at_least(1, integer=True)}
_STATIC = ("masks", "grid", "kernel", "sigma", "backbone", "width",
           "detach_weight")
_POLICY_TX = optim.make_optimizer("sgd")
_EPS = 1e-6   # samples are clipped into [eps, 1 - eps] before log p


class _TrainBatchNorm(nn.Module):
  """BatchNorm1d in train mode: batch mean / biased variance, eps 1e-5."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    scale = self.param("scale", nn.initializers.ones, (x.shape[-1],))
    bias = self.param("bias", nn.initializers.zeros, (x.shape[-1],))
    mean = jnp.mean(x, 0)
    var = jnp.mean(jnp.square(x - mean), 0)
    return (x - mean) * jax.lax.rsqrt(var + 1e-5) * scale + bias


class MaskPolicy(nn.Module):
  """`x [b, h, w, c] -> (head_a, head_b)`, each `[b, grid^2]`."""
  grid: int
  width: int = 64
  backbone: str = "cnn"

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    if self.backbone == "flatten":
      f = x.reshape(x.shape[0], -1)
    else:   # three stride-2 3x3 convs + global mean pool
      f = x
      for w in (16, 32, self.width):
        f = nn.relu(nn.Conv(w, (3, 3), strides=(2, 2))(f))
      f = jnp.mean(f, axis=(1, 2))
    d = f.shape[-1]

    def head(name):
      h = f
      for i in range(2):
        h = nn.Dense(d, name=f"{name}_{i}")(h)
        h = nn.relu(_TrainBatchNorm(name=f"{name}_bn{i}")(h))
      return nn.Dense(self.grid * self.grid, name=f"{name}_out")(h)

    return head("alpha"), head("beta")


def nearest_indices(size_in: int, size_out: int) -> np.ndarray:
  """PyTorch `interpolate(mode='nearest')` source indices `[size_out]`."""
  scale = np.float32(size_in) / np.float32(size_out)
  idx = np.floor(np.arange(size_out, dtype=np.float32) * scale)
  return np.minimum(idx.astype(np.int32), size_in - 1)


def gaussian_kernel1d(kernel: int, sigma: float) -> np.ndarray:
  """torchvision's normalised 1-D Gaussian `[kernel]`."""
  half = (kernel - 1) * 0.5
  x = np.linspace(-half, half, kernel, dtype=np.float32)
  pdf = np.exp(-0.5 * np.square(x / np.float32(sigma)))
  return (pdf / pdf.sum()).astype(np.float32)


def gaussian_blur(x: jax.Array, kernel: int, sigma: float) -> jax.Array:
  """torchvision `gaussian_blur` of `x [b, h, w, c]` (reflect padding)."""
  if kernel % 2 == 0:
    raise ValueError(f"pg_noise_mask: kernel={kernel} must be odd")
  k, p = gaussian_kernel1d(kernel, sigma), kernel // 2
  if p >= min(x.shape[1], x.shape[2]):
    raise ValueError(f"pg_noise_mask: kernel={kernel} needs an image larger "
                     f"than {p} pixels, got {x.shape[1:3]}")
  x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
  h, w = x.shape[1] - 2 * p, x.shape[2] - 2 * p
  x = sum(float(k[i]) * x[:, i:i + h] for i in range(kernel))
  return sum(float(k[i]) * x[:, :, i:i + w] for i in range(kernel))


def mask_image(mask: jax.Array, grid: int, height: int, width: int,
               kernel: int, sigma: float) -> jax.Array:
  """`[b, grid^2]` cell masks -> `[b, height, width, 1]` (up, then blur)."""
  m = mask.reshape(mask.shape[0], grid, grid, 1)
  m = m[:, nearest_indices(grid, height)][:, :, nearest_indices(grid, width)]
  return gaussian_blur(m, kernel, sigma)


def beta_log_prob(x: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
  """Elementwise `log Beta(x; a, b)` (torch.distributions.Beta.log_prob)."""
  lbeta = jax.scipy.special.gammaln(a) + jax.scipy.special.gammaln(b) - (
      jax.scipy.special.gammaln(a + b))
  return (a - 1.0) * jnp.log(x) + (b - 1.0) * jnp.log1p(-x) - lbeta


def policy_logits(policy: MaskPolicy, policy_params: Any, x: jax.Array,
                  base_a: jax.Array, base_b: jax.Array, decay: jax.Array,
                  base_decay: jax.Array):
  """`(log_a, log_b [b, G^2], new base_a, new base_b [1, G^2])`, as the
  official `MaskGenerator.forward`."""
  ha, hb = policy.apply({"params": policy_params}, x)
  log_a = decay * base_a + (1.0 - decay) * ha
  log_b = decay * base_b + (1.0 - decay) * hb
  mix = lambda base, h: base_decay * base + (1.0 - base_decay) * jnp.mean(
      jax.lax.stop_gradient(h), 0, keepdims=True)
  return log_a, log_b, mix(base_a, ha), mix(base_b, hb)


def pg_loss(log_a: jax.Array, log_b: jax.Array, mask: jax.Array,
            ce: jax.Array, valid: jax.Array | None = None,
            detach_weight: bool = False) -> tuple[jax.Array, jax.Array]:
  """`(mean_i logsumexp_j log p(m_ij) * ce, that weight)` (official loss).

  Args:
    log_a, log_b: `[b, G^2]` log concentrations. mask: `[b, G^2]` samples.
    ce: scalar mean cross-entropy of the masked batch.
    valid: `[b]` bool rows to average over (None = all).
    detach_weight: the classifier's gradient is that of plain `ce` (no
      weight); the policy's is unchanged (`ce * d weight`). The value is
      then `ce + weight * ce`.
  """
  logp = beta_log_prob(mask, jnp.exp(log_a), jnp.exp(log_b))
  lse = jax.nn.logsumexp(logp, axis=1)
  weight = jnp.mean(lse) if valid is None else method_lib.masked_mean(
      lse, valid)
  if detach_weight:   # classifier: plain CE; policy: CE * score
    return ce + jax.lax.stop_gradient(ce) * weight, weight
  return weight * ce, weight


def _ce(logits, batch):
  targets = jax.nn.one_hot(batch["label"], logits.shape[-1])
  per_example = cross_entropy.soft_cross_entropy(logits, targets)
  return method_lib.masked_mean(per_example, batch["mask"])


def _policy_hparams(hp, total_steps: int) -> dict[str, Any]:
  zero = jnp.zeros((), jnp.float32)
  return {"schedule": {"learning_rate": hp["policy_lr"], "warmup_steps": zero,
                       "total_steps": jnp.float32(total_steps),
                       "boundaries": jnp.zeros((1,), jnp.float32),
                       "decay_factor": jnp.ones((), jnp.float32)},
          "optim": {"momentum": hp["policy_momentum"],
                    "weight_decay": hp["policy_weight_decay"],
                    "max_norm": jnp.ones((), jnp.float32)}}


@method_lib.register_method("pg_noise_mask")
def make(method_config: dict[str, Any]) -> method_lib.Method:
  """The method (see the module docstring)."""
  cfg = {**DEFAULTS, **method_config}
  masks, backbone = cfg["masks"], cfg["backbone"]
  if masks not in MASKS:
    raise config_lib.ConfigError(
        f"method.pg_noise_mask.masks={masks!r}; allowed: {MASKS}")
  if backbone not in BACKBONES:
    raise config_lib.ConfigError(
        f"method.pg_noise_mask.backbone={backbone!r}; allowed: {BACKBONES}")
  grid, kernel, sigma = int(cfg["grid"]), int(cfg["kernel"]), float(
      cfg["sigma"])
  detach = bool(cfg["detach_weight"])
  policy = MaskPolicy(grid=grid, width=int(cfg["width"]), backbone=backbone)

  def apply(hp, ctx, params, method_state, batch, rng):
    del hp, rng
    outputs, model_state = ctx.forward(params)
    ce = _ce(outputs["logits"], batch)
    return ce, method_lib.StepAux({"ce": ce}, model_state, method_state)

  def value_and_grad(hp, ctx, params, method_state, batch, rng, loss_fn):
    if masks == "none":
      return ctx.value_and_grad(loss_fn, params)
    x = ctx.inputs
    state = method_state

    def joint(p, pol):
      log_a, log_b, base_a, base_b = policy_logits(
          policy, pol, x, state["base_a"], state["base_b"], hp["decay"],
          hp["base_decay"])
      conc_a = jax.lax.stop_gradient(jnp.exp(log_a))
      conc_b = jax.lax.stop_gradient(jnp.exp(log_b))
      mask = jnp.clip(jax.random.beta(rng, conc_a, conc_b), _EPS, 1.0 - _EPS)
      m = mask_image(mask, grid, x.shape[1], x.shape[2], kernel, sigma)
      outputs, model_state = ctx.forward(ctx.stop_frozen(p), x * m)
      ce = _ce(outputs["logits"], batch)
      loss, weight = pg_loss(log_a, log_b, mask, ce, batch["mask"], detach)
      metrics = {"ce": ce, "log_density_weight": weight,
                 "mask_mean": jnp.mean(mask),
                 "mask_std": jnp.mean(jnp.std(mask, axis=1))}
      return loss, (metrics, model_state, base_a, base_b)

    (loss, (metrics, model_state, base_a, base_b)), (g, g_pol) = (
        jax.value_and_grad(joint, argnums=(0, 1), has_aux=True)(
            params, state["policy"]))
    pol, pol_opt, _ = train_step_lib.optimizer_step(
        _POLICY_TX, "cosine", _policy_hparams(hp, ctx.run.total_steps),
        ctx.step, state["policy"], state["policy_opt"], g_pol)
    new_state = {"policy": pol, "policy_opt": pol_opt, "base_a": base_a,
                 "base_b": base_b}
    return (loss, method_lib.StepAux(metrics, model_state, new_state)), g

  def hparams(method_config, run):
    del run
    c = {**DEFAULTS, **method_config}
    return {k: float(v) for k, v in c.items() if k not in _STATIC}

  return method_lib.Method(name="pg_noise_mask", hparams=hparams,
                           init=_make_init(masks, policy, grid),
                           apply=apply, value_and_grad=value_and_grad,
                           rules=RULES)


def _make_init(masks: str, policy: MaskPolicy, grid: int):
  """`init(rng, ctx)`: the policy (built on the run's example input), its
  SGD state and the U[0, 1) base logits `[1, G^2]` (`torch.rand`)."""

  def init(rng, ctx):
    if masks == "none":
      return {}
    if ctx.example_input is None:
      raise config_lib.ConfigError(
          "method pg_noise_mask needs InitContext.example_input (the model's "
          "input shape) to build its policy")
    x = jnp.zeros((2,) + tuple(ctx.example_input.shape[1:]), jnp.float32)
    k_p, k_a, k_b = jax.random.split(rng, 3)
    params = policy.init(k_p, x)["params"]
    cells = (1, grid * grid)
    return {"policy": params, "policy_opt": _POLICY_TX.init(params),
            "base_a": jax.random.uniform(k_a, cells),
            "base_b": jax.random.uniform(k_b, cells)}

  return init
