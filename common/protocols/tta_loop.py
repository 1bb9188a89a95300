"""The TTA protocol's adaptation: the one train step walked over streams.

`Adapter` builds the adaptation step of an arm with `build.build` (the
arm's Method v2, the core optimizer masked to `Method.trainable`, no
augmentation) on the source model, and walks a stream with it: a host
loop of asynchronously dispatched jitted steps (`Setup.train_step`) or one
jitted `lax.scan` over `train_step_fn` (`adapt.loop`). `run_protocols`
runs the reset and sequential units with per-unit progress and resume
(see `common.protocols.tta`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections as mlc
import numpy as np

from common.core import checkpoint as checkpoint_lib
from common.core import method as method_lib
from common.core import sharding as sharding_lib
from common.core import train_step as train_step_lib
from common.core.train_state import TrainState
from common.data import streams as streams_lib
from common.protocols import build
from common.protocols import supervised

_BACKWARD = ("backward_samples", "backward_rows")


@dataclasses.dataclass
class Source:
  """The model to adapt (host or replicated arrays) and its clean eval."""
  model_name: str
  model_kwargs: dict[str, Any]
  params: Any
  model_state: Any
  num_classes: int
  image_shape: tuple[int, int, int]
  final: dict[str, float]


def converted_source(config: mlc.ConfigDict) -> Source:
  """A source model from converted PyTorch weights (see
  third_party_configs/tta_weights/README.md): architecture and classes come
  from the conversion's `meta.json`."""
  from common.convert import torch_to_flax  # pylint: disable=g-import-not-at-top
  from common.data import sources  # pylint: disable=g-import-not-at-top
  path = config.adapt.source_checkpoint
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"config.adapt.source_checkpoint={path!r} does not exist; download "
        f"and convert the PyTorch weights first (python -m "
        f"common.convert.torch_to_flax, see third_party_configs/tta_weights)")
  variables = dict(torch_to_flax.load_converted(path))
  meta = torch_to_flax.load_metadata(path)
  clean = sources.open_split(config.adapt.clean_name,
                             config.adapt.clean_split,
                             config.data.data_dir or None,
                             image_size=config.data.image_size or None)
  size = config.data.image_size
  shape = (tuple(clean.image_shape) if clean.image_shape
           else (size, size, 3))
  return Source(model_name=meta["arch"],
                model_kwargs=dict(meta.get("model_kwargs", {})),
                params=variables.pop("params"), model_state=variables,
                num_classes=int(meta["num_classes"]), image_shape=shape,
                final={})


def adapt_config(config: mlc.ConfigDict, source: Source) -> mlc.ConfigDict:
  """The supervised-schema config of the adaptation step: the arm's
  method and `tta.<method>` section, `adapt.optim` at a constant learning
  rate, batch `adapt.batch_size`, no augmentation."""
  a, o = config.adapt, config.adapt.optim
  c = supervised.base_config()
  c.experiment, c.seed = config.experiment, config.seed
  c.data = config.data.copy_and_resolve_references()
  c.data.update(crop_padding=0, flip=False)
  c.model.update(name=source.model_name, dtype=config.model.dtype)
  c.model.kwargs = mlc.ConfigDict(source.model_kwargs)
  c.method = mlc.ConfigDict({"name": a.method})
  c.method[a.method] = config.tta[a.method].copy_and_resolve_references()
  c.optim.update(name=o.name, momentum=o.momentum, nesterov=o.nesterov,
                 weight_decay=o.weight_decay, weight_decay_mask="all",
                 b1=o.b1, b2=o.b2, eps=o.eps, clip_grad_norm=0.0)
  c.schedule.update(name="constant", learning_rate=o.learning_rate,
                    warmup_epochs=0.0, boundaries_epochs=())
  c.train.update(batch_size=a.batch_size, eval_batch_size=a.batch_size,
                 micro_batches=1, steps=1, log_norms=False,
                 tensorboard=False)
  c.lock()
  return c


