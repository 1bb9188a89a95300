"""PyTorch state-dict -> flax variables for the model zoo's reference models.

The standard source models of test-time adaptation are PyTorch files:
RobustBench's CIFAR-10 corruptions model `Standard` (a WRN-28-10) and
torchvision's ResNet-50 `IMAGENET1K_V1`. Our `wide_resnet*` and `resnet*`
models mirror those layouts module for module (see their docstrings), so
conversion is a renaming plus layout changes:

  * names: `block1.layer.0.conv1` <- `block1_layer0/conv1` (WRN),
    `layer1.0.downsample.0` <- `layer1_0/downsample_0` (ResNet), others
    equal;
  * conv `weight` OIHW -> `kernel` HWIO; linear `weight` [out, in] ->
    `kernel` [in, out];
  * BatchNorm `weight`/`bias` -> params `scale`/`bias`,
    `running_mean`/`running_var` -> batch_stats `mean`/`var`
    (`num_batches_tracked` is dropped: flax's BatchNorm has no counter and
    PyTorch only uses it when `momentum=None`).

Every expected key must be present with the expected shape and no other
key may be left over; otherwise the error lists the missing, unexpected and
mis-shaped keys (the usual sign of a wrong `--arch`).

CLI (torch is needed only here; `pip install torch`):
  python -m common.convert.torch_to_flax --arch=wide_resnet28_10 \\
      --input=Standard.pt --output=weights/standard_wrn28_10
writes `<output>/variables.msgpack` and `<output>/meta.json`; read them back
with `load_converted(output)` -> `{"params", "batch_stats"}` and
`load_metadata(output)` -> `{"arch", "num_classes", "model_kwargs", ...}`,
then `models.get_model(meta["arch"], meta["num_classes"],
**meta["model_kwargs"]).apply(variables, x, train=False)`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np

from common import models

VARIABLES_FILE = "variables.msgpack"
META_FILE = "meta.json"
# Prefixes that wrappers add to every key (DataParallel, RobustBench).
_WRAPPER_PREFIXES = ("module.", "model.")
_IGNORED_SUFFIXES = (".num_batches_tracked",)
_MAX_LISTED = 30  # keys per kind in an error message
# flax submodule name -> PyTorch attribute path.
_MODULE_RULES = (
    (re.compile(r"^block(\d+)_layer(\d+)$"), r"block\1.layer.\2"),  # WRN
    (re.compile(r"^layer(\d+)_(\d+)$"), r"layer\1.\2"),  # torchvision
    (re.compile(r"^downsample_(\d+)$"), r"downsample.\1"),
    (re.compile(r"^shortcut_(\d+)$"), r"shortcut.\1"),  # PreAct (PS-KD)
)


class ConversionError(ValueError):
  """The state dict does not fit the requested architecture."""


def _import_torch():
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(
        "Converting PyTorch weights needs PyTorch, which is an optional "
        "dependency of this repo: pip install torch (the CPU build is "
        "enough).") from e
  return torch


def load_torch_state_dict(path: str) -> dict[str, np.ndarray]:
  """Reads a PyTorch checkpoint file into `{key: float32 numpy array}`.

  Accepts a bare state dict or one wrapped as `{"state_dict": ...}`
  (RobustBench), and strips a `module.` / `model.` prefix shared by every
  key. Loaded with `weights_only=True`: no code in the file is run.
  """
  torch = _import_torch()
  obj = torch.load(path, map_location="cpu", weights_only=True)
  if isinstance(obj, Mapping) and "state_dict" in obj:
    obj = obj["state_dict"]
  if not isinstance(obj, Mapping):
    raise ConversionError(f"{path!r} holds a {type(obj).__name__}, not a "
                          "state dict (a mapping of parameter names to "
                          "tensors)")
  return strip_wrapper_prefixes(
      {k: v.detach().cpu().numpy() for k, v in obj.items()
       if hasattr(v, "detach")})


def strip_wrapper_prefixes(state: Mapping[str, Any]) -> dict[str, Any]:
  """Removes `module.` / `model.` when every key starts with it."""
  state = dict(state)
  for prefix in _WRAPPER_PREFIXES:
    if state and all(k.startswith(prefix) for k in state):
      state = {k[len(prefix):]: v for k, v in state.items()}
  return state


def torch_module_path(flax_path: Sequence[str]) -> str:
  """`("block1_layer0", "conv1")` -> `"block1.layer.0.conv1"`."""
  parts = []
  for name in flax_path:
    for pattern, replacement in _MODULE_RULES:
      if pattern.match(name):
        name = pattern.sub(replacement, name)
        break
    parts.append(name)
  return ".".join(parts)


def _torch_key(collection: str, path: tuple[str, ...], ndim: int) -> str:
  """The PyTorch key of one flax leaf (`collection` params/batch_stats)."""
  *modules, leaf = path
  attr = {("params", "kernel"): "weight", ("params", "scale"): "weight",
          ("params", "bias"): "bias", ("batch_stats", "mean"): "running_mean",
          ("batch_stats", "var"): "running_var"}.get((collection, leaf))
  if attr is None:
    raise ConversionError(f"no PyTorch counterpart for flax leaf "
                          f"{collection}/{'/'.join(path)} (ndim {ndim})")
  return f"{torch_module_path(modules)}.{attr}"


def _to_flax_layout(value: np.ndarray, leaf: str, ndim: int) -> np.ndarray:
  if leaf == "kernel" and ndim == 4:
    return value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
  if leaf == "kernel" and ndim == 2:
    return value.T  # [out, in] -> [in, out]
  return value


def abstract_variables(model: Any, image_shape=(32, 32, 3)) -> dict[str, Any]:
  """Shapes of `model.init`'s variables, traced (no computation)."""
  return jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, *image_shape)), train=False))


