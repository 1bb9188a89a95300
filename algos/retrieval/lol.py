"""LoL: the comparative regulariser over query-reformulation losses.

Paper: LoL: A Comparative Regularization Loss over Query Reformulation
Losses for Pseudo-Relevance Feedback, Zhu, Pang, Lan, Shen, Cheng, SIGIR
2022, arXiv:2204.11545. Official code: https://github.com/zycdev/LoL
(PyTorch; read at commit 00ad744, `trainer.py::DqrTrainer.compute_loss`,
`util.py::pairwise_hinge`, `qr_dataset.py`).

Each training query is revised `M = 1 + n_compare` times in parallel by
the same reformulator with different amounts of feedback: counts drawn as
`M` distinct values of `{0, ..., K}` sorted descending, each revision
reading a prefix of the same (shuffled) feedback list (`QryRfmCollator`).
With `L_m` the reformulation loss of revision `m` (most feedback first):

* reformulation loss (`compute_loss`, "passage ranking"): listwise cross
  entropy of the revised query vector's scores `index_row . q'` over
  candidates, the positive at column 0, other relevant documents masked
  out (the official masks the other positives to -inf and softmaxes over
  its whole training pool; ours over `C` sampled candidates per query, see
  `common.data.prf_corpus`), scores divided by `tau` (official: 1);
* comparative regularisation (`loss_cr`): `pairwise_hinge(-L, labels)`
  with labels `M, ..., 1` and margin 0, i.e. the mean over queries and
  pairs `i < j` (revision `i` has more feedback) of
  `relu(L_i - L_j + margin)`: a revision that reads more feedback may not
  have a larger loss;
* total: `lambda_pr * mean_m L_m + lambda_cr * loss_cr` (the official
  `lambda_qr` query-ranking term defaults to 0 and is not used here).

`n_compare = 0` is the base reformulator (one revision per query, its
count drawn uniformly from `{0..K}`), `lambda_cr = 0` keeps the parallel
revisions without the regulariser. `lambda_pr`, `lambda_cr`, `margin` and
`tau` are traced; `n_compare` is structure.

Batch (`common.data.prf_corpus`): `inputs = {query [n, V], fb [n, K, V],
fb_mask [n, K]}`, `cand [n, C, V]`, `cand_mask [n, C]`, `fb_rel [n, K]`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from common import config as config_lib
from common.core import method as method_lib

TRACED = ("lambda_pr", "lambda_cr", "margin", "tau")
DEFAULTS = dict(lambda_pr=1.0, lambda_cr=1.0, margin=0.0, tau=1.0)


def reformulation_loss(query_vector: jax.Array, cand: jax.Array,
                       cand_mask: jax.Array, tau: jax.Array) -> jax.Array:
  """Listwise softmax loss of revised queries, positive at column 0.

  Args:
    query_vector: `[n, M, V]`, M revisions of each of n queries.
    cand: `[n, C, V]` candidate index rows; cand_mask: bool `[n, C]`
      (false: excluded, e.g. other relevant documents).
    tau: temperature.

  Returns:
    `[n, M]` cross entropies.
  """
  scores = jnp.einsum("nmv,ncv->nmc", query_vector, cand) / tau
  scores = jnp.where(cand_mask[:, None], scores, -jnp.inf)
  return jax.nn.logsumexp(scores, axis=-1) - scores[..., 0]


def comparative_regularizer(losses: jax.Array, margin: jax.Array
                            ) -> jax.Array:
  """Mean over rows and pairs `i < j` of `relu(L_i - L_j + margin)`.

  Args:
    losses: `[n, M]`, column 0 the revision with the most feedback, the
      count decreasing along the row.
    margin: the hinge margin (official: 0).

  Returns:
    scalar; 0 when `M = 1`.
  """
  m = losses.shape[1]
  if m < 2:
    return jnp.zeros((), losses.dtype)
  i, j = jnp.triu_indices(m, k=1)
  return jnp.mean(jax.nn.relu(losses[:, i] - losses[:, j] + margin))


def lol_objective(losses: jax.Array, hp: dict[str, jax.Array]
                  ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """`lambda_pr * mean(L) + lambda_cr * comparative_regularizer(L)`."""
  pr = jnp.mean(losses)
  cr = comparative_regularizer(losses, hp["margin"])
  return hp["lambda_pr"] * pr + hp["lambda_cr"] * cr, {"loss_pr": pr,
                                                        "loss_cr": cr}


def feedback_counts(rng: jax.Array, n: int, revisions: int,
                    max_feedback: int) -> jax.Array:
  """int32 `[n, M]`: M distinct counts of `{0..K}` per row, descending
  (the official `sorted(random.sample(range(K + 1), M), reverse=True)`)."""
  keys = jax.random.split(rng, n)
  draw = jax.vmap(lambda k: jax.random.permutation(k, max_feedback + 1)[
      :revisions])(keys)
  return -jnp.sort(-draw, axis=1).astype(jnp.int32)


def revise_inputs(inputs: dict[str, jax.Array], counts: jax.Array
                  ) -> dict[str, jax.Array]:
  """The `n * M` revisions' model inputs: revision `(i, m)` reads the first
  `counts[i, m]` feedback documents of query `i`."""
  n, m = counts.shape
  k = inputs["fb"].shape[1]
  rep = lambda x: jnp.repeat(x, m, axis=0)
  mask = (jnp.arange(k)[None, None] < counts[..., None]).reshape(n * m, k)
  return {"query": rep(inputs["query"]), "fb": rep(inputs["fb"]),
          "fb_mask": mask & rep(inputs["fb_mask"])}


@method_lib.register_method("lol")
def make(method_config: dict[str, Any]) -> method_lib.Method:
  """The method; config keys: `n_compare` (int) and `TRACED`."""
  n_compare = int(method_config.get("n_compare", 1))
  if n_compare < 0:
    raise ValueError(f"lol: n_compare={n_compare}; allowed: an int >= 0")
  revisions = 1 + n_compare

  def hparams(cfg, run):
    del run
    return {k: float(cfg.get(k, d)) for k, d in DEFAULTS.items()}

  def apply(hp, ctx, params, method_state, batch, rng):
    inputs = batch["inputs"]
    n, k = inputs["fb"].shape[:2]
    if revisions > k + 1:
      raise ValueError(f"lol: n_compare={n_compare} needs {revisions} "
                       f"distinct feedback counts but the batch has K={k}")
    counts = feedback_counts(rng, n, revisions, k)
    out, model_state = ctx.forward(params, revise_inputs(inputs, counts))
    qv = out["query_vector"].reshape(n, revisions, -1)
    losses = reformulation_loss(qv, batch["cand"], batch["cand_mask"],
                                hp["tau"])
    loss, metrics = lol_objective(losses, hp)
    gates = out["gates"].reshape(n, revisions, k)[:, 0]
    rel = batch["fb_rel"] == 2
    has = jnp.arange(k)[None] < counts[:, :1]
    metrics.update(
        gate_relevant=jnp.sum(gates * (rel & has)) / jnp.maximum(
            jnp.sum(rel & has), 1),
        gate_irrelevant=jnp.sum(gates * (~rel & has)) / jnp.maximum(
            jnp.sum(~rel & has), 1),
        order_violations=jnp.mean(
            (losses[:, :-1] > losses[:, 1:]).astype(jnp.float32))
        if revisions > 1 else jnp.zeros(()))
    return loss, method_lib.StepAux(metrics, model_state, method_state)

  return method_lib.Method(
      name="lol", hparams=hparams, apply=apply,
      rules={"lambda_pr": config_lib.greater_than(0.0),
             "lambda_cr": config_lib.at_least(0.0),
             "margin": config_lib.at_least(0.0),
             "tau": config_lib.greater_than(0.0),
             "n_compare": config_lib.at_least(0, integer=True)})
