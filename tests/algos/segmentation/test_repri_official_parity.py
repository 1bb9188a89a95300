"""RePRI inference against the official `src/classifier.py`, on CPU torch.

The official code (mboudiaf/RePRI-for-Few-Shot-Segmentation) is not a
package and is not in this repo: these tests import `src.classifier` from
the checkout named by `REGJAX_OFFICIAL_REPRI_DIR` and skip without it:

    git --git-dir=<mirror> archive HEAD src | tar -x -C /tmp/repri_official
    REGJAX_OFFICIAL_REPRI_DIR=/tmp/repri_official JAX_PLATFORMS=cpu \\
        python -m pytest -q \\
        tests/algos/segmentation/test_repri_official_parity.py

The official episode is replayed as `src/test.py::episodic_validate` does
it (normalised features, `init_prototypes`, `compute_FB_param`, `RePRI`,
bilinear upsampling of the query logits, `get_probas`) on the same random
features and masks (with ignored 255 pixels); `visdom_logger` is stubbed
and `dist.get_rank()` returns "cpu" (the official `to_one_hot` moves its
output to the rank's GPU).
"""

from __future__ import annotations

import argparse
import os
import sys
import types

import jax.numpy as jnp
import numpy as np
import pytest

from algos.segmentation import repri

ROOT = os.environ.get("REGJAX_OFFICIAL_REPRI_DIR", "")
pytestmark = pytest.mark.skipif(
    not os.path.isfile(os.path.join(ROOT, "src", "classifier.py")),
    reason="official RePRI code: set REGJAX_OFFICIAL_REPRI_DIR to a checkout"
           " holding src/classifier.py")
torch = pytest.importorskip("torch")

TASKS, C, H_FEAT, H_IMG = 3, 16, 9, 33


@pytest.fixture(scope="module")
def classifier_module():
  sys.modules.setdefault("visdom_logger", types.SimpleNamespace(
      VisdomLogger=object))
  if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
  from src import classifier  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(1)
  return classifier


@pytest.fixture(autouse=True)
def cpu_rank(monkeypatch):
  monkeypatch.setattr(torch.distributed, "get_rank", lambda: "cpu")


def _episodes(shot, seed):
  """Random features `[n, K, C, h, w]` and blob masks with 255s."""
  rng = np.random.default_rng(seed)
  fs = rng.normal(size=(TASKS, shot, C, H_FEAT, H_FEAT)).astype(np.float32)
  fq = rng.normal(size=(TASKS, 1, C, H_FEAT, H_FEAT)).astype(np.float32)
  # Foreground features share a direction, so the problem is learnable.
  yy, xx = np.mgrid[:H_IMG, :H_IMG]

  def masks(n):
    out = np.zeros((TASKS, n, H_IMG, H_IMG), np.int64)
    for t in range(TASKS):
      for i in range(n):
        cy, cx, r = rng.integers(8, 25), rng.integers(8, 25), rng.integers(
            5, 10)
        out[t, i][(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 1
        out[t, i, :, H_IMG - rng.integers(1, 6):] = 255   # padding
    return out

  ms, mq = masks(shot), masks(1)
  direction = rng.normal(size=(C,)).astype(np.float32)
  for f, m in ((fs, ms), (fq, mq)):
    ds = np.asarray(repri.downsample_nearest(jnp.asarray(m),
                                             (H_FEAT, H_FEAT)))
    f += 1.5 * (ds == 1)[:, :, None] * direction[None, None, :, None, None]
  return fs, fq, ms, mq


def _official(classifier, fs, fq, ms, mq, **args):
  """The official episode (src/test.py), probas `[n, H, W]` and state."""
  f = torch.nn.functional
  cfg = dict(temperature=20.0, adapt_iter=50, weights=[1.0, "auto", "auto"],
             cls_lr=0.025, FB_param_update=[10], cls_visdom_freq=5,
             FB_param_type="soft", FB_param_noise=0)
  cfg.update(args)
  fs = f.normalize(torch.tensor(fs), dim=2)
  fq = f.normalize(torch.tensor(fq), dim=2)
  gs, gq = torch.tensor(ms), torch.tensor(mq)
  cls = classifier.Classifier(argparse.Namespace(**cfg))
  classes = [[1]] * TASKS
  cls.init_prototypes(fs, fq, gs, gq, classes, None)
  cls.compute_FB_param(features_q=fq, gt_q=gq)
  pi_init = cls.FB_param.clone()
  n_shots = torch.full((TASKS,), float(gs.shape[1]))
  cls.RePRI(fs, fq, gs, gq, classes, n_shots, None)
  logits = f.interpolate(cls.get_logits(fq), size=(H_IMG, H_IMG),
                         mode="bilinear", align_corners=True)
  probas = cls.get_probas(logits).detach()[:, 0]   # [n, 2, H, W]
  return dict(fg=probas[:, 1].numpy(), pred=probas.argmax(1).numpy(),
              proto=cls.prototype.detach().numpy(),
              bias=cls.bias.detach().numpy(), pi_init=pi_init.numpy(),
              pi=cls.FB_param.detach().numpy())


def _ours(fs, fq, ms, mq, cfg):
  to = lambda x: jnp.moveaxis(jnp.asarray(x), -3, -1)   # channels last
  fs = repri.normalize_features(to(fs))
  fq = repri.normalize_features(to(fq))[:, 0]
  mq = jnp.asarray(mq)[:, 0]
  pi_oracle = jnp.stack([repri.oracle_proportion(m, (H_FEAT, H_FEAT))
                         for m in mq])
  out = repri.repri_batch(fs, jnp.asarray(ms), fq, mq != repri.IGNORE,
                          pi_oracle, cfg.hparams(), **cfg.static(),
                          image_size=(H_IMG, H_IMG))
  return out, np.asarray(out.logits)


@pytest.mark.parametrize("shot,oracle", [(1, False), (5, False), (2, True)])
def test_repri_matches_the_official_classifier(classifier_module, shot,
                                               oracle):
  fs, fq, ms, mq = _episodes(shot, seed=shot)
  if oracle:   # scripts/oracle.sh, fewer iterations to keep the test short
    cfg = repri.oracle_config()._replace(n_iter=60)
    off = _official(classifier_module, fs, fq, ms, mq, adapt_iter=60,
                    FB_param_type="oracle", weights=[1.0, 1.0, 0.1])
  else:
    cfg = repri.RePRIConfig()
    off = _official(classifier_module, fs, fq, ms, mq)
  out, logits = _ours(fs, fq, ms, mq, cfg)
  np.testing.assert_allclose(out.proto, off["proto"], rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(out.bias, off["bias"], rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(out.pi, off["pi"], rtol=1e-4, atol=1e-5)
  if not oracle:
    np.testing.assert_allclose(out.pi_init, off["pi_init"], rtol=1e-4,
                               atol=1e-5)
  fg = 1.0 / (1.0 + np.exp(-logits))
  np.testing.assert_allclose(fg, off["fg"], atol=1e-4)
  agree = np.mean(np.asarray(repri.predict(logits)) == (off["pred"] == 1))
  assert agree > 0.999, agree
