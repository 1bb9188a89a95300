"""GIFD vs latent-only and pixel-space gradient inversion, in and out of
the generator's distribution.

Paper: GIFD: A Generative Gradient Inversion Method with Feature Domain
Optimization, Fang et al., ICCV 2023, arXiv:2308.04699; official code
ffhibnese/GIFD_Gradient_Inversion_Attack (PyTorch; settings mirrored in
third_party_configs/gifd/).

Protocol `probe` (common/protocols/probe.py): two models are trained
through the harness and shared by every arm of a seed,

* `generator`: the DCGAN-lite generator of `common/models/gan.py` trained
  with the non-saturating GAN + R1 (`algos/generative/gan.py`) on the
  8x8 digits of classes 0-4 only (`gan_images`, train split);
* `victim`: a small BatchNorm CNN (`small_cnn`, widths 16/32/64) trained with
  cross-entropy on all ten digits (TFDS `digits`, inputs in [-1, 1]) (used when `gifd.victim_state=trained`;
  at `init` its initial parameters of the seed are attacked),

then the `gifd_inversion` probe (experiments/gifd/inversion.py) attacks
the gradients of held-out test digits: classes 0-4 (in distribution) and
5-9 (out of distribution), with pixel-space Inverting Gradients,
latent-only search and GIFD (latent, then the generator's layer-1 and
layer-2 features within l1 balls).

Variants: `cpu` (default; minutes). The paper's full scale (BigGAN /
StyleGAN2 on ImageNet / FFHQ, ResNet-18 victims) is not built here: see
third_party_configs/gifd/README.md.

Examples:
  regjax run gifd --seeds=0,1
"""

import ml_collections as mlc

from common.protocols import probe
from experiments.gifd import inversion

VARIANTS = ("cpu",)

_ATTACK_LABELS = {"pixel": "pixel (IG)", "latent": "latent only",
                  "gifd": "GIFD"}
def get_config(variant: str = "cpu"):
  if variant not in VARIANTS:
    raise ValueError(f"gifd variant {variant!r}; allowed {VARIANTS}")
  c = probe.base_config()
  c.experiment = "gifd"
  # The supervised sections train the generator; the victim overrides them.
  c.data.update(name="gan_images", source="generator", input_key="z",
                preprocess="none")
  c.data.kwargs = dict(image_size=8, latent_dim=32, classes=(0, 1, 2, 3, 4),
                       eval_examples=256)
  c.model.update(name="gan_generator")
  c.model.kwargs = dict(image_size=8, channels=1, width=32)
  c.method.name = "gan"
  c.method.gan = dict(r1=10.0)
  c.optim.update(name="adamw", b1=0.0, b2=0.99, weight_decay=0.0)
  c.schedule.update(name="constant", learning_rate=0.002)
  c.train.update(batch_size=64, steps=2000, eval_batch_size=256,
                 log_every_steps=500, eval_every_epochs=0,
                 checkpoint_every_steps=5000, tensorboard=False)
  c.eval.name = "none"
  c.probe.name = "gifd_inversion"
  c.probe.models.generator = ()
  c.probe.models.victim = inversion.VICTIM
  c.gifd = inversion.section()
  c.study.metrics = ("labels/in", "labels/ood", "gifd_wins/in",
                     "gifd_wins/ood", "stage/in", "stage/ood")
  c.study.metric_labels = {
      "labels/in": "iDLG labels right in", "labels/ood":
      "iDLG labels right ood", "gifd_wins/in": "GIFD PSNR > latent in",
      "gifd_wins/ood": "GIFD PSNR > latent ood", "stage/in":
      "GIFD best stage in", "stage/ood": "GIFD best stage ood"}
  c.study.formats = {m: ".2f" for m in c.study.metrics}
  c.study.tables = tuple(
      dict(title=f"{title}: mean over target images",
           cols=tuple((f"{_ATTACK_LABELS[a]} {d}", f"{kind}/{d}/{a}", fmt)
                      for d in ("in", "ood") for a in _ATTACK_LABELS),
           arm="{row}", metric="{col}", fmt=fmt)
      for title, kind, fmt in (("PSNR (dB)", "psnr", ".2f"),
                               ("SSIM", "ssim", ".3f"),
                               ("matching loss 1 - cos", "match", ".3f")))
  c.study.arms = {
      "init victim b1": "",
      "init victim b4": "gifd.batch_size=4",
      "trained victim b1": "gifd.victim_state=trained",
  }
  c.study.artifacts = "experiments.gifd.figures:artifacts"
  c.study.seeds = (0, 1)
  c.smoke.enabled = True
  c.smoke.steps = 2
  return c
