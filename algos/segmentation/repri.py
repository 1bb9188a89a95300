"""RePRI: transductive few-shot segmentation on frozen features.

Paper: Boudiaf, Kervadec, Masud, Piantanida, Ben Ayed, Dolz, "Few-Shot
Segmentation Without Meta-Learning: A Good Transductive Inference Is All You
Need?", CVPR 2021, arXiv:2012.06166. Official code:
mboudiaf/RePRI-for-Few-Shot-Segmentation (`src/classifier.py`: the
inference; `src/test.py`: features, normalisation, upsampling;
`config_files/pascal.yaml`, `scripts/test.sh`, `scripts/oracle.sh`: the
numbers).

One episode: K support images with binary masks, one query, features of a
frozen backbone at resolution `[h, w, C]` (L2-normalised over channels,
`norm_feat`). The classifier is a foreground prototype `w [C]` and a bias
`b`: `p_fg(x) = sigmoid(T cos(f(x), w) - b)`, initialised at the mean support
foreground feature and at the mean query logit. Then `n_iter - 1` plain SGD
steps (the official loop is `range(1, adapt_iter)`) on

  L = l_ce CE(support) + l_kl KL(marginal_q || pi) + l_ent H(query),

CE and H are means over valid pixels (label != 255) of the downsampled
masks, the marginal is the mean query posterior `[bg, fg]`, and `pi` is the
query's predicted proportion at initialisation, refreshed once after step
`t_pi - 1` (`FB_param_update: [10]`: `(iteration + 1) in [10]`), when also
`l_kl += 1` (official code, not in the paper's equations). `l_kl = l_ent =
1/K` ('auto'). The oracle variant fixes `pi` to the query's true proportion
and uses `scripts/oracle.sh`'s 300 iterations and weights (1, 1, 0.1).
Masks are downsampled to the feature grid with PyTorch's `nearest`, logits
are upsampled to the image with bilinear `align_corners=True`, a pixel is
foreground when `p_fg > 1 - p_fg`.

The inner SGD runs under `lax.fori_loop` through the harness's
`optimizer_step` (optax SGD, traced learning rate); everything vmaps over
episodes (`jax.vmap(episode_logits, ...)`). The prototype baseline is the
inductive nearest-prototype rule: cosine to the support foreground and
background prototypes.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from common.core import optim
from common.core import train_step
from common.eval import fewshot_segmentation as fewshot

IGNORE = 255
_EPS = 1e-10          # the official code's epsilon everywhere
_SGD = optim.make_optimizer("sgd")


class RePRIConfig(NamedTuple):
  """The settings of one RePRI inference.

  `n_iter` and `oracle` are static (`static()`); the rest are traced
  (`hparams()`), so sweeping them never recompiles. `kl_weight` /
  `ent_weight` <= 0 mean 'auto' (1 / K), as the official
  `weights: [1.0, 'auto', 'auto']`.
  """
  temperature: float = 20.0
  lr: float = 0.025
  n_iter: int = 50          # adapt_iter: n_iter - 1 SGD steps
  t_pi: int = 10            # FB_param_update (0: never refreshed)
  ce_weight: float = 1.0
  kl_weight: float = -1.0   # 'auto'
  ent_weight: float = -1.0  # 'auto'
  kl_boost: float = 1.0     # added to l_kl at the refresh (official)
  oracle: bool = False

  def hparams(self) -> dict[str, jax.Array]:
    """The traced numbers, float32 scalars."""
    return {k: jnp.asarray(v, jnp.float32) for k, v in self._asdict().items()
            if k not in ("n_iter", "oracle")}

  def static(self) -> dict[str, Any]:
    return {"n_iter": int(self.n_iter), "oracle": bool(self.oracle)}


def oracle_config() -> RePRIConfig:
  """`scripts/oracle.sh`: true query proportion, 300 iterations, (1, 1, .1)."""
  return RePRIConfig(n_iter=300, t_pi=0, kl_weight=1.0, ent_weight=0.1,
                     oracle=True)


# ------------------------------------------------------------ resampling
def normalize_features(feat: jax.Array) -> jax.Array:
  """`F.normalize(feat, dim=channel)`: `feat [..., C]` / max(||.||, 1e-12)."""
  norm = jnp.linalg.norm(feat, axis=-1, keepdims=True)
  return feat / jnp.maximum(norm, 1e-12)


def _nearest_index(n_in: int, n_out: int) -> jax.Array:
  # PyTorch `nearest`: src = min(floor(dst * in / out), in - 1).
  scale = jnp.float32(n_in) / jnp.float32(n_out)
  idx = jnp.floor(jnp.arange(n_out, dtype=jnp.float32) * scale)
  return jnp.minimum(idx.astype(jnp.int32), n_in - 1)


def downsample_nearest(mask: jax.Array, size: tuple[int, int]) -> jax.Array:
  """`mask [..., H, W]` -> `[..., h, w]` as `F.interpolate(mode='nearest')`."""
  rows = _nearest_index(mask.shape[-2], size[0])
  cols = _nearest_index(mask.shape[-1], size[1])
  return mask[..., rows, :][..., cols]


def _linear_weights(n_in: int, n_out: int) -> jax.Array:
  """`[n_out, n_in]` interpolation matrix, `align_corners=True`."""
  if n_out == 1 or n_in == 1:
    return jnp.zeros((n_out, n_in)).at[:, 0].set(1.0)
  pos = jnp.arange(n_out, dtype=jnp.float32) * ((n_in - 1) / (n_out - 1))
  lo = jnp.clip(jnp.floor(pos).astype(jnp.int32), 0, n_in - 2)
  frac = pos - lo
  rows = jnp.arange(n_out)
  return (jnp.zeros((n_out, n_in)).at[rows, lo].add(1.0 - frac)
          .at[rows, lo + 1].add(frac))


def upsample_bilinear(x: jax.Array, size: tuple[int, int]) -> jax.Array:
  """`x [..., h, w]` -> `[..., H, W]`, bilinear with `align_corners=True`."""
  wr = _linear_weights(x.shape[-2], size[0])
  wc = _linear_weights(x.shape[-1], size[1])
  return jnp.einsum("Hh,...hw,Ww->...HW", wr, x, wc,
                    precision=jax.lax.Precision.HIGHEST)


# ------------------------------------------------------------ the classifier
def cosine_logits(feat: jax.Array, proto: jax.Array,
                  temperature: jax.Array) -> jax.Array:
  """`T cos(feat [..., C], proto [C])` -> `[...]` (official `get_logits`)."""
  dot = jnp.einsum("...c,c->...", feat, proto,
                   precision=jax.lax.Precision.HIGHEST)
  norms = jnp.linalg.norm(proto) * jnp.linalg.norm(feat, axis=-1)
  return temperature * dot / (norms + _EPS)


def _masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
  return jnp.sum(x * mask) / jnp.sum(mask)


def _probas(logits: jax.Array, bias: jax.Array) -> jax.Array:
  """`[..., 2]` posteriors (bg, fg) as the official `get_probas`."""
  fg = jax.nn.sigmoid(logits - bias)
  return jnp.stack([1.0 - fg, fg], axis=-1)


def _marginal(probas: jax.Array, valid: jax.Array) -> jax.Array:
  """Mean posterior `[2]` over valid pixels."""
  return (jnp.sum(probas * valid[..., None], axis=tuple(range(valid.ndim)))
          / jnp.sum(valid))


def support_prototype(feat_s: jax.Array, mask_s: jax.Array,
                      label: int = 1) -> jax.Array:
  """Mean feature `[C]` of support pixels labelled `label` (feature grid).

  Args:
    feat_s: `[K, h, w, C]` support features.
    mask_s: `[K, h, w]` downsampled labels (0, 1, 255).
    label: 1 for the foreground, 0 for the background.
  """
  m = (mask_s == label).astype(feat_s.dtype)[..., None]
  return jnp.sum(feat_s * m, axis=(0, 1, 2)) / (jnp.sum(m) + _EPS)


def proportion(probas: jax.Array, valid: jax.Array) -> jax.Array:
  """`[2]` (bg, fg) proportion of soft or one-hot `probas [..., 2]`."""
  return _marginal(probas, valid.astype(probas.dtype))


def oracle_proportion(mask_q: jax.Array, size: tuple[int, int]) -> jax.Array:
  """True `[bg, fg]` proportion of the query mask `[H, W]` on the grid."""
  ds = downsample_nearest(mask_q, size)
  onehot = jnp.stack([ds == 0, ds == 1], -1).astype(jnp.float32)
  return proportion(onehot, ds != IGNORE)


class EpisodeResult(NamedTuple):
  """RePRI's result on one episode.

  Attributes:
    logits: `[H, W]` foreground logit minus bias at image resolution
      (foreground where `sigmoid(logits) > 0.5`).
    proto: `[C]` final prototype; bias: scalar final bias.
    pi_init: `[2]` proportion estimated at initialisation.
    pi: `[2]` the proportion used at the end (refreshed or oracle).
  """
  logits: jax.Array
  proto: jax.Array
  bias: jax.Array
  pi_init: jax.Array
  pi: jax.Array


def repri_episode(feat_s: jax.Array, mask_s: jax.Array, feat_q: jax.Array,
                  valid_q: jax.Array, pi_oracle: jax.Array,
                  hp: dict[str, jax.Array], *, n_iter: int, oracle: bool,
                  image_size: tuple[int, int]) -> EpisodeResult:
  """RePRI on one episode (pure; vmap over episodes).

  Args:
    feat_s: `[K, h, w, C]` support features (normalised by the caller).
    mask_s: `[K, H, W]` int support masks, 0 bg / 1 fg / 255 ignore.
    feat_q: `[h, w, C]` query features.
    valid_q: `[H, W]` bool, query pixels that are not padding (the
      official code reads it from the query's 255s; no labels).
    pi_oracle: `[2]` true query proportion (`oracle_proportion`), read
      only when `oracle`.
    hp: `RePRIConfig.hparams()` (traced scalars).
    n_iter: `adapt_iter` (static): `n_iter - 1` SGD steps.
    oracle: use `pi_oracle` and never refresh (static).
    image_size: `(H, W)` of the returned logits.
  """
  k, h, w = feat_s.shape[:3]
  f32 = jnp.float32
  temp = hp["temperature"]
  auto = 1.0 / k
  l_ce = hp["ce_weight"]
  l_kl = jnp.where(hp["kl_weight"] > 0, hp["kl_weight"], auto).astype(f32)
  l_ent = jnp.where(hp["ent_weight"] > 0, hp["ent_weight"], auto).astype(f32)
  ds_s = downsample_nearest(mask_s, (h, w))
  valid_s = (ds_s != IGNORE).astype(f32)
  onehot_s = jnp.stack([ds_s == 0, ds_s == 1], -1).astype(f32)
  vq = downsample_nearest(valid_q, (h, w)).astype(f32)

  proto = support_prototype(feat_s, ds_s)
  bias = jnp.mean(cosine_logits(feat_q, proto, temp))
  params = {"proto": proto, "bias": bias}

  def query_probas(p):
    return _probas(cosine_logits(feat_q, p["proto"], temp), p["bias"])

  pi_init = _marginal(jax.lax.stop_gradient(query_probas(params)), vq)
  pi = pi_oracle.astype(f32) if oracle else pi_init

  def loss_fn(p, pi, l_kl):
    probas_s = _probas(cosine_logits(feat_s, p["proto"], temp), p["bias"])
    ce = -_masked_mean(jnp.sum(onehot_s * jnp.log(probas_s + _EPS), -1),
                       valid_s)
    probas_q = query_probas(p)
    ent = -_masked_mean(jnp.sum(probas_q * jnp.log(probas_q + _EPS), -1),
                        vq)
    marg = _marginal(probas_q, vq)
    kl = jnp.sum(marg * jnp.log(marg / (pi + _EPS)))
    return l_ce * ce + l_kl * kl + l_ent * ent

  sgd_hp = {"schedule": {"learning_rate": hp["lr"],
                         "warmup_steps": jnp.zeros((), f32)},
            "optim": {"momentum": jnp.zeros((), f32),
                      "weight_decay": jnp.zeros((), f32),
                      "max_norm": jnp.ones((), f32)}}

  def body(it, carry):
    p, opt_state, pi, l_kl = carry
    grads = jax.grad(loss_fn)(p, pi, l_kl)
    p, opt_state, _ = train_step.optimizer_step(
        _SGD, "constant", sgd_hp, it, p, opt_state, grads)
    if not oracle:   # official: refresh after the update of step t_pi - 1
      refresh = (it + 1 == hp["t_pi"]) & (l_kl != 0)
      fresh = _marginal(jax.lax.stop_gradient(query_probas(p)), vq)
      pi = jnp.where(refresh, fresh, pi)
      l_kl = jnp.where(refresh, l_kl + hp["kl_boost"], l_kl)
    return p, opt_state, pi, l_kl

  carry = (params, _SGD.init(params), pi, l_kl)
  params, _, pi, _ = jax.lax.fori_loop(1, n_iter, body, carry)
  logits = cosine_logits(feat_q, params["proto"], temp)
  logits = upsample_bilinear(logits, image_size) - params["bias"]
  return EpisodeResult(logits, params["proto"], params["bias"], pi_init, pi)


def prototype_episode(feat_s: jax.Array, mask_s: jax.Array,
                      feat_q: jax.Array, image_size: tuple[int, int],
                      temperature: float = 20.0) -> jax.Array:
  """The inductive baseline: `[H, W]` logits, foreground where > 0.

  `T (cos(f, w_fg) - cos(f, w_bg))` with the support foreground and
  background mean features; upsampled like RePRI's logits.
  """
  h, w = feat_s.shape[1:3]
  ds_s = downsample_nearest(mask_s, (h, w))
  fg = cosine_logits(feat_q, support_prototype(feat_s, ds_s, 1), temperature)
  bg = cosine_logits(feat_q, support_prototype(feat_s, ds_s, 0), temperature)
  return upsample_bilinear(fg - bg, image_size)


def predict(logits: jax.Array) -> jax.Array:
  """Binary prediction of `[..., H, W]` logits: `p_fg > 1 - p_fg` (argmax
  over (bg, fg), ties to background, as the official evaluation)."""
  fg = jax.nn.sigmoid(logits)
  return fg > 1.0 - fg


@functools.partial(jax.jit, static_argnames=("n_iter", "oracle",
                                             "image_size"))
def repri_batch(feat_s: jax.Array, mask_s: jax.Array, feat_q: jax.Array,
                valid_q: jax.Array, pi_oracle: jax.Array,
                hp: dict[str, jax.Array], *, n_iter: int, oracle: bool,
                image_size: tuple[int, int]) -> EpisodeResult:
  """`repri_episode` over a batch of E episodes (every array `[E, ...]`;
  `hp` shared)."""
  one = functools.partial(repri_episode, n_iter=n_iter, oracle=oracle,
                          image_size=image_size)
  return jax.vmap(one, in_axes=(0, 0, 0, 0, 0, None))(
      feat_s, mask_s, feat_q, valid_q, pi_oracle, hp)


@functools.partial(jax.jit, static_argnames=("image_size",))
def prototype_batch(feat_s: jax.Array, mask_s: jax.Array, feat_q: jax.Array,
                    temperature: jax.Array, *, image_size: tuple[int, int]
                    ) -> jax.Array:
  """`prototype_episode` over E episodes -> logits `[E, H, W]`."""
  one = lambda s, m, q: prototype_episode(s, m, q, image_size, temperature)
  return jax.vmap(one)(feat_s, mask_s, feat_q)


# ------------------------------------------- episode solvers (evaluator)
def _repri_solver(base: RePRIConfig, settings: dict[str, Any]):
  try:
    cfg = base._replace(**settings)
  except ValueError as e:
    raise ValueError(f"RePRI settings {settings}: {e}; allowed keys "
                     f"{RePRIConfig._fields}") from e
  hp = cfg.hparams()

  def solve(feat_s, mask_s, feat_q, valid_q, mask_q):
    size = tuple(mask_q.shape[-2:])
    pi = jax.vmap(lambda m: oracle_proportion(m, feat_q.shape[1:3]))(
        mask_q) if cfg.oracle else jnp.zeros((len(mask_q), 2))
    return repri_batch(feat_s, mask_s, feat_q, valid_q, pi, hp,
                       **cfg.static(), image_size=size).logits
  return solve


@fewshot.register_fewshot_solver("repri")
def make_repri(settings: dict[str, Any]):
  """RePRI with the official test settings (`scripts/test.sh`)."""
  return _repri_solver(RePRIConfig(), settings)


@fewshot.register_fewshot_solver("repri_oracle")
def make_repri_oracle(settings: dict[str, Any]):
  """Oracle-RePRI: the query's true proportion (`scripts/oracle.sh`)."""
  return _repri_solver(oracle_config(), settings)


@fewshot.register_fewshot_solver("prototype")
def make_prototype(settings: dict[str, Any]):
  """The nearest-prototype baseline (cosine to support fg / bg means)."""
  unknown = set(settings) - {"temperature"}
  if unknown:
    raise ValueError(f"prototype settings {sorted(unknown)}; allowed "
                     "['temperature']")
  temp = jnp.float32(settings.get("temperature", 20.0))

  def solve(feat_s, mask_s, feat_q, valid_q, mask_q):
    del valid_q
    return prototype_batch(feat_s, mask_s, feat_q, temp,
                           image_size=tuple(mask_q.shape[-2:]))
  return solve
