"""EVOL-RL vs TTRL: label-free GRPO after SFT on generated arithmetic.

Paper: Evolving Language Models without Labels: Majority Drives Selection,
Novelty Promotes Variation, Zhou et al. 2025, arXiv:2509.15194; code
YujunZhou/EVOL-RL (reward manager `semantic_novelty.py`, script
`examples/labelfree/evol_rl.sh`).

Protocol `lm_rl`: a byte-level transformer is fine-tuned (SFT, shared by
both arms of a seed) on the in-repo `arithmetic` scratchpads (several valid
formats per problem), then trained with GRPO on *unlabelled* training
prompts. The two arms differ only in the reward
(`algos/rl/evol_rl.py`): TTRL's majority vote (1 / 0) or EVOL-RL's
majority sign with a novelty band (hashed byte-trigram embeddings of the
completions stand in for the paper's Qwen3-Embedding-4B). Evaluator
`verifiable`: greedy accuracy, sampled pass@1 / pass@k, token entropy and
distinct completions on held-out prompts (`test`) and one-extra-digit
prompts (`test_ood`).

Variants (`--config=experiments/evol_rl/config.py:<variant>`):
  arith     (default) CPU, minutes per run.
  qwen2.5   the same method on a real checkpoint: Qwen2.5-0.5B from
            `/ckpt/Qwen2.5-0.5B` (`method.<m>.checkpoint`, its tokenizer,
            host answer parser), the paper's GRPO settings from
            third_party_configs/evol_rl; GPU/TPU, no SFT, not run here.

Example:
  python -m common run evol_rl --seeds=0,1,2
"""

import ml_collections as mlc

from algos.rl import evol_rl as evol_rl_lib  # noqa: F401  (registers)
from algos.rl import grpo
from common.protocols import lm_rl

VARIANTS = ("arith", "qwen2.5")

METRICS = ("rl/test/pass@1", "rl/test/pass@8", "rl/test/greedy_acc",
           "rl/test/entropy", "rl/test/distinct",
           "rl/test_ood/pass@1", "rl/test_ood/pass@8",
           "rl/test_ood/entropy", "rl/test_ood/distinct",
           # the shared SFT starting point, on the same prompts
           "sft/test/pass@1", "sft/test/pass@8", "sft/test/entropy",
           "sft/test/distinct")


def _method(**kw) -> mlc.ConfigDict:
  return mlc.ConfigDict(grpo.method_config(
      kw, extra=evol_rl_lib.EXTRA))


def get_config(variant: str = "arith"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; allowed: {VARIANTS}")
  c = lm_rl.base_config()
  c.experiment = "evol_rl"
  c.seed = 0
  c.method.name = "evol_rl"
  if variant == "arith":
    c.data.kwargs = mlc.ConfigDict(dict(size="standard", prompt_len=16,
                                        tasks=("add",)))
    c.model.kwargs = mlc.ConfigDict(lm_rl.ARITHMETIC_MODEL)
    # GRPO as the official script (clip 0.2 / 0.28 clip-high, KL 0.001 to
    # the SFT model, entropy bonus 0, temperature 1), at CPU size
    common = dict(group_size=8, max_new_tokens=40, eps_low=0.2,
                  eps_high=0.28, reference=True, kl_coef=0.001,
                  entropy_coef=0.0, temperature=1.0)
    c.method.evol_rl = _method(reward="evol_rl", **common)
    c.method.ttrl = _method(reward="ttrl", **common)
    c.schedule.update(name="constant", learning_rate=1e-4)
    c.train.update(batch_size=8, steps=100, log_every_steps=5)
    c.eval.verifiable = mlc.ConfigDict(dict(
        splits=("test", "test_ood"), n_samples=8, k=(1, 8),
        max_new_tokens=40, max_prompts=200, temperature=1.0))
    c.sft.update(lm_rl.ARITHMETIC_SFT)
    # smoke off for the suite's time budget: SFT + RL + eval compile for
    # tens of seconds; the reward hooks and the GRPO step are tested in
    # tests/algos/rl/ (test_evol_rl*.py, test_grpo.py)
    c.smoke.enabled = False
  else:
    # Real checkpoint (a save_pretrained directory of Qwen2.5-0.5B, loaded
    # by common/convert/hf_checkpoint.py through `method.<m>.checkpoint`),
    # the paper's GRPO settings (third_party_configs/evol_rl).
    ckpt = "/ckpt/Qwen2.5-0.5B"
    c.data.kwargs = mlc.ConfigDict(dict(size="standard", prompt_len=64,
                                        tasks=("add",), tokenizer=ckpt,
                                        vocab_size=151936))
    c.model.dtype = "bfloat16"
    c.model.kwargs = mlc.ConfigDict(dict(size="qwen2_0.5b", max_len=1088,
                                         remat=True))
    common = dict(group_size=32, max_new_tokens=1024, eps_low=0.2,
                  eps_high=0.28, reference=True, kl_coef=0.001,
                  entropy_coef=0.0, temperature=1.0, parser="host",
                  tokenizer=ckpt, checkpoint=ckpt, eos_id=151643)
    c.method.evol_rl = _method(reward="evol_rl", **common)
    c.method.ttrl = _method(reward="ttrl", **common)
    c.schedule.update(name="constant", learning_rate=5e-7)
    c.train.update(batch_size=8, steps=240, log_every_steps=1)
    c.eval.verifiable = mlc.ConfigDict(dict(
        splits=("test", "test_ood"), n_samples=16, k=(1, 16),
        max_new_tokens=1024, max_prompts=300, temperature=0.6))
    c.sft.enabled = False
    c.smoke.enabled = False
  c.study.arms = {"TTRL": "method.name=ttrl", "EVOL-RL": ""}
  c.study.seeds = (0, 1, 2)
  c.study.metrics = METRICS
  c.study.artifacts = "experiments.evol_rl.figures:artifacts"
  return c
