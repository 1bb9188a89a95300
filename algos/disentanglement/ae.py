"""Plain autoencoder baseline (BCE reconstruction only).

Baseline "AE" of Disentanglement via Latent Quantization, Hsu et al.,
NeurIPS 2023, arXiv:2305.18378; official kylehkhsu/latent_quantization
`disentangle/models/ae.py`. With a quantized model it is QLAE without the
quantization/commitment terms; with a continuous one it is the AE baseline
and the "quantization off" ablation.
"""

from __future__ import annotations

from algos.disentanglement import qlae
from common import config as config_lib
from common.core import method as method_lib


@method_lib.register_method("ae")
def make(config: dict) -> method_lib.Method:
  """Mean sigmoid BCE; hparam `target_scale` (traced)."""
  del config

  def loss(hparams, method_state, outputs, batch, params, rng):
    del params, rng
    bce = qlae.reconstruction_bce(outputs["logits"], batch["image"],
                                  hparams["target_scale"])
    return bce, {"bce": bce}, method_state

  return method_lib.Method(
      name="ae", init=method_lib.stateless_init, loss=loss,
      hparams=method_lib.default_hparams,
      rules={"target_scale": config_lib.greater_than(0.0)})
