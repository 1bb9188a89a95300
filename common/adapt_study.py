"""The runner of test-time adaptation experiments (`config.runner`).

`regjax run eata --config=experiments/eata/config.py:digits_c --seeds=0,1,2`
comes here (see `common/runners.py`). For every seed it trains (or reuses)
the source model on the clean data with the shared harness, then runs every
arm (`config.study.arms`: label -> overrides such as `adapt.method=tent`)
through the protocols of `config.adapt.protocols`:

* `reset`: the state (params, optimizer and method state) is reset to the
  source before each corruption (Tent's table).
* `continual`: the 15 corruptions in sequence, never reset (CoTTA's table);
  then the clean error of the adapted model (EATA's forgetting claim) and
  the number of samples that took part in backward passes.
* `lifelong`: the continual sequence repeated `adapt.rounds` times without
  reset, error per round.
* `openset`: `lifelong` on streams that also hold classes the source model
  never saw (`data.classes` keeps the known ones for source training; the
  stream keeps every class); the error is over known-class samples.

Every corruption is adapted by `Adapter.run` (one jitted `lax.scan` over
its batches on accelerators, asynchronously dispatched jitted steps on CPU;
no host sync per batch either way). Results: `results.md` (tables, mean +- std over seeds) and
`results.json` under the workdir.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np

from common import adapt
from common import adapt_streams
from common import config as config_lib
from common.core import sharding as sharding_lib
from common.study import engine as study_lib

PROTOCOLS = ("reset", "continual", "lifelong", "openset")
CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur",
    "frosted_glass_blur", "motion_blur", "zoom_blur", "snow", "frost", "fog",
    "brightness", "contrast", "elastic", "pixelate", "jpeg_compression")
_SHORT = {"gaussian_noise": "gauss", "shot_noise": "shot",
          "impulse_noise": "impul", "defocus_blur": "defoc",
          "frosted_glass_blur": "glass", "motion_blur": "motn",
          "zoom_blur": "zoom", "snow": "snow", "frost": "frost", "fog": "fog",
          "brightness": "brit", "contrast": "contr", "elastic": "elast",
          "pixelate": "pixel", "jpeg_compression": "jpeg"}


def add_tta_sections(c: mlc.ConfigDict) -> mlc.ConfigDict:
  """Adds the `adapt` and `tta` sections (and the runner) to a base config.

  The rest of the config (data, model, method, optim, schedule, train)
  describes the training of the source model on the clean data.
  """
  c.runner = "common.adapt_study"
  c.adapt = mlc.ConfigDict(dict(
      method="tent",              # a TTA method (common.adapt registry)
      stream="digits_corrupted",  # TFDS base name of the corrupted data
      severity=5, split="test", corruptions=CORRUPTIONS,
      batch_size=60, protocols=("reset", "continual"),
      rounds=10,                  # lifelong / openset rounds
      shuffle=True,
      clean_name="digits_corrupted/clean", clean_split="test",
      fisher_split="train", fisher_size=480,
      source_dir="",              # default <workdir>/source
      source_checkpoint="",       # converted PyTorch weights instead
      train_source=True,          # False: source_checkpoint is required
      cache_streams=True,         # keep every stream on device
      chunk_batches=0,            # >0: batches per scan (large streams)
      max_batches=0))             # >0: truncate every stream (smoke)
  c.adapt.optim = mlc.ConfigDict(dict(
      name="adamw", learning_rate=1e-3, momentum=0.9, nesterov=False,
      b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.0))
  c.tta = mlc.ConfigDict()
  c.tta.source = mlc.ConfigDict()
  c.tta.bn_adapt = mlc.ConfigDict()
  c.tta.tent = mlc.ConfigDict()
  c.tta.eata = mlc.ConfigDict(dict(
      e_margin_factor=0.4, d_margin=0.4, fisher_alpha=1.0, reweight=1.0,
      ma_momentum=0.9, capacity_buckets=(0.25, 0.5, 0.75)))
  c.tta.cotta = mlc.ConfigDict(dict(
      ema=0.999, restore_prob=0.01,
      gate=-1.0,     # < 0: 5% quantile of source confidence minus 0.05
      num_aug=32, loss="ce",
      hflip=True))   # the official flip; False for digits (not mirror-safe)
  c.tta.ostta = mlc.ConfigDict(dict(diversity_weight=0.0, select=1.0))
  return c


def validate(config: mlc.ConfigDict) -> None:
  """Cross-field checks of a TTA experiment config."""
  config_lib.validate_training(config)
  a = config.adapt
  bad = [p for p in a.protocols if p not in PROTOCOLS]
  if bad or not a.protocols:
    raise ValueError(f"adapt.protocols={a.protocols}: unknown {bad}; "
                     f"allowed: {PROTOCOLS}")
  if "openset" in a.protocols and not config.data.classes:
    raise ValueError("adapt.protocols has 'openset' but data.classes is "
                     "empty: set the known classes, e.g. (0, 1, 2, 3, 4, 5)")
  arms = study_lib.study_arms(config)
  for label, overrides in arms.items():
    cfg = config_lib.apply_overrides(config, overrides)
    name = cfg.adapt.method
    if name not in adapt.tta_method_names():
      raise ValueError(f"arm {label!r}: adapt.method={name!r}; registered "
                       f"TTA methods: {adapt.tta_method_names()}")
    if name not in cfg.tta:
      raise ValueError(f"arm {label!r}: config.tta has no section {name!r}")
  if a.batch_size <= 0:
    raise ValueError("adapt.batch_size must be > 0")
  sharding_lib.check_batch_size(a.batch_size)
  if a.rounds < 1:
    raise ValueError("adapt.rounds must be >= 1")
  if a.optim.name not in ("sgd", "adamw"):
    raise ValueError(f"adapt.optim.name={a.optim.name!r}; allowed sgd, adamw")


# --------------------------------------------------------------- helpers
def error_rate(preds: np.ndarray, labels: np.ndarray) -> float:
  """Error (%) over samples with a known label (`label >= 0`)."""
  preds, labels = np.asarray(preds).ravel(), np.asarray(labels).ravel()
  known = labels >= 0
  return float(100.0 * np.mean(preds[known] != labels[known]))


def source_confidence_gate(src: adapt_streams.SourceModel, images: jax.Array,
                           mean, std, quantile: float = 0.05,
                           margin: float = 0.05) -> float:
  """CoTTA's gate: the source model's `quantile` confidence on source data
  minus `margin` (qinenergy/cotta issue #16), test-batch BatchNorm."""
  ctx = adapt._make_context(  # pylint: disable=protected-access
      src.model, src.model_state, adapt.trainable_mask(src.params, "none"),
      src.num_classes, tuple(mean), tuple(std), None)

  @jax.jit
  def conf(x):
    logits = ctx.forward(src.params, x.astype(jnp.float32) / 255.0)
    return jnp.max(jax.nn.softmax(logits, -1), -1)
  c = np.concatenate([np.asarray(conf(x)) for x in images])
  return float(np.quantile(c, quantile) - margin)


def _method_config(cfg: mlc.ConfigDict) -> dict[str, Any]:
  return cfg.tta[cfg.adapt.method].to_dict()


# ------------------------------------------------------------- one arm
def run_arm(cfg: mlc.ConfigDict, src: adapt_streams.SourceModel,
            streams: dict[str, adapt_streams.Stream],
            clean: adapt_streams.Stream, fisher: jax.Array | None,
            seed: int, mesh: jax.sharding.Mesh) -> dict[str, Any]:
  """All protocols of one arm and one seed (see the module docstring)."""
  a = cfg.adapt
  method_cfg = _method_config(cfg)
  method = adapt.get_tta_method(a.method, method_cfg)
  adapter = adapt.make_adapter(
      src.model, method, num_classes=src.num_classes,
      mean=tuple(cfg.data.mean), std=tuple(cfg.data.std),
      optimizer=a.optim.name, nesterov=a.optim.nesterov, mesh=mesh)
  hp = sharding_lib.replicate(adapt.build_hparams(
      method, method_cfg, a.optim, src.num_classes), mesh)
  key = jax.random.PRNGKey(seed)
  state0 = adapter.init(src.params, src.model_state, key,
                        fisher if a.method == "eata" else None)
  corruptions = list(a.corruptions)
  out: dict[str, Any] = {}
  t0 = time.time()

  def with_rng(state, salt):
    return adapt.copy_state(state).replace(rng=jax.random.fold_in(key, salt))

  def adapt_on(state, stream, gate_log=None):
    """Adapts on every chunk of `stream`: (state, error %, #images)."""
    preds, labels = [], []
    for images, y in stream.chunks():
      state, p, metrics = adapter.run(state, images, hp)
      preds.append(np.asarray(p))
      labels.append(y)
      if gate_log is not None and "gate_fired" in metrics:
        gate_log.append(np.asarray(metrics["gate_fired"]))
    preds, labels = np.concatenate(preds), np.concatenate(labels)
    return state, error_rate(preds, labels), preds.size

  def clean_error(state):
    preds, labels = [], []
    for images, y in clean.chunks():
      preds.append(np.asarray(adapter.predict(state, images, hp)))
      labels.append(y)
    return error_rate(np.concatenate(preds), np.concatenate(labels))

  if "reset" in a.protocols:
    out["reset"] = {c: adapt_on(with_rng(state0, 1000 + i), streams[c])[1]
                    for i, c in enumerate(corruptions)}
  sequential = [p for p in a.protocols if p != "reset"]
  if sequential:
    multi = any(p in ("lifelong", "openset") for p in sequential)
    rounds = a.rounds if multi else 1
    state = with_rng(state0, 0)
    per_round, gate_log, n_images = [], [], 0
    for r in range(rounds):
      if r > 0 and method.trains == "none":  # nothing changes: same errors
        per_round.append(dict(per_round[0]))
        continue
      errs = {}
      for c in corruptions:
        state, errs[c], n = adapt_on(state, streams[c],
                                     gate_log if r == 0 else None)
        n_images += n if r == 0 else 0
      per_round.append(errs)
      if r == 0:
        out["clean_error_after_round1"] = clean_error(state)
        out["backward_samples_round1"] = float(state.backward_samples)
        out["backward_rows_round1"] = float(state.backward_rows)
        out["images_round1"] = n_images
    out["rounds"] = per_round
    out["clean_error_after_last_round"] = clean_error(state)
    if gate_log:
      out["gate_fired_fraction_round1"] = float(
          np.mean(np.concatenate(gate_log)))
  out["clean_error_before"] = clean_error(state0)
  out["seconds"] = time.time() - t0
  return out


# ---------------------------------------------------------------- study
def _prepare(config: mlc.ConfigDict, workdir: str, seed: int,
             mesh: jax.sharding.Mesh, show_progress: bool):
  a = config.adapt
  src = adapt_streams.source_model(
      config, a.source_dir or os.path.join(workdir, "source"), seed,
      show_progress=show_progress)
  opts = dict(chunk_batches=a.chunk_batches, cache=a.cache_streams)
  streams = {c: adapt_streams.Stream(
      config, adapt_streams.stream_name(config, c), a.split, seed, mesh,
      salt=c, **opts) for c in a.corruptions}
  clean = adapt_streams.Stream(config, a.clean_name, a.clean_split, seed,
                               mesh, known_only=True, salt=a.clean_split,
                               **opts)
  fisher_cfg = config_lib.apply_overrides(config, {"adapt.max_batches": 0})
  fisher = adapt_streams.Stream(
      fisher_cfg, a.clean_name, a.fisher_split, seed, mesh, known_only=True,
      limit=a.fisher_size, salt=a.fisher_split)
  fisher_images = jnp.concatenate([x for x, _ in fisher.chunks()])
  return src, streams, clean, fisher_images


def run_study(config: mlc.ConfigDict, workdir: str, seeds: Sequence[int],
              arms: Sequence[str] = (), command: str | None = None,
              show_progress: bool = True) -> study_lib.StudyResult:
  """Every arm x seed x protocol; writes results.md / results.json."""
  validate(config)
  arm_overrides = study_lib.study_arms(config, arms)
  mesh = sharding_lib.make_mesh()
  runs: dict[str, dict[str, Any]] = {arm: {} for arm in arm_overrides}
  sources = {}
  for seed in seeds:
    src, streams, clean, fisher = _prepare(config, workdir, seed, mesh,
                                           show_progress)
    sources[str(seed)] = src.clean_eval
    gate = None
    for arm, overrides in arm_overrides.items():
      cfg = config_lib.apply_overrides(config, overrides + [f"seed={seed}"])
      if cfg.adapt.method == "cotta" and cfg.tta.cotta.gate < 0:
        if gate is None:  # on the clean source images of the Fisher set
          gate = source_confidence_gate(src, fisher, cfg.data.mean,
                                        cfg.data.std)
        cfg = config_lib.apply_overrides(cfg, {"tta.cotta.gate": gate})
      result = run_arm(cfg, src, streams, clean, fisher, seed, mesh)
      if cfg.adapt.method == "cotta":
        result["cotta_gate"] = float(cfg.tta.cotta.gate)
      runs[arm][str(seed)] = result
      if show_progress:
        print(f"[seed {seed}] {arm}: {_one_line(result)}", flush=True)
  summary = summarise(runs, list(config.adapt.corruptions))
  table = format_tables(summary, config, len(seeds))
  return study_lib.write_results(workdir, table, seeds, summary, config,
                                 command, runs=runs,
                                 source_clean_eval=sources)


def _one_line(result: dict[str, Any]) -> str:
  parts = []
  if "reset" in result:
    parts.append(f"reset {np.mean(list(result['reset'].values())):.1f}")
  if "rounds" in result:
    means = [np.mean(list(r.values())) for r in result["rounds"]]
    parts.append("rounds " + " ".join(f"{m:.1f}" for m in means))
    parts.append(f"clean after {result['clean_error_after_round1']:.1f}")
  parts.append(f"{result['seconds']:.0f}s")
  return ", ".join(parts)


def _ms(values: list[float]) -> dict[str, float | None]:
  arr = np.asarray(values, np.float64)
  return {"mean": float(arr.mean()),
          "std": float(arr.std(ddof=1)) if len(arr) > 1 else None}


def summarise(runs: dict[str, dict[str, Any]],
              corruptions: list[str]) -> dict[str, Any]:
  """Mean and std over seeds of every reported number, per arm."""
  out = {}
  for arm, by_seed in runs.items():
    seeds = list(by_seed.values())
    s: dict[str, Any] = {}
    if "reset" in seeds[0]:
      s["reset"] = {c: _ms([r["reset"][c] for r in seeds])
                    for c in corruptions}
      s["reset"]["mean"] = _ms([np.mean([r["reset"][c] for c in corruptions])
                                for r in seeds])
    if "rounds" in seeds[0]:
      s["continual"] = {c: _ms([r["rounds"][0][c] for r in seeds])
                        for c in corruptions}
      s["continual"]["mean"] = _ms(
          [np.mean([r["rounds"][0][c] for c in corruptions]) for r in seeds])
      n_rounds = len(seeds[0]["rounds"])
      s["round_means"] = [
          _ms([np.mean([r["rounds"][k][c] for c in corruptions])
               for r in seeds]) for k in range(n_rounds)]
      for key in ("clean_error_after_round1", "clean_error_after_last_round",
                  "backward_samples_round1", "backward_rows_round1"):
        s[key] = _ms([r[key] for r in seeds])
      s["backward_fraction_round1"] = _ms(
          [100.0 * r["backward_samples_round1"] / r["images_round1"]
           for r in seeds])
      s["backward_rows_fraction_round1"] = _ms(
          [100.0 * r["backward_rows_round1"] / r["images_round1"]
           for r in seeds])
      if "gate_fired_fraction_round1" in seeds[0]:
        s["gate_fired_fraction_round1"] = _ms(
            [r["gate_fired_fraction_round1"] for r in seeds])
    s["clean_error_before"] = _ms([r["clean_error_before"] for r in seeds])
    s["seconds"] = _ms([r["seconds"] for r in seeds])
    out[arm] = s
  return out


def _cell(ms: dict[str, float | None], digits: int = 1) -> str:
  if ms["std"] is None:
    return f"{ms['mean']:.{digits}f}"
  return f"{ms['mean']:.{digits}f} +- {ms['std']:.{digits}f}"


def _paper(config: mlc.ConfigDict) -> dict[str, dict[str, float]]:
  return {k: v.to_dict() for k, v in config.study.paper.items()}


def format_tables(summary: dict[str, Any], config: mlc.ConfigDict,
                  n_seeds: int) -> str:
  """Markdown tables of every protocol that ran (ours; paper's columns)."""
  a = config.adapt
  corruptions = list(a.corruptions)
  head = [f"Ours: {a.stream} severity {a.severity}, batch {a.batch_size}, "
          f"source {config.model.name} trained on {config.data.name}"
          + (f" classes {tuple(config.data.classes)}"
             if config.data.classes else "")
          + f"; error (%), mean +- std over {n_seeds} seed(s)."]
  paper = _paper(config)
  if paper:
    head.append(f"Paper ({config.study.paper_source}): columns 'paper'.")
  lines = [" ".join(head), ""]
  cols = [_SHORT.get(c, c) for c in corruptions]
  # Baselines first, then the methods (ConfigDict sorts the arms by name).
  first = ("source", "bn_adapt", "tent")
  summary = {k: summary[k] for k in sorted(
      summary, key=lambda a: (first.index(a) if a in first else 3, a))}

  def per_corruption(key: str, title: str):
    lines.extend([f"**{title}**", ""])
    has_paper = any(f"{key}_mean" in p for p in paper.values())
    extra = ["paper: mean"] if has_paper else []
    lines.append("| arm | " + " | ".join(cols + ["mean"] + extra) + " |")
    lines.append("|---|" + "---|" * (len(cols) + 1 + len(extra)))
    for arm, s in summary.items():
      if key not in s:
        continue
      cells = [f"{s[key][c]['mean']:.1f}" for c in corruptions]
      cells.append(_cell(s[key]["mean"]))
      if has_paper:
        p = paper.get(arm, {}).get(f"{key}_mean")
        cells.append("-" if p is None else f"{p:g}")
      lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    lines.append("")

  if any("reset" in s for s in summary.values()):
    per_corruption("reset", "(a) reset before each corruption")
  if any("continual" in s for s in summary.values()):
    open_set = "openset" in a.protocols
    per_corruption("continual", "(b) continual, round 1" + (
        " (known-class error, open-set stream)" if open_set else ""))
    lines.extend(["**(e) after round 1: clean error and backward passes**",
                  "", "| arm | clean error before | clean error after round"
                  " 1 | clean error after last round | samples in backward "
                  "(% of stream) | rows back-propagated (% of stream) |",
                  "|---|---|---|---|---|---|"])
    for arm, s in summary.items():
      if "continual" in s:
        lines.append(
            f"| {arm} | {_cell(s['clean_error_before'])} | "
            f"{_cell(s['clean_error_after_round1'])} | "
            f"{_cell(s['clean_error_after_last_round'])} | "
            f"{_cell(s['backward_fraction_round1'])} | "
            f"{_cell(s['backward_rows_fraction_round1'])} |")
    lines.append("")
    rounds = max(len(s.get("round_means", [])) for s in summary.values())
    if rounds > 1:
      title = ("(d) open-set lifelong: known-class error per round"
               if "openset" in a.protocols else
               "(c) lifelong: mean error per round")
      lines.extend([f"**{title}**", "",
                    "| arm | " + " | ".join(
                        f"r{k + 1}" for k in range(rounds)) + " |",
                    "|---|" + "---|" * rounds])
      for arm, s in summary.items():
        if "round_means" in s:
          lines.append(f"| {arm} | " + " | ".join(
              _cell(m) for m in s["round_means"]) + " |")
      lines.append("")
  return "\n".join(lines)


def smoke(config: mlc.ConfigDict, workdir: str) -> None:
  """A few steps: a short source training, the paper's arm on 2 corruptions.

  The arm is the one labelled `config.adapt.method` (else the first one).
  Fails loudly (exceptions, non-finite errors) if anything is off.
  """
  arms = list(study_lib.study_arms(config))
  arms = [config.adapt.method] if config.adapt.method in arms else arms[:1]
  cfg = config_lib.apply_overrides(config, {
      "train.steps": config.smoke.steps, "train.tensorboard": False,
      "train.eval_every_epochs": 0,
      "adapt.corruptions": tuple(config.adapt.corruptions[:2]),
      "adapt.rounds": min(2, config.adapt.rounds), "adapt.max_batches": 2,
      "adapt.fisher_size": 2 * config.adapt.batch_size})
  if cfg.tta.cotta.num_aug > 4:
    cfg = config_lib.apply_overrides(cfg, {"tta.cotta.num_aug": 2})
  result = run_study(cfg, workdir, [0], arms=arms, command="smoke",
                     show_progress=False)
  for arm, s in result.summary.items():
    values = [v["mean"] for v in jax.tree.leaves(
        s, is_leaf=lambda x: isinstance(x, dict) and set(x) == {"mean",
                                                                "std"})]
    if not all(np.isfinite(values)):
      raise AssertionError(f"smoke: non-finite result in arm {arm}: {s}")