class Adapter:
  """The adaptation step of one arm on one source model.

  Attributes:
    setup: the `build.Setup` (train step, eval step, hparams).
    state0: the TrainState at the source (params, optimizer and method
      state as `Method.init` makes them); every reset starts from a copy.
    trains: whether any parameter trains (`Method.trainable`).
  """

  def __init__(self, config: mlc.ConfigDict, source: Source,
               mesh: jax.sharding.Mesh, extras: Any = None,
               method: method_lib.Method | None = None):
    acfg = adapt_config(config, source)
    run = method_lib.RunInfo(
        num_examples=0, num_classes=source.num_classes, steps_per_epoch=1,
        num_epochs=1, total_steps=1, global_batch_size=acfg.train.batch_size)
    example = {acfg.data.input_key: jax.ShapeDtypeStruct(
        (1, *source.image_shape), np.uint8)}
    self.setup = build.build(acfg, run, example, extras=extras,
                             method=method)
    self.mesh = mesh
    self._repl = sharding_lib.replicated(mesh)
    self.state0 = self.setup.init_state(params=source.params,
                                        model_state=source.model_state)
    self._key = jax.random.PRNGKey(config.seed)
    self.trains = any(jax.tree.leaves(self.setup.parts.trainable))
    loop = config.adapt.loop
    if loop == "auto":
      loop = "host" if mesh.devices.flat[0].platform == "cpu" else "scan"
    self.loop = loop
    self._input_key = acfg.data.input_key
    state_sharding = jax.tree.map(lambda _: self._repl,
                                  self.setup.abstract_state)
    parts = self.setup.parts

    def scan_fn(state, batches, hparams):
      def body(s, batch):
        s, metrics, outputs = train_step_lib.train_step_fn(
            s, batch, hparams, parts=parts)
        return s, (jnp.argmax(outputs["logits"], -1).astype(jnp.int32),
                   metrics)
      return jax.lax.scan(body, state, batches)
    self._scan = jax.jit(scan_fn, donate_argnums=0, out_shardings=(
        state_sharding, (streams_lib.stream_sharding(mesh), self._repl)))

  def fresh(self, salt: int) -> TrainState:
    """A copy of `state0` whose steps draw keys from `fold_in(seed, salt)`
    (equal to re-initialising from the source, without recomputing
    `Method.init`)."""
    rng = jax.device_put(jax.random.fold_in(self._key, salt), self._repl)
    return jax.tree.map(jnp.copy, self.state0).replace(rng=rng)

  def walk(self, state: TrainState, batches: dict[str, jax.Array],
           hparams: dict[str, Any] | None = None):
    """Adapts on `[k, b, ...]` batches: `(state, preds [k, b], metrics
    {name: [k]})`; `hparams` default the config's (`setup.hparams`)."""
    hp = self.setup.hparams if hparams is None else hparams
    if self.loop == "scan":
      state, (preds, metrics) = self._scan(state, batches, hp)
      return state, np.asarray(preds), jax.device_get(metrics)
    logits, metrics = [], []
    k = jax.tree.leaves(batches)[0].shape[0]
    for t in range(k):  # dispatched asynchronously: no host sync per step
      state, m, out = self.setup.train_step(
          state, jax.tree.map(lambda x, t=t: x[t], batches), hp)
      logits.append(out["logits"])
      metrics.append(m)
    logits, metrics = jax.device_get((logits, metrics))
    preds = np.argmax(np.stack(logits), -1).astype(np.int32)
    return state, preds, {n: np.stack([m[n] for m in metrics])
                          for n in metrics[0]}

  def adapt(self, state: TrainState, stream: streams_lib.Stream):
    """Adapts on every chunk of `stream`: `(state, error %, #images,
    step metrics {name: [T]})`."""
    preds, labels, metrics = [], [], []
    for batches, y in stream.chunks():
      state, p, m = self.walk(state, batches)
      preds.append(p)
      labels.append(y)
      metrics.append(m)
    preds, labels = np.concatenate(preds), np.concatenate(labels)
    metrics = {n: np.concatenate([m[n] for m in metrics])
               for n in metrics[0]}
    return (state, streams_lib.error_rate(preds, labels), preds.size,
            metrics)

  def clean_error(self, state: TrainState,
                  stream: streams_lib.Stream) -> float:
    """Error (%) of `Method.predict` on `stream`, batch by batch."""
    preds, labels = [], []
    for batches, y in stream.chunks():
      k = y.shape[0]
      outs = [self.setup.eval_step(
          state, jax.tree.map(lambda x, t=t: x[t], batches),
          self.setup.hparams)["logits"] for t in range(k)]
      preds.append(np.argmax(np.stack(jax.device_get(outs)), -1))
      labels.append(y)
    return streams_lib.error_rate(np.concatenate(preds),
                                  np.concatenate(labels))


def _mean(values) -> float:
  return float(np.mean(np.asarray(values, np.float64)))


