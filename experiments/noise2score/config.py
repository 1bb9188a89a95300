"""Noise2Score vs the noisy input and a supervised denoiser, three noises.

Paper: Noise2Score: Tweedie's Approach to Self-Supervised Image Denoising
without Clean Images, Kim & Ye, NeurIPS 2021, arXiv:2106.07009; official
code cubeyoung/Noise2Score (PyTorch).

Variants (`--config=experiments/noise2score/config.py:<variant>`):
  cpu    (default) minutes on a CPU: 32x32 grey patches of scikit-learn's
         sample photographs and upsampled digits (`noisy_patches`,
         embedded), a small Noise2Noise U-Net (width 16, depth 2), one
         fixed noisy realisation of the training images, held-out patches.
  bsd68  the paper's grey setting: train on the noisy images of a folder
         (`data_dir/train`: CBSD400 / DIV2K in grey, the official
         Datageneration.ipynb), evaluate on 256x256 crops of
         `data_dir/BSD68` (change `eval_dir` for Set12 or Kodak), the
         official U-Net (width 48, depth 5), Adam 2e-4 (b1 0.5), batch 8,
         the official 22,000-step sigma annealing. One GPU: hours.

Arms: Noise2Score and the supervised reference (same network, clean
targets) for Gaussian sigma = 25, Poisson zeta = 0.01 and Gamma k = 100
(the paper's Table 2 settings). The noisy input is every run's
`psnr_noisy`.

Examples:
  regjax run noise2score --seeds=0,1
  regjax run noise2score --config=experiments/noise2score/config.py:bsd68 \
      --config.data.data_dir=/data/bsd --seeds=0
"""

import ml_collections as mlc

from common.protocols import supervised

VARIANTS = ("cpu", "bsd68")

# (noise, level, AR-DAE sigma_max, sigma_min): the official models/*_model.py
NOISES = (("gaussian", 25.0, 0.05, 0.001), ("poisson", 0.01, 1.0, 0.5),
          ("gamma", 100.0, 0.05, 0.001))
_LABEL = {"gaussian": "Gaussian sigma=25", "poisson": "Poisson zeta=1e-2",
          "gamma": "Gamma k=100"}
# Paper Table 2, BSD68 (grey): Ours / SL with known parameters, Ours with
# unknown parameters.
_PAPER = {"gaussian": (29.12, 29.20, 28.95), "poisson": (30.81, 30.98, 30.63),
          "gamma": (32.67, 32.93, 32.54)}


def _arms(anneal_fraction_steps: int) -> tuple[dict, dict]:
  arms, paper = {}, {}
  for noise, level, s_max, s_min in NOISES:
    data = f"data.kwargs.noise={noise},data.kwargs.level={level}"
    n2s = (f"method.name=noise2score,method.noise2score.noise={noise},"
           f"method.noise2score.level={level},"
           f"method.noise2score.sigma_max={s_max},"
           f"method.noise2score.sigma_min={s_min},"
           f"method.noise2score.anneal_steps={anneal_fraction_steps},{data}")
    arms[f"Noise2Score, {_LABEL[noise]}"] = n2s
    arms[f"supervised, {_LABEL[noise]}"] = (
        f"method.name=denoise_supervised,{data}")
    ours, sl, blind = _PAPER[noise]
    paper[f"Noise2Score, {_LABEL[noise]}"] = dict(psnr=ours,
                                                  psnr_blind=blind)
    paper[f"supervised, {_LABEL[noise]}"] = dict(psnr=sl)
  return arms, paper


def get_config(variant: str = "cpu"):
  if variant not in VARIANTS:
    raise ValueError(f"noise2score variant {variant!r}; allowed {VARIANTS}")
  c = supervised.base_config()
  c.experiment = "noise2score"
  c.eval.name = "denoising"
  c.denoising = mlc.ConfigDict(dict(blind_points=24))
  c.data.update(name="noisy_patches", source="generator", input_key="noisy",
                preprocess="none")
  c.method.name = "noise2score"
  c.method.noise2score = dict(noise="gaussian", level=25.0, sigma_max=0.05,
                              sigma_min=0.001, anneal_steps=22000)
  c.method.denoise_supervised = dict()
  c.model.name = "n2n_unet"
  c.optim.update(name="adamw", weight_decay=0.0, b1=0.5, b2=0.999)
  c.schedule.update(name="constant", learning_rate=2e-4)
  c.study.metrics = ("psnr_noisy", "psnr", "psnr_blind", "level_blind",
                     "ssim_noisy", "ssim", "ssim_blind")
  c.study.metric_labels = dict(
      psnr_noisy="PSNR noisy", psnr="PSNR", psnr_blind="PSNR blind",
      level_blind="blind level (median)", ssim_noisy="SSIM noisy",
      ssim="SSIM", ssim_blind="SSIM blind")
  c.study.formats = dict(psnr_noisy=".2f", psnr=".2f", psnr_blind=".2f",
                         level_blind=".3g")
  c.study.paper_source = ("Table 2 of arXiv:2106.07009, BSD68 grey, known "
                          "parameters (Ours, SL) and unknown (Ours)")
  c.study.artifacts = "experiments.noise2score.figures:artifacts"
  if variant == "cpu":
    steps = 300
    c.data.kwargs = dict(noise="gaussian", level=25.0, patch=32,
                         digits_fraction=0.5, eval_examples=256)
    c.model.kwargs = dict(width=16, depth=2, head=(32, 16))
    c.schedule.learning_rate = 1e-3
    c.train.update(batch_size=16, steps=steps, eval_batch_size=128,
                   log_every_steps=200, eval_every_epochs=0,
                   checkpoint_every_steps=5000, tensorboard=False)
    # The official schedule anneals over 22,000 of its steps; ours over
    # 2/3 of the run, then trains at sigma_min.
    c.method.noise2score.anneal_steps = 2 * steps // 3
    c.study.arms, c.study.paper = _arms(2 * steps // 3)
    c.study.seeds = (0, 1)
    c.smoke.enabled = True
    c.smoke.steps = 2
  else:
    c.data.update(data_dir="")
    c.data.kwargs = dict(images="folder", train_dir="train",
                         eval_dir="BSD68", noise="gaussian", level=25.0,
                         patch=256, eval_examples=68)
    c.model.kwargs = dict(width=48, depth=5)
    c.train.update(batch_size=8, steps=200000, eval_batch_size=8,
                   log_every_steps=500, eval_every_epochs=0,
                   checkpoint_every_steps=5000)
    c.study.arms, c.study.paper = _arms(22000)
    c.study.seeds = (0,)
  return c
