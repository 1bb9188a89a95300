"""QARL vs RARL vs SAC on two-player zero-sum control tasks.

Paper: Robust Adversarial Reinforcement Learning via Bounded Rationality
Curricula, Reddi et al., ICLR 2024, arXiv:2311.01642; code
AryamanReddi99/quantal-adversarial-rl (PyTorch, MushroomRL, dm_control).

Variants (`--config=experiments/qarl/config.py:<variant>`):
  point_mass (default) CPU, minutes: the official point-mass-vs-wind
             navigation task ported to JAX (horizon 200 instead of 500).
  pendulum   CPU, minutes: Pendulum-v1 swing-up with an adversarial torque
             <= 0.5 (a quarter of the protagonist's 2).
  brax_hopper, brax_halfcheetah, brax_walker2d, brax_ant: full scale on
             GPU/TPU with Brax (MJX) and adversarial forces on the torso;
             a change of simulator from the paper's dm_control. Need
             `pip install brax`.

Arms (the RL protocol, `common/protocols/rl.py`; the seeds of an arm are one
vmapped program, and the arms share its compilation):
  SAC (no adversary), RARL (rational SAC adversary, learned temperature),
  QARL-linear (quantal adversary, temperature 0.05 -> 0.001 over 2/3 of
  training), QARL (quantal adversary, self-paced Gamma curriculum, KL trust
  region 0.5, performance bound on the protagonist's discounted return).

Examples:
  regjax run qarl --seeds=0,1,2,3,4
  regjax run qarl --config=experiments/qarl/config.py:pendulum --seeds=0,1,2,3,4
"""

import ml_collections as mlc

from common.protocols import rl

VARIANTS = ("point_mass", "pendulum", "brax_hopper", "brax_halfcheetah",
            "brax_walker2d", "brax_ant")

_POINT_MASS = dict(mass=5.0, friction=1.0, prot_max_force=1.0,
                   adv_max_force=10.0, size=4.0, gap_x=0.0, gap_width=1.0,
                   wind_low=-1.0, goal_tol=0.1, dt=0.01)
_PENDULUM = dict(mass=1.0, length=1.0, friction=0.0, gravity=10.0,
                 max_torque=2.0, adv_max_torque=0.5, max_speed=8.0, dt=0.05)

_METRICS = ("return_vs_worst_adversary", "return_vs_own_adversary",
            "return_no_adversary", "grid_mean", "grid_worst")
_LABELS = {
    "return_vs_worst_adversary": "return vs worst-case adversary",
    "return_vs_own_adversary": "return vs own adversary",
    "return_no_adversary": "return, no adversary",
    "grid_mean": "robustness grid: mean", "grid_worst": "grid: worst cell"}


def get_config(variant: str = "point_mass"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown qarl variant {variant!r}; allowed: {VARIANTS}")
  c = rl.base_config()
  c.experiment = "qarl"
  c.env.name, c.env.horizon = variant, 200
  c.agent.update(dict(
      hidden=(64, 64), n_envs=8, batch_size=128, buffer_size=50_000,
      updates_per_step=2, learning_starts=1_000, gamma=0.99, tau=0.005,
      lr_actor=1e-3, lr_critic=1e-3, lr_alpha=1e-3, init_log_alpha=0.0))
  c.train.update(dict(iterations=20, chunk_iterations=1,
                      checkpoint_every_chunks=4))
  # Official defaults (qarl_experiment.py, qarl_linear_experiment.py) except
  # perf_lb (reward-scale dependent, set per task) and n_samples.
  c.curriculum.linear = mlc.ConfigDict(dict(
      initial=0.05, target=0.001, start_frac=0.0, end_frac=2.0 / 3.0))
  c.curriculum.self_paced_gamma = mlc.ConfigDict(dict(
      initial_conc=50.0, target_conc=1.0, rate=1000.0, max_kl=0.5,
      perf_lb=10.0, conc_lb=1e-8, target_kl_threshold=0.01, n_samples=16))
  c.eval.update(dict(name="qarl_robustness", episodes=16, seed=12345))
  c.eval.robustness = mlc.ConfigDict(dict(
      grid_size=11, grid_episodes=1, worst_adversary_iterations=4))
  c.study.arms = {
      "SAC": "agent.adversary=none,curriculum.name=none",
      "RARL": "agent.adversary=rational,curriculum.name=none",
      "QARL-linear": "agent.adversary=quantal,curriculum.name=linear",
      "QARL": "agent.adversary=quantal,curriculum.name=self_paced_gamma"}
  c.study.seeds = (0, 1, 2, 3, 4)
  c.study.metrics = _METRICS
  c.study.metric_labels = mlc.ConfigDict(_LABELS)
  c.study.formats = mlc.ConfigDict({m: ".1f" for m in _METRICS})
  c.study.artifacts = "experiments.qarl.evaluate:heatmaps"

  if variant == "point_mass":
    c.env.params = mlc.ConfigDict(_POINT_MASS)
    # Rewards are in [-1, 0]: start the protagonist's entropy weight at
    # 0.05 rather than 1, or the entropy bonus swamps them.
    c.agent.init_log_alpha = -3.0
    # Discounted return: about -82 when stuck below the wall.
    c.curriculum.self_paced_gamma.perf_lb = -60.0
    c.smoke.enabled = True
  elif variant == "pendulum":
    c.env.params = mlc.ConfigDict(_PENDULUM)
    # Discounted return: about -550 for a random policy, -150 when solved.
    c.curriculum.self_paced_gamma.perf_lb = -400.0
    # The point-mass smoke run covers the same protocol; the pendulum's
    # loop is exercised by tests/algos/rl and tests/common/envs.
    c.smoke.enabled = False
  else:
    # Full scale (official): 200 iterations x 5 episodes per agent x 1000
    # steps, 3 x 256 MLPs, batch 256, lr 3e-4/1e-4, 1 update per 3 steps.
    c.env.horizon = 1000
    c.env.params = mlc.ConfigDict(dict(adv_max_force=1.0, mass_scale=1.0,
                                       friction_scale=1.0))
    c.agent.update(dict(hidden=(256, 256, 256), n_envs=16, batch_size=256,
                        buffer_size=1_000_000, updates_per_step=5,
                        learning_starts=5_000, lr_actor=1e-4,
                        lr_critic=3e-4, lr_alpha=3e-4))
    c.train.update(dict(iterations=200, chunk_iterations=2,
                        checkpoint_every_chunks=5))
    c.curriculum.self_paced_gamma.update(dict(perf_lb=10.0, n_samples=30))
  return c
