"""EOT-fmaps: sliced-Wasserstein + functional maps for shape correspondence.

Le, Nguyen, Sun, Ho, Xie. "Integrating Efficient Optimal Transport and
Functional Maps For Unsupervised Shape Correspondence Learning", CVPR 2024
(arXiv:2403.01781). Official code (PyTorch, read, not copied):
https://github.com/Tungthanhlee/EOT-Correspondence (commit 52b1d82).

Pure, jittable pieces (shapes for one pair; `vmap` for batches):

* `solve_fmap`: the regularised least-squares functional map of the official
  `RegularizedFMNet` (DPFM): row i of `C_xy` solves
  `(A A^T + lambda diag(D_i)) c_i = (B A^T)_i` with `A = Phi_x^T M_x F_x`,
  `B = Phi_y^T M_y F_y` and the resolvent mask `D` (gamma = 0.5);
* `fmap_losses`: SURFMNet bijectivity, orthogonality and Laplacian
  commutativity (squared Frobenius, summed over both directions as in the
  official `SURFMNetLoss`);
* `soft_correspondence`: row-softmax of cosine feature similarity / tau (the
  official `Similarity`, tau = 0.07), `alignment_loss`: `||C_xy -
  Phi_y^T M_y P_yx Phi_x||^2` (+ the reverse direction);
* `sliced_wasserstein_p`: the official `SW` loss, *the p-th root* of the mean
  over projections of the 1-D `W_p^p`. ott-jax's
  `ott.tools.sliced.sliced_wasserstein` returns the mean of the 1-D costs
  without the root (SW_2^2 for the squared Euclidean cost); the tests check
  `ours**2 == ott` on the same projections;
* `entropic_correspondence`: the test-time refinement plans. The official
  `sinkhorn_OT` runs 10 log-domain Sinkhorn iterations on the squared feature
  distances divided by their mean, with `epsilon = 2 sigma^2` (sigma = 0.1);
  here that is ott-jax's `Geometry` + `Sinkhorn` (unrolled, so gradients flow
  through the iterations as in the official code), then row / column
  normalisation of the plan into `P_xy`, `P_yx`;
* `fmap_to_p2p`, `p2p_from_features`: the official isometric test path
  (hard similarity -> fmap -> nearest neighbour in the spectral embedding).

From ott-jax: `Geometry` and the `Sinkhorn` solver (entropic OT), and the
univariate solver behind `sliced_wasserstein` used as the test oracle. The
feature network is in `algos/ot/eot_fmaps_net.py`, the mesh operators in
`algos/geometry/`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from ott.geometry import geometry
from ott.problems.linear import linear_problem
from ott.solvers.linear import sinkhorn

# ------------------------------------------------------------ functional map


def resolvent_mask(evals_x: jax.Array, evals_y: jax.Array,
                   gamma: jax.Array | float = 0.5) -> jax.Array:
  """DPFM's resolvent-Laplacian mask `D [k, k]` (row: y, column: x)."""
  scale = jnp.maximum(jnp.max(evals_x), jnp.max(evals_y))
  gx = (jnp.clip(evals_x, 0.0) / scale) ** gamma
  gy = (jnp.clip(evals_y, 0.0) / scale) ** gamma
  gx, gy = gx[None, :], gy[:, None]
  re = gy / (gy ** 2 + 1) - gx / (gx ** 2 + 1)
  im = 1 / (gy ** 2 + 1) - 1 / (gx ** 2 + 1)
  return re ** 2 + im ** 2


def solve_fmap(feat_x: jax.Array, feat_y: jax.Array, evals_x: jax.Array,
               evals_y: jax.Array, evecs_trans_x: jax.Array,
               evecs_trans_y: jax.Array, lmbda: jax.Array | float = 100.0,
               gamma: jax.Array | float = 0.5) -> jax.Array:
  """Functional map `C_xy [k, k]` from features `[n_x, c]`, `[n_y, c]`.

  `evecs_trans_*` are `Phi^T M` `[k, n]`. Each row of `C_xy` is its own
  regularised least-squares problem (the mask differs per row).
  """
  a = evecs_trans_x @ feat_x          # [k, c]
  b = evecs_trans_y @ feat_y          # [k, c]
  mask = resolvent_mask(evals_x, evals_y, gamma)   # [k, k]
  aat, bat = a @ a.T, b @ a.T

  def row(mask_i, rhs_i):
    return jnp.linalg.solve(aat + lmbda * jnp.diag(mask_i), rhs_i)

  return jax.vmap(row)(mask, bat)


