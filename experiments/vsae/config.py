"""TopK SAE vs the TopK vSAE (variational sparse autoencoder).

Paper: Analysis of Variational Sparse Autoencoders, Baker & Li, 2025,
arXiv:2509.22994. Credited code (not confirmed official):
ZachData/SPAR-Variational-Sparse-Autoencoders (PyTorch).

Every arm trains the `topk_sae` model (`algos/interpretability/vsae.py`)
through the supervised protocol on a procedural source and is scored by
the evaluator `sae` (`algos/interpretability/sae_eval.py`).

Variants (`--config=experiments/vsae/config.py:<variant>`):
  toy       (default) CPU, minutes: 512 sparse ground-truth features in 64
            dimensions (1.5% active, magnitudes U[0, 1]; generator
            `toy_superposition`), dictionaries of 512 latents, k = 8.
  tinylm    CPU: residual-stream activations of the repo's tiny LM
            (`experiments/lm_common.py:stdlib_tiny`, d = 64), saved by
            `experiments/vsae/extract_lm.py` under `runs/vsae_acts/`
            (generator `activation_rows`), dictionaries of 256, k = 16.
  pythia70m the credited code's setting: Pythia-70M layer-3 residual stream
            (d = 512) as an `.npy` array `[N, 512]` under `data.data_dir`,
            dictionary 2,048, k = 163, kl_coeff 500; extracting Pythia
            activations (HF weights) is not in this repo.

Examples:
  regjax run vsae --seeds=0,1,2
  regjax run vsae --config=experiments/vsae/config.py:tinylm --seeds=0,1,2
  regjax run vsae --config=experiments/vsae/config.py:pythia70m \
      --config.data.data_dir=/data/pythia70m_resid --seeds=0
"""

import ml_collections as mlc

from common.protocols import supervised

VARIANTS = ("toy", "tinylm", "pythia70m")

_VSAE = "method.name=vsae_topk,model.kwargs.variance=learned"
_ARMS = {
    "TopK SAE": "method.name=topk_sae,model.kwargs.variance=none",
    # Sampling with a learned variance but no KL term: the noise alone.
    "vSAE beta=0": f"{_VSAE},method.vsae_topk.beta=0.0",
    "vSAE beta=1e-3": f"{_VSAE},method.vsae_topk.beta=0.001",
    "vSAE beta=1e-2": f"{_VSAE},method.vsae_topk.beta=0.01",
    "vSAE beta=1e-1": f"{_VSAE},method.vsae_topk.beta=0.1",
    "vSAE beta=1": f"{_VSAE},method.vsae_topk.beta=1.0",
    # KL on the k selected latents only (credited vsae_topk_masked_kl.py).
    "vSAE beta=1e-2 KL on selected": (f"{_VSAE},method.vsae_topk.beta=0.01,"
                                      "method.vsae_topk.kl_on=selected"),
    # Variance fixed to 1 (the authors' blog post).
    "vSAE beta=1e-2 unit variance": ("method.name=vsae_topk,"
                                     "model.kwargs.variance=unit,"
                                     "method.vsae_topk.beta=0.01"),
    # The credited code's default (var_flag=0): no sampling, KL = |mu|^2/2.
    "vSAE beta=1e-2 fixed variance, no sampling": (
        "method.name=vsae_topk,model.kwargs.variance=fixed,"
        "method.vsae_topk.beta=0.01"),
}

_LM_ARMS = ("TopK SAE", "vSAE beta=0", "vSAE beta=1e-2", "vSAE beta=1",
            "vSAE beta=1e-2 fixed variance, no sampling")


