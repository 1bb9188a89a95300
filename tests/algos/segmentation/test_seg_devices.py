"""A segmentation train step gives on 8 devices the numbers of 1."""

from __future__ import annotations

import textwrap

import numpy as np

from tests.conftest import REPO_ROOT, run_on_cpu_devices

# Three steps of cross-entropy (the source and oracle runs) on a tiny U-Net
# with 16x16 images, per-pixel labels, 255 (ignored) pixels and a padding
# row. The initial parameters are made on the host: compiling the U-Net's
# random init costs ~15 s of XLA:CPU here.
_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {root!r})
    import jax, jax.numpy as jnp, numpy as np
    from common import config as config_lib
    from common.protocols import build
    rng = np.random.default_rng(0)
    b, s, classes = 16, 16, 4
    images = rng.integers(0, 256, (3, b, s, s, 1), dtype=np.uint8)
    labels = rng.integers(0, classes, (3, b, s, s)).astype(np.int32)
    labels[:, :, :3] = 255          # ignored pixels
    mask = np.ones((3, b), bool)
    mask[:, -1] = False             # a padding row
    cfg = config_lib.apply_overrides(
        config_lib.load_config("experiments/sfda_seg/config.py"), {{
            "method.name": "cross_entropy",
            "model.kwargs": {{"widths": (4, 8)}}, "train.batch_size": b,
            "train.eval_batch_size": b, "schedule.learning_rate": 0.01}})
    example = {{"image": jax.ShapeDtypeStruct((1, s, s, 1), jnp.uint8),
               "label": jax.ShapeDtypeStruct((1, s, s), jnp.int32)}}
    setup = build.build(cfg, build.run_info(cfg, 3 * b, classes), example)

    def host(path, leaf):
      name = jax.tree_util.keystr(path)
      if "var" in name or "scale" in name:
        return np.ones(leaf.shape, np.float32)
      if "bias" in name or "mean" in name:
        return np.zeros(leaf.shape, np.float32)
      fan_in = np.prod(leaf.shape[:-1])
      return (rng.normal(size=leaf.shape) / np.sqrt(fan_in)).astype(
          np.float32)
    start = jax.tree_util.tree_map_with_path(
        host, (setup.abstract_state.params, setup.abstract_state.model_state))
    state = setup.init_state(*start)
    losses = []
    for i in range(3):
      batch = {{"image": jnp.asarray(images[i]),
               "label": jnp.asarray(labels[i]), "mask": jnp.asarray(mask[i])}}
      state, metrics, _ = setup.train_step(state, batch, setup.hparams)
      losses.append(float(metrics["loss"]))
    leaves = jax.tree.leaves((state.params, state.model_state))
    print(json.dumps({{"devices": jax.device_count(), "losses": losses,
                      "leaves": [np.asarray(x).ravel()[:64].tolist()
                                 for x in leaves]}}))
""")


def test_one_and_eight_devices_agree():
  """BatchNorm over the global batch, ignored pixels and padding rows
  counted once: the same losses and parameters on 1 and 8 devices (up to
  summation order)."""
  script = _SCRIPT.format(root=REPO_ROOT)
  one = run_on_cpu_devices(script, 1)
  eight = run_on_cpu_devices(script, 8)
  assert (one["devices"], eight["devices"]) == (1, 8)
  np.testing.assert_allclose(eight["losses"], one["losses"], rtol=1e-5)
  assert one["losses"][0] != one["losses"][-1]  # it trains
  for a, b in zip(eight["leaves"], one["leaves"]):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
