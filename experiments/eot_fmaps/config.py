"""EOT-fmaps: functional-map baseline vs + sliced-Wasserstein loss, each
with and without test-time entropic-OT refinement.

Paper: Le et al., "Integrating Efficient Optimal Transport and Functional
Maps For Unsupervised Shape Correspondence Learning", CVPR 2024
(arXiv:2403.01781); official code Tungthanhlee/EOT-Correspondence.

Variants (`--config=experiments/eot_fmaps/config.py:<variant>`):
  synthetic  (default) CPU, minutes: procedurally deformed, vertex-permuted
             blobs (162 vertices, 20 eigenvectors, 32 WKS channels), 200
             training pairs from 12 train shapes, 6 test pairs from 4 test
             shapes, per seed.
  synthetic_long  the same with 1500 training pairs (about 7x the time).
  faust_r    the official FAUST_r recipe (200 eigenvectors, 128 WKS, 256-d
             features, 30 epochs of the 80 x 80 training pairs, refinement
             15 steps). Needs the preprocessed data under
             --config.eot.benchmark_root (off/, corres/). One GPU.

Each arm trains one network per seed; the runner evaluates it without and
with refinement, so the table has four rows.

Examples:
  regjax run eot_fmaps --seeds=0,1,2
  regjax run eot_fmaps --config=experiments/eot_fmaps/config.py:faust_r \
      --config.eot.benchmark_root=/data/FAUST_r --seeds=0
"""

from common import config as config_lib

VARIANTS = ("synthetic", "synthetic_long", "faust_r")


def get_config(variant: str = "synthetic"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown eot_fmaps variant {variant!r}; allowed: "
                     f"{VARIANTS}")
  c = config_lib.base_config()
  c.experiment = "eot_fmaps"
  c.runner = "experiments.eot_fmaps.run"
  c.data.name = "synthetic_blobs"
  c.method.name = "eot_fmaps"
  # options/train/faust.yaml: SURFMNet (bij 1, orth 1, lap 0) + alignment 1
  # + SW 100 (L = 200, p = 2); Similarity tau 0.07; RegularizedFMNet
  # lambda 100, resolvant gamma 0.5.
  c.method.eot_fmaps = dict(w_bij=1.0, w_orth=1.0, w_lap=0.0, w_align=1.0,
                            w_sw=100.0, tau=0.07, lmbda=100.0, gamma=0.5)
  c.eot = dict(
      dataset="synthetic",        # synthetic | FAUST_r | SCAPE_r | SHREC19_r
      benchmark_root="",
      num_train_shapes=12, num_test_shapes=4, mesh_level=2,
      deform_strength=1.0, data_seed=1000,   # + the run's seed
      num_evecs=20, wks_count=32,
      width=64, out_dim=64, num_blocks=3,
      # Official L = 200; 64 on CPU (the sort of [n, L] dominates a step).
      num_projections=64, p=2.0,
      # options/test/faust.yaml: refine 15 steps, Adam 1e-3, clip 1.0;
      # utils/sinkhorn_util.sinkhorn_OT: sigma 0.1, 10 iterations.
      refine_steps=15, refine_lr=1e-3, refine_clip=1.0,
      sinkhorn_sigma=0.1, sinkhorn_iters=10,
      max_test_pairs=6)
  c.optim.update(name="adamw", weight_decay=0.0, clip_grad_norm=0.0)
  c.schedule.update(name="cosine", learning_rate=1e-3)
  c.train.update(steps=200, log_every_steps=100, tensorboard=False)
  c.study.arms = {"fmap": "method.eot_fmaps.w_sw=0.0",
                  "fmap+SW": "method.eot_fmaps.w_sw=100.0"}
  c.study.seeds = (0, 1, 2)
  c.study.metrics = ("geo_error",)
  c.smoke.enabled = variant == "synthetic"
  if variant == "synthetic_long":
    c.train.update(steps=1500, log_every_steps=250)
  if variant == "faust_r":
    c.data.name = "FAUST_r"
    c.eot.update(dataset="FAUST_r", num_evecs=200, wks_count=128, width=128,
                 out_dim=256, num_blocks=4, num_projections=200,
                 max_test_pairs=190)
    c.train.update(steps=30 * 80 * 80, log_every_steps=200)
    c.study.seeds = (0,)
  return c
