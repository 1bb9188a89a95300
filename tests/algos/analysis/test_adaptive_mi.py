"""Estimator identities of adaptive_mi (EBAB, fixed bins, adaptive KDE), the
12-bit task, the info MLP and the L2 method; parity with the official
binning and plug-in MI (numpy parts of ivansche/adaptive_estimators) when
REGJAX_OFFICIAL_ADAPTIVE_MI_DIR points at a checkout of it."""

from __future__ import annotations

import ast
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.analysis import adaptive_mi as am
from algos.analysis import info_mlp
from algos.baselines import cross_entropy
from common.data import tishby12

BITS = 8
N = 2 ** BITS
X_BITS = ((np.arange(N)[:, None] >> np.arange(BITS)) & 1).astype(np.float32)
X_IDS = np.arange(N, dtype=np.int32)


@functools.cache
def _binned():
  """One jitted call: EBAB edges, codes and MI of several T's at once."""
  def fn(ts, y):
    def one(t):
      edges = am.ebab_edges(t, 30, 0.0)
      return am.ebab_mi(t, X_IDS, y, 30, 0.0), edges, am.digitize(t, edges)
    return jax.lax.map(one, ts)
  return jax.jit(fn)


def test_binned_identities_and_ebab_equal_counts():
  rng = np.random.default_rng(0)
  y = X_BITS[:, 0].astype(np.int32)          # a balanced bit: H(Y) = 1
  cols = 4
  ts = np.stack([
      0.5 + X_BITS[:, :cols],                  # invertible on the 4 bits
      np.tile(0.5 + X_BITS[:, 1:2], (1, cols)),  # independent of y
      np.full((N, cols), 0.3, np.float32),     # constant
      rng.uniform(0.01, 1.0, (N, cols)),       # continuous, distinct values
      np.where(rng.random((N, cols)) < 0.5, 0.0,
               rng.uniform(0.01, 1.0, (N, cols))),  # ReLU-like zeros
  ]).astype(np.float32)
  (ixt, ity), edges, codes = jax.device_get(_binned()(ts, y))
  # 4 bits of X kept exactly: I(X;T) = H(T) = 4 = H(bits), I(T;Y) = H(Y)
  np.testing.assert_allclose([ixt[0], ity[0]], [4.0, 1.0], atol=1e-5)
  # T a function of a bit independent of Y: I(T;Y) = 0, I(X;T) = 1
  np.testing.assert_allclose([ixt[1], ity[1]], [1.0, 0.0], atol=1e-5)
  np.testing.assert_allclose([ixt[2], ity[2]], [0.0, 0.0], atol=1e-6)
  # bounds: 0 <= I(T;Y) <= H(Y) = 1, I(X;T) <= H(X) = 8
  assert np.all(ixt <= BITS + 1e-5) and np.all(ity <= 1 + 1e-5)
  assert np.all(ixt >= -1e-5) and np.all(ity >= -1e-5)
  # EBAB: every inner bin holds U / B = 1024 / 32 distinct values (B = 32
  # would divide; with B = 30, floor(k U / B) gives 34 or 35 per bin)
  counts = np.bincount(codes[3].ravel(), minlength=32)
  u = N * cols
  expected = np.diff((np.arange(31) * u) // 30)   # bins 1..30 by rank
  np.testing.assert_array_equal(counts[1:30], expected[:29])
  assert counts[0] == 0 and counts[30] + counts[31] == u - (29 * u) // 30
  assert np.all(np.diff(edges[3]) >= 0)
  # exact zeros (the edge `low`) are left out of the quantiles: own bin
  zero = ts[4] == 0.0
  assert np.all(codes[4][zero] == 0) and np.all(codes[4][~zero] >= 1)
  nonzero = np.bincount(codes[4][~zero], minlength=32)[1:30]
  assert nonzero.max() - nonzero.min() <= 1


def _official_kde_mi(t, y, var):
  """The official kde.py formulas (nats -> bits), written out in numpy."""
  def h_kl(x):
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1) / (2 * var)
    dims, n = x.shape[1], x.shape[0]
    lprobs = (np.log(np.exp(-d2).sum(1)) - np.log(n)
              - dims / 2 * np.log(2 * np.pi * var))
    return dims / 2 - lprobs.mean()
  h = h_kl(t)
  h_cond = t.shape[1] / 2 * (np.log(2 * np.pi * var) + 1)
  h_ty = sum(np.mean(y == c) * h_kl(t[y == c]) for c in (0, 1))
  return (h - h_cond) / np.log(2), (h - h_ty) / np.log(2)


