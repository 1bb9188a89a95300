"""Generalized teacher forcing (GTF) vs BPTT and sparse TF on chaotic DS.

Paper: Hess, Monfared, Brenner, Durstewitz, "Generalized Teacher Forcing for
Learning Chaotic Dynamics", ICML 2023 (PMLR 202); official code
DurstewitzLab/GTF-shPLRNN (Julia). Method: `algos/dynamics/gtf.py`, model
`algos/dynamics/shplrnn.py` (clipped shPLRNN, identity observation
model), data: the `dynamical_system` generator in dataset mode (one
100k-step trajectory with 5% observation noise, windows of 201 steps, as
the official `sample_batch`), evaluation: `dynamics_reconstruction` (free
run over the whole noise-free 100k-step test trajectory: D_stsp, D_H, PE).

Variants:
  lorenz63        CPU study: Lorenz-63, M = 3, H = 50, 8000 steps of batch
                  16 (official: 250k steps, H = 100); arms BPTT (alpha 0),
                  sparse TF (tau 16), GTF with fixed alpha 0.3 (the
                  official scripts' fixed value), adaptive GTF.
  rossler         the same on the Roessler attractor (dt 0.05).
  lorenz63_full   the official settings (settings/defaults.json): H = 100,
                  5000 epochs x 50 batches, lr 1e-3 -> 1e-6 exponentially,
                  aGTF with alpha 1.0, decay 0.999 every 5 batches.

Example:
  regjax run gtf:lorenz63 --seeds=0,1,2
"""

import ml_collections as mlc

from common.protocols import supervised

VARIANTS = ("lorenz63", "rossler", "lorenz63_full")
METRICS = ("d_stsp", "d_h", "pe_20", "max_grad_norm", "mean_grad_norm",
           "alpha")
LABELS = {"d_stsp": "D_stsp", "d_h": "D_H", "pe_20": "PE(20)",
          "max_grad_norm": "max grad norm",
          "mean_grad_norm": "mean grad norm",
          "alpha": "final alpha"}
FORMATS = {"d_stsp": ".3f", "d_h": ".3f", "pe_20": ".2e",
           "max_grad_norm": ".3g", "mean_grad_norm": ".3g", "alpha": ".3f"}
BATCHES_PER_EPOCH = 50   # official batches_per_epoch
BATCH = 16               # official batch_size


def exponential_decay(epochs: int, start: float = 1e-3, end: float = 1e-6):
  """Piecewise-per-epoch form of Flux's ExpDecay from start to end."""
  return (tuple(float(e) for e in range(1, epochs)),
          (end / start) ** (1.0 / epochs))


def arms(fixed_alpha: float, decay: float) -> dict[str, str]:
  adaptive = ("method.gtf.alpha_method=product_upper_bound,"
              f"method.gtf.alpha=1.0,method.gtf.alpha_decay={decay}")
  return {
      "BPTT": "method.gtf.alpha=0.0",
      "sparse TF tau=16": "method.gtf.forcing=stf,method.gtf.tau=16",
      "GTF fixed alpha": f"method.gtf.alpha={fixed_alpha}",
      "aGTF": adaptive,
  }


def _base(system: str, steps: int, hidden: int) -> mlc.ConfigDict:
  c = supervised.base_config()
  c.experiment = "gtf"
  c.data.update(name="dynamical_system", source="generator", input_key="x",
                preprocess="none")
  c.data.kwargs = mlc.ConfigDict(dict(
      system=system, length=201, mode="dataset", dataset_length=100_000,
      obs_noise=0.05, standardise=True,
      epoch_size=BATCHES_PER_EPOCH * BATCH))
  c.model = mlc.ConfigDict(dict(name="shplrnn", dtype="float32"))
  c.model.kwargs = mlc.ConfigDict(dict(latent_dim=3, hidden_dim=hidden,
                                       clipped=True))
  c.method = mlc.ConfigDict(dict(name="gtf"))
  c.method.gtf = mlc.ConfigDict(dict(
      forcing="gtf", alpha_method="constant", alpha=0.0, alpha_decay=0.999,
      alpha_update_interval=5, tau=16, latent_reg=1e-5))
  # Official: RAdam; the harness has Adam(W), used without weight decay.
  c.optim.update(name="adamw", weight_decay=0.0)
  boundaries, factor = exponential_decay(steps // BATCHES_PER_EPOCH)
  c.schedule.update(name="piecewise", learning_rate=1e-3,
                    boundaries_epochs=boundaries, decay_factor=factor)
  c.train.update(batch_size=BATCH, steps=steps, eval_batch_size=BATCH,
                 log_every_steps=100, eval_every_epochs=0,
                 checkpoint_every_steps=1000, tensorboard=False)
  c.eval = mlc.ConfigDict(dict(name="dynamics_reconstruction",
                               length=100_000, n_bins=30, scaling=1.0,
                               smoothing=20.0))
  c.study.seeds = (0, 1, 2)
  c.study.metrics = METRICS
  c.study.metric_labels = LABELS
  c.study.formats = FORMATS
  c.smoke.enabled = True
  c.smoke.steps = 3
  return c


def get_config(variant: str = "lorenz63") -> mlc.ConfigDict:
  if variant not in VARIANTS:
    raise ValueError(f"variant {variant!r}; allowed: {VARIANTS}")
  if variant == "lorenz63_full":
    c = _base("lorenz63", 5000 * BATCHES_PER_EPOCH, 100)
    c.method.gtf.update(alpha_method="product_upper_bound", alpha=1.0)
    c.study.arms = arms(0.3, 0.999)
    c.smoke.enabled = False
    c.train.update(log_every_steps=1250, checkpoint_every_steps=12500,
                   eval_every_epochs=25)    # official scalar_saving_interval
  else:
    system = "lorenz63" if variant == "lorenz63" else "rossler"
    c = _base(system, 8000, 50)
    # 8000 steps are 1600 alpha updates: the official decay 0.999 would
    # leave alpha at 0.2 of its start, so the CPU runs decay faster.
    c.study.arms = arms(0.3, 0.995)
    if variant == "rossler":
      c.smoke.enabled = False   # the same model, method and step as lorenz63
      c.study.seeds = (0, 1)
  c.study.name = variant
  c.study.artifacts = "experiments.gtf.figures:attractors"
  return c
