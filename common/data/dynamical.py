"""Benchmark dynamical systems as pure JAX vector fields, and their solvers.

Shared by the dynamical-systems papers (gtf, regnde, info_koopman): each
system is a vector field `f(x [..., d], params) -> dx/dt [..., d]` that
broadcasts over leading axes, with its standard parameters, step size and an
initial-condition sampler. Two integrators:

* `integrate_rk4`: classical fixed-step RK4 under `lax.scan` (optional
  substeps per saved step, optional additive process noise per substep,
  Euler-Maruyama style). The default for sampling training windows: on CPU
  it is several times faster than diffrax for a batch of short trajectories
  on a fixed grid (no step-size controller, no while loop, one fused scan
  over the whole batch), and a fixed step makes every window exact to the
  same order.
* `integrate_diffrax`: diffrax's adaptive Tsit5 / Dopri5 / Dopri8 with
  `SaveAt(ts=...)`, for reference solutions and tests of the RK4 path.

`simulate` draws a batch of trajectories: initial conditions from the
system's sampler (or from a bank of attractor states), burn-in onto the
attractor, optional process noise, then observation noise relative to each
dimension's standard deviation. Generators over these live in
`common/data/dynamical_generators.py`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

Params = Mapping[str, Any]
VectorField = Callable[[jax.Array, Params], jax.Array]


def lorenz63(x: jax.Array, p: Params) -> jax.Array:
  """Lorenz (1963): x [..., 3]; params sigma, rho, beta."""
  u, v, w = x[..., 0], x[..., 1], x[..., 2]
  return jnp.stack([p["sigma"] * (v - u), u * (p["rho"] - w) - v,
                    u * v - p["beta"] * w], axis=-1)


def lorenz96(x: jax.Array, p: Params) -> jax.Array:
  """Lorenz (1996): x [..., d] on a ring; param forcing F."""
  return ((jnp.roll(x, -1, -1) - jnp.roll(x, 2, -1)) * jnp.roll(x, 1, -1)
          - x + p["forcing"])


def rossler(x: jax.Array, p: Params) -> jax.Array:
  """Roessler (1976): x [..., 3]; params a, b, c."""
  u, v, w = x[..., 0], x[..., 1], x[..., 2]
  return jnp.stack([-v - w, u + p["a"] * v, p["b"] + w * (u - p["c"])],
                   axis=-1)


def van_der_pol(x: jax.Array, p: Params) -> jax.Array:
  """Van der Pol oscillator: x [..., 2] = (position, velocity); param mu."""
  u, v = x[..., 0], x[..., 1]
  return jnp.stack([v, p["mu"] * (1.0 - u * u) * v - u], axis=-1)


def damped_pendulum(x: jax.Array, p: Params) -> jax.Array:
  """Damped pendulum: x [..., 2] = (angle, angular velocity).

  theta'' = -damping * theta' - (g / length) * sin(theta).
  """
  th, om = x[..., 0], x[..., 1]
  return jnp.stack([om, -p["damping"] * om - p["g_over_l"] * jnp.sin(th)],
                   axis=-1)


def linear(x: jax.Array, p: Params) -> jax.Array:
  """Linear system dx/dt = A x: x [..., d]; param matrix [d, d] (tests)."""
  return x @ jnp.asarray(p["matrix"]).T


@dataclasses.dataclass(frozen=True)
class System:
  """A benchmark system.

  Attributes:
    vector_field: `f(x [..., d], params) -> [..., d]`.
    params: standard parameters (floats; traced when passed to solvers).
    dim: state dimension (Lorenz-96: the default; any d >= 4 works).
    dt: standard sampling step.
    init_center, init_scale: initial conditions are drawn as
      `center + scale * N(0, 1)` per dimension before burn-in.
    burn_in: standard burn-in time (in units of time, not steps).
    chaotic: whether the standard parameters give a chaotic attractor.
  """
  vector_field: VectorField
  params: dict[str, float]
  dim: int
  dt: float
  init_center: float
  init_scale: float
  burn_in: float
  chaotic: bool


SYSTEMS: dict[str, System] = {
    # Standard chaotic parameters; dt 0.01 as in the GTF datasets.
    "lorenz63": System(lorenz63, {"sigma": 10.0, "rho": 28.0,
                                  "beta": 8.0 / 3.0}, 3, 0.01, 0.0, 8.0,
                       20.0, True),
    # F = 8 is the standard chaotic forcing; 20 sites.
    "lorenz96": System(lorenz96, {"forcing": 8.0}, 20, 0.05, 8.0, 1.0,
                       50.0, True),
    "rossler": System(rossler, {"a": 0.2, "b": 0.2, "c": 5.7}, 3, 0.05, 0.0,
                      3.0, 100.0, True),
    "van_der_pol": System(van_der_pol, {"mu": 1.0}, 2, 0.05, 0.0, 2.0, 20.0,
                          False),
    "damped_pendulum": System(damped_pendulum, {"damping": 0.1,
                                                "g_over_l": 1.0}, 2, 0.05,
                              0.0, 1.5, 0.0, False),
}


def get_system(name: str) -> System:
  if name not in SYSTEMS:
    raise ValueError(f"unknown dynamical system {name!r}; known: "
                     f"{sorted(SYSTEMS)}")
  return SYSTEMS[name]


def rk4_step(f: VectorField, x: jax.Array, p: Params, dt) -> jax.Array:
  """One classical Runge-Kutta step of size dt: x [..., d] -> [..., d]."""
  k1 = f(x, p)
  k2 = f(x + 0.5 * dt * k1, p)
  k3 = f(x + 0.5 * dt * k2, p)
  k4 = f(x + dt * k3, p)
  return x + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def integrate_rk4(f: VectorField, x0: jax.Array, p: Params, dt,
                  num_steps: int, substeps: int = 1,
                  process_noise=0.0, rng: jax.Array | None = None
                  ) -> jax.Array:
  """States at times dt, 2 dt, ..., num_steps dt (x0 excluded).

  Args:
    f: vector field.
    x0: [..., d] initial states (any leading batch axes).
    p: parameters of f.
    dt: saved step; each is `substeps` RK4 steps of dt / substeps.
    num_steps: number of saved states (static).
    substeps: RK4 steps per saved step (static).
    process_noise: std of the additive noise per unit sqrt(time): each
      substep adds `process_noise * sqrt(h) * N(0, 1)` (Euler-Maruyama on
      the diffusion; the drift stays RK4). 0 gives the ODE solution.
    rng: key for the process noise (needed when process_noise may be > 0).

  Returns:
    [num_steps, ..., d] (time leading; `jnp.moveaxis` for batch first).
  """
  h = dt / substeps
  noisy = rng is not None

  def sub(x, key):
    x = rk4_step(f, x, p, h)
    if noisy:
      x = x + process_noise * jnp.sqrt(h) * jax.random.normal(
          key, x.shape, x.dtype)
    return x

  def saved(x, key):
    if substeps == 1:   # one scan level: half the compile time
      x = sub(x, key)
    else:
      keys = (jax.random.split(key, substeps) if noisy else
              jnp.zeros((substeps, 2), jnp.uint32))
      x, _ = jax.lax.scan(lambda x, k: (sub(x, k), None), x, keys)
    return x, x

  keys = (jax.random.split(rng, num_steps) if noisy else
          jnp.zeros((num_steps, 2), jnp.uint32))
  _, xs = jax.lax.scan(saved, x0, keys)
  return xs


def integrate_diffrax(f: VectorField, x0: jax.Array, p: Params,
                      ts: jax.Array, solver: str = "tsit5",
                      rtol: float = 1e-8, atol: float = 1e-8,
                      max_steps: int = 1_000_000) -> jax.Array:
  """Adaptive diffrax solution of one trajectory saved at ts.

  Args:
    x0: [d] state at ts[0].
    ts: [T] increasing save times.
    solver: "tsit5", "dopri5" or "dopri8".

  Returns:
    [T, d] (row 0 = x0). vmap over x0 for a batch.
  """
  import diffrax  # pylint: disable=g-import-not-at-top
  solvers = {"tsit5": diffrax.Tsit5, "dopri5": diffrax.Dopri5,
             "dopri8": diffrax.Dopri8}
  if solver not in solvers:
    raise ValueError(f"solver={solver!r}; allowed: {sorted(solvers)}")
  sol = diffrax.diffeqsolve(
      diffrax.ODETerm(lambda t, y, args: f(y, args)), solvers[solver](),
      t0=ts[0], t1=ts[-1], dt0=(ts[1] - ts[0]) / 4, y0=x0, args=p,
      saveat=diffrax.SaveAt(ts=ts),
      stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
      max_steps=max_steps)
  return sol.ys


def initial_states(system: System, rng: jax.Array, n: int,
                   dim: int | None = None) -> jax.Array:
  """[n, d] initial states drawn around the system's center."""
  d = dim or system.dim
  return system.init_center + system.init_scale * jax.random.normal(
      rng, (n, d))