def get_config(variant: str = "toy") -> mlc.ConfigDict:
  c = supervised.base_config()
  c.experiment = "vsae"
  c.data.update(name="toy_superposition", source="generator", input_key="x",
                preprocess="none")
  c.model = mlc.ConfigDict(dict(name="topk_sae", dtype="float32"))
  c.model.kwargs = mlc.ConfigDict(dict(dict_size=512, k=8, variance="none",
                                       normalize_decoder=True,
                                       log_var_init=-2.0))
  c.method = mlc.ConfigDict(dict(name="topk_sae"))
  # Gao et al. / credited code: AuxK weight 1/32 on d/2 dead latents.
  aux = dict(auxk_alpha=1 / 32, dead_window=8192.0, aux_k=32)
  c.method.topk_sae = mlc.ConfigDict(dict(aux))
  c.method.vsae_topk = mlc.ConfigDict(dict(
      aux, beta=1.0, kl_warmup_steps=300.0, kl_on="all"))
  # Credited code: Adam, gradient norm clipped to 1.
  c.optim.update(name="adamw", weight_decay=0.0, clip_grad_norm=1.0)
  c.schedule.update(name="constant", learning_rate=1e-3)
  c.eval.name = "sae"
  c.train.update(batch_size=256, steps=3000, eval_batch_size=2048,
                 log_every_steps=250, eval_every_epochs=0,
                 checkpoint_every_steps=3000, tensorboard=False)
  c.study.arms = _ARMS
  c.study.seeds = (0, 1, 2)
  c.study.metrics = ("nmse", "fve", "dead_frac", "l0", "mmcs", "recovered",
                     "dec_overlap", "act_corr")
  c.study.metric_labels = dict(
      nmse="normalised MSE", fve="frac. variance explained",
      dead_frac="dead latents", l0="L0", mmcs="GT recovery (MMCS)",
      recovered="GT features cos>0.9", dec_overlap="decoder overlap",
      act_corr="|activation corr.|")
  c.study.formats = {m: ".3f" for m in c.study.metrics}
  c.study.paper_source = ""   # the paper has no toy-data numbers
  if variant == "toy":
    c.data.kwargs = mlc.ConfigDict(dict(num_features=512, dim=64,
                                        p_active=0.015, num_eval=8192))
    c.smoke.enabled = True
    c.smoke.steps = 3
  elif variant == "tinylm":
    # Residual stream after block 1 of the repo's tiny LM (d = 64), saved
    # by experiments/vsae/extract_lm.py; dictionary 4 x d as the credited
    # code (`dict_size_multiple`), k = 16.
    c.data.update(name="activation_rows", data_dir="runs/vsae_acts")
    c.data.kwargs = mlc.ConfigDict(dict(path="tinylm_resid.npy",
                                        eval_fraction=0.05, num_eval=8192))
    c.model.kwargs.update(dict_size=256, k=16)
    c.study.arms = {k: v for k, v in _ARMS.items() if k in _LM_ARMS}
    c.study.metrics = ("nmse", "fve", "dead_frac", "l0", "dec_overlap",
                       "act_corr")
    c.study.name = "results_tinylm"
    c.study.seeds = (0, 1)
    c.train.steps = 2000
  elif variant == "pythia70m":
    # The credited code's train_vsae_topk.py: pythia-70m-deduped
    # blocks.3.hook_resid_post (d = 512), dictionary 4 x d, k = int(0.08 *
    # 2048), Adam 5e-4, batch 1,024, 10,000 steps, kl_coeff 500 with a KL
    # warm-up over 10% of the steps, AuxK 1/32 on d / 2 latents,
    # var_flag 0 (variance "fixed").
    c.data.update(name="activation_rows", data_dir="")
    c.data.kwargs = mlc.ConfigDict(dict(path="pythia70m_resid.npy",
                                        eval_fraction=0.02, num_eval=65536))
    c.model.kwargs.update(dict_size=2048, k=163)
    c.method.topk_sae.update(aux_k=256, dead_window=1e7)
    c.method.vsae_topk.update(aux_k=256, dead_window=1e7, beta=500.0,
                              kl_warmup_steps=1000.0)
    c.schedule.learning_rate = 5e-4
    c.train.update(batch_size=1024, steps=10000, eval_batch_size=4096,
                   checkpoint_every_steps=2000)
    c.study.arms = {
        "TopK SAE": _ARMS["TopK SAE"],
        "vSAE fixed variance (credited default)":
            "method.name=vsae_topk,model.kwargs.variance=fixed",
        "vSAE learned variance": _VSAE,
    }
    c.study.metrics = ("nmse", "fve", "dead_frac", "l0", "dec_overlap",
                       "act_corr")
    c.study.name = "results_pythia70m"
    c.study.seeds = (0,)
  else:
    raise ValueError(f"unknown variant {variant!r}; allowed: {VARIANTS}")
  return c
