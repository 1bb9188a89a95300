"""Softmax-only LMs with and without entropy guidance.

Paper: Entropy-Guided Attention for Private LLMs, Jha & Reagen, AAAI 2025
PPAI workshop, arXiv:2501.03489; code Nandan91/entropy-guided-attention-llm.

One decoder-only transformer (`common/models/transformer.py`) trained by
next-token prediction with the method `entropy_guided_attention`
(`algos/lm/entropy_guided_attention.py`); the arms change the block and
the regulariser's strength only:

  baseline       GPT-2's block: LayerNorm, GELU FFN (reg_coeff 0);
  softmax_only   no normalisation, linear FFN: the only nonlinearity left
                 is the attention softmax (reg_coeff 0);
  softmax_only+wn+EGA  softmax-only with FFN weight normalisation and a
                 learnable FFN scale (the paper's LayerNorm alternative),
                 learnable per-head temperatures and the entropy
                 regulariser (the official coefficient 1e-5, margin 0.2).

The evaluator `attention_entropy` reports held-out loss / perplexity and
each layer's mean normalised attention entropy (1 = uniform over the
visible keys, 0 = one key), with the share of overloaded heads (> 0.8)
in the early half of the layers and of collapsed heads (< 0.2) in the
deep half.

Variants (`--config=experiments/entropy_guided_attention/config.py:<v>`):
  stdlib           (default) CPU: 4 layers x 4 heads, d=64, 128 bytes of
                   CPython-stdlib docstrings.
  codeparrot_gpt2  full scale: the paper's GPT-2 (12 layers x 12 heads,
                   d=768, T=128) on CodeParrot (TFDS-prepared ArrayRecord
                   `codeparrot` in `data_dir`), settings of
                   third_party_configs/entropy_guided_attention.

Examples:
  python -m common run entropy_guided_attention --seeds=0,1
  python -m common run entropy_guided_attention \
      --config=experiments/entropy_guided_attention/config.py:codeparrot_gpt2 \
      --config.data.data_dir=/data/tfds --seeds=0
"""

from experiments import lm_common

VARIANTS = ("stdlib", "codeparrot_gpt2")

# Softmax-only arms at 1e-3: at the baseline's 3e-3 the softmax-only model
# diverged (held-out loss > 88 nats, perplexity inf at step 20, seed 0).
_SOFTMAX_ONLY = ("model.kwargs.norm=none,model.kwargs.ffn=linear,"
                 "schedule.learning_rate=0.001")
_WN = "model.kwargs.ffn_norm=weight,model.kwargs.ffn_scale=True"
_EGA = ("model.kwargs.learn_temperature=True,"
        "method.entropy_guided_attention.reg_coeff=1e-05")
ARMS = {
    "baseline": "method.entropy_guided_attention.reg_coeff=0.0",
    "softmax_only": _SOFTMAX_ONLY
                    + ",method.entropy_guided_attention.reg_coeff=0.0",
    "softmax_only+wn+EGA": _SOFTMAX_ONLY + "," + _WN + "," + _EGA,
}


def get_config(variant: str = "stdlib"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; allowed: {VARIANTS}")
  if variant == "stdlib":
    c = lm_common.lm_config("entropy_guided_attention", size="tiny",
                            seq_len=128, batch_size=16, steps=300,
                            learning_rate=3e-3, warmup_epochs=0.02)
    c.model.kwargs.update(num_layers=4, d_model=64, num_heads=4, d_ff=256)
    c.train.update(eval_batch_size=64, log_every_steps=50)
    c.study.seeds = (0, 1)
    # Smoke off for the suite's time budget: a 2-step run still compiles
    # the step and evaluates the whole validation split (~25 s of CPU);
    # the unit tests run the method's step and the study runs the rest.
    c.smoke.enabled = False
  else:
    # The paper's GPT-2 on CodeParrot (third_party_configs/
    # entropy_guided_attention/README.md): 12 x 12 x 768, context 128.
    c = lm_common.lm_config("entropy_guided_attention",
                            dataset="codeparrot", text_key="content",
                            size="gpt2_124m", seq_len=128, batch_size=256,
                            steps=42_000, learning_rate=6e-4,
                            warmup_epochs=0.0)
    c.model.kwargs.update(dropout=0.0)
    c.model.dtype = "bfloat16"
    c.train.update(param_sharding="fsdp", eval_batch_size=256,
                   log_every_steps=100, checkpoint_every_steps=2000)
    c.study.seeds = (0,)
    c.smoke.enabled = False
  c.model.kwargs.update(norm="layernorm", ffn="gelu", learn_temperature=False,
                        ffn_norm="none", ffn_scale=False)
  c.method.name = "entropy_guided_attention"
  c.method.entropy_guided_attention = dict(reg_coeff=1e-5, tolerance=0.2,
                                           threshold_init=0.5)
  c.eval.name = "attention_entropy"
  c.study.arms = dict(ARMS)
  c.study.artifacts = "experiments.entropy_guided_attention.figures:entropy_figure"
  c.study.metrics = ("loss", "perplexity", "entropy/layer_0",
                     "entropy/layer_1", "entropy/layer_2", "entropy/layer_3",
                     "overload_early", "collapse_deep")
  c.study.metric_labels = {
      "loss": "held-out loss", "overload_early": "overloaded early heads",
      "collapse_deep": "collapsed deep heads"}
  c.study.formats = dict(loss=".4f", perplexity=".3f")
  return c
