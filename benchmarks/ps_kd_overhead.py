"""(b) PS-KD step vs cross-entropy step, both through the harness.

PS-KD adds a gather of the batch's table rows, the soft-target mixing and a
scatter of the new softmax into the `[N, C]` table, all inside the jitted
step. Target: ratio <= 1.02.

    python -m benchmarks.ps_kd_overhead [--model=small_cnn --data=digits]
"""

from __future__ import annotations

from benchmarks import bench_lib


def main():
  args = bench_lib.parser(__doc__, "small_cnn", "digits", 15).parse_args()
  shape, classes, n = bench_lib.SHAPES[args.data]
  batch = bench_lib.generated_batch(args.batch, shape, classes, n)
  fns = {}
  for method in ("cross_entropy", "ps_kd"):
    s = bench_lib.build_setup(bench_lib.BASE_CONFIG, bench_lib.overrides(
        args, **{"method.name": method}), n, classes, shape)
    fns[method] = bench_lib.stepper(s, batch)
  times = bench_lib.time_interleaved(fns, steps=args.steps,
                                     rounds=args.rounds)
  ratio = times["ps_kd"] / times["cross_entropy"]
  print(f"device: {bench_lib.device_name()}; model {args.model}, "
        f"{args.data} shapes (table {n} x {classes}), batch {args.batch}, "
        f"{args.dtype}")
  for name, t in times.items():
    print(f"  {name:<14} {t * 1e3:8.3f} ms/step  "
          f"{args.batch / t:10,.0f} images/s")
  print(f"  ratio ps_kd / cross_entropy = {ratio:.3f}  (target <= 1.02)")


if __name__ == "__main__":
  main()
