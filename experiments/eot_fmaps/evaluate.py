"""The EOT-fmaps evaluator: mean geodesic error of the test pairs' maps.

Registered as "eot_fmaps_geodesic". For each test pair (a, b) of the run's
collection (`algos.geometry.mesh_pairs`), the method's `predict` gives the
y -> x point map `p2p [n_y]` (the official hard-similarity -> fmap ->
nearest-neighbour path); the error of the pair is the mean over template
points t of the geodesic distance on shape a between the true vertex
`corr[a][t]` and the predicted one `p2p[corr[b][t]]` (Dijkstra, divided by
sqrt(area)). Reported: `geo_error`, the mean over pairs, x100.

The evaluator calls `setup.eval_step` once per pair, so the `refine`
protocol (`common.protocols.refine`) evaluates the same pairs after
refining the network on each pair alone.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from algos.geometry import mesh_pairs
from common.core import sharding as sharding_lib
from common.eval import evaluators


def pair_batch(data: mesh_pairs.MeshPairData, a: int, b: int,
               mesh: jax.sharding.Mesh) -> dict[str, Any]:
  """Test pair (a, b) as a batch on the mesh: `{"shapes": {k: [d, 2,
  ...]}}`, the pair repeated once per device (d = device count)."""
  pair = data.pair("test", a, b)
  rows = mesh.devices.size
  local = {k: np.broadcast_to(v[None], (rows, *v.shape)) for k, v in
           pair.items()}
  return {"shapes": jax.device_put(local,
                                   sharding_lib.batch_sharded(mesh))}


@evaluators.register_evaluator("eot_fmaps_geodesic")
def evaluate(setup: Any, state: Any) -> dict[str, float]:
  """`{"geo_error": mean geodesic error x100}` over the test pairs."""
  data = mesh_pairs.load(setup.config)
  errors = []
  for a, b in data.test_pairs:
    out = setup.eval_step(state, pair_batch(data, a, b, setup.mesh),
                          setup.hparams, output_keys=("p2p",))
    p2p = np.asarray(jax.device_get(out["p2p"]))[0]
    corr = data.test_corr
    errors.append(data.test_geodesics[a][corr[a], p2p[corr[b]]].mean())
  return {"geo_error": 100.0 * float(np.mean(errors))}
