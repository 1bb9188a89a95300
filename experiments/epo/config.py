"""EPO on a multi-turn sparse-reward text environment.

Paper: EPO: Entropy-regularized Policy Optimization for LLM Agents
Reinforcement Learning, Xu et al. 2025, arXiv:2509.22576; code
WujiangXu/EPO (a verl-agent fork: `verl/workers/actor/dp_actor.py`).

Protocol `lm_rl` without SFT: a small transformer policy reads the whole
history of the `text_corridor` environment (`common/envs/text_corridor.py`:
procedurally drawn corridors, a key to pick and a door to open, reward 1
only at success) and answers one action token per turn; the multi-turn
rollout `text_corridor` (`algos/rl/epo.py`) plays G episodes per world and
GRPO normalises success within each group. Arms:

  GRPO             no entropy term;
  GRPO+entropy     + `entropy_coef` token-mean entropy bonus (the
                   official EPO runs' baseline keeps `entropy_coeff`);
  GRPO+EPO         + the corridor penalty with a gradient (`epo_distance`:
                   our differentiable reading, see `algos/rl/epo.py`) and
                   the decaying phase weight, relative to the per-turn
                   historical mean entropy.

The official EPO term (`regularizer=epo`) is constant in the parameters,
so its update equals GRPO+entropy (tested in tests/algos/rl/test_epo.py);
it is not a separate arm.

Variants:
  corridor  (default) CPU.
  qwen2.5   the paper's optimisation settings (third_party_configs/epo)
            with a Qwen2.5-0.5B-shaped policy on the same corridor; GPU/TPU,
            not run here. It is not a real-checkpoint run: the corridor
            speaks its own 11-token vocabulary, so Qwen2.5 weights would
            need the environment rendered as text through the checkpoint's
            tokenizer (not built), and ALFWorld / ScienceWorld are not in
            the repo.

Example:
  python -m common run epo --seeds=0,1,2
"""

import ml_collections as mlc

from algos.rl import epo as epo_lib
from algos.rl import grpo
from common.protocols import lm_rl

VARIANTS = ("corridor", "qwen2.5")
METRICS = ("rl/iid/success", "rl/iid/greedy_success", "rl/iid/pass@4",
           "rl/iid/entropy", "rl/ood/success", "rl/ood/greedy_success",
           "rl/ood/entropy")


def get_config(variant: str = "corridor"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; allowed: {VARIANTS}")
  c = lm_rl.base_config()
  c.experiment = "epo"
  c.seed = 0
  c.method.name = "epo"
  c.sft.enabled = False
  c.data.update(name="corridor_worlds", input_key="prompt")
  turns = 16
  c.data.kwargs = mlc.ConfigDict(dict(min_length=3, max_length=6,
                                      ood_min_length=7, ood_max_length=8))
  c.eval.name = "text_corridor"
  c.eval.text_corridor = mlc.ConfigDict(dict(worlds=64, n_samples=4,
                                             max_turns=turns, seed=1234))
  if variant == "corridor":
    c.model.kwargs = mlc.ConfigDict(dict(size="tiny", max_len=64))
    steps = 80
    c.method.epo = mlc.ConfigDict(grpo.method_config(dict(
        group_size=8, max_new_tokens=3 * turns - 2, regularizer="epo_distance",
        rollout="text_corridor", eps_low=0.2, eps_high=0.28,
        entropy_coef=0.01, temperature=1.0, smooth_coeff=10.0,
        min_ratio=0.5, max_ratio=1.5, out_range_penalty=0.1, gate_turn=0.0,
        max_epochs=float(steps), history_turns=float(turns)),
        extra=epo_lib.EXTRA))
    c.schedule.update(name="constant", learning_rate=1e-3)
    c.train.update(batch_size=8, steps=steps, log_every_steps=5)
    # smoke off for the suite's time budget; one EPO iteration through the
    # train step is tested in tests/algos/rl/test_evol_rl_epo_step.py
    c.smoke.enabled = False
  else:
    c.model.kwargs = mlc.ConfigDict(dict(size="qwen2_0.5b", max_len=4096,
                                         remat=True))
    c.method.epo = mlc.ConfigDict(grpo.method_config(dict(
        group_size=8, max_new_tokens=3 * turns - 2, regularizer="epo",
        rollout="text_corridor", eps_low=0.2, eps_high=0.2,
        entropy_coef=0.001, temperature=1.0, smooth_coeff=1.0,
        min_ratio=0.0, max_ratio=2.0, out_range_penalty=0.1, gate_turn=8.0,
        max_epochs=150.0, history_turns=float(turns)),
        extra=epo_lib.EXTRA))
    c.schedule.update(name="constant", learning_rate=5e-6)
    c.train.update(batch_size=16, steps=150, log_every_steps=1)
    c.smoke.enabled = False
  c.study.arms = {
      "GRPO": "method.epo.regularizer=none,method.epo.entropy_coef=0.0",
      "GRPO+entropy": "method.epo.regularizer=none",
      "GRPO+EPO": ""}
  c.study.seeds = (0, 1, 2)
  c.study.metrics = METRICS
  c.study.artifacts = "experiments.epo.figures:artifacts"
  return c
