"""Neural ODE models whose forward pass reports the solver's statistics.

Used by RegNeuralDE (arXiv:2105.03918, github.com/avik-pal/RegNeuralDE.jl).
Both models solve their ODE with `adaptive_rk.solve` (Dormand-Prince 5(4))
on the whole batch as one state, the bounded reverse-differentiable loop in
train mode and a `lax.while_loop` in eval mode, and return, besides their
prediction, the solver's numbers broadcast to one per example (`[b]`,
so the eval step can split them over devices like any output):
`nfe`, `reg_error` (sum of E_j |h_j|), `error_count` (accepted steps),
`reg_stiff_sum`, `reg_stiff_max` and `finished`.

* `node_classifier`: the official MNIST model scaled to any image size:
  flatten -> time-dependent MLP dynamics `tanh(W2 [tanh(W1 [z, t]), t])`
  on the flattened pixels over [0, t1] -> linear classifier. STEER
  (Ghosh et al. 2020) is the official `sample_tspan_ubound`: in train mode
  the end time is drawn from U[t1 - b, t1 + b].
* `node_series`: an autonomous MLP vector field fitted to trajectories:
  `y0 [b, d]` -> `y(ts) [b, T, d]` with `ts = linspace(0, t_end, T)`.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from algos.dynamics import adaptive_rk
from common.models import registry


def solver_outputs(stats: adaptive_rk.SolveStats, b: int
                   ) -> dict[str, jax.Array]:
  """The solve's statistics as `[b]` arrays (one copy per example)."""
  full = lambda x, dtype=jnp.float32: jnp.full((b,), x, dtype)
  return {"nfe": full(stats.nfe), "reg_error": full(stats.error_sum),
          "error_count": full(stats.error_count),
          "reg_stiff_sum": full(stats.stiff_sum),
          "reg_stiff_max": full(stats.stiff_max),
          "finished": full(stats.finished)}


class SolverSettings(nn.Module):
  """Mixin-like base: the solver's static settings."""
  rtol: float = 1e-5
  atol: float = 1e-5
  pcoeff: float = 0.0
  icoeff: float = 1.0
  max_steps: int = 256
  chunk: int = 8
  remat: bool = False     # recompute attempted steps in the backward pass

  def tolerances(self) -> adaptive_rk.Tolerances:
    return adaptive_rk.Tolerances(rtol=self.rtol, atol=self.atol,
                                  pcoeff=self.pcoeff, icoeff=self.icoeff)


def _dense(module: nn.Module, name: str, d_in: int, d_out: int):
  """`(kernel [d_in, d_out], bias [d_out])` initialised as `nn.Dense`'s.

  The vector field is a pure function of these arrays, so the solver's
  loops (`lax.scan`, `while_loop`, `cond`) never see a flax module.
  """
  kernel = module.param(f"{name}_kernel", nn.initializers.lecun_normal(),
                        (d_in, d_out), jnp.float32)
  bias = module.param(f"{name}_bias", nn.initializers.zeros, (d_out,),
                      jnp.float32)
  return kernel, bias


def time_mlp(weights, t: jax.Array, z: jax.Array) -> jax.Array:
  """`tanh(W2 [tanh(W1 [z, t]), t])`, the official MNIST dynamics."""
  (w1, b1), (w2, b2) = weights
  tt = jnp.full((*z.shape[:-1], 1), t, z.dtype)
  h = jnp.tanh(jnp.concatenate([z, tt], -1) @ w1 + b1)
  return jnp.tanh(jnp.concatenate([h, tt], -1) @ w2 + b2)


def mlp_field(weights, y: jax.Array) -> jax.Array:
  """A tanh MLP with a linear last layer."""
  h = y
  for i, (w, b) in enumerate(weights):
    h = h @ w + b
    if i < len(weights) - 1:
      h = jnp.tanh(h)
  return h


class NODEClassifier(SolverSettings):
  """Flattened image -> neural ODE over [0, t1] -> logits."""
  num_classes: int = 10
  hidden: int = 100
  t1: float = 1.0
  steer_b: float = 0.0        # STEER: t1 ~ U[t1 - b, t1 + b] in training
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False
               ) -> dict[str, jax.Array]:
    z0 = x.reshape(x.shape[0], -1).astype(jnp.float32)
    d = z0.shape[-1]
    weights = (_dense(self, "dense_1", d + 1, self.hidden),
               _dense(self, "dense_2", self.hidden + 1, d))
    f = lambda t, z: time_mlp(weights, t, z)
    t1 = jnp.asarray(self.t1, jnp.float32)
    if train and self.steer_b > 0:
      u = jax.random.uniform(self.make_rng("dropout"), (), jnp.float32)
      t1 = t1 + (2.0 * u - 1.0) * self.steer_b
    z1, stats = adaptive_rk.solve(
        f, z0, 0.0, t1, self.tolerances(), max_steps=self.max_steps,
        differentiable=train, chunk=self.chunk, remat=self.remat)
    logits = nn.Dense(self.num_classes, name="classifier")(z1)
    return {"logits": logits, "features": z1,
            **solver_outputs(stats, x.shape[0])}


class NODESeries(SolverSettings):
  """`y0 [b, d]` -> trajectory `[b, T, d]` at `linspace(0, t_end, T)`."""
  num_times: int = 20
  t_end: float = 1.0
  hidden: Sequence[int] = (64,)
  cube_inputs: bool = False   # f(y^3): torchdiffeq's spiral-demo network
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, y0: jax.Array, train: bool = False
               ) -> dict[str, jax.Array]:
    y0 = y0.astype(jnp.float32)
    widths = (y0.shape[-1], *self.hidden, y0.shape[-1])
    weights = tuple(_dense(self, f"field_{i}", a, b)
                    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])))
    cube = self.cube_inputs
    f = lambda t, y: mlp_field(weights, y ** 3 if cube else y)
    ts = jnp.linspace(0.0, self.t_end, self.num_times)
    ys, stats = adaptive_rk.solve_at(
        f, y0, ts, self.tolerances(), max_steps=self.max_steps,
        differentiable=train, chunk=self.chunk)
    traj = jnp.moveaxis(ys, 0, 1)                    # [b, T, d]
    return {"logits": traj, "features": traj[:, -1],
            **solver_outputs(stats, y0.shape[0])}


@registry.register_model("node_classifier")
def node_classifier(num_classes: int = 10, **kwargs: Any) -> NODEClassifier:
  return NODEClassifier(num_classes=num_classes, **kwargs)


@registry.register_model("node_series")
def node_series(num_classes: int = 0, **kwargs: Any) -> NODESeries:
  del num_classes
  if "hidden" in kwargs:
    kwargs["hidden"] = tuple(kwargs["hidden"])
  return NODESeries(**kwargs)
