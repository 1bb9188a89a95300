"""Reference row: the test map from raw WKS descriptors (no network).

    python -m experiments.eot_fmaps.wks_baseline --seeds=0,1,2

Same test pairs (`algos.geometry.mesh_pairs`), same p2p path (hard
similarity -> fmap -> nearest neighbour) and error as the evaluator
`experiments/eot_fmaps/evaluate.py`; prints the mean geodesic error (x100)
per seed.
"""

from __future__ import annotations

import argparse

import jax.numpy as jnp
import numpy as np

from algos.geometry import mesh_pairs
from algos.ot import eot_fmaps
from common import config as config_lib


def wks_error(config) -> float:
  """Mean geodesic error (x100) of the WKS map over the run's test pairs."""
  data = mesh_pairs.load(config)
  errs = []
  for a, b in data.test_pairs:
    x, y = ({k: jnp.asarray(v[i]) for k, v in data.test.items()}
            for i in (a, b))
    p2p = np.asarray(eot_fmaps.p2p_from_features(
        x["descriptors"], y["descriptors"], x["evecs"], y["evecs"],
        y["evecs_trans"]))
    corr = data.test_corr
    errs.append(data.test_geodesics[a][corr[a], p2p[corr[b]]].mean())
  return 100.0 * float(np.mean(errs))


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--config", default="experiments/eot_fmaps/config.py")
  args = parser.parse_args()
  config = config_lib.load_config(args.config)
  errors = []
  for seed in [int(s) for s in args.seeds.split(",")]:
    errors.append(wks_error(config_lib.apply_overrides(config,
                                                       {"seed": seed})))
    print(f"seed {seed}: WKS geodesic error x100 = {errors[-1]:.2f}")
  print(f"mean +- std: {np.mean(errors):.2f} +- {np.std(errors, ddof=1):.2f}")


if __name__ == "__main__":
  main()
