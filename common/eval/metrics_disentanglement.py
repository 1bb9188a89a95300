"""Disentanglement metrics of a latent code against ground-truth sources.

InfoMEC (Hsu et al., "Disentanglement via Latent Quantization", NeurIPS
2023, arXiv:2305.18378; official kylehkhsu/latent_quantization
`disentangle/metrics/infomec.py`), on `n` samples of `n_s` discrete sources
and `n_z` latents:

* NMI `[n_s, n_z]`: `I(s_i; z_j) / H(s_i)`. Discrete latents: the plug-in
  estimate from the joint histogram (`sklearn.metrics.mutual_info_score`).
  Continuous latents: each standardised, the KSG-type k-NN estimator for a
  continuous variable against a discrete one (`mutual_info_classif`, k=10),
  as the official code does.
* inactive latents are pruned: a discrete latent is active if it takes more
  than one value; a continuous one if its range exceeds 1/20 of the largest
  latent range.
* InfoM (modularity): `(mean_j max_i NMI_ij / sum_i NMI_ij - 1/n_s) /
  (1 - 1/n_s)` over active latents j;
* InfoC (compactness): the same over sources, normalised by the number of
  active latents;
* InfoE (explicitness): `mean_i (H_i - CE_i) / H_i` where `CE_i` is the
  training cross-entropy of an unpenalised multinomial logistic regression
  predicting `s_i` from the latents (one-hot if discrete, standardised if
  continuous; balanced class weights), and `H_i` the same with no inputs.

DCI (Eastwood & Williams, ICLR 2018), for comparison: importances `R [n_z,
n_s]` from a per-source predictor, D = importance-weighted mean over latents
of `1 - H_{n_s}(R_j. / sum R_j.)`, C = mean over sources of `1 -
H_{n_z}(R_.i / sum R_.i)`, I = held-out accuracy. The InfoMEC paper does not
compute DCI in its official code; disentanglement_lib's default predictor is
gradient-boosted trees (slow: `predictor="gbt"`); ours defaults to the
absolute coefficients of an L2-regularised multinomial logistic regression
on standardised latents (`predictor="logistic"`), the "lasso/linear"
variant of the DCI paper.

Reconstruction: `reconstruction_metrics` (per-image-mean BCE and MSE).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
from sklearn import ensemble
from sklearn import feature_selection
from sklearn import linear_model
from sklearn import metrics as sk_metrics
from sklearn import preprocessing
import threadpoolctl


def _single_blas_thread(fn):
  """Runs `fn` with one BLAS thread: these fits are small, and a threaded
  OpenBLAS on a busy machine was measured ~30x slower (1.5 s vs 43 s for
  InfoE on 2,304 samples, 2 shared cores)."""
  @functools.wraps(fn)
  def wrapped(*args, **kwargs):
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
      return fn(*args, **kwargs)
  return wrapped


def _encode_sources(sources: np.ndarray) -> np.ndarray:
  """`[n, n_s]` arbitrary labels -> `[n, n_s]` ints 0..K_i-1."""
  sources = np.asarray(sources)
  if sources.ndim != 2:
    raise ValueError(f"sources must be [n, n_s]; got {sources.shape}")
  return np.stack([np.unique(sources[:, i], return_inverse=True)[1]
                   .reshape(-1) for i in range(sources.shape[1])], axis=1)


def normalized_mutual_information(sources: np.ndarray, latents: np.ndarray,
                                  discrete: bool, seed: int = 0
                                  ) -> np.ndarray:
  """`I(s_i; z_j) / H(s_i)`, `[n_s, n_z]` (see the module docstring).

  Args:
    sources: `[n, n_s]` discrete ground-truth factors.
    latents: `[n, n_z]` codes (values, or indices if discrete).
    discrete: plug-in estimator on discrete latents, else k-NN (k=10).
    seed: the k-NN estimator's jitter seed.
  """
  s = _encode_sources(sources)
  z = np.asarray(latents)
  if z.ndim != 2 or len(z) != len(s):
    raise ValueError(f"latents must be [n, n_z] with n={len(s)}; got "
                     f"{z.shape}")
  nmi = np.zeros((s.shape[1], z.shape[1]))
  if discrete:
    zd = _encode_sources(z)
  else:
    std = z.std(0)
    zc = (z - z.mean(0)) / np.where(std > 0, std, 1.0)
  for i in range(s.shape[1]):
    entropy = sk_metrics.mutual_info_score(s[:, i], s[:, i])
    if entropy <= 0:
      continue   # a constant source carries no information
    if discrete:
      mi = [sk_metrics.mutual_info_score(s[:, i], zd[:, j])
            for j in range(z.shape[1])]
    else:
      mi = feature_selection.mutual_info_classif(
          zc, s[:, i], discrete_features=False, n_neighbors=10,
          random_state=seed)
    nmi[i] = np.asarray(mi) / entropy
  return np.clip(nmi, 0.0, 1.0)


def active_latents(latents: np.ndarray, discrete: bool) -> np.ndarray:
  """bool `[n_z]`: latents that vary (see the module docstring)."""
  ranges = np.ptp(np.asarray(latents, np.float64), axis=0)
  if discrete:
    return ranges > 0
  return ranges > ranges.max() / 20 if ranges.max() > 0 else ranges > 0


def _fit_logistic_ce(x: np.ndarray, y: np.ndarray) -> float:
  """Training CE of an unpenalised, balanced multinomial logistic fit."""
  model = linear_model.LogisticRegression(
      penalty=None, class_weight="balanced", solver="lbfgs", max_iter=100,
      tol=1e-4)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")   # lbfgs' max_iter warnings, as upstream
    model.fit(x, y)
  return float(sk_metrics.log_loss(y, model.predict_proba(x),
                                   labels=model.classes_))


@_single_blas_thread
def info_explicitness(sources: np.ndarray, latents: np.ndarray,
                      discrete: bool) -> tuple[float, np.ndarray]:
  """InfoE and its per-source values `[n_s]`."""
  s = _encode_sources(sources)
  z = np.asarray(latents)
  if discrete:
    x = preprocessing.OneHotEncoder().fit_transform(
        _encode_sources(z)).toarray()
  else:
    x = preprocessing.StandardScaler().fit_transform(z.astype(np.float64))
  per_source = []
  for i in range(s.shape[1]):
    if len(np.unique(s[:, i])) < 2:
      continue
    marginal = _fit_logistic_ce(np.zeros((len(s), 1)), s[:, i])
    conditional = _fit_logistic_ce(x, s[:, i])
    per_source.append((marginal - conditional) / marginal)
  per_source = np.clip(np.asarray(per_source), 0.0, 1.0)
  return float(per_source.mean()), per_source


@_single_blas_thread
def infomec(sources: np.ndarray, latents: np.ndarray, discrete: bool,
            seed: int = 0, explicitness: bool = True) -> dict[str, object]:
  """InfoM, InfoE, InfoC, the NMI matrix and the active-latent mask.

  Args:
    sources: `[n, n_s]` ground-truth factors (discrete).
    latents: `[n, n_z]`.
    discrete: whether the latents are discrete (QLAE) or continuous.
    seed: k-NN estimator seed (continuous latents).
    explicitness: also fit InfoE's regressions (else it is NaN).

  Returns:
    {"infom", "infoe", "infoc": float, "nmi": [n_s, n_z],
     "active": bool [n_z], "infoe_per_source": [n_s]}.
  """
  nmi = normalized_mutual_information(sources, latents, discrete, seed)
  active = active_latents(latents, discrete)
  n_s, n_active = nmi.shape[0], int(active.sum())
  pruned = nmi[:, active]
  eps = 1e-12
  if n_active == 0:
    infom = infoc = 0.0
  else:
    infom = (np.mean(pruned.max(0) / (pruned.sum(0) + eps)) - 1 / n_s) / (
        1 - 1 / n_s)
    infoc = ((np.mean(pruned.max(1) / (pruned.sum(1) + eps)) - 1 / n_active)
             / (1 - 1 / n_active)) if n_active > 1 else 1.0
  infoe, per_source = (info_explicitness(sources, latents, discrete)
                       if explicitness else (float("nan"), None))
  return {"infom": float(infom), "infoe": infoe, "infoc": float(infoc),
          "nmi": nmi, "active": active, "infoe_per_source": per_source}


def _entropy_rows(p: np.ndarray, base: int) -> np.ndarray:
  p = p / np.maximum(p.sum(1, keepdims=True), 1e-12)
  logs = np.log(np.where(p > 0, p, 1.0)) / np.log(base)
  return -np.sum(p * logs, axis=1)


@_single_blas_thread
def dci(sources: np.ndarray, latents: np.ndarray, predictor: str = "logistic",
        train_fraction: float = 0.8, seed: int = 0) -> dict[str, object]:
  """DCI disentanglement, completeness, informativeness (module docstring).

  Args:
    sources: `[n, n_s]` discrete factors.
    latents: `[n, n_z]` (used as continuous features).
    predictor: "logistic" (|coefficients| of an L2 multinomial logistic
      regression, summed over classes) or "gbt" (sklearn gradient-boosted
      trees' feature importances, as disentanglement_lib).
    train_fraction: share of the (shuffled) samples used for fitting.
    seed: split/shuffle seed.

  Returns:
    {"dci_d", "dci_c", "dci_i": float, "importance": [n_z, n_s]}.
  """
  if predictor not in ("logistic", "gbt"):
    raise ValueError(f"unknown DCI predictor {predictor!r}; allowed: "
                     "('logistic', 'gbt')")
  s = _encode_sources(sources)
  z = np.asarray(latents, np.float64)
  n, n_z = z.shape
  order = np.random.default_rng(seed).permutation(n)
  cut = int(train_fraction * n)
  tr, te = order[:cut], order[cut:]
  scaler = preprocessing.StandardScaler().fit(z[tr])
  x = scaler.transform(z)
  importance = np.zeros((n_z, s.shape[1]))
  accuracy = []
  for i in range(s.shape[1]):
    y = s[:, i]
    if predictor == "gbt":
      model = ensemble.GradientBoostingClassifier(random_state=seed)
      model.fit(x[tr], y[tr])
      importance[:, i] = np.abs(model.feature_importances_)
    else:
      model = linear_model.LogisticRegression(max_iter=200)
      with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(x[tr], y[tr])
      importance[:, i] = np.abs(model.coef_).sum(0)
    accuracy.append(model.score(x[te], y[te]))
  n_s = s.shape[1]
  d_per_latent = 1.0 - _entropy_rows(importance, n_s)
  weights = importance.sum(1) / max(importance.sum(), 1e-12)
  c_per_source = 1.0 - _entropy_rows(importance.T, n_z)
  return {"dci_d": float(np.sum(weights * d_per_latent)),
          "dci_c": float(np.mean(c_per_source)),
          "dci_i": float(np.mean(accuracy)), "importance": importance}


def reconstruction_metrics(logits: np.ndarray, targets: np.ndarray
                           ) -> dict[str, float]:
  """Mean per-pixel sigmoid BCE and MSE of `sigmoid(logits)`.

  Args:
    logits: `[n, ...]` decoder logits.
    targets: `[n, ...]` targets in [0, 1].
  """
  logits = np.asarray(logits, np.float64)
  targets = np.asarray(targets, np.float64)
  bce = np.maximum(logits, 0) - logits * targets + np.log1p(
      np.exp(-np.abs(logits)))
  probs = 1.0 / (1.0 + np.exp(-logits))
  return {"bce": float(bce.mean()),
          "mse": float(np.mean(np.square(probs - targets)))}
