"""Parameter-efficient fine-tuning as a params transform: LoRA, PiSSA, SORSA.

Any flax model's chosen linear layers are wrapped by parameter-path
patterns: `init_adapters(params, ...)` turns a plain parameter pytree into

    {"base": <the params, matched kernels replaced by the frozen residual>,
     "adapters": <nested like the params, one dict per matched kernel>}

and `merge(peft_params)` turns it back into a plain pytree of the model
(apply it before `model.apply`: the harness trains `adapters` only, see
`trainable_mask`). `apply_unmerged` runs the model with the adapters as a
separate branch of each wrapped `nn.Dense` (`x @ W_base + s * x @ dW`), the
official forward; it equals the merged forward (tested).

A flax `Dense` kernel is `W [in, out]` (the transpose of torch's
`weight`). With scale `s` (`alpha / rank`, 1 when alpha is None):

* `lora`: `W + s * A @ B`, `A [in, r]` Kaiming-uniform (torch's
  `kaiming_uniform_(a=sqrt(5))` of `lora_A [r, in]`: bound `1/sqrt(in)`),
  `B [r, out]` zeros; base = W (LoRA, Hu et al. 2021).
* `pissa`: SVD `W = U S V^T`; `A = U_r sqrt(S_r)`, `B = sqrt(S_r) V_r^T`,
  base = `W - s * A @ B` (PiSSA, Meng et al. 2024, arXiv:2404.02948).
* `sorsa`: `U [in, r]`, `S [r]`, `Vt [r, out]` = the principal singular
  triplets, base = `W - s * U diag(S) Vt` (SORSA, Cao 2024,
  arXiv:2409.00055; official Gunale0926/SORSA `sorsalib/src/sorsa/layer.py`
  `sorsa_init`: `svd(weight.T)`, `sorsa_A = U_r^T`, `sorsa_B = V_r`).
  `orthonormality(adapters)` is the official `calc_ortho`: the mean over
  matrices of `||U^T U - I||_F` and `||Vt Vt^T - I||_F` (norms, not
  squared).

Errors (one line, `PeftError`): a pattern that matches no parameter, a
matched leaf that is not a 2-D kernel, a rank outside `1..min(in, out)`,
an unknown adapter kind.
"""

from __future__ import annotations

import math
import re
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

PyTree = Any
KINDS = ("lora", "pissa", "sorsa")


class PeftError(ValueError):
  """A bad PEFT setting (one line, naming what is allowed)."""


def _flat(tree: PyTree, prefix: tuple[str, ...] = ()) -> dict:
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict) or hasattr(v, "items"):
      out.update(_flat(v, prefix + (str(k),)))
    else:
      out[prefix + (str(k),)] = v
  return out


def _set(tree: dict, path: tuple[str, ...], value: Any) -> None:
  for k in path[:-1]:
    tree = tree.setdefault(k, {})
  tree[path[-1]] = value


def _copy(tree: PyTree) -> dict:
  return {k: _copy(v) if (isinstance(v, dict) or hasattr(v, "items")) else v
          for k, v in tree.items()}


def select(params: PyTree, patterns: Sequence[str]) -> list[tuple[str, ...]]:
  """Paths of the 2-D `kernel` leaves whose '/'-joined path matches one of
  the regular expressions `patterns` (`re.search`), in tree order.

  Raises:
    PeftError: no patterns, a pattern matching no kernel, or a matched
      leaf that is not 2-D.
  """
  if isinstance(patterns, str) or not patterns:
    raise PeftError(f"target patterns {patterns!r}: give a non-empty list "
                    "of regular expressions over parameter paths such as "
                    "'attn/(q|v)/kernel'")
  flat = _flat(params)
  chosen = []
  for pattern in patterns:
    hits = [p for p in flat if re.search(pattern, "/".join(p))
            and p[-1] == "kernel"]
    if not hits:
      kernels = sorted("/".join(p) for p in flat if p[-1] == "kernel")
      raise PeftError(f"target pattern {pattern!r} matches no kernel; "
                      f"kernels are e.g. {kernels[:4]}")
    for p in hits:
      if flat[p].ndim != 2:
        raise PeftError(f"{'/'.join(p)} has shape {flat[p].shape}; only 2-D "
                        "Dense kernels [in, out] can be adapted")
      if p not in chosen:
        chosen.append(p)
  return chosen


def scale_of(rank: int, alpha: float | None) -> float:
  """`alpha / rank`, or 1 without alpha (the official layers)."""
  return 1.0 if alpha is None or alpha <= 0 else float(alpha) / rank