def run_protocols(adapter: Adapter, config: mlc.ConfigDict,
                  streams: dict[str, streams_lib.Stream],
                  clean: streams_lib.Stream, progress: dict[str, Any],
                  ckpt: checkpoint_lib.Checkpointer,
                  save: Callable[[dict[str, Any]], None],
                  stop: Callable[[], bool]) -> str:
  """Runs the units `progress` does not hold yet; "finished" or
  "preempted" (progress and the sequential state saved)."""
  a = config.adapt
  final = progress["final"]
  corruptions = list(a.corruptions)

  def done(key, value):
    final[key] = value
    progress["units"] = sum(k.endswith("/error") and "/mean/" not in k
                            for k in final)
    save(progress)

  if "reset" in a.protocols:
    for i, c in enumerate(corruptions):
      if f"reset/{c}/error" in final:
        continue
      _, err, _, _ = adapter.adapt(adapter.fresh(1000 + i), streams[c])
      done(f"reset/{c}/error", err)
      if stop() and i + 1 < len(corruptions):
        return "preempted"
    final["reset/mean/error"] = _mean(
        [final[f"reset/{c}/error"] for c in corruptions])
  if any(p != "reset" for p in a.protocols):
    if _sequential(adapter, config, streams, clean, progress, ckpt, save,
                   stop, done) != "finished":
      return "preempted"
  final["clean/before"] = adapter.clean_error(adapter.fresh(0), clean)
  save(progress)
  return "finished"


def _sequential(adapter, config, streams, clean, progress, ckpt, save, stop,
                done) -> str:
  """The corruptions in sequence for one round (continual) or
  `adapt.rounds` (lifelong, openset), resumable per corruption."""
  a = config.adapt
  final = progress["final"]
  corruptions = list(a.corruptions)
  rounds = a.rounds if any(p in ("lifelong", "openset")
                           for p in a.protocols) else 1
  start, acc = (0, 0), {"images": 0.0, "count": 0.0, "sums": {}}
  latest = ckpt.latest_step()
  if latest is None:
    state = adapter.fresh(0)
  else:
    record = progress["sequential"].get(str(latest))
    if record is None:
      raise checkpoint_lib.CheckpointError(
          f"{ckpt.directory} holds step {latest} but the progress file "
          "has no record of it; use a new --workdir")
    state = ckpt.restore_latest(adapter.setup.abstract_state)
    start, acc = tuple(record["position"]), record["acc"]

  def checkpoint(position):
    progress["sequential"][str(int(jax.device_get(state.step)))] = {
        "position": list(position), "acc": acc}
    keep = sorted(progress["sequential"], key=int)[-3:]
    progress["sequential"] = {k: progress["sequential"][k] for k in keep}
    save(progress)  # the record first: a kill before the save keeps the
    ckpt.save(state)  # previous checkpoint and its record

  for r in range(start[0], rounds):
    tag = f"continual/r{r + 1}"
    if r > 0 and not adapter.trains:  # nothing changes: the same errors
      for c in corruptions + ["mean"]:
        final[f"{tag}/{c}/error"] = final[f"continual/r1/{c}/error"]
      continue
    for i in range(start[1] if r == start[0] else 0, len(corruptions)):
      c = corruptions[i]
      state, err, n, metrics = adapter.adapt(state, streams[c])
      if r == 0:
        acc["images"] += n
        acc["count"] += len(next(iter(metrics.values())))
        for name, values in metrics.items():
          if name.startswith("method/"):
            acc["sums"][name] = acc["sums"].get(name, 0.0) + float(
                np.sum(values, dtype=np.float64))
      done(f"{tag}/{c}/error", err)
      last = r + 1 == rounds and i + 1 == len(corruptions)
      if stop() and not last:
        checkpoint((r, i + 1) if i + 1 < len(corruptions) else (r + 1, 0))
        return "preempted"
    final[f"{tag}/mean/error"] = _mean(
        [final[f"{tag}/{c}/error"] for c in corruptions])
    if r == 0:
      _round_one(adapter, state, clean, acc, final)
    if r + 1 < rounds and adapter.trains:
      checkpoint((r + 1, 0))
  final["clean/after_last"] = adapter.clean_error(state, clean)
  return "finished"


def _round_one(adapter, state, clean, acc, final) -> None:
  """Clean error after round 1, backward passes (% of the stream) and
  the means of the method's step metrics over round 1."""
  final["clean/after_r1"] = adapter.clean_error(state, clean)
  for name in _BACKWARD:
    final[f"backward/{name.split('_')[1]}"] = 100.0 * acc["sums"].get(
        f"method/{name}", 0.0) / acc["images"]
  for name, total in acc["sums"].items():
    if name[len("method/"):] not in _BACKWARD:
      final[f"continual/r1/{name[len('method/'):]}"] = total / acc["count"]

