"""Cut Cross-Entropy equals the naive linear cross-entropy.

Values and gradients against the `[N, V]`-logits computation (fp32, relative
1e-5) on random and on peaked logits, with and without soft-capping and
vocabulary sorting; the filtering error bound; ignored tokens; bfloat16
inputs; a batch sharded over 8 CPU devices.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from algos.lm import cce as cce_lib
from tests.conftest import REPO_ROOT, run_on_cpu_devices

# Small tiles so that every shape has several token tiles and vocabulary
# blocks, with a partial last block (300 = 4 * 64 + 44).
N, D, V = 100, 16, 300
TILES = dict(block_n=32, block_v=64)


def naive_nll(features, classifier, targets, softcap=None):
  """The reference: all `[N, V]` logits, fp32."""
  logits = jnp.dot(features.astype(jnp.float32),
                   classifier.astype(jnp.float32).T,
                   precision=jax.lax.Precision.HIGHEST)
  if softcap is not None:
    logits = softcap * jnp.tanh(logits / softcap)
  ok = (targets >= 0) & (targets < classifier.shape[0])
  picked = jnp.take_along_axis(
      logits, jnp.clip(targets, 0, classifier.shape[0] - 1)[:, None], 1)[:, 0]
  return jnp.where(ok, jax.nn.logsumexp(logits, axis=-1) - picked, 0.0)


def _problem(kind, seed=0):
  """`(features, classifier, targets, weights)`.

  "random": unit-scale random logits. "peaked": what a trained LM sees:
  targets among 24 frequent tokens (the rest of the vocabulary sits 15
  nats lower in every row, a unigram prior carried by feature 0), each
  feature points at one predicted frequent token, right 70% of the time;
  the rare tokens' softmax entries all underflow bfloat16's 2^-12.
  """
  k = jax.random.split(jax.random.PRNGKey(seed), 6)
  classifier = jax.random.normal(k[1], (V, D))
  weights = jax.random.uniform(k[3], (N,))   # a non-uniform cotangent
  if kind == "random":
    features = jax.random.normal(k[0], (N, D)) / np.sqrt(D)
    return features, classifier, jax.random.randint(k[2], (N,), 0, V), weights
  classifier = classifier / jnp.linalg.norm(classifier, axis=1,
                                            keepdims=True) * np.sqrt(D)
  frequent = jax.random.choice(k[4], V, (24,), replace=False)
  predicted = frequent[jax.random.randint(k[0], (N,), 0, 24)]
  other = frequent[jax.random.randint(k[2], (N,), 0, 24)]
  targets = jnp.where(jax.random.uniform(k[5], (N,)) < 0.7, predicted, other)
  features = 8.0 * classifier[predicted] / np.sqrt(D)
  prior = jnp.where(jnp.isin(jnp.arange(V), frequent), 1.0, -2.0)
  return (features.at[:, 0].set(5.0), classifier.at[:, 0].set(prior),
          targets, weights)


def _value_and_grads(loss, features, classifier, targets, weights):
  return jax.jit(jax.value_and_grad(
      lambda e, c: jnp.sum(weights * loss(e, c, targets)), (0, 1)))(
          features, classifier)


def _rel(a, b):
  return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


@pytest.mark.parametrize("kind,softcap,sort_vocab,fused", [
    ("random", None, True, False),     # the defaults
    ("random", 2.0, False, False),     # soft-capped, unsorted
    ("peaked", 30.0, True, False),     # peaked, capped (Gemma 2's 30), sorted
    # Fused, with a non-uniform cotangent: the backward's per-tile
    # correction of dC (the uniform case is the ignored-targets test).
    ("peaked", 30.0, False, True),
])
def test_equal_to_naive_in_value_and_gradients(kind, softcap, sort_vocab,
                                               fused):
  features, classifier, targets, weights = _problem(kind)
  ours = _value_and_grads(
      lambda e, c, y: cce_lib.cce(e, c, y, softcap=softcap,
                                  sort_vocab=sort_vocab, fused=fused,
                                  **TILES),
      features, classifier, targets, weights)
  ref = _value_and_grads(lambda e, c, y: naive_nll(e, c, y, softcap),
                         features, classifier, targets, weights)
  assert _rel(ours[0], ref[0]) < 1e-5
  assert _rel(ours[1][0], ref[1][0]) < 1e-5
  assert _rel(ours[1][1], ref[1][1]) < 1e-5


def test_filtering_skips_tiles_within_its_error_bound():
  # bfloat16's threshold 2^-12 on fp32 peaked logits: with vocabulary
  # sorting most tiles are skipped (without, the frequent tokens are spread
  # over every block); each skipped entry is < eps, so the error of dE[i] is
  # at most |g_i| eps sum_j |C[j]| and that of dC[j] at most
  # eps sum_i |g_i E[i]|.
  eps = 2.0 ** -12
  features, classifier, targets, weights = _problem("peaked")
  sorted_, unsorted = (float(cce_lib.needed_tile_fraction(
      features, classifier, targets, filter_eps=eps, sort_vocab=s, **TILES))
                       for s in (True, False))
  assert sorted_ <= 0.5 < unsorted
  _, (ref_e, ref_c) = _value_and_grads(
      naive_nll, features, classifier, targets, weights)
  bound_e = weights[:, None] * eps * jnp.sum(jnp.abs(classifier), 0)[None]
  bound_c = eps * jnp.sum(jnp.abs(weights[:, None] * features), 0)[None]
  for fused in (False, True):   # fused: fewer skips (no sorting), same bound
    _, (d_e, d_c) = _value_and_grads(
        lambda e, c, y: cce_lib.cce(
            e, c, y, filter_eps=eps, fused=fused,
            **(dict(block_n=32, block_v=16) if fused else TILES)),
        features, classifier, targets, weights)
    assert bool(jnp.all(jnp.abs(d_e - ref_e) <= bound_e + 1e-6))
    assert bool(jnp.all(jnp.abs(d_c - ref_c) <= bound_c + 1e-6))
    assert float(jnp.max(jnp.abs(d_e - ref_e))) > 0  # something was skipped


@pytest.mark.parametrize("fused", [False, True])
def test_ignored_targets_have_no_loss_and_no_gradient(fused):
  # A mean over the counted rows: for `fused`, the cotangent is one value
  # there, so dC comes from the forward pass with no recomputed tile.
  features, classifier, targets, _ = _problem("random")
  ignored = jnp.arange(N) % 3 == 0
  targets = jnp.where(ignored, -100, targets)
  mask = (~ignored).astype(jnp.float32)
  loss = lambda e, c, y: cce_lib.cce(e, c, y, fused=fused, **TILES)

  nll = loss(features, classifier, targets)
  assert bool(jnp.all(nll[ignored] == 0.0))
  ours = _value_and_grads(loss, features, classifier, targets,
                          mask / jnp.sum(mask))
  ref = _value_and_grads(naive_nll, features, classifier, targets,
                         mask / jnp.sum(mask))
  assert bool(jnp.all(ours[1][0][ignored] == 0.0))
  assert _rel(ours[0], ref[0]) < 1e-5
  assert _rel(ours[1][0], ref[1][0]) < 1e-5
  assert _rel(ours[1][1], ref[1][1]) < 1e-5


def test_bfloat16_inputs_match_fp32_math_on_the_same_values():
  features, classifier, targets, weights = _problem("random")
  e16, c16 = features.astype(jnp.bfloat16), classifier.astype(jnp.bfloat16)
  ours = _value_and_grads(lambda e, c, y: cce_lib.cce(e, c, y, **TILES),
                          e16, c16, targets, weights)
  ref = _value_and_grads(naive_nll, e16.astype(jnp.float32),
                         c16.astype(jnp.float32), targets, weights)
  assert ours[1][0].dtype == ours[1][1].dtype == jnp.bfloat16
  assert _rel(ours[0], ref[0]) < 1e-5      # fp32 accumulation of exact
  assert _rel(ours[1][0].astype(jnp.float32), ref[1][0]) < 2e-2   # bf16 out
  assert _rel(ours[1][1].astype(jnp.float32), ref[1][1]) < 2e-2


def test_bad_shapes_raise_one_line_errors():
  features, classifier, targets, _ = _problem("random")
  with pytest.raises(ValueError, match="shapes do not match"):
    cce_lib.cce(features, classifier[:, :4], targets)
  with pytest.raises(ValueError, match="filter_eps must be"):
    cce_lib.cce(features, classifier, targets, filter_eps="tiny")


_SHARDED = """
import json, sys
import jax, jax.numpy as jnp, numpy as np
sys.path.insert(0, {root!r})
from jax.sharding import NamedSharding, PartitionSpec as P
from algos.lm import cce as cce_lib
k = jax.random.split(jax.random.PRNGKey(1), 3)
e = jax.random.normal(k[0], (256, 16)) * 4.0
c = jax.random.normal(k[1], (300, 16))
y = jax.random.randint(k[2], (256,), 0, 300)
f = jax.jit(jax.value_and_grad(lambda e, c, y: jnp.mean(cce_lib.cce(
    e, c, y, block_n=64, block_v=64, softcap=20.0)), (0, 1)))
one = f(e, c, y)
from common.core import sharding
mesh = sharding.make_mesh()
rows = NamedSharding(mesh, P("data"))
eight = f(jax.device_put(e, rows), c, jax.device_put(y, rows))
d = lambda a, b: float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))
print(json.dumps({{"devices": jax.device_count(),
                  "sharding": str(eight[1][0].sharding.spec),
                  "value": d(eight[0], one[0]), "de": d(eight[1][0], one[1][0]),
                  "dc": d(eight[1][1], one[1][1])}}))
"""


def test_jit_on_eight_devices_with_the_batch_sharded():
  out = run_on_cpu_devices(_SHARDED.format(root=REPO_ROOT), 8)
  assert out["devices"] == 8
  assert "data" in out["sharding"]    # dE stays sharded like the batch
  assert out["value"] < 1e-6 and out["de"] < 1e-5 and out["dc"] < 1e-5
