"""Images/s of the harness's train step at real shapes, fp32 vs bf16.

Drives `common.protocols.build.build` (the exact step every experiment uses) with a
generated batch, e.g. PreAct-ResNet-18 at CIFAR-100 shapes with PS-KD's
50,000 x 100 table, and prints images/s for each compute dtype (params stay
float32; bf16 is mixed precision).

    python -m benchmarks.throughput --model=preact_resnet18 --data=cifar100 \
        --batch=128 --dtypes=float32,bfloat16
"""

from __future__ import annotations

from benchmarks import bench_lib


def main():
  p = bench_lib.parser(__doc__, "preact_resnet18", "cifar100", 5)
  p.add_argument("--method", default="ps_kd")
  p.add_argument("--dtypes", default="float32,bfloat16")
  args = p.parse_args()
  shape, classes, n = bench_lib.SHAPES[args.data]
  batch = bench_lib.generated_batch(args.batch, shape, classes, n)
  augment = {"data.crop_padding": 4 if shape[0] >= 32 else 1,
             "data.flip": shape[0] >= 32}
  fns = {}
  for dtype in args.dtypes.split(","):
    s = bench_lib.build_setup(bench_lib.BASE_CONFIG, bench_lib.overrides(
        args, **{"model.dtype": dtype, "method.name": args.method},
        **augment), n, classes, shape)
    fns[dtype] = bench_lib.stepper(s, batch)
  times = bench_lib.time_interleaved(fns, steps=args.steps,
                                     rounds=args.rounds)
  print(f"device: {bench_lib.device_name()}; {args.model}, {args.data} "
        f"shapes {shape}, {classes} classes, method {args.method}, global "
        f"batch {args.batch}")
  base = None
  for dtype, t in times.items():
    base = base or t
    print(f"  {dtype:<9} {t * 1e3:8.2f} ms/step  {args.batch / t:10,.0f} "
          f"images/s  (x{base / t:.2f} vs {next(iter(times))})")


if __name__ == "__main__":
  main()
