"""B-MTARD vs natural training, PGD-AT and single-teacher ARD.

Paper: Mitigating Accuracy-Robustness Trade-off via Balanced Multi-Teacher
Adversarial Distillation, Zhao, Wang, Wei, IEEE TPAMI 2024,
arXiv:2306.16170; code zhaoshiji123/MTARD-extension (and the ECCV'22
MTARD, zhaoshiji123/MTARD).

Protocol `distill` (common/protocols/distill.py): per seed, a clean teacher
(cross-entropy) and a robust teacher (PGD-AT) are trained once, frozen, and
handed to the student's step. Arms: natural training, PGD-AT, ARD (robust
teacher only, official alpha 1, T 30), MTARD with fixed temperatures (the
ECCV rule, `temp_lr=0`) and B-MTARD (entropy-balanced temperatures and the
normalized loss balance). Evaluation `robust_classification`: clean, FGSM
and PGD-20 accuracy.

Variants (`--config=experiments/mtard/config.py:<variant>`):
  digits   (default) CPU, minutes: MLP 256-256 on the 8x8 digits in [0, 1]
           pixels (no normalisation, as the official code), eps 0.3 (the
           MNIST radius: the digits are near-binary; at eps 0.1 and 0.2
           PGD-AT is *more* accurate on clean digits than natural
           training, so there is no trade-off to mitigate), training
           PGD-10 of eps/4 steps, evaluation PGD-20 of eps/4 steps; 60
           epochs with the official 300-epoch milestones scaled (x0.1 at
           72%, 87%, 95%).
  digits_klsum  the two MTARD arms with the KL summed over classes
           instead of the official mean over classes (a gradient x10):
           under SGD exactly the same as lr x10 and weight decay /10, which
           is how it is set (the teachers keep lr 0.1 / wd 2e-4). The
           official 1/C factor leaves the digits students under-trained on
           the adversarial term in 60 epochs.
  cifar10  the official CIFAR-10 recipe (resnet18_mtard_cifar10.py);
           teachers of the student's architecture here (the official ones
           are a TRADES WRN-34-10 and a clean ResNet-56): needs TFDS
           cifar10 under --config.data.data_dir and a GPU.

Examples:
  regjax run mtard --seeds=0,1,2
  regjax run mtard --config=experiments/mtard/config.py:cifar10 \
      --config.data.data_dir=/data/tfds --seeds=0
"""

from algos.adversarial import ard
from algos.adversarial import mtard
from algos.adversarial import pgd_at
from common.eval import robust
from common.protocols import distill

VARIANTS = ("digits", "digits_klsum", "cifar10")

# Fractions of the official 300 epochs at which the learning rate and the
# balance rates drop x0.1 (epochs 215, 260, 285).
_MILESTONES = (215 / 300, 260 / 300, 285 / 300)


def _attack(eps: float, step: float, steps: int) -> dict:
  return dict(eps=eps, step_size=step, attack_steps=steps)


def get_config(variant: str = "digits"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown mtard variant {variant!r}; allowed: "
                     f"{VARIANTS}")
  c = distill.base_config()
  c.experiment = "mtard"
  if variant.startswith("digits"):
    eps, epochs = 0.3, 60
    train_attack, eval_step = _attack(eps, eps / 4, 10), eps / 4
  else:
    eps, epochs = 8 / 255, 300
    train_attack, eval_step = _attack(eps, 2 / 255, 10), 0.003
  milestones = tuple(round(f * epochs, 1) for f in _MILESTONES)
  c.method.name = "mtard"
  c.method.cross_entropy = dict(label_smoothing=0.0)
  c.method.pgd_at = dict(pgd_at.DEFAULTS, **train_attack)
  c.method.ard = dict(ard.DEFAULTS, **train_attack)   # alpha 1, T 30
  c.method.mtard = dict(mtard.DEFAULTS, **train_attack,
                        rate_decay_epochs=milestones)
  c.teachers = dict(natural=("method.name=cross_entropy",),
                    robust=("method.name=pgd_at",))
  c.eval.name = "robust_classification"
  c.eval.robust = robust.default_config()
  c.eval.robust.update(eps=eps, step_size=eval_step, pgd_steps=20)
  # Official: SGD 0.1, momentum 0.9, weight decay 2e-4, batch 128.
  c.optim.update(name="sgd", momentum=0.9, nesterov=False,
                 weight_decay=2e-4, weight_decay_mask="all")
  c.schedule.update(name="piecewise", learning_rate=0.1, decay_factor=0.1,
                    boundaries_epochs=milestones)
  c.study.arms = {
      "Natural": "method.name=cross_entropy",
      "PGD-AT": "method.name=pgd_at",
      "ARD": "method.name=ard",
      "MTARD (fixed T)": "method.name=mtard,method.mtard.temp_lr=0.0",
      "B-MTARD": "method.name=mtard",
  }
  c.study.name = variant
  c.study.metrics = ("clean_acc", "fgsm_acc", "pgd20_acc")
  c.study.metric_labels = dict(clean_acc="clean %", fgsm_acc="FGSM %",
                               pgd20_acc="PGD-20 %")
  c.study.formats = dict(clean_acc=".2f", fgsm_acc=".2f", pgd20_acc=".2f")
  c.study.artifacts = "experiments.mtard.per_seed:artifacts"

  if variant.startswith("digits"):
    c.data.update(name="digits", crop_padding=0, flip=False, mean=(0.0,),
                  std=(1.0,))
    c.model.name = "mlp"
    c.model.kwargs = dict(hidden_sizes=(256, 256))
    c.train.update(batch_size=64, num_epochs=epochs, eval_batch_size=360,
                   log_every_steps=22, eval_every_epochs=0,
                   checkpoint_every_steps=1000, tensorboard=False)
    c.study.seeds = (0, 1, 2)
    c.smoke.enabled = variant == "digits"
    if variant == "digits_klsum":
      c.optim.weight_decay = 2e-4 / 10
      c.schedule.learning_rate = 0.1 * 10
      pin = ("schedule.learning_rate=0.1", "optim.weight_decay=0.0002")
      c.teachers = {k: v + pin for k, v in c.teachers.items()}
      c.study.arms = {
          "MTARD (fixed T), KL x10": c.study.arms["MTARD (fixed T)"],
          "B-MTARD, KL x10": c.study.arms["B-MTARD"]}
  else:
    c.data.update(name="cifar10", crop_padding=4, flip=True,
                  mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    c.model.name = "resnet18"
    c.train.update(batch_size=128, num_epochs=epochs, eval_batch_size=1000,
                   log_every_steps=100, eval_every_epochs=20,
                   checkpoint_every_steps=5000)
    c.study.seeds = (0,)
  teacher_cols = tuple((f"{t} teacher {label}", f"{t}/{m}")
                       for t in ("natural", "robust")
                       for label, m in (("clean %", "clean_acc"),
                                        ("PGD-20 %", "pgd20_acc")))
  c.study.tables = (dict(
      title="the frozen teachers (trained once per seed, shared by the arms)",
      rows=(list(c.study.arms)[-1],), cols=teacher_cols, arm="{row}",
      metric="teacher/{col}", fmt=".2f"),)
  return c
