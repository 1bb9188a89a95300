"""Random Teachers: a student distilled from a frozen random teacher.

Paper: Sarnthein, Bachmann, Anagnostidis, Hofmann, "Random Teachers are Good
Teachers", ICML 2023, arXiv 2302.12091; code safelix/dinopl.

Variants (`--config=experiments/random_teachers/config.py:<variant>`):
  digits    (default) CPU, minutes: small CNN encoder + DINO head on the
            8x8 digits (1,437 training images, no augmentation), student
            and teacher probed by a ridge probe on the encoder's embedding.
            Arms: the official centred recipe (`cifar10_distillation.json`:
            tau_t 0.04, tau_s 0.1, centring 0.9, AdamW 1e-3, wd 0.01), the
            README's recipe (`cifar10_distillation_v2.json`: no centring,
            temperatures 1, wd 0), the same on Gaussian-noise inputs with
            the digits' pixel statistics (probed on digits), the
            student-initialisation sweep (teacher + eps * fresh init, eps in
            0 / 0.1 / 1, alpha 1/2, and an independent init) and DINO's
            EMA teacher on the same un-augmented inputs. Not a test of the
            claim: the raw-pixel probe is already at 93.6 %.
  shapes32  CPU: the 6-layer ResNet encoder of experiments/shapes32_recipe.py
            + a DINO head on 3,000 procedural 32x32 shapes, 10 epochs (470
            steps), same arms; probe on the 10,000 test images.
  shapes32_long  the same for 30 epochs.
  cifar10   the official CIFAR-10 setting (`third_party_configs/
            random_teachers/`): ResNet-18 encoder, head 2048-2048-256-65536,
            batch 256, 100 epochs. Needs TFDS cifar10 under data_dir.

Examples:
  regjax run random_teachers --seeds=0,1,2
"""

from common.protocols import supervised
from experiments import shapes32_recipe

VARIANTS = ("digits", "shapes32", "shapes32_long", "cifar10")

# Gaussian noise with the digits training split's pixel mean and std
# (uint8 units: 77.9, 95.9; measured on the 1,437 training images).
_DIGITS_NOISE = dict(height=8, width=8, channels=1, distribution="gaussian",
                     mean=77.9, std=95.9, num_classes=10, epoch_size=1437)
_NOISE = ("data.source=generator,data.name=random_images,"
          "eval.probe_data=digits")
_V2 = ("method.random_teachers.centering=False,"
       "method.random_teachers.student_temp=1.0,"
       "method.random_teachers.teacher_temp=1.0,optim.weight_decay=0.0")


def _arms() -> dict[str, str]:
  eps = lambda e: f"method.random_teachers.init_eps={e}"
  # The paper's locality sweep: (1 - alpha) teacher + alpha fresh,
  # variance preserving (official s_init='interpolated').
  alpha = lambda a: ("method.random_teachers.init=interpolated,"
                     f"method.random_teachers.init_alpha={a},"
                     "method.random_teachers.var_preserving=True")
  return {
      "random teacher": "",
      "noise inputs": _NOISE,
      "v2 no centring tau 1": _V2,
      "v2 noise inputs": f"{_V2},{_NOISE}",
      "eps 1/10": eps(0.1),
      "eps 1": eps(1.0),
      "alpha 1/2": alpha(0.5),
      "independent init": "method.random_teachers.init=independent",
      "EMA teacher": "method.random_teachers.teacher=ema",
  }


