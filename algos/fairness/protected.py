"""Protected attributes of mixed types, groups, and Jensen-Shannon disparity.

Paper: Machine Learning with Multitype Protected Attributes: Intersectional
Fairness through Regularisation (Lee et al. 2025, arXiv:2509.08163); no
official code. The JS measure follows the paper's description and the
authors' companion code (agi-lab/beyond-correlation, `general/metrics.py`,
`JSD_generalized`): the generalised JS divergence of Lin (1991) between the
prediction distributions of the groups, weighted by group proportions,

    JSD = H(sum_g pi_g P_g) - sum_g pi_g H(P_g)      (log base 2, in [0, 1]),

where the companion estimates each P_g by a Gaussian KDE (bandwidth 0.15)
on 1000 grid points; here P_g is a histogram on `bins` equal-width bins over
the pooled prediction range (`density="kde"` gives the companion's
estimate). Strength calibration (`calibrate_lambda`): sweep lambda, record
the validation task loss and JSD, and keep the lambda with the lowest JSD
whose task loss stays within a tolerance of the unregularised one (the
paper reads this trade-off off a plot of JSD against lambda and loss).

Encoding (`encode`): binary attributes as 0/1, categorical ones one-hot,
continuous ones standardised with the training rows' mean and std. Host
numpy throughout (evaluation and data building, not the train step).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

KINDS = ("binary", "categorical", "continuous")


def encode(columns: Sequence[np.ndarray], kinds: Sequence[str],
           train_rows: np.ndarray | None = None
           ) -> tuple[np.ndarray, tuple[int, ...]]:
  """`(S [n, q] float32, block sizes)` of the protected columns.

  Args:
    columns: one `[n]` array per attribute (0/1, integer codes 0..K-1, or
      real values).
    kinds: each column's kind, one of `KINDS`.
    train_rows: `[n]` bool rows whose mean/std standardise continuous
      columns (default: all rows).

  Returns:
    The concatenated encoding and the width of each attribute's block.
  """
  if len(columns) != len(kinds):
    raise ValueError(f"{len(columns)} protected columns but {len(kinds)} "
                     "kinds")
  blocks = []
  for col, kind in zip(columns, kinds):
    col = np.asarray(col)
    if kind == "binary":
      if not np.isin(col, (0, 1)).all():
        raise ValueError("a binary protected attribute must be 0/1")
      blocks.append(col.astype(np.float32)[:, None])
    elif kind == "categorical":
      codes = col.astype(np.int64)
      if codes.min() < 0:
        raise ValueError("categorical codes must be >= 0")
      blocks.append(np.eye(int(codes.max()) + 1, dtype=np.float32)[codes])
    elif kind == "continuous":
      ref = col if train_rows is None else col[train_rows]
      std = ref.std() if ref.std() > 0 else 1.0
      blocks.append(((col - ref.mean()) / std).astype(np.float32)[:, None])
    else:
      raise ValueError(f"protected kind {kind!r}; allowed: {KINDS}")
  return (np.concatenate(blocks, axis=1),
          tuple(b.shape[1] for b in blocks))


def split_blocks(s, sizes: Sequence[int]) -> list:
  """The `[n, size_i]` column blocks of an encoded `s` `[n, sum(sizes)]`."""
  if s.shape[-1] != sum(sizes):
    raise ValueError(f"protected block sizes {tuple(sizes)} sum to "
                     f"{sum(sizes)}, but s has {s.shape[-1]} columns")
  out, start = [], 0
  for size in sizes:
    out.append(s[:, start:start + size])
    start += size
  return out


def quantile_bands(x: np.ndarray, bands: int) -> np.ndarray:
  """`[n]` int band of each value among `bands` equal-count bands."""
  edges = np.quantile(x, np.linspace(0, 1, bands + 1)[1:-1])
  return np.searchsorted(edges, x, side="right").astype(np.int64)


def intersect(*codes: np.ndarray) -> np.ndarray:
  """`[n]` id of each row's combination of integer codes (mixed radix)."""
  out = np.zeros(len(codes[0]), np.int64)
  for c in codes:
    c = np.asarray(c, np.int64)
    out = out * (int(c.max()) + 1) + c
  return out