def convert_state_dict(state: Mapping[str, np.ndarray], model: Any,
                       image_shape=(32, 32, 3),
                       ignore_prefixes: Sequence[str] = ()) -> dict[str, Any]:
  """Maps a PyTorch state dict onto `model`'s variables.

  Args:
    state: `{torch key: array}` (wrapper prefixes already stripped).
    model: the flax module the weights are for (e.g. `get_model(...)`).
    image_shape: an input shape the model accepts (parameter shapes of the
      zoo's models do not depend on it).
    ignore_prefixes: keys starting with any of these are dropped, e.g.
      `sub_block1.` (an unused block some RobustBench WRNs carry).

  Returns:
    `{"params": ..., "batch_stats": ...}` nested dicts of float32 numpy
    arrays in the model's structure (`batch_stats` only if it has one).

  Raises:
    ConversionError: listing missing, unexpected and mis-shaped keys.
  """
  state = {k: np.asarray(v) for k, v in state.items()
           if not k.endswith(_IGNORED_SUFFIXES)
           and not k.startswith(tuple(ignore_prefixes))}
  abstract = abstract_variables(model, image_shape)
  out, used, missing, mis_shaped = {}, set(), [], []
  for collection in ("params", "batch_stats"):
    if collection not in abstract:
      continue
    flat = flax.traverse_util.flatten_dict(
        flax.core.unfreeze(abstract[collection]))
    converted = {}
    for path, leaf in flat.items():
      key = _torch_key(collection, path, leaf.ndim)
      if key not in state:
        missing.append(key)
        continue
      used.add(key)
      value = _to_flax_layout(state[key], path[-1], leaf.ndim)
      if value.shape != tuple(leaf.shape):
        mis_shaped.append(f"{key}: file {tuple(state[key].shape)}, model "
                          f"expects {_torch_shape(leaf.shape, path[-1])}")
        continue
      converted[path] = value.astype(np.float32)
    out[collection] = flax.traverse_util.unflatten_dict(converted)
  unexpected = sorted(set(state) - used)
  if missing or unexpected or mis_shaped:
    lines = [f"The state dict does not fit {type(model).__name__}"
             f"({_describe(model)}):"]
    for title, keys in (("missing keys", sorted(missing)),
                        ("unexpected keys", unexpected),
                        ("shape mismatches", sorted(mis_shaped))):
      if keys:
        more = (f", ... and {len(keys) - _MAX_LISTED} more"
                if len(keys) > _MAX_LISTED else "")
        lines.append(f"  {len(keys)} {title}: "
                     + ", ".join(keys[:_MAX_LISTED]) + more)
    lines.append("Check --arch / --model_kwargs against the file; keys of "
                 "unused modules can be dropped with --ignore_prefix.")
    raise ConversionError("\n".join(lines))
  return out


def _torch_shape(shape: Sequence[int], leaf: str) -> tuple[int, ...]:
  """PyTorch's shape of a flax leaf of `shape` (inverse of the layout)."""
  if leaf == "kernel" and len(shape) == 4:
    h, w, i, o = shape
    return (o, i, h, w)
  if leaf == "kernel" and len(shape) == 2:
    return tuple(shape[::-1])
  return tuple(shape)


def _describe(model: Any) -> str:
  fields = {k: getattr(model, k) for k in ("num_classes", "depth",
                                            "widen_factor", "stage_sizes",
                                            "widths", "bottleneck")
            if hasattr(model, k)}
  return ", ".join(f"{k}={v}" for k, v in fields.items())