def simulate(system: System, rng: jax.Array, n: int, length: int, *,
             dt: float | None = None, params: Params | None = None,
             dim: int | None = None, burn_in: float | None = None,
             substeps: int = 1, process_noise: float = 0.0,
             x0: jax.Array | None = None) -> jax.Array:
  """n clean trajectories of `length` saved steps, on the attractor.

  Args:
    system: from `SYSTEMS`.
    rng: key (initial states and process noise).
    n, length: batch size and saved steps (static).
    dt: saved step (default the system's).
    params: overrides of the system's parameters.
    dim: state dimension (Lorenz-96 only; default the system's).
    burn_in: time integrated and discarded first (default the system's).
    substeps: RK4 substeps per saved step.
    process_noise: see `integrate_rk4` (applied during the kept part).
    x0: [n, d] initial states instead of drawn ones.

  Returns:
    [n, length, d]; row 0 is the state after burn-in.
  """
  dt = system.dt if dt is None else dt
  p = {**system.params, **(params or {})}
  k_init, k_noise = jax.random.split(rng)
  x = initial_states(system, k_init, n, dim) if x0 is None else x0
  burn = int(round((system.burn_in if burn_in is None else burn_in) / dt))
  if burn > 0:
    x = integrate_rk4(system.vector_field, x, p, dt, burn, substeps)[-1]
  if length == 1:
    return x[:, None]
  rest = integrate_rk4(system.vector_field, x, p, dt, length - 1, substeps,
                       process_noise, k_noise if process_noise else None)
  return jnp.concatenate([x[:, None], jnp.moveaxis(rest, 0, 1)], axis=1)


def add_observation_noise(rng: jax.Array, x: jax.Array, level,
                          scale: jax.Array) -> jax.Array:
  """x + level * scale * N(0, 1): noise relative to each dim's std [d]."""
  return x + level * scale * jax.random.normal(rng, x.shape, x.dtype)


def standardise(x: jax.Array, mean: jax.Array, std: jax.Array) -> jax.Array:
  """(x - mean) / std per dimension; mean, std [d]."""
  return (x - mean) / std


def attractor_statistics(system: System, *, dt: float | None = None,
                         params: Params | None = None,
                         dim: int | None = None, length: int = 20_000,
                         seed: int = 0) -> tuple[jax.Array, jax.Array]:
  """Per-dimension mean and std [d] of one long trajectory (for scaling)."""
  traj = simulate(system, jax.random.PRNGKey(seed), 1, length, dt=dt,
                  params=params, dim=dim)[0]
  return traj.mean(0), traj.std(0)