def _entropy2(p: np.ndarray) -> np.ndarray:
  p = np.clip(p, 1e-12, None)
  return -np.sum(p * np.log2(p), axis=-1)


def group_densities(pred: np.ndarray, groups: np.ndarray, bins: int = 20,
                    density: str = "hist", bandwidth: float = 0.15,
                    min_size: int = 1
                    ) -> tuple[np.ndarray, np.ndarray]:
  """`(P [G, m] rows summing to 1, pi [G] group proportions)`.

  Groups with fewer than `min_size` rows are dropped. `density="hist"`:
  `bins` equal-width bins over the pooled range; `"kde"`: Gaussian KDE of
  `bandwidth` on 1000 points of the pooled range, normalised.
  """
  pred = np.asarray(pred, np.float64).reshape(-1)
  groups = np.asarray(groups).reshape(-1)
  lo, hi = pred.min(), pred.max()
  hi = hi if hi > lo else lo + 1.0
  ids, counts = np.unique(groups, return_counts=True)
  ids = ids[counts >= min_size]
  dens = []
  for g in ids:
    v = pred[groups == g]
    if density == "hist":
      h, _ = np.histogram(v, bins=bins, range=(lo, hi))
      h = h.astype(np.float64)
    elif density == "kde":
      grid = np.linspace(lo, hi, 1000)
      h = np.exp(-0.5 * ((grid[:, None] - v[None]) / bandwidth) ** 2).sum(1)
    else:
      raise ValueError(f"density={density!r}; allowed: ('hist', 'kde')")
    dens.append(h / max(h.sum(), 1e-300))
  counts = np.array([np.sum(groups == g) for g in ids], np.float64)
  return np.stack(dens), counts / counts.sum()


def generalised_jsd(pred: np.ndarray, groups: np.ndarray, bins: int = 20,
                    density: str = "hist", weights: str = "proportion",
                    min_size: int = 1) -> float:
  """Lin's generalised JS divergence of the groups' prediction laws (bits)."""
  p, pi = group_densities(pred, groups, bins, density, min_size=min_size)
  if weights == "equal":
    pi = np.full(len(pi), 1.0 / len(pi))
  elif weights != "proportion":
    raise ValueError(f"weights={weights!r}; allowed: ('proportion', "
                     "'equal')")
  return float(_entropy2(pi @ p) - pi @ _entropy2(p))


def js2(p: np.ndarray, q: np.ndarray) -> np.ndarray:
  """JS divergence (bits) of distributions `p`, `q` `[..., m]`."""
  m = 0.5 * (p + q)
  return _entropy2(m) - 0.5 * (_entropy2(p) + _entropy2(q))


def max_subgroup_js(pred: np.ndarray, groups: np.ndarray, bins: int = 20,
                    min_size: int = 20) -> float:
  """max over groups (>= `min_size` rows) of JS(P_group, P_population)."""
  p, pi = group_densities(pred, groups, bins, min_size=min_size)
  return float(np.max(js2(p, (pi @ p)[None])))


def unfairness_ratio(pred: np.ndarray, groups: np.ndarray) -> float:
  """Var of the group means / var of the predictions (companion `UF`)."""
  pred = np.asarray(pred, np.float64).reshape(-1)
  means = [pred[groups == g].mean() for g in np.unique(groups)]
  return float(np.var(means, ddof=1) / max(np.var(pred, ddof=1), 1e-300))


def calibrate_lambda(lambdas: Sequence[float], task_loss: Sequence[float],
                     js: Sequence[float], tolerance: float = 0.05) -> float:
  """The lambda of lowest JS whose task loss is within `tolerance` (relative)
  of the task loss at the smallest lambda (the unregularised reference)."""
  lambdas, task_loss, js = map(np.asarray, (lambdas, task_loss, js))
  order = np.argsort(lambdas)
  lambdas, task_loss, js = lambdas[order], task_loss[order], js[order]
  ok = task_loss <= task_loss[0] * (1.0 + tolerance)
  return float(lambdas[ok][np.argmin(js[ok])])