def _sq_frobenius(a: jax.Array, b: jax.Array) -> jax.Array:
  return jnp.sum(jnp.square(a - b))


def fmap_losses(c_xy: jax.Array, c_yx: jax.Array, evals_x: jax.Array,
                evals_y: jax.Array) -> dict[str, jax.Array]:
  """SURFMNet terms (unweighted): `bij`, `orth`, `lap`."""
  eye = jnp.eye(c_xy.shape[0], dtype=c_xy.dtype)
  bij = _sq_frobenius(c_xy @ c_yx, eye) + _sq_frobenius(c_yx @ c_xy, eye)
  orth = (_sq_frobenius(c_xy.T @ c_xy, eye)
          + _sq_frobenius(c_yx.T @ c_yx, eye))
  # C_xy maps x-coefficients to y-coefficients: C Lambda_x = Lambda_y C.
  lap = (_sq_frobenius(c_xy * evals_x[None, :], evals_y[:, None] * c_xy)
         + _sq_frobenius(c_yx * evals_y[None, :], evals_x[:, None] * c_yx))
  return {"bij": bij, "orth": orth, "lap": lap}


# -------------------------------------------------------- correspondences


def _normalize(x: jax.Array) -> jax.Array:
  return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def soft_correspondence(feat_x: jax.Array, feat_y: jax.Array,
                        tau: jax.Array | float = 0.07) -> jax.Array:
  """`P_xy [n_x, n_y]`: row-softmax of cosine similarity / tau."""
  sim = _normalize(feat_x) @ _normalize(feat_y).T
  return jax.nn.softmax(sim / tau, axis=-1)


def alignment_loss(c_xy: jax.Array, c_yx: jax.Array, p_xy: jax.Array,
                   p_yx: jax.Array, evecs_x: jax.Array, evecs_y: jax.Array,
                   evecs_trans_x: jax.Array, evecs_trans_y: jax.Array
                   ) -> jax.Array:
  """`||C_xy - Phi_y^+ P_yx Phi_x||^2 + ||C_yx - Phi_x^+ P_xy Phi_y||^2`."""
  c_xy_est = evecs_trans_y @ (p_yx @ evecs_x)
  c_yx_est = evecs_trans_x @ (p_xy @ evecs_y)
  return _sq_frobenius(c_xy, c_xy_est) + _sq_frobenius(c_yx, c_yx_est)


def entropic_correspondence(feat_x: jax.Array, feat_y: jax.Array,
                            sigma: float = 0.1, num_iters: int = 10
                            ) -> tuple[jax.Array, jax.Array]:
  """Refinement plans `P_xy [n_x, n_y]`, `P_yx [n_y, n_x]` (rows sum to 1).

  Entropic OT between the uniform feature clouds (ott-jax Sinkhorn, exactly
  `num_iters` unrolled iterations) on squared distances over their mean, at
  `epsilon = 2 sigma^2`, as the official `sinkhorn_OT`.
  """
  d = (jnp.sum(feat_x ** 2, 1)[:, None] + jnp.sum(feat_y ** 2, 1)[None, :]
       - 2.0 * feat_x @ feat_y.T)
  d = d / jnp.mean(d)
  geom = geometry.Geometry(cost_matrix=d, epsilon=2.0 * sigma ** 2)
  solver = sinkhorn.Sinkhorn(min_iterations=num_iters,
                             max_iterations=num_iters, inner_iterations=1,
                             implicit_diff=None)
  plan = solver(linear_problem.LinearProblem(geom)).matrix
  p_xy = plan / jnp.sum(plan, axis=1, keepdims=True)
  p_yx = (plan / jnp.sum(plan, axis=0, keepdims=True)).T
  return p_xy, p_yx


# --------------------------------------------------------- sliced Wasserstein