def init_one(kind: str, w: jax.Array, rank: int, scale: float,
             rng: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
  """`(frozen base kernel [in, out], adapter dict)` of kernel `w [in, out]`."""
  n_in, n_out = w.shape
  if not 1 <= rank <= min(n_in, n_out):
    raise PeftError(f"rank {rank} for a {n_in}x{n_out} kernel; allowed "
                    f"1..{min(n_in, n_out)}")
  if kind == "lora":
    bound = 1.0 / math.sqrt(n_in)
    a = jax.random.uniform(rng, (n_in, rank), w.dtype, -bound, bound)
    return w, {"A": a, "B": jnp.zeros((rank, n_out), w.dtype)}
  if kind not in KINDS:
    raise PeftError(f"adapter {kind!r}; allowed {KINDS}")
  u, s, vt = jnp.linalg.svd(w.astype(jnp.float32), full_matrices=False)
  u, s, vt = u[:, :rank], s[:rank], vt[:rank]
  if kind == "pissa":
    root = jnp.sqrt(s)
    adapter = {"A": u * root, "B": root[:, None] * vt}
  else:
    adapter = {"U": u, "S": s, "Vt": vt}
  base = w - scale * delta(adapter)
  return base.astype(w.dtype), jax.tree.map(lambda x: x.astype(w.dtype),
                                            adapter)


def delta(adapter: dict[str, jax.Array]) -> jax.Array:
  """The unscaled low-rank update `[in, out]` of one adapter."""
  if "S" in adapter:
    return (adapter["U"] * adapter["S"]) @ adapter["Vt"]
  return adapter["A"] @ adapter["B"]


def init_adapters(params: PyTree, patterns: Sequence[str], kind: str,
                  rank: int, rng: jax.Array, alpha: float | None = None
                  ) -> dict[str, PyTree]:
  """`{"base", "adapters"}` of plain `params` (see the module docstring).

  Args:
    params: a model's parameter pytree.
    patterns: regular expressions selecting the kernels to adapt.
    kind: "lora", "pissa" or "sorsa".
    rank: r, at most min(in, out) of every selected kernel.
    rng: key of LoRA's random A (one fold per kernel).
    alpha: LoRA-style scaling numerator (None: scale 1).
  """
  if kind not in KINDS:
    raise PeftError(f"adapter {kind!r}; allowed {KINDS}")
  if not isinstance(rank, int) or rank < 1:
    raise PeftError(f"rank {rank!r}; allowed a positive integer")
  paths = select(params, patterns)
  flat = _flat(params)
  base, adapters = _copy(params), {}
  scale = scale_of(rank, alpha)
  for i, path in enumerate(paths):
    w_base, adapter = init_one(kind, flat[path], rank, scale,
                               jax.random.fold_in(rng, i))
    _set(base, path, w_base)
    _set(adapters, path, adapter)
  return {"base": base, "adapters": adapters}


def _adapter_paths(adapters: PyTree) -> dict[tuple[str, ...], dict]:
  """`{kernel path: adapter dict}` of a nested adapters tree."""
  out = {}

  def visit(node, prefix):
    if "A" in node or "U" in node:
      out[prefix] = node
      return
    for k, v in node.items():
      visit(v, prefix + (str(k),))
  visit(adapters, ())
  return out


def merge(peft_params: dict[str, PyTree], scale: float = 1.0) -> PyTree:
  """The plain params: each adapted kernel = base + scale * delta."""
  out = _copy(peft_params["base"])
  flat = _flat(out)
  for path, adapter in _adapter_paths(peft_params["adapters"]).items():
    w = flat[path]
    _set(out, path, w + (scale * delta(adapter)).astype(w.dtype))
  return out


def trainable_mask(peft_params: dict[str, PyTree]) -> dict[str, PyTree]:
  """Bool pytree: adapters train, the base stays frozen."""
  return {"base": jax.tree.map(lambda _: False, peft_params["base"]),
          "adapters": jax.tree.map(lambda _: True, peft_params["adapters"])}


def _safe_norm(x: jax.Array) -> jax.Array:
  """Frobenius norm with gradient 0 at 0 (torch's `norm` backward)."""
  sq = jnp.sum(jnp.square(x))
  safe = jnp.where(sq > 0, sq, 1.0)
  return jnp.where(sq > 0, jnp.sqrt(safe), 0.0)


def orthonormality(adapters: PyTree) -> jax.Array:
  """The official `calc_ortho`: mean over the SORSA matrices of
  `||U^T U - I_r||_F` and `||Vt Vt^T - I_r||_F` (0 without SORSA ones)."""
  terms = []
  for adapter in _adapter_paths(adapters).values():
    if "U" not in adapter:
      continue
    u, vt = adapter["U"], adapter["Vt"]
    eye = jnp.eye(u.shape[1], dtype=u.dtype)
    terms += [_safe_norm(u.T @ u - eye), _safe_norm(vt @ vt.T - eye)]
  return jnp.mean(jnp.stack(terms)) if terms else jnp.float32(0.0)


def apply_unmerged(model: nn.Module, peft_params: dict[str, PyTree],
                   *args: Any, scale: float = 1.0, **kwargs: Any) -> Any:
  """`model.apply` on the frozen base with each adapted `nn.Dense` computing
  `x @ W_base + scale * x @ dW` (dW = A B or U diag(S) Vt), as the
  official layers' unmerged forward."""
  adapters = {tuple(p[:-1]): a for p, a in
              _adapter_paths(peft_params["adapters"]).items()}

  def interceptor(next_fun, call_args, call_kwargs, context):
    module = context.module
    adapter = adapters.get(tuple(module.path))
    if (context.method_name != "__call__" or adapter is None
        or not isinstance(module, nn.Dense)):
      return next_fun(*call_args, **call_kwargs)
    x = call_args[0]
    y = next_fun(*call_args, **call_kwargs)
    if "S" in adapter:
      extra = ((x @ adapter["U"]) * adapter["S"]) @ adapter["Vt"]
    else:
      extra = (x @ adapter["A"]) @ adapter["B"]
    return y + (scale * extra).astype(y.dtype)

  with nn.intercept_methods(interceptor):
    return model.apply({"params": peft_params["base"]}, *args, **kwargs)
