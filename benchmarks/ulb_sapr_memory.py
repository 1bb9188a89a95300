"""Memory of ULB-SAPR / ApiQ quantised weights vs fp32, in exact bytes.

What a quantised linear stores (`algos.lm.quantizer.packed_layer`):
`bits`-bit codes packed into a byte stream, one float16 scale and one
packed `bits`-bit zero point per group (GPTQ's layout), and the float16
LoRA `A` [r, in], `B` [out, r] kept next to it. Rows:

* the CPU study's model (experiments/ulb_sapr, 4 blocks, d=64, d_ff=256,
  group 32, rank 4): every block linear packed for real from an
  initialised model, bytes = the sum of the packed arrays' `nbytes`
  (checked equal to `quantizer.stored_bytes`);
* Llama-2-7B's 32 blocks (q, k, v, o 4096x4096; gate, up 11008x4096;
  down 4096x11008), group 64, rank 64 (the official recipe), by the same
  formula (no allocation).

Embedding and head stay in their original precision (the official code
quantises the decoder blocks only) and are not counted.

    python -m benchmarks.ulb_sapr_memory [--out=benchmarks/results/ulb_sapr_memory.md]
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp

from algos.lm import quantizer
from algos.lm import ulb_sapr
from common.models import transformer as transformer_lib

_LLAMA7B = [(4096, 4096)] * 4 + [(11008, 4096)] * 2 + [(4096, 11008)]


def study_model_rows(bits: int, group: int, rank: int) -> tuple[int, int]:
  """(fp32 bytes, quantised bytes) of the study model's block linears."""
  model = transformer_lib.transformer(259, size="tiny", num_layers=4,
                                      d_model=64, num_heads=4, d_ff=256,
                                      max_len=128)
  params = model.init(jax.random.PRNGKey(0),
                      jnp.zeros((1, 8), jnp.int32))["params"]
  fp32 = packed = 0
  for path in ulb_sapr.targets(params):
    w = ulb_sapr._get(params, path)["kernel"].T             # [out, in]
    lora = {"A": jnp.zeros((rank, w.shape[1])),
            "B": jnp.zeros((w.shape[0], rank))}
    stored = quantizer.packed_layer(w, None, bits, group, lora)
    nbytes = sum(v.nbytes for v in stored.values())
    assert nbytes == quantizer.stored_bytes(w.shape, bits, group, rank)
    fp32 += 4 * w.size
    packed += nbytes
  return fp32, packed


def llama_rows(bits: int, group: int, rank: int) -> tuple[int, int]:
  fp32 = 32 * sum(4 * o * i for o, i in _LLAMA7B)
  q = 32 * sum(quantizer.stored_bytes((o, i), bits, group, rank)
               for o, i in _LLAMA7B)
  return fp32, q


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--out", default="benchmarks/results/ulb_sapr_memory.md")
  args = parser.parse_args()
  lines = ["Command: `python -m benchmarks.ulb_sapr_memory`", "",
           "| model (block linears) | bits | group | LoRA rank | fp32 bytes "
           "| quantised bytes | ratio | bits / weight |",
           "|---|---|---|---|---|---|---|---|"]
  for name, fn, group, rank in (
      ("CPU study model", study_model_rows, 32, 4),
      ("Llama-2-7B", llama_rows, 64, 64)):
    for bits in quantizer.BITS:
      fp32, q = fn(bits, group, rank)
      lines.append(f"| {name} | {bits} | {group} | {rank} | {fp32:,} | "
                   f"{q:,} | {fp32 / q:.2f}x | {8 * q / (fp32 / 4):.3f} |")
  text = "\n".join(lines) + "\n"
  print(text)
  with open(args.out, "w") as f:
    f.write(text)


if __name__ == "__main__":
  main()
