"""CRReLU vs GELU vs ReLU in a small Vision Transformer.

Paper: A Method on Searching Better Activation Functions (EAFO / CRReLU),
Sun, Wu, Xia, Chang, Dong, Yuan, Chang, Wang, NeurIPS 2024,
arXiv:2405.12954; no official code in our index. The activation:
`common/models/activations.py` (`crrelu(x) = relu(x) + eps x exp(-x^2/2)`,
one learnable eps per layer, init 0.01), chosen by
`config.model.kwargs.activation` in every model that has it (`vit`, `mlp`,
`small_cnn`).

The arms differ only in the MLP activation of the ViT's blocks; the method
is plain cross-entropy and the optimizer DeiT's recipe shrunk to CPU
(AdamW, lr 1e-3 with warmup and cosine, weight decay 0.05 on kernels).

Variants (`--config=experiments/crrelu/config.py:<variant>`):
  digits_mlp  CPU, fast: an MLP (64, 64) on the same digits, 60 epochs
            (the smoke-tested variant: a ViT's compilation alone would
            exceed the test budget; tests/common/models/test_activations.py
            runs the ViT).
  digits    (default) CPU: ViT (2x2 patches, dim 64, depth 4, 4 heads,
            MLP ratio 2) on the embedded 8x8 digits, 50 epochs.
  shapes32  CPU, slower: the same ViT with 4x4 patches on the first 3,000
            shapes32/c10 images (64 tokens), 30 epochs.
  cifar10   full scale: ViT on CIFAR-10 (32x32, 4x4 patches; dim 384,
            depth 12, 6 heads: ViT-S), DeiT-style AdamW recipe, 300 epochs
            (third_party_configs/crrelu/).

Example:
  regjax run crrelu --seeds=0,1,2,3,4
"""

from common.protocols import supervised
from experiments import shapes32_recipe

VARIANTS = ("digits", "digits_mlp", "shapes32", "cifar10")


def get_config(variant: str = "digits"):
  c = supervised.base_config()
  c.experiment = "crrelu"
  c.method.name = "cross_entropy"
  c.model.name = "vit"
  c.model.kwargs = dict(patch_size=2, dim=64, depth=4, num_heads=4,
                        mlp_ratio=2.0, activation="crrelu", pool="cls",
                        dropout=0.0)
  c.eval.name = "classification_crrelu"
  c.optim.update(name="adamw", weight_decay=0.05, weight_decay_mask="kernels",
                 b1=0.9, b2=0.999)
  c.schedule.update(name="cosine", learning_rate=1e-3, warmup_epochs=5.0)
  c.study.arms = {
      "ReLU": "model.kwargs.activation=relu",
      "GELU": "model.kwargs.activation=gelu",
      "CRReLU": "model.kwargs.activation=crrelu",
  }
  c.study.metrics = ("error", "nll", "eps_mean", "eps_max")
  c.study.metric_labels = dict(error="test error (%)", nll="NLL",
                               eps_mean="learned eps (mean over layers)",
                               eps_max="learned eps (max)")
  c.study.formats = dict(eps_mean=".4f", eps_max=".4f")
  c.study.artifacts = "common.study.paired:artifacts"

  if variant in ("digits", "digits_mlp"):
    c.data.update(name="digits", crop_padding=1, flip=False, mean=(0.5,),
                  std=(0.5,))
    c.train.update(batch_size=64, num_epochs=50, eval_batch_size=360,
                   log_every_steps=50, eval_every_epochs=25,
                   checkpoint_every_steps=2000)
    c.study.seeds = (0, 1, 2, 3, 4)
    c.smoke.enabled = variant == "digits_mlp"
    c.smoke.steps = 2
    if variant == "digits_mlp":
      c.model.name = "mlp"
      c.model.kwargs = dict(hidden_sizes=(64, 64), activation="crrelu")
      c.train.update(num_epochs=60, eval_every_epochs=30)
  elif variant == "shapes32":
    shapes32_recipe.apply(c)
    c.model.name = "vit"
    c.model.kwargs = dict(patch_size=4, dim=64, depth=4, num_heads=4,
                          mlp_ratio=2.0, activation="crrelu", pool="cls",
                          dropout=0.0)
    c.schedule.update(name="cosine", learning_rate=1e-3, warmup_epochs=3.0)
    c.train.update(log_every_steps=100, eval_every_epochs=0,
                   checkpoint_every_steps=5000)
    c.study.seeds = (0, 1, 2)
    c.smoke.enabled = False
  elif variant == "cifar10":
    c.data.update(name="cifar10", crop_padding=4, flip=True,
                  mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616))
    c.model.kwargs = dict(patch_size=4, dim=384, depth=12, num_heads=6,
                          mlp_ratio=4.0, activation="crrelu", pool="cls",
                          dropout=0.0)
    # facebookresearch/deit main.py: AdamW lr 5e-4 * batch / 512, wd 0.05,
    # cosine, 5 warmup epochs, label smoothing 0.1, 300 epochs.
    c.optim.weight_decay = 0.05
    c.method.cross_entropy.label_smoothing = 0.1
    c.schedule.update(name="cosine", learning_rate=5e-4 * 512 / 512,
                      warmup_epochs=5.0)
    c.train.update(batch_size=512, num_epochs=300, eval_batch_size=1000,
                   log_every_steps=100, eval_every_epochs=10,
                   checkpoint_every_steps=5000)
    c.study.seeds = (0,)
    c.smoke.enabled = False
  else:
    raise ValueError(f"unknown crrelu variant {variant!r}; allowed: "
                     f"{VARIANTS}")
  return c