def test_kde_matches_the_official_formulas_bounds_and_scale_invariance():
  rng = np.random.default_rng(1)
  t = rng.normal(size=(64, 3)).astype(np.float32)
  y = (rng.random(64) < 0.4).astype(np.int32)

  @jax.jit
  def fn(t, y):
    return (am.kde_mi(t, y, jnp.float32(0.3), 2),
            am.kde_mi(t, y, jnp.float32(1e-6), 2),
            am.kde_mi(t, y, jnp.float32(1e6), 2),
            am.adaptive_kde_mi(t, y, jnp.float32(0.1), 2),
            am.adaptive_kde_mi(7.0 * t + 2.0, y, jnp.float32(0.1), 2))
  base, tiny, huge, ad, ad_scaled = jax.device_get(fn(t, y))
  np.testing.assert_allclose(base, _official_kde_mi(t.astype(np.float64), y,
                                                    0.3), rtol=1e-4)
  np.testing.assert_allclose(tiny[0], np.log2(64), atol=1e-4)   # = H(X)
  np.testing.assert_allclose(tiny[1], -np.mean(
      [np.log2(np.mean(y == c)) for c in y]), atol=1e-4)       # = H(Y)
  np.testing.assert_allclose(huge, [0.0, 0.0], atol=1e-4)
  np.testing.assert_allclose(ad, ad_scaled, rtol=1e-4, atol=1e-5)
  assert 0 < base[0] <= np.log2(64) and 0 <= base[1] <= 1


def test_tishby12_data_and_the_info_mlp():
  x, y = tishby12.inputs(), tishby12.labels()
  assert x.shape == (4096, 12) and len(np.unique(x, axis=0)) == 4096
  ones = x.sum(1)
  assert np.all(y[ones <= 4] == 0) and np.all(y[ones >= 8] == 1)
  assert abs(y.mean() - 0.51709) < 1e-4
  d = tishby12.tishby12_dataset(0.8, "official")
  assert d.num_train == 3277 and np.array_equal(d.index, np.arange(4096))
  s = tishby12.tishby12_dataset(0.8, "shuffled", seed=3)
  np.testing.assert_array_equal(s.x, x[s.index])
  with pytest.raises(ValueError, match="allowed"):
    tishby12.tishby12_dataset(0.8, "sorted")
  model = info_mlp.InfoMLP(2, activation="relu")

  @jax.jit
  def fn(key, inputs, labels):   # one compilation: init, apply, losses
    variables = model.init(key, inputs[:1], train=False)
    out = model.apply(variables, inputs, train=False)
    batch = {"label": labels, "mask": jnp.ones(labels.shape, bool)}
    p = variables["params"]
    losses = [am.loss({"l2": jnp.float32(l2)}, {}, out, batch, p, None)[0]
              for l2 in (0.0, 0.5)]
    ce = cross_entropy.loss({"label_smoothing": jnp.float32(0.0)}, {}, out,
                            batch, p, None)[0]
    return variables, out, am.kernel_l2(p), losses, ce
  variables, out, penalty, (l0, l_half), ce = jax.device_get(
      fn(jax.random.PRNGKey(0), jnp.asarray(x[:5]), jnp.asarray(y[:5])))
  np.testing.assert_allclose(l0, ce, rtol=1e-6)     # strength 0 = plain CE
  np.testing.assert_allclose(l_half, ce + 0.5 * penalty, rtol=1e-5)
  assert out["hidden"].shape == (5, 29) and out["logits"].shape == (5, 2)
  np.testing.assert_array_equal(out["features"], out["hidden"][:, -3:])
  assert out["hidden"].min() >= 0.0     # ReLU activity
  params = variables["params"]
  bound = 2 * 2.0 / np.sqrt(12)         # he = 2, truncated at 2 std
  assert np.abs(params["dense0"]["kernel"]).max() <= bound + 1e-6
  manual = sum(0.5 * np.sum(params[f"dense{i}"]["kernel"] ** 2)
               for i in range(5))
  np.testing.assert_allclose(penalty, manual, rtol=1e-5)   # head excluded


