"""The `lm_rl` protocol: supervised fine-tuning, then RL with verifiable
rewards, every update through the shared train step.

A run

1. (unless `sft.enabled=False`) trains the SFT model: `config.model` on
   the in-repo `arithmetic` scratchpads (`data.source="text"`, loss on
   completions, method `next_token`; `config.sft` sets size, steps,
   batch, length and learning rate), in
   `<study>/sft/<fingerprint>/seed_<k>` shared by every arm of a seed
   (else `<workdir>/sft`), and scores it with the RL config's evaluator
   (`sft/<metric>`);
2. trains this config with the supervised loop in `<workdir>/rl` from the
   SFT parameters: the data is a generator of prompts
   (`arithmetic_prompts`), the method a GRPO-family `Method` whose
   `value_and_grad` samples, scores and differentiates inside the jitted
   step, so one RL iteration (sample, score, update) is one compiled step
   and every number of the method is traced (`algos/rl/grpo.py`).

Final metrics: `rl/<metric>` and `sft/<metric>` (evaluator `verifiable`:
greedy accuracy, pass@k, entropy, ...). Real checkpoints: `sft.enabled =
False` and the method's section loads them (see third_party_configs).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import types

import jax
import ml_collections as mlc

from common import config as config_lib
from common.eval import evaluators
from common.protocols import Protocol
from common.protocols import RunResult
from common.protocols import finetune
from common.protocols import register_protocol
from common.protocols import runs
from common.protocols import supervised

_SFT_SCORES = "sft_scores_{}.json"     # keyed by the RL config's evaluator

# The CPU studies' base model (evol_rl, aepo): a 4-layer, d 128 byte-level
# transformer (~0.8M parameters) fine-tuned on `arithmetic/add` (30000
# addition problems, three scratchpad formats each) for 1500 steps of 64
# packed rows of 64 tokens (13 min on 2 idle cores). On 200 held-out
# addition prompts it reaches pass@1 0.785 and pass@8 0.995 (8 samples at
# T = 1; experiments/evol_rl/results/arith.md, `sft/` columns): competent
# enough that majority votes and entropy targets mean something (a 2-layer
# d 64 model after 1200 steps on all three tasks solved ~1%). One SFT (`seed=0`) serves every seed and
# arm.
ARITHMETIC_MODEL = dict(size="tiny", max_len=64, num_layers=4, d_model=128,
                        d_ff=512)
ARITHMETIC_SFT = dict(dataset="arithmetic/add", steps=1500, batch_size=64,
                      seq_len=64, learning_rate=3e-3, seed=0)


def base_config() -> mlc.ConfigDict:
  """The supervised schema set up for RL on arithmetic, plus `sft`."""
  c = supervised.base_config()
  c.protocol = "lm_rl"
  c.data.update(name="arithmetic_prompts", source="generator",
                input_key="prompt", preprocess="none")
  c.data.kwargs = mlc.ConfigDict(dict(size="tiny", prompt_len=24))
  c.model.update(name="transformer")
  c.model.kwargs = mlc.ConfigDict(dict(size="tiny", max_len=96))
  c.method = mlc.ConfigDict(dict(name="grpo"))
  c.method.grpo = mlc.ConfigDict(dict(group_size=8, max_new_tokens=48))
  c.optim.update(name="adamw", b1=0.9, b2=0.999, weight_decay=0.01,
                 weight_decay_mask="kernels", clip_grad_norm=1.0)
  c.schedule.update(name="constant", learning_rate=1e-4)
  c.train.update(batch_size=8, steps=100, eval_every_epochs=0,
                 log_every_steps=10, tensorboard=False)
  c.eval = mlc.ConfigDict(dict(name="verifiable"))
  c.eval.verifiable = mlc.ConfigDict(dict(
      splits=("test", "test_ood"), n_samples=8, k=(1, 8),
      max_new_tokens=48, max_prompts=64))
  c.sft = mlc.ConfigDict(dict(
      enabled=True, dataset="arithmetic/tiny", steps=300, batch_size=32,
      seq_len=96, learning_rate=3e-3, warmup_epochs=0.05, dir="",
      seed=-1))             # -1: the run's seed; >= 0: one SFT for all
  return c


def sft_config(config: mlc.ConfigDict) -> mlc.ConfigDict:
  """The supervised config of the SFT run (next-token on scratchpads)."""
  c = supervised.base_config()
  # Not the RL experiment's name: the SFT is a function of `config.sft`,
  # the model and the tokenizer only, so experiments with the same ones
  # have the same fingerprint (a finished SFT folder copied between
  # studies is reused, not retrained).
  c.experiment = "lm_rl_sft"
  s = config.sft
  c.seed = config.seed if s.seed < 0 else s.seed
  c.data.update(name=s.dataset, source="text", input_key="tokens",
                preprocess="none", train_split="train",
                eval_split="validation")
  tok = config.data.kwargs.get("tokenizer", "byte")
  c.data.kwargs = mlc.ConfigDict(dict(tokenizer=tok, seq_len=s.seq_len,
                                      text_key=""))
  c.model = config.model.copy_and_resolve_references()
  c.method = mlc.ConfigDict(dict(name="next_token"))
  c.method.next_token = mlc.ConfigDict(dict(loss="naive"))
  c.optim.update(name="adamw", b1=0.9, b2=0.95, weight_decay=0.1,
                 weight_decay_mask="kernels", clip_grad_norm=1.0)
  c.schedule.update(name="cosine", learning_rate=s.learning_rate,
                    warmup_epochs=s.warmup_epochs)
  c.train.update(batch_size=s.batch_size, steps=s.steps, eval_batch_size=64,
                 log_every_steps=50, eval_every_epochs=0, tensorboard=False)
  c.eval.name = "lm"
  c.lock()
  return c


def sft_dir(config: mlc.ConfigDict, workdir: str) -> str:
  if config.sft.dir:
    return config.sft.dir
  tag = config_lib.fingerprint(sft_config(config))[:12]
  seed = config.seed if config.sft.seed < 0 else config.sft.seed
  return finetune.shared_run_dir(workdir, tag, seed, "sft", "sft")


def validate(config: mlc.ConfigDict) -> None:
  supervised.validate(config)
  if config.data.source != "generator":
    raise config_lib.ConfigError(
        f"config.data.source={config.data.source!r}; lm_rl draws prompts "
        "from a generator (e.g. 'arithmetic_prompts')")
  section = config.method[config.method.name]
  if "group_size" not in section:
    raise config_lib.ConfigError(
        f"config.method.name={config.method.name!r} is not an RL method "
        "of the GRPO family (no group_size); lm_rl trains grpo, aepo, ...")
  if config.sft.enabled:
    supervised.validate(sft_config(config))


def _sft_scores(config, folder, params) -> dict[str, float]:
  """The RL config's evaluator on the SFT parameters, cached in the SFT
  folder per evaluator setting (studies sharing an SFT score it their own
  way; changing `config.eval` re-scores)."""
  evaluator = json.dumps(config.eval.to_dict(), sort_keys=True, default=str)
  key = hashlib.sha256(evaluator.encode()).hexdigest()[:12]
  path = os.path.join(folder, _SFT_SCORES.format(key))
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  from common import models  # pylint: disable=g-import-not-at-top
  from common.data import procedural  # pylint: disable=g-import-not-at-top
  gen = procedural.make(config)
  model = models.get_model(config.model.name, gen.num_classes,
                           dtype=config.model.dtype,
                           **config.model.kwargs.to_dict())
  setup = types.SimpleNamespace(model=model, config=config)
  scores = {k: float(v) for k, v in evaluators.get_evaluator(
      config.eval.name)(setup, types.SimpleNamespace(params=params)).items()}
  if jax.process_index() == 0:
    runs.atomic_write(path, json.dumps(scores, indent=1))
  return scores


def run(config: mlc.ConfigDict, workdir: str, show_progress: bool = True,
        desc: str = "") -> RunResult:
  """SFT (or reuse it), then RL from its parameters; see the docstring."""
  t_start = time.time()
  cached = runs.begin(config, workdir, validate)
  if cached is not None:
    return cached
  rl_dir = os.path.join(workdir, "rl")
  initial, sft_final = None, {}
  if config.sft.enabled:
    pre_cfg = sft_config(config)
    folder = sft_dir(config, workdir)
    pre = supervised.train(pre_cfg, folder, show_progress=show_progress,
                           desc=f"{desc or config.experiment} sft")
    if pre.status != "finished":
      return RunResult(status=pre.status, workdir=workdir, steps=0,
                       final={}, history=[], seconds=time.time() - t_start)
    _, state = supervised.restore(pre_cfg, folder)
    initial = (state.params, state.model_state)
    sft_final = _sft_scores(config, folder, state.params)
  tuned = supervised.train(config, rl_dir, show_progress=show_progress,
                           desc=desc, initial=initial)
  if tuned.status != "finished":
    return RunResult(status=tuned.status, workdir=workdir, steps=tuned.steps,
                     final={}, history=[], seconds=time.time() - t_start)
  runs.write_config(workdir, config)
  final = {**{f"rl/{k}": v for k, v in tuned.final.items()},
           **{f"sft/{k}": v for k, v in sft_final.items()}}
  result = RunResult(status="finished", workdir=workdir, steps=tuned.steps,
                     final=final, history=tuned.history,
                     seconds=time.time() - t_start)
  runs.write_summary(workdir, config, result)
  return result


def smoke(config: mlc.ConfigDict, workdir: str) -> None:
  """`smoke.steps` SFT and RL steps, a tiny evaluation."""
  steps = config.smoke.steps
  config = config_lib.apply_overrides(config, {
      "train.steps": steps, "sft.steps": steps,
      "eval.verifiable.max_prompts": 2, "eval.verifiable.n_samples": 2,
      "eval.verifiable.k": (1, 2), "eval.verifiable.splits": ("test",)})
  result = run(config, workdir, show_progress=False)
  runs.check_smoke(result, steps)


@register_protocol("lm_rl")
def protocol() -> Protocol:
  return Protocol(name="lm_rl", base_config=base_config, validate=validate,
                  run=run, smoke=smoke)