def get_config(variant: str = "digits"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown random_teachers variant {variant!r}; "
                     f"allowed: {VARIANTS}")
  c = supervised.base_config()
  c.experiment = "random_teachers"
  c.method.name = "random_teachers"
  # Official configs/cifar10_distillation.json (the centred DINO recipe).
  c.method.random_teachers = dict(
      teacher="frozen", init="neighborhood", init_eps=0.0, init_alpha=0.0,
      var_preserving=False, centering=True, student_temp=0.1,
      teacher_temp=0.04, center_momentum=0.9, ema_momentum=0.996)
  c.model.name = "dino_net"
  c.optim.update(name="adamw", weight_decay=0.01, weight_decay_mask="kernels",
                 b1=0.9, b2=0.999, eps=1e-8)
  c.schedule.update(name="constant", learning_rate=1e-3)
  # No augmentation: teacher and student see the same full image.
  c.data.update(crop_padding=0, flip=False)
  c.eval = dict(name="linear_probe",
                probe_keys=("features", "teacher_features"),
                probe_data="", probe_train_split="train",
                probe_test_split="test", probe_train_examples=0,
                probe_ridge=1e-3)
  c.study.arms = _arms()
  c.study.metrics = ("probe_acc", "teacher_probe_acc")
  c.study.metric_labels = dict(probe_acc="student probe acc (%)",
                               teacher_probe_acc="teacher probe acc (%)")
  c.study.formats = dict(probe_acc=".1f", teacher_probe_acc=".1f")

  if variant == "digits":
    c.data.update(name="digits", mean=(0.5,), std=(0.5,))
    c.data.kwargs = _DIGITS_NOISE
    c.model.kwargs = dict(base="small_cnn", widths=(16, 32, 64),
                          hidden_dims=(256, 256), bottleneck_dim=64,
                          out_dim=1024)
    c.train.update(batch_size=64, num_epochs=30, eval_batch_size=360,
                   log_every_steps=50, eval_every_epochs=10,
                   checkpoint_every_steps=1000)
    c.study.seeds = (0, 1, 2)
    c.smoke.enabled = True
  elif variant.startswith("shapes32"):
    # The procedural CIFAR-sized stand-in with its CPU recipe's data and
    # 6-layer ResNet encoder (experiments/shapes32_recipe.py), without the
    # recipe's flips: no augmentation.
    shapes32_recipe.apply(c)
    c.data.update(flip=False)
    # Noise at the normalisation's centre and scale (0.5, 0.25).
    c.data.kwargs = dict(_DIGITS_NOISE, height=32, width=32, channels=3,
                         mean=127.5, std=64.0, epoch_size=3000)
    # The noise arm probes on the same 3,000 training images.
    c.eval.probe_train_split = shapes32_recipe.TRAIN_SPLIT
    c.model.kwargs = dict(base=c.model.name, **c.model.kwargs,
                          hidden_dims=(256, 256), bottleneck_dim=64,
                          out_dim=1024)
    c.model.name = "dino_net"
    c.schedule.update(name="constant", learning_rate=1e-3)
    # 10 epochs (470 steps; the official runs 100 epochs of 196 steps):
    # the CPU budget. One probe at the end.
    c.train.update(num_epochs=10, log_every_steps=100, eval_every_epochs=0,
                   checkpoint_every_steps=5000)
    c.study.arms = {k: v.replace("eval.probe_data=digits",
                                 "eval.probe_data=shapes32/c10")
                    for k, v in _arms().items()}
    c.study.seeds = (0, 1)
    if variant == "shapes32_long":   # 3x the steps: does the gap grow?
      c.train.num_epochs = 30
  else:
    c.data.update(name="cifar10", mean=(0.4914, 0.4822, 0.4465),
                  std=(0.247, 0.243, 0.261))
    c.data.kwargs = dict(_DIGITS_NOISE, height=32, width=32, channels=3,
                         mean=120.7, std=64.2, epoch_size=50000)
    c.model.kwargs = dict(base="resnet18", hidden_dims=(2048, 2048),
                          bottleneck_dim=256, out_dim=65536)
    c.train.update(batch_size=256, num_epochs=100, eval_batch_size=1000,
                   log_every_steps=100, eval_every_epochs=10,
                   checkpoint_every_steps=5000)
    c.eval.probe_data = ""
    c.study.arms = {k: v.replace("eval.probe_data=digits",
                                 "eval.probe_data=cifar10")
                    for k, v in _arms().items()}
    c.study.seeds = (0,)
  return c
