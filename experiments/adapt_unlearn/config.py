"""Adapt-then-Unlearn on a digits GAN: remove one digit from its samples.

Paper: Adapt then Unlearn: Exploring Parameter Space Semantics for
Unlearning in Generative Adversarial Networks, Tiwary et al., TMLR 2025,
arXiv:2309.14054; official code atriguha/Adapt_Unlearn (PyTorch,
StyleGAN2).

Protocol `staged` (`common/protocols/staged.py`), per seed:
  pretrain  a DCGAN-lite on all ten 8x8 digits (`gan_images`), method `gan`
            (shared by every arm of the seed);
  stage     `stage.copies` = 2 adapted models (the official MNIST
            stylegan2_ewc.py trains `no_models = 2`): adaptation to 64
            negatives (pretrained samples classified as the unwanted digit)
            with EWC, each on another draw of negatives (shared by arms);
  run       unlearning from the pretrained GAN on its positives with one
            repulsion loss (NL2, IL2, EL2), or none (the baseline: plain
            fine-tuning on positives).
The evaluator `gan` (`common/eval/gan_eval.py`) measures the class share of
1024 samples and the Frechet distance on the classifier's features, every
`data.kwargs.epoch_size / train.batch_size` = 50 steps.

Variant `cpu` (the only one): minutes on a CPU. There is no full-scale
variant: the paper's setting needs a StyleGAN2 and MNIST, neither of which
is in this repo; `third_party_configs/adapt_unlearn/` lists the official
settings and the overrides that bring this config closest to them (the
`staged` protocol is not yet in `common/protocols/compile_check.py`).

Examples:
  python -m common run adapt_unlearn --seeds=0,1
"""

import ml_collections as mlc

from common.protocols import staged

VARIANTS = ("cpu",)
UNWANTED = 0

_KINDS = (("NL2", "nl2"), ("IL2", "il2"), ("EL2", "el2"))
# The arms change only the unlearning run: the pretraining and adaptation
# runs reset the arm keys, so every arm of a seed shares them (their
# folders are named by their configs' fingerprints).
_SHARED = ("method.adapt_unlearn.repulsion=el2",
           "method.adapt_unlearn.gamma=1.0")


def _m(key: str, value) -> str:
  return f"method.adapt_unlearn.{key}={value}"


def get_config(variant: str = "cpu"):
  if variant not in VARIANTS:
    raise ValueError(f"adapt_unlearn variant {variant!r}; allowed "
                     f"{VARIANTS}")
  c = staged.base_config()
  c.experiment = "adapt_unlearn"
  c.data.update(source="generator", name="gan_images", input_key="z",
                preprocess="none")
  c.data.kwargs = mlc.ConfigDict(dict(image_size=8, latent_dim=32,
                                      epoch_size=3200, eval_examples=1024))
  c.model.name = "gan_generator"
  c.model.kwargs = mlc.ConfigDict(dict(image_size=8, width=32))
  gan_keys = dict(d_lr=0.002, d_b1=0.0, d_b2=0.99, r1=1.0, d_width=32)
  c.method.name = "adapt_unlearn"
  c.method.gan = mlc.ConfigDict(gan_keys)
  c.method.adapt_unlearn = mlc.ConfigDict(dict(
      stage="unlearn", unwanted=UNWANTED, adapt_index=0, candidates=4096,
      num_real=4096, ewc_lambda=0.0, fisher_samples=32, repulsion="nl2",
      gamma=1.0, **gan_keys))
  # StyleGAN2's Adam (betas 0, 0.99) at a constant rate, no decay.
  c.optim.update(name="adamw", b1=0.0, b2=0.99, weight_decay=0.0)
  c.schedule.update(name="constant", learning_rate=0.002)
  c.train.update(batch_size=64, steps=400, eval_every_epochs=1,
                 log_every_steps=50, checkpoint_every_steps=5000,
                 eval_batch_size=256)
  c.eval.name = "gan"
  c.pretrain.overrides = ("method.name=gan", "train.steps=2000",
                          "train.eval_every_epochs=0") + _SHARED
  # Negatives: those among 640 pretrained samples (~64; the official
  # FeedbackData_neg keeps those among 200 StyleGAN2 samples).
  c.stage.update(
      overrides=(_m("stage", "adapt"), _m("candidates", 640),
                 _m("num_real", 640), _m("ewc_lambda", 1e3),
                 "train.steps=200", "train.eval_every_epochs=0") + _SHARED,
      copies=2, index_key="method.adapt_unlearn.adapt_index")

  # gamma = 1: the official MNIST runs (run_file.sh: EL2 gamma 1; README:
  # NL2 gamma 1.2). Our parameter distances are far smaller than a
  # StyleGAN2's, so NL2 also runs with a gamma that gives its gradient a
  # size comparable to the adversarial one.
  arms = {f"{label}, gamma=1": f"{_m('repulsion', kind)},{_m('gamma', 1.0)}"
          for label, kind in _KINDS}
  arms["NL2, gamma=1e4"] = f"{_m('repulsion', 'nl2')},{_m('gamma', 1e4)}"
  arms["positives only (baseline)"] = (f"{_m('repulsion', 'none')},"
                                      "stage.copies=0")
  c.study.arms = arms
  k = UNWANTED
  c.study.metrics = (f"pretrained/class_share/{k}", f"stage/class_share/{k}",
                     f"finetuned/class_share/{k}",
                     f"pretrained/frechet_without_{k}",
                     f"finetuned/frechet_without_{k}",
                     "pretrained/frechet", "finetuned/frechet")
  c.study.metric_labels = {
      f"pretrained/class_share/{k}": f"share of {k}, pretrained",
      f"stage/class_share/{k}": f"share of {k}, adapted",
      f"finetuned/class_share/{k}": f"share of {k}, unlearnt",
      f"pretrained/frechet_without_{k}": f"FD to real non-{k}, pretrained",
      f"finetuned/frechet_without_{k}": f"FD to real non-{k}, unlearnt",
      "pretrained/frechet": "FD to all real, pretrained",
      "finetuned/frechet": "FD to all real, unlearnt"}
  c.study.artifacts = "experiments.adapt_unlearn.figures:artifacts"
  c.study.seeds = (0, 1)
  c.smoke.enabled = True
  # The smoke (one adaptation copy, 3 steps a stage) with smaller banks,
  # Fisher estimate and evaluation: the same programs at smaller shapes.
  c.smoke.overrides = (_m("candidates", 256), _m("num_real", 256),
                       _m("fisher_samples", 4),
                       "data.kwargs.eval_examples=256")

  return c