def _official_functions(root):
  """`set_up_bins` and `calc_information_sampling` from the official
  information_process.py (its TF/Keras imports skipped) and its
  `mutual_information_calculation`."""
  import sys  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, root)
  from idnns.information import mutual_information_calculation as mic  # pylint: disable=g-import-not-at-top
  path = os.path.join(root, "idnns/information/information_process.py")
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read())
  keep = {"set_up_bins", "find_per_layer_max_value",
          "calc_information_sampling"}
  module = ast.Module([n for n in tree.body if isinstance(n, ast.FunctionDef)
                       and n.name in keep], type_ignores=[])
  namespace = {"np": np, "calc_information_from_mat":
               mic.calc_information_from_mat}
  exec(compile(module, path, "exec"), namespace)  # pylint: disable=exec-used
  return namespace


@pytest.mark.skipif(not os.environ.get("REGJAX_OFFICIAL_ADAPTIVE_MI_DIR"),
                    reason="set REGJAX_OFFICIAL_ADAPTIVE_MI_DIR to a checkout "
                    "of ivansche/adaptive_estimators for the parity test")
def test_parity_with_the_official_ebab_and_plugin_mi():
  off = _official_functions(os.environ["REGJAX_OFFICIAL_ADAPTIVE_MI_DIR"])
  rng = np.random.default_rng(2)
  x = X_BITS
  labels = np.stack([X_BITS[:, 0], 1 - X_BITS[:, 0]], 1)
  flip = rng.random(N) < 0.2
  labels[flip] = 1 - labels[flip]
  layers = [np.maximum(rng.normal(size=(N, 4)), 0).astype(np.float32),
            np.abs(rng.normal(size=(N, 3)).astype(np.float32)) ** 3]
  _, bins = off["set_up_bins"]([layers], 1, 8, per_layer_bins=True,
                               maxentropy=True)
  # the official extract_probs breaks under numpy 2 (2-D inverse); its
  # outputs for distinct inputs: p(x) uniform, p(y) and y's inverse
  y = np.argmax(labels, 1).astype(np.int32)
  _, inv_y, counts = np.unique(y, return_inverse=True, return_counts=True)
  pys1, pxs, inv_x = counts / N, np.full(N, 1.0 / N), np.arange(N)
  for j, t in enumerate(layers):
    low = 0.0   # the official `low` of activation 1 (ReLU)
    ours = jax.device_get(am.ebab_edges(t, 8, low))
    np.testing.assert_allclose(ours, np.asarray(bins[0][j], np.float32))
    ixt, ity = off["calc_information_sampling"](
        t, np.asarray(bins[0][j]), pys1, pxs, labels, None, None, N, None,
        inv_x, inv_y)
    mine = jax.device_get(am.ebab_mi(t, X_IDS, y, 8, low))
    np.testing.assert_allclose(mine, [ixt, ity], rtol=1e-5, atol=1e-5)


def test_the_evaluator_measures_at_log_spaced_steps_and_the_end():
  from experiments.adaptive_mi import evaluate  # pylint: disable=g-import-not-at-top
  grid = evaluate.log_schedule(1500, 30)
  assert grid[0] == 1 and grid[-1] == 1500 and len(grid) <= 30
  calls = [s for s in range(1, 1501) if evaluate.scheduled(s, 1500, 1, 30)]
  np.testing.assert_array_equal(calls, grid)
  # calls every 12 steps: the first call at or after each point, and the end
  calls = [s for s in range(12, 1501, 12)
           if evaluate.scheduled(s, 1500, 12, 30)]
  assert calls[0] == 12 and calls[-1] == 1500 and len(calls) < len(grid)
  assert evaluate.scheduled(1500, 1500, 12, 30)
  assert all(evaluate.scheduled(s, 100, 1, 0) for s in (1, 7, 100))
