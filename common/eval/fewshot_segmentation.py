"""Episodic few-shot segmentation on frozen features (PASCAL-5i protocol).

`config.eval.name = "fewshot_segmentation"` evaluates a backbone trained on
the base classes (the supervised protocol, per-pixel cross-entropy) on
episodes of the novel classes, as the official RePRI `episodic_validate`
(mboudiaf/RePRI-for-Few-Shot-Segmentation, `src/test.py`):

1. the evaluation split is opened with all its classes (the training split
   hides the novel ones), and the eval-mode `features [N, h, w, C]` of its
   images are computed once and L2-normalised over channels (`norm_feat`);
2. for each K in `shots`, `episodes` episodes are drawn
   (`common.data.fewshot_episodes`, seeded by the run's seed and K);
3. each registered episode solver of `solvers` predicts the query's
   foreground from the supports (`@register_fewshot_solver("name")`, found
   in `algos/` by scanning, e.g. RePRI and the prototype baseline in
   `algos/segmentation/repri.py`), `chunk` episodes at a time;
4. intersections and unions are accumulated per class over the episodes
   (`255` pixels excluded): `<K>shot/<solver>/miou` is the mean over novel
   classes of their IoU (the official mIoU), `.../fbiou` the mean of the
   foreground and background IoU over all episodes.

A solver factory `make(settings: dict) -> solve` returns
`solve(feat_s [E,K,h,w,C], mask_s [E,K,H,W], feat_q [E,h,w,C],
valid_q [E,H,W], mask_q [E,H,W]) -> logits [E,H,W]` (foreground where
> 0). Only oracle variants may read `mask_q` (the true proportion).

Settings (`config.eval` besides `name`): `fewshot.novel_classes`,
`fewshot.shots`, `fewshot.episodes`, `fewshot.chunk`, `fewshot.min_pixels`,
`fewshot.split` ("" = `data.eval_split`), `fewshot.solvers` and
`fewshot.settings.<solver>` (a solver's overrides).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np

from common import registry
from common.data import fewshot_episodes as episodes_lib
from common.eval import evaluators
from common.eval import segmentation

IGNORE = episodes_lib.IGNORE
Solver = Callable[..., jax.Array]

FEWSHOT_SOLVERS = registry.Registry(
    "few-shot segmentation solver", ("algos",), "register_fewshot_solver")
register_fewshot_solver = FEWSHOT_SOLVERS.register


def default_config() -> mlc.ConfigDict:
  """`config.eval.fewshot`."""
  return mlc.ConfigDict(dict(
      novel_classes=(),        # class ids of the fold (fold_classes)
      shots=(1, 5),
      episodes=1000,           # official test_num
      chunk=100,               # episodes solved per jitted call
      min_pixels=1,            # a class counts in an image from this many
      split="",                # "" = data.eval_split
      solvers=("prototype", "repri", "repri_oracle"),
      settings=mlc.ConfigDict()))


def get_solver(name: str, settings: dict[str, Any] | None = None) -> Solver:
  return FEWSHOT_SOLVERS.get(name)(dict(settings or {}))


def features(setup: Any, state: Any, images: np.ndarray) -> np.ndarray:
  """L2-normalised eval-mode features `[N, h, w, C]` of uint8 `images`."""
  key = setup.config.data.input_key
  size = setup.config.train.eval_batch_size
  out = [evaluators.predict(setup, state, {key: images[i:i + size]},
                            ("features",))["features"]
         for i in range(0, len(images), size)]
  feats = np.concatenate(out).astype(np.float32)
  norm = np.linalg.norm(feats, axis=-1, keepdims=True)
  return feats / np.maximum(norm, 1e-12)


def iou_counts(pred: np.ndarray, target: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
  """`(intersection [E, 2], union [E, 2])` of bg / fg, 255 excluded.

  Args:
    pred: bool `[E, H, W]` foreground prediction.
    target: `[E, H, W]` 0 / 1 / 255.
  """
  conf = np.stack([segmentation.confusion(p.astype(np.int64), t, 2)
                   for p, t in zip(pred, target)])      # [E, label, pred]
  inter = np.diagonal(conf, axis1=1, axis2=2)
  return inter, conf.sum(1) + conf.sum(2) - inter


def summarise(inter: np.ndarray, union: np.ndarray,
              cls: np.ndarray) -> dict[str, float]:
  """mIoU over classes (per-class sums over episodes) and FB-IoU."""
  ious = [inter[cls == c, 1].sum() / max(union[cls == c, 1].sum(), 1)
          for c in np.unique(cls)]
  fb = inter.sum(0) / np.maximum(union.sum(0), 1)
  return {"miou": float(np.mean(ious)), "fbiou": float(np.mean(fb))}


def episode_arrays(feats: np.ndarray, masks: np.ndarray,
                   ep: episodes_lib.Episodes, rows: slice
                   ) -> tuple[jax.Array, ...]:
  """`(feat_s, mask_s, feat_q, valid_q, mask_q)` of episodes `rows`."""
  sup, qry, cls = ep.support[rows], ep.query[rows], ep.cls[rows]
  mask_q = episodes_lib.episode_masks(masks, qry, cls)
  mask_s = episodes_lib.episode_masks(masks, sup, cls)
  return (jnp.asarray(feats[sup]), jnp.asarray(mask_s, jnp.int32),
          jnp.asarray(feats[qry]), jnp.asarray(mask_q != IGNORE),
          jnp.asarray(mask_q, jnp.int32))


def evaluate_episodes(feats: np.ndarray, masks: np.ndarray,
                      cfg: mlc.ConfigDict, seed: int
                      ) -> tuple[dict[str, float], dict[str, Any]]:
  """Metrics `<K>shot/<solver>/<miou|fbiou>` and, per K, the first chunk's
  arrays and predictions (for figures)."""
  metrics, examples = {}, {}
  solvers = {n: get_solver(n, cfg.settings.get(n, {})) for n in cfg.solvers}
  for shots in cfg.shots:
    ep = episodes_lib.sample_episodes(
        masks, cfg.novel_classes, shots, cfg.episodes,
        seed=int(np.random.SeedSequence([seed, shots]).generate_state(1)[0]),
        min_pixels=cfg.min_pixels)
    counts = {n: [] for n in solvers}
    for start in range(0, cfg.episodes, cfg.chunk):
      rows = slice(start, start + cfg.chunk)
      arrays = episode_arrays(feats, masks, ep, rows)
      for name, solve in solvers.items():
        pred = np.asarray(solve(*arrays)) > 0
        counts[name].append(iou_counts(pred, np.asarray(arrays[4])))
        if start == 0:
          examples.setdefault(shots, {"episodes": ep, "preds": {}})
          examples[shots]["preds"][name] = pred
    for name, parts in counts.items():
      inter = np.concatenate([p[0] for p in parts])
      union = np.concatenate([p[1] for p in parts])
      for k, v in summarise(inter, union, ep.cls).items():
        metrics[f"{shots}shot/{name}/{k}"] = v
  return metrics, examples


def eval_split(setup: Any) -> dict[str, np.ndarray]:
  """Images and per-pixel labels of the split, with every class."""
  from common.data import sources  # pylint: disable=g-import-not-at-top
  d, f = setup.config.data, setup.config.eval.fewshot
  source = sources.open_split(d.name, f.split or d.eval_split,
                              d.data_dir or None,
                              image_size=d.image_size or None)
  return source.get(np.arange(len(source)))


@evaluators.register_evaluator("fewshot_segmentation")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  """Episodic novel-class metrics of the trained backbone (see module)."""
  cfg = setup.config.eval.fewshot
  if not tuple(cfg.novel_classes):
    raise ValueError("config.eval.fewshot.novel_classes is empty; set the "
                     "fold's novel class ids (fewshot_episodes.fold_classes)")
  data = eval_split(setup)
  feats = features(setup, state, data["image"])
  metrics, _ = evaluate_episodes(feats, data["label"], cfg, setup.config.seed)
  return metrics
