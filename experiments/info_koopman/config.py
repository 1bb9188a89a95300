"""info_koopman: Koopman autoencoder, plain vs the information Lagrangian.

Paper: Information Shapes Koopman Representation, arXiv:2510.13025; official
code Wenxuan52/InformationKoopman (weights from its `cylinder.yaml` /
`dam.yaml` and `trainer.py`; see `third_party_configs/info_koopman/`).

Every run trains `koopman_ae` with the Method `info_koopman` on the shared
step, on windows of x_0..x_16 (the official seq_length 16, plus the target
step) drawn on device by the shared generator `dynamical_system`
(standardised states, a fresh trajectory per window). The evaluator
`koopman_rollout` (`evaluate.py`) scores held-out trajectories. Arms are
"<system>: <arm>":
  plain KAE        alpha = beta = 0 (the baseline);
  Lagrangian       alpha = 2, beta = 0.1, entropy maximised (the paper's
                   stated sign);
  official sign    alpha = 2, loss + 0.1 S_vN (the official trainer's sign);
  MI only          alpha = 2, beta = 0 (the collapse the paper predicts).

Variants (`--config=experiments/info_koopman/config.py:<variant>`):
  cpu   (default) Lorenz-63 (dt 0.01) and Van der Pol (dt 0.05), latent 16,
        MLP 64-64, batch 64, 2000 Adam steps: minutes per run on 2 cores.
  long  the same systems and arms with the official optimisation budget
        shape: 300 "epochs" of 100 steps, StepLR(20 epochs, 0.8), batch 16
        (hours on CPU, minutes on one GPU).
  least_squares  `cpu` with the official operator (K refitted per batch
        by detached ridge regression, ridge 0.1, one-step losses; the
        test-time K is the last epoch's mean): arms plain KAE and
        Lagrangian. `cpu` keeps the learned K and multi-step loss (its
        config has no `operator` key, so its stored runs stay valid).
  cylinder, dam  the paper's own released experiments: CFDBench Karman
        vortex / dam-break fields `[2, 64, 64]` (generator `cfd_fields`,
        files `<split>` .npy under `data.data_dir`, not shipped), the
        official CNN encoder/decoder (`architecture=field_cnn`, latent
        512), the official least-squares operator, seq_length 16 / 12,
        batch 16 / 12, 300 epochs with StepLR(20, 0.8); GPU/TPU.

Examples:
  regjax run info_koopman --seeds=0,1,2
  regjax run info_koopman --config=experiments/info_koopman/config.py:long \
      --seeds=0,1,2
  regjax run info_koopman \
      --config=experiments/info_koopman/config.py:least_squares --seeds=0,1,2
"""

import ml_collections as mlc

from common.protocols import supervised

VARIANTS = ("cpu", "long", "least_squares", "cylinder", "dam")
# The official CFDBench settings (cylinder.yaml / dam.yaml; the models'
# seq_length): window frames (seq_length + 1) and batch size.
FIELD_SETTINGS = {"cylinder": dict(length=17, batch_size=16),
                  "dam": dict(length=13, batch_size=12)}
SYSTEMS = ("lorenz63", "van_der_pol")
ARMS = {
    "plain KAE": dict(mi_weight=0.0, entropy_weight=0.0),
    "Lagrangian": dict(mi_weight=2.0, entropy_weight=0.1),
    "official sign": dict(mi_weight=2.0, entropy_weight=-0.1),
    "MI only": dict(mi_weight=2.0, entropy_weight=0.0),
}
# The held-out set every study arm is scored on; the base config (what the
# smoke test runs) scores a small one, so the smoke run stays seconds.
STUDY_EVAL = dict(horizon=100, test_trajectories=8, test_length=1000)
METRICS = ("valid_steps", "rmse_window", "rollout_rmse", "rollout_rmse_h",
           "pred_rmse_1", "latent_erank",
           "latent_vn_entropy", "d_stsp", "d_h", "free_run_diverged",
           "koopman_radius")


def arms(systems=SYSTEMS, names=tuple(ARMS)) -> dict[str, str]:
  out = {}
  for system in systems:
    for name in names:
      sets = [f"data.kwargs.system={system}"] + [
          f"method.info_koopman.{k}={v}" for k, v in ARMS[name].items()] + [
              f"eval.{k}={v}" for k, v in STUDY_EVAL.items()]
      out[f"{system}: {name}"] = ",".join(sets)
  return out


def field_arms(names=("plain KAE", "Lagrangian", "official sign")
               ) -> dict[str, str]:
  return {name: ",".join(f"method.info_koopman.{k}={v}"
                         for k, v in ARMS[name].items()) for name in names}