def random_directions(rng: jax.Array, num: int, dim: int) -> jax.Array:
  """`[num, dim]` directions uniform on the sphere (normalised Gaussians)."""
  theta = jax.random.normal(rng, (num, dim))
  return theta / jnp.linalg.norm(theta, axis=1, keepdims=True)


def _sort_columns(z: jax.Array) -> jax.Array:
  """Sorts each column of `z [n, L]`; the order is found without a JVP.

  Same values and gradient as `jnp.sort(z, axis=0)`, but the backward pass
  is a gather instead of sort's JVP (a multi-operand sort, ~10x slower on
  CPU at n = 642, L = 200).
  """
  order = jnp.argsort(jax.lax.stop_gradient(z), axis=0)
  return jnp.take_along_axis(z, order, axis=0)


def sliced_wasserstein_p(x: jax.Array, y: jax.Array, directions: jax.Array,
                         p: float = 2.0) -> jax.Array:
  """Official SW: `(mean_l W_p^p(x theta_l, y theta_l))^(1/p)`.

  Args:
    x, y: `[n, d]` uniform point clouds of the same size (the official loss
      always compares `X` with `P_xy Y`, both `n_x` points).
    directions: `[L, d]` unit directions.
    p: the order.
  """
  if x.shape != y.shape:
    raise ValueError(f"x and y must have the same shape [n, d]; got "
                     f"{x.shape} and {y.shape}")
  xp = _sort_columns(x @ directions.T)    # [n, L] quantiles
  yp = _sort_columns(y @ directions.T)
  # Uniform weights, equal sizes: the quantile coupling pairs sorted values.
  w_pp = jnp.mean(jnp.abs(xp - yp) ** p, axis=0)    # [L]
  # A tiny floor keeps the gradient of the root finite at SW = 0.
  return (jnp.mean(w_pp) + 1e-12) ** (1.0 / p)


def sw_feature_loss(feat_x: jax.Array, feat_y: jax.Array, p_xy: jax.Array,
                    p_yx: jax.Array, rng: jax.Array, num_projections: int = 200,
                    p: float = 2.0, bidirectional: bool = False) -> jax.Array:
  """The paper's OT loss: SW between `F_x` and `P_xy F_y` (and reverse)."""
  theta = random_directions(rng, num_projections, feat_x.shape[-1])
  loss = sliced_wasserstein_p(feat_x, p_xy @ feat_y, theta, p)
  if bidirectional:
    loss = loss + sliced_wasserstein_p(p_yx @ feat_x, feat_y, theta, p)
  return loss


# -------------------------------------------------------------- p2p and error


def fmap_to_p2p(c_xy: jax.Array, evecs_x: jax.Array, evecs_y: jax.Array
                ) -> jax.Array:
  """Point map y -> x `[n_y]`: nearest row of `Phi_x C_xy^T` to `Phi_y`."""
  emb_x = evecs_x @ c_xy.T                           # [n_x, k]
  d = (jnp.sum(evecs_y ** 2, 1)[:, None] + jnp.sum(emb_x ** 2, 1)[None, :]
       - 2.0 * evecs_y @ emb_x.T)
  return jnp.argmin(d, axis=1)


def p2p_from_features(feat_x: jax.Array, feat_y: jax.Array,
                      evecs_x: jax.Array, evecs_y: jax.Array,
                      evecs_trans_y: jax.Array) -> jax.Array:
  """Official isometric test path: hard `P_yx` -> `C_xy` -> p2p `[n_y]`."""
  sim = _normalize(feat_y) @ _normalize(feat_x).T      # [n_y, n_x]
  p_yx = jax.nn.one_hot(jnp.argmax(sim, axis=1), feat_x.shape[0],
                        dtype=evecs_x.dtype)
  c_xy = evecs_trans_y @ (p_yx @ evecs_x)
  return fmap_to_p2p(c_xy, evecs_x, evecs_y)


def geodesic_error(dist_x: jax.Array, corr_x: jax.Array, corr_y: jax.Array,
                   p2p_yx: jax.Array) -> jax.Array:
  """Mean geodesic error of a y -> x map over the template points.

  `dist_x [n_x, n_x]` (area-normalised), `corr_*[t]` the vertex of template
  point t on each shape, `p2p_yx [n_y]`.
  """
  return jnp.mean(dist_x[corr_x, p2p_yx[corr_y]])
