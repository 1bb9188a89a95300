"""mnn_checkpoints scores each text as the model run on that text alone
would (padding to a length bucket changes nothing); loading the
checkpoint itself is tested in tests/common/convert/test_hf_checkpoint.py."""

import jax
import jax.numpy as jnp
import numpy as np

from algos.analysis import matrix_nuclear_norm as mnn_lib
from common.data import tokenizers
from common.models import transformer as transformer_lib
from experiments.mnn import checkpoints

_TEXTS = ["def f(x): return x + 1", "Return the sum of both.", "a"]


def test_scores_equal_unpadded_forward():
  tok = tokenizers.ByteTokenizer()
  model = transformer_lib.transformer(tok.vocab_size, num_layers=1,
                                      d_model=16, d_ff=32, num_heads=2,
                                      num_kv_heads=2, max_len=64)
  params = model.init(jax.random.PRNGKey(0),
                      jnp.zeros((1, 8), jnp.int32))["params"]
  got = checkpoints.score_texts(model, params, tok, _TEXTS, max_len=32)
  # "a" is one token: skipped; the rest share the 32-token bucket.
  unpadded = jax.jit(lambda t: mnn_lib.mnn_score(
      model.apply({"params": params}, t)["features"][0]))
  want = [float(unpadded(jnp.asarray([tok.encode(t)]))) for t in _TEXTS[:2]]
  assert got["texts"] == 2
  np.testing.assert_allclose(got["mnn"], np.mean(want), rtol=1e-4)
  assert 0 < got["matrix_entropy"] <= 1