def _fields(c: mlc.ConfigDict, dataset: str) -> None:
  """The paper's own experiment: CFDBench flow fields, the official CNN,
  operator and optimisation (`third_party_configs/info_koopman/`)."""
  spec = FIELD_SETTINGS[dataset]
  c.data.update(name="cfd_fields", data_dir=f"data/cfdbench/{dataset}")
  c.data.kwargs = mlc.ConfigDict(dict(dataset=dataset, length=spec["length"]))
  c.model.kwargs = mlc.ConfigDict(dict(latent_dim=512,
                                       architecture="field_cnn",
                                       field_size=64, dropout=0.1))
  c.method.info_koopman.update(operator="least_squares", ridge=0.1)
  # 300 epochs over every window, StepLR(20 epochs, 0.8); no early stopping
  # (the official keeps the best validation epoch, patience 50).
  c.train.update(batch_size=spec["batch_size"], steps=-1, num_epochs=300,
                 eval_batch_size=64,
                 checkpoint_every_steps=5000, log_every_steps=500)
  c.schedule.update(name="piecewise", decay_factor=0.8,
                    boundaries_epochs=tuple(float(e) for e in
                                            range(20, 300, 20)))
  c.eval = mlc.ConfigDict(dict(name="koopman_rollout", test_windows=0))
  c.study.arms = field_arms()
  c.study.metrics = ("rollout_rmse", "rmse_window", "pred_rmse_1",
                     "recon_rmse", "latent_erank", "latent_vn_entropy",
                     "koopman_radius")
  c.study.metric_labels = dict(
      rollout_rmse="rollout RMSE (1..T)", rmse_window="RMSE at T",
      pred_rmse_1="1-step RMSE", recon_rmse="reconstruction RMSE",
      latent_erank="latent eff. rank", latent_vn_entropy="latent S_vN",
      koopman_radius="spectral radius of K")
  c.study.formats = {m: ".4f" for m in c.study.metrics}
  c.study.artifacts = ""
  c.study.name = f"results_{dataset}"


def get_config(variant: str = "cpu") -> mlc.ConfigDict:
  if variant not in VARIANTS:
    raise ValueError(f"variant {variant!r}; allowed {VARIANTS}")
  c = supervised.base_config()
  c.experiment = "info_koopman"
  c.data.update(name="dynamical_system", source="generator", input_key="x",
                preprocess="none")
  c.data.kwargs = mlc.ConfigDict(dict(system="lorenz63", length=17,
                                      epoch_size=6400))
  c.model = mlc.ConfigDict(dict(name="koopman_ae", dtype="float32"))
  c.model.kwargs = mlc.ConfigDict(dict(latent_dim=16, hidden=(64, 64)))
  c.method = mlc.ConfigDict(dict(name="info_koopman"))
  # Official weights (cylinder.yaml / dam.yaml: lamb, alpha, beta, mi_k;
  # the temperature trainer.py actually passes is its default 0.1).
  c.method.info_koopman = mlc.ConfigDict(dict(
      recon_weight=0.1, mi_weight=2.0, entropy_weight=0.1,
      mi_temperature=0.1, mi_k=3))
  # Official: Adam(lr 1e-3, no weight decay), clip_grad_norm_ 1.0.
  c.optim.update(name="adamw", weight_decay=0.0, clip_grad_norm=1.0)
  c.schedule.update(name="constant", learning_rate=1e-3)
  c.train.update(batch_size=64, steps=2000, log_every_steps=200,
                 eval_every_epochs=0, checkpoint_every_steps=1000,
                 tensorboard=False)
  # Rollout steps scored, held-out trajectories and their length; the study
  # arms use STUDY_EVAL (100 steps: 1 time unit of Lorenz-63, 5 of VdP).
  c.eval = mlc.ConfigDict(dict(name="koopman_rollout", horizon=20,
                               test_trajectories=2, test_length=200))
  c.study.seeds = (0, 1, 2)
  c.study.arms = arms()
  c.study.metrics = METRICS
  c.study.metric_labels = dict(
      valid_steps="valid steps (RMSE < 0.5)", rmse_window="RMSE at 16",
      rollout_rmse="rollout RMSE (1..100)", rollout_rmse_h="RMSE at 100",
      pred_rmse_1="1-step RMSE", latent_erank="latent eff. rank",
      latent_vn_entropy="latent S_vN", d_stsp="D_stsp (free run)",
      d_h="D_H (free run)", free_run_diverged="free runs diverged",
      koopman_radius="spectral radius of K")
  c.study.formats = {m: ".3f" for m in METRICS}
  c.study.formats.update(valid_steps=".1f", rollout_rmse=".3g",
                         rollout_rmse_h=".3g")
  c.study.artifacts = "experiments.info_koopman.figures:artifacts"
  c.study.name = "results"
  c.smoke.enabled = variant == "cpu"
  if variant == "least_squares":
    # The official operator (base.py: batch_pinv(I_factor=1e-1), detached).
    c.method.info_koopman.update(operator="least_squares", ridge=0.1)
    c.study.arms = arms(names=("plain KAE", "Lagrangian"))
    c.study.name = "results_least_squares"
    # Also scored with the last training batch's fit (evaluate.py).
    last = ("valid_steps", "rmse_window", "rollout_rmse", "pred_rmse_1",
            "free_run_diverged", "koopman_radius")
    c.study.metrics = METRICS + tuple(f"{m}_last" for m in last)
    for m in last:
      c.study.metric_labels[f"{m}_last"] = (
          c.study.metric_labels[m] + ", last-batch K")
      c.study.formats[f"{m}_last"] = c.study.formats[m]
  if variant == "long":
    # The official schedule shape: StepLR(step 20 epochs, gamma 0.8) over
    # 300 epochs, batch 16 (cylinder.yaml); epochs of 100 steps here.
    c.data.kwargs.epoch_size = 1600
    c.train.update(batch_size=16, steps=-1, num_epochs=300,
                   checkpoint_every_steps=5000, log_every_steps=1000)
    c.schedule.update(name="piecewise", decay_factor=0.8,
                      boundaries_epochs=tuple(float(e) for e in
                                              range(20, 300, 20)))
    c.study.name = "results_long"
  if variant in FIELD_SETTINGS:
    _fields(c, variant)
  return c
