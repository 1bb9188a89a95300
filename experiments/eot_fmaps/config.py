"""EOT-fmaps: functional-map baseline vs + sliced-Wasserstein loss, each
evaluated without and with test-time entropic-OT refinement.

Paper: Le et al., "Integrating Efficient Optimal Transport and Functional
Maps For Unsupervised Shape Correspondence Learning", CVPR 2024
(arXiv:2403.01781); official code Tungthanhlee/EOT-Correspondence.

Protocol `refine` (`common/protocols/refine.py`): each run trains one
network on generated pairs (`algos/geometry/mesh_pairs.py`, the
"mesh_pairs" generator) with the one train step, then evaluates the test
pairs as they are and after refining the network on each pair alone.

Variants (`--config=experiments/eot_fmaps/config.py:<variant>`):
  synthetic  (default) CPU, minutes: procedurally deformed, vertex-permuted
             blobs (162 vertices, 20 eigenvectors, 32 WKS channels), 200
             training pairs from 12 train shapes, 6 test pairs from 4 test
             shapes, per seed.
  synthetic_long  the same with 1500 training pairs (about 7x the time).

Examples:
  regjax run eot_fmaps --seeds=0,1,2
  regjax run eot_fmaps --seeds=0 --arms=fmap+SW --config.train.steps=50
"""

import ml_collections as mlc

from common.protocols import refine

VARIANTS = ("synthetic", "synthetic_long")


def get_config(variant: str = "synthetic"):
  if variant not in VARIANTS:
    raise ValueError(f"unknown eot_fmaps variant {variant!r}; allowed: "
                     f"{VARIANTS}")
  c = refine.base_config()
  c.experiment = "eot_fmaps"
  c.data.update(name="mesh_pairs", source="generator", input_key="shapes",
                preprocess="none")
  c.meshes = mlc.ConfigDict(dict(
      num_train_shapes=12, num_test_shapes=4, mesh_level=2,
      deform_strength=1.0, data_seed=1000,   # + the run's seed
      num_evecs=20, wks_count=32, max_test_pairs=6))
  c.model.name = "spectral_diffusion_net"
  c.model.kwargs = dict(width=64, out_dim=64, num_blocks=3)
  c.method.name = "eot_fmaps"
  # options/train/faust.yaml: SURFMNet (bij 1, orth 1, lap 0) + alignment 1
  # + SW 100 (L = 200, p = 2); Similarity tau 0.07; RegularizedFMNet
  # lambda 100, resolvant gamma 0.5. L = 64 on CPU (the sort of [n, L]
  # dominates a step). utils/sinkhorn_util.sinkhorn_OT: sigma 0.1, 10
  # iterations (the refinement plans).
  c.method.eot_fmaps = dict(
      w_bij=1.0, w_orth=1.0, w_lap=0.0, w_align=1.0, w_sw=100.0, tau=0.07,
      lmbda=100.0, gamma=0.5, num_projections=64, p=2.0, refine=False,
      sinkhorn_sigma=0.1, sinkhorn_iters=10)
  c.optim.update(name="adamw", weight_decay=0.0, clip_grad_norm=0.0)
  c.schedule.update(name="cosine", learning_rate=1e-3)
  # One pair per step, as the official recipe (batch 1). The evaluator
  # feeds one test pair per device; eval_batch_size only has to divide.
  c.train.update(batch_size=1, steps=200, eval_batch_size=8,
                 eval_every_epochs=0, log_every_steps=100,
                 checkpoint_every_steps=100, tensorboard=False)
  c.eval.name = "eot_fmaps_geodesic"
  # options/test/faust.yaml: refine 15 steps, Adam 1e-3, clip 1.0.
  c.refine.update(steps=15, learning_rate=1e-3, clip_grad_norm=1.0,
                  method_overrides=("refine=True",))
  c.study.arms = {"fmap": "method.eot_fmaps.w_sw=0.0",
                  "fmap+SW": "method.eot_fmaps.w_sw=100.0"}
  c.study.seeds = (0, 1, 2)
  c.study.metrics = ("geo_error", "refined/geo_error")
  c.study.metric_labels = {
      "geo_error": "geodesic error (x100)",
      "refined/geo_error": "+ refinement: geodesic error (x100)"}
  c.study.formats = {"geo_error": ".2f", "refined/geo_error": ".2f"}
  c.study.name = variant
  c.smoke.enabled = variant == "synthetic"
  if variant == "synthetic_long":
    c.train.update(steps=1500, log_every_steps=250)
  return c
