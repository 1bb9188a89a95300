"""QLAE step vs the same step without quantization, both through the harness.

Same autoencoder, optimizer (`adamw_split`) and data shapes; the only
difference is the latent layer: "quantized" (per-dimension codebook lookup,
straight-through estimator, quantization + commitment losses) vs
"continuous" with the plain BCE loss (`ae`). Timed side by side in
alternating blocks (benchmarks/bench_lib.py).

    python -m benchmarks.qlae_overhead                      # CPU config
    python -m benchmarks.qlae_overhead --variant=dsprites   # conv, 64x64
"""

from __future__ import annotations

import argparse

from benchmarks import bench_lib

_SHAPES = {"dsprites_small": ((32, 32, 1), 2304),
           "dsprites": ((64, 64, 1), 737280),
           "shapes3d": ((64, 64, 3), 480000)}


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--variant", default="dsprites_small", choices=list(_SHAPES))
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--steps", type=int, default=20)
  p.add_argument("--rounds", type=int, default=15)
  args = p.parse_args()
  shape, n = _SHAPES[args.variant]
  batch = bench_lib.generated_batch(args.batch, shape, 3, n)
  spec = f"experiments/qlae/config.py:{args.variant}"
  fns = {}
  for label, method, latent in (("no quantization", "ae", "continuous"),
                                ("qlae", "qlae", "quantized")):
    s = bench_lib.build_setup(spec, {
        "method.name": method, "model.kwargs.latent": latent,
        "train.batch_size": args.batch}, n, 3, shape)
    fns[label] = bench_lib.stepper(s, batch)
  times = bench_lib.time_interleaved(fns, steps=args.steps,
                                     rounds=args.rounds)
  ratio = times["qlae"] / times["no quantization"]
  print(f"device: {bench_lib.device_name()}; qlae config {args.variant}, "
        f"images {shape}, batch {args.batch}")
  for name, t in times.items():
    print(f"  {name:<16} {t * 1e3:8.3f} ms/step  {1 / t:8.1f} steps/s  "
          f"{args.batch / t:10,.0f} images/s")
  print(f"  overhead ratio qlae / no quantization = {ratio:.3f}")


if __name__ == "__main__":
  main()