_HEADS = ("fc.weight", "linear.weight")   # torchvision/RobustBench, PS-KD


def infer_num_classes(state: Mapping[str, np.ndarray]) -> int:
  """Output size of the classifier head (`fc` or `linear`) `[classes, d]`."""
  for key in _HEADS:
    if key in state:
      return int(np.shape(state[key])[0])
  raise ConversionError(
      f"cannot infer num_classes: none of {list(_HEADS)} in the state dict "
      f"(keys start with: {sorted(state)[:5]}); pass --num_classes")


def convert_file(arch: str, input_path: str, output_dir: str,
                 num_classes: int | None = None,
                 model_kwargs: Mapping[str, Any] | None = None,
                 ignore_prefixes: Sequence[str] = ()) -> dict[str, Any]:
  """Converts a PyTorch file and writes `output_dir/{variables.msgpack,
  meta.json}`; returns the metadata."""
  model_kwargs = dict(model_kwargs or {})
  state = load_torch_state_dict(input_path)
  num_classes = num_classes or infer_num_classes(state)
  model = models.get_model(arch, num_classes, **model_kwargs)
  variables = convert_state_dict(state, model,
                                 ignore_prefixes=ignore_prefixes)
  os.makedirs(output_dir, exist_ok=True)
  with open(os.path.join(output_dir, VARIABLES_FILE), "wb") as f:
    f.write(flax.serialization.msgpack_serialize(variables))
  with open(input_path, "rb") as f:
    digest = hashlib.sha256(f.read()).hexdigest()
  meta = {"arch": arch, "num_classes": num_classes,
          "model_kwargs": model_kwargs,
          "source_file": os.path.basename(input_path),
          "source_sha256": digest,
          "num_params": int(sum(np.size(x) for x in
                                jax.tree.leaves(variables["params"])))}
  with open(os.path.join(output_dir, META_FILE), "w") as f:
    json.dump(meta, f, indent=2)
  return meta


def load_converted(path: str) -> dict[str, Any]:
  """Reads a converted checkpoint directory (or its `.msgpack` file).

  Returns:
    `{"params": ..., "batch_stats": ...}` nested dicts of float32 numpy
    arrays, ready for `model.apply` (`batch_stats` is `{}` for models
    without BatchNorm).
  """
  file = path if path.endswith(".msgpack") else os.path.join(
      path, VARIABLES_FILE)
  if not os.path.exists(file):
    raise FileNotFoundError(
        f"no converted checkpoint at {file!r}; create one with "
        "`python -m common.convert.torch_to_flax --arch=... --input=... "
        "--output=...`")
  with open(file, "rb") as f:
    variables = flax.serialization.msgpack_restore(f.read())
  return {"params": variables["params"],
          "batch_stats": variables.get("batch_stats", {})}


def load_metadata(path: str) -> dict[str, Any]:
  """The `meta.json` of a converted checkpoint directory."""
  with open(os.path.join(path, META_FILE)) as f:
    return json.load(f)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m common.convert.torch_to_flax",
      description="Convert a PyTorch state-dict file to flax variables.")
  parser.add_argument("--arch", required=True,
                      help=f"model name, one of {models.model_names()}")
  parser.add_argument("--input", required=True, help="PyTorch .pt/.pth file")
  parser.add_argument("--output", required=True, help="output directory")
  parser.add_argument("--num_classes", type=int, default=None,
                      help="default: rows of fc.weight")
  parser.add_argument("--model_kwargs", default="{}",
                      help='JSON, e.g. \'{"depth": 16, "widen_factor": 4}\'')
  parser.add_argument("--ignore_prefix", action="append", default=[],
                      help="drop keys with this prefix (repeatable), e.g. "
                           "sub_block1.")
  args = parser.parse_args(argv)
  if args.arch not in models.MODELS:
    parser.error(f"unknown --arch {args.arch!r}; valid: "
                 f"{models.model_names()}")
  if not os.path.exists(args.input):
    parser.error(f"--input {args.input!r} does not exist")
  try:
    kwargs = json.loads(args.model_kwargs)
  except json.JSONDecodeError as e:
    parser.error(f"--model_kwargs is not JSON: {e}")
  try:
    meta = convert_file(args.arch, args.input, args.output,
                        args.num_classes, kwargs, args.ignore_prefix)
  except ConversionError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(f"wrote {args.output}/{VARIABLES_FILE}: {meta['arch']}, "
        f"{meta['num_classes']} classes, {meta['num_params']:,} parameters")
  return 0


if __name__ == "__main__":
  sys.exit(main())
