"""EOT-fmaps: the per-vertex feature network and the training objective.

Paper: Le et al., CVPR 2024 (arXiv:2403.01781); official code
Tungthanhlee/EOT-Correspondence (`models/fmnet_model.py`,
`options/{train,test}/faust.yaml`).

Feature network. The official extractor is DiffusionNet (Sharp et al. 2022:
learned spectral heat diffusion + spatial-gradient features + per-vertex
MLPs) on 128 WKS channels. `SpectralDiffusionNet` keeps its two defining
parts, which are what makes features intrinsic and resolution-robust:

* per block, a learned per-channel diffusion time `t_c >= 0`, diffusion in
  the truncated Laplace-Beltrami eigenbasis `Phi diag(exp(-lambda t_c))
  Phi^T M x`,
* a per-vertex MLP on `[x, diffused x]` with a residual connection;

and drops the spatial-gradient (tangent-vector) features, which need
per-vertex tangent frames and sparse gradient operators. The inputs are the
same WKS descriptors. This is the documented deviation.

Objective of one pair (`pair_objective`), weights traced (`EotHParams`):

    w_bij * bij + w_orth * orth + w_lap * lap + w_align * align + w_sw * SW

with `C_xy, C_yx` from `solve_fmap`, `P` from the feature similarity (train)
or from entropic OT (test-time refinement, `refine=True`, bidirectional SW),
as the official code switches them. The registered method "eot_fmaps"
averages it over a batch of pairs (`algos.geometry.mesh_pairs`); its
`predict` is the official test map. The network is the registered model
"spectral_diffusion_net".
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from algos.ot import eot_fmaps
from common.core import method as method_lib
from common.models import registry

Shape = dict[str, jax.Array]   # descriptors, evals, evecs, evecs_trans


@registry.register_model("spectral_diffusion_net")
class SpectralDiffusionNet(nn.Module):
  """DiffusionNet-style per-vertex features (no gradient features).

  The input is one shape's spectral data or a batch of them (any leading
  axes, e.g. `[b, 2]` for a batch of pairs): `descriptors [..., n, c_in]`,
  `evals [..., k]`, `evecs [..., n, k]`, `evecs_trans [..., k, n]`.
  """
  num_classes: int = 0      # the model-zoo contract; unused
  width: int = 64
  out_dim: int = 64
  num_blocks: int = 3
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, shape: Shape, train: bool = False
               ) -> dict[str, jax.Array]:
    """Returns `{"features": [..., n, out_dim]}`."""
    del train
    evals, evecs = shape["evals"], shape["evecs"]
    x = nn.Dense(self.width, dtype=self.dtype, name="first")(
        shape["descriptors"])
    for b in range(self.num_blocks):
      # DiffusionNet initialises the times at 0 (identity) and clamps >= 0.
      t = jnp.abs(self.param(f"diffusion_time_{b}", nn.initializers.zeros,
                             (self.width,)))
      spec = shape["evecs_trans"] @ x                          # [..., k, w]
      diffused = evecs @ (jnp.exp(-evals[..., :, None] * t) * spec)
      h = jnp.concatenate([x, diffused], axis=-1)
      h = nn.relu(nn.Dense(self.width, dtype=self.dtype,
                           name=f"mlp_{b}_0")(h))
      h = nn.Dense(self.width, dtype=self.dtype, name=f"mlp_{b}_1")(h)
      x = x + h
    return {"features": nn.Dense(self.out_dim, dtype=self.dtype,
                                 name="last")(x)}


class EotHParams(NamedTuple):
  """Traced numbers of the objective (a sweep never recompiles)."""
  w_bij: jax.Array
  w_orth: jax.Array
  w_lap: jax.Array
  w_align: jax.Array
  w_sw: jax.Array
  tau: jax.Array        # similarity temperature (official 0.07)
  lmbda: jax.Array      # fmap regulariser (official 100)
  gamma: jax.Array      # resolvent exponent (official 0.5)


# Official options/train/faust.yaml: SURFMNet (bij 1, orth 1, lap 0) +
# alignment 1 + SW 100; Similarity tau 0.07; RegularizedFMNet lambda 100,
# resolvant gamma 0.5.
HPARAM_DEFAULTS = dict(w_bij=1.0, w_orth=1.0, w_lap=0.0, w_align=1.0,
                       w_sw=100.0, tau=0.07, lmbda=100.0, gamma=0.5)


def make_hparams(**values: float) -> EotHParams:
  unknown = set(values) - set(HPARAM_DEFAULTS)
  if unknown:
    raise ValueError(f"unknown EOT hparams {sorted(unknown)}; allowed: "
                     f"{sorted(HPARAM_DEFAULTS)}")
  return EotHParams(**{k: jnp.asarray(v, jnp.float32) for k, v in
                       {**HPARAM_DEFAULTS, **values}.items()})


def features(net: nn.Module, params: Any, shape: Shape) -> jax.Array:
  return net.apply({"params": params}, shape)["features"]


def pair_objective(hp: EotHParams, feat_x: jax.Array, feat_y: jax.Array,
                   shape_x: Shape, shape_y: Shape, rng: jax.Array, *,
                   num_projections: int = 200, p: float = 2.0,
                   refine: bool = False, sinkhorn_sigma: float = 0.1,
                   sinkhorn_iters: int = 10) -> tuple[jax.Array, dict]:
  """Loss of one shape pair from its features `[n_x, d]`, `[n_y, d]`.

  Args:
    hp: traced weights.
    feat_x, feat_y: per-vertex features of the two shapes.
    shape_x, shape_y: dicts with `evals [k]`, `evecs [n, k]`, `evecs_trans
      [k, n]` (and `descriptors`, unused here).
    rng: key for the SW projections (fresh every step).
    refine: test-time refinement objective (entropic-OT plans, bidirectional
      SW) instead of the training one (softmax plans, SW x -> y only).

  Returns:
    `(loss, terms)`, terms `bij`, `orth`, `lap`, `align`, `sw` unweighted.
  """
  fx, fy = feat_x, feat_y
  args = (shape_x["evals"], shape_y["evals"])
  c_xy = eot_fmaps.solve_fmap(fx, fy, *args, shape_x["evecs_trans"],
                              shape_y["evecs_trans"], hp.lmbda, hp.gamma)
  c_yx = eot_fmaps.solve_fmap(fy, fx, *args[::-1], shape_y["evecs_trans"],
                              shape_x["evecs_trans"], hp.lmbda, hp.gamma)
  terms = eot_fmaps.fmap_losses(c_xy, c_yx, *args)
  if refine:
    p_xy, p_yx = eot_fmaps.entropic_correspondence(
        fx, fy, sinkhorn_sigma, sinkhorn_iters)
  else:
    p_xy = eot_fmaps.soft_correspondence(fx, fy, hp.tau)
    p_yx = eot_fmaps.soft_correspondence(fy, fx, hp.tau)
  terms["align"] = eot_fmaps.alignment_loss(
      c_xy, c_yx, p_xy, p_yx, shape_x["evecs"], shape_y["evecs"],
      shape_x["evecs_trans"], shape_y["evecs_trans"])
  terms["sw"] = eot_fmaps.sw_feature_loss(fx, fy, p_xy, p_yx, rng,
                                          num_projections, p,
                                          bidirectional=refine)
  loss = (hp.w_bij * terms["bij"] + hp.w_orth * terms["orth"]
          + hp.w_lap * terms["lap"] + hp.w_align * terms["align"]
          + hp.w_sw * terms["sw"])
  return loss, terms


def pair_loss(params: Any, hp: EotHParams, shape_x: Shape, shape_y: Shape,
              rng: jax.Array, *, net: nn.Module, **kwargs
              ) -> tuple[jax.Array, dict]:
  """`pair_objective` on the features of `net` (kwargs: its options)."""
  return pair_objective(hp, features(net, params, shape_x),
                        features(net, params, shape_y), shape_x, shape_y,
                        rng, **kwargs)


def predict_p2p(net: nn.Module, params: Any, shape_x: Shape, shape_y: Shape
                ) -> jax.Array:
  """The official isometric test map y -> x `[n_y]`."""
  fx, fy = features(net, params, shape_x), features(net, params, shape_y)
  return eot_fmaps.p2p_from_features(fx, fy, shape_x["evecs"],
                                     shape_y["evecs"], shape_y["evecs_trans"])


# ----------------------------------------------------------- Method v2
_STATIC = dict(num_projections=200, p=2.0, refine=False, sinkhorn_sigma=0.1,
               sinkhorn_iters=10)


def _split_pair(tree: Any) -> tuple[Any, Any]:
  """Leaves `[b, 2, ...]` -> the x and y halves, leaves `[b, ...]`."""
  return (jax.tree.map(lambda v: v[:, 0], tree),
          jax.tree.map(lambda v: v[:, 1], tree))


@method_lib.register_method("eot_fmaps")
def make(method_config: dict[str, Any]) -> method_lib.Method:
  """The EOT-fmaps objective on batches of pairs (`algos.geometry.
  mesh_pairs`): the mean over pairs of `pair_objective`.

  Config: the traced weights of `HPARAM_DEFAULTS`, and static choices
  `num_projections` (SW directions), `p`, `refine` (the test-time
  objective), `sinkhorn_sigma`, `sinkhorn_iters`. The model is a
  per-shape feature network returning "features" (`SpectralDiffusionNet`);
  `predict` gives the y -> x point map "p2p" `[b, n_y]` of each pair.
  """
  unknown = set(method_config) - set(HPARAM_DEFAULTS) - set(_STATIC)
  if unknown:
    raise ValueError(f"config.method.eot_fmaps has unknown keys "
                     f"{sorted(unknown)}; allowed: "
                     f"{sorted(HPARAM_DEFAULTS) + sorted(_STATIC)}")
  static = {k: method_config.get(k, v) for k, v in _STATIC.items()}
  static["num_projections"] = int(static["num_projections"])
  static["sinkhorn_iters"] = int(static["sinkhorn_iters"])
  static["refine"] = bool(static["refine"])

  def hparams(cfg, run):
    del run
    return {k: float(cfg.get(k, v)) for k, v in HPARAM_DEFAULTS.items()}

  def loss(hp, method_state, outputs, batch, params, rng):
    del params
    feat_x, feat_y = _split_pair(outputs["features"])
    shape_x, shape_y = _split_pair(batch["shapes"])
    # One set of SW directions per step, shared by the pairs of the batch:
    # a batch of copies of one pair (a test pair on several devices) then
    # has the loss of that pair.
    per_pair = jax.vmap(lambda fx, fy, x, y: pair_objective(
        EotHParams(**hp), fx, fy, x, y, rng, **static))
    values, terms = per_pair(feat_x, feat_y, shape_x, shape_y)
    return (jnp.mean(values), {k: jnp.mean(v) for k, v in terms.items()},
            method_state)

  def predict(hp, ctx, params, method_state, batch):
    del hp, method_state
    feat_x, feat_y = _split_pair(ctx.forward(params, train=False)[0][
        "features"])
    shape_x, shape_y = _split_pair(batch["shapes"])
    p2p = jax.vmap(eot_fmaps.p2p_from_features)(
        feat_x, feat_y, shape_x["evecs"], shape_y["evecs"],
        shape_y["evecs_trans"])
    return {"p2p": p2p}

  return method_lib.Method(name="eot_fmaps", loss=loss, hparams=hparams,
                           predict=predict)
