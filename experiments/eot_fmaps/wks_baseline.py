"""Reference row: the test map from raw WKS descriptors (no network).

    python -m experiments.eot_fmaps.wks_baseline --seeds=0,1,2

Same test pairs, same p2p path (hard similarity -> fmap -> nearest
neighbour) as the runner; prints the mean geodesic error (x100) per seed.
"""

from __future__ import annotations

import argparse
import itertools

import jax.numpy as jnp
import numpy as np

from algos.ot import eot_fmaps
from common import config as config_lib
from experiments.eot_fmaps import run


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--config", default="experiments/eot_fmaps/config.py")
  args = parser.parse_args()
  config = config_lib.load_config(args.config)
  errors = []
  for seed in [int(s) for s in args.seeds.split(",")]:
    _, test, geo, corr = run.load_shapes(config, seed)
    errs = []
    pairs = list(itertools.combinations(range(len(test)), 2))
    for a, b in pairs[:config.eot.max_test_pairs]:
      x, y = ({k: jnp.asarray(v) for k, v in s.items()}
              for s in (test[a], test[b]))
      p2p = np.asarray(eot_fmaps.p2p_from_features(
          x["descriptors"], y["descriptors"], x["evecs"], y["evecs"],
          y["evecs_trans"]))
      errs.append(geo[a][corr[a], p2p[corr[b]]].mean())
    errors.append(100.0 * float(np.mean(errs)))
    print(f"seed {seed}: WKS geodesic error x100 = {errors[-1]:.2f}")
  print(f"mean +- std: {np.mean(errors):.2f} +- {np.std(errors, ddof=1):.2f}")


if __name__ == "__main__":
  main()
