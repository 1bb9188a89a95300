"""LoL: comparative regularisation over reformulation losses (PRF).

Paper: LoL: A Comparative Regularization Loss over Query Reformulation
Losses for Pseudo-Relevance Feedback, Zhu et al., SIGIR 2022,
arXiv:2204.11545; official code zycdev/LoL.

Every arm is the method `lol` (algos/retrieval/lol.py) on the one train
step with the `prf_reformulator` model (algos/retrieval/prf_reformulator.py)
over the BM25 index of the generator `prf_corpus`
(common/data/prf_corpus.py); evaluator `prf_retrieval`
(common/eval/prf_retrieval.py): MAP / NDCG@10 / Recall@100 / MRR@10 over the
whole corpus with k = 0..5 BM25 feedback documents.

As the official recipe (README: `--per_device_train_batch_size
$((36/(1+NC)))`, `--num_train_epochs $((12/(1+NC)))`), an arm with
`n_compare = NC` takes (1+NC)x fewer queries per step for the same number
of steps, so every arm reformulates the same number of revisions.

Variants (`--config=experiments/lol/config.py:<variant>`):
  synthetic  (default) CPU, minutes: 3,000 generated documents from 50
             topics x 4 subtopics over 1,000 terms, 2,000 training / 400
             test queries of ~3 terms, BM25 top-10 ~50% off-subtopic;
             1,000 steps of 96 revisions, Adam 1e-3 (cosine), tau 3.
  tiny       the smoke test's program at toy size (200 docs, 200 terms).
  msmarco    the official uniCOIL / ANCE settings named on MS MARCO passage
             and TREC DL 19/20 (third_party_configs/lol/): the data and
             the BERT reformulator are not in this repo; it fails loudly.

Examples:
  regjax run lol --seeds=0,1,2
"""

import ml_collections as mlc

from common.data import prf_corpus
from common.protocols import supervised

VARIANTS = ("synthetic", "tiny", "msmarco")

_REVISIONS_PER_STEP = 96


def _arm(n_compare: int, lambda_cr: float) -> str:
  return (f"method.lol.n_compare={n_compare},method.lol.lambda_cr="
          f"{lambda_cr},train.batch_size="
          f"{_REVISIONS_PER_STEP // (1 + n_compare)}")


_ARMS = {
    "base PRF (NC=0)": _arm(0, 0.0),
    "NC=1, no LoL": _arm(1, 0.0),
    "LoL NC=1": _arm(1, 1.0),
    "LoL NC=2": _arm(2, 1.0),
}

_KS = (0, 1, 2, 3, 4, 5)


def get_config(variant: str = "synthetic") -> mlc.ConfigDict:
  c = supervised.base_config()
  c.experiment = "lol"
  c.method.name = "lol"
  c.method.lol = mlc.ConfigDict(dict(n_compare=1, lambda_pr=1.0,
                                     lambda_cr=1.0, margin=0.0, tau=3.0))
  c.data.update(source="generator", name="prf_corpus", input_key="inputs",
                preprocess="none")
  c.data.kwargs = mlc.ConfigDict(dict(prf_corpus.DEFAULTS))
  c.model = mlc.ConfigDict(dict(name="prf_reformulator", dtype="float32"))
  c.model.kwargs = mlc.ConfigDict(dict(vocab_size=1000, hidden=64,
                                       num_layers=2, num_heads=4,
                                       max_feedback=5))
  c.optim.update(name="adamw", weight_decay=0.0)
  c.schedule.update(name="cosine", learning_rate=1e-3, warmup_epochs=1.0)
  c.eval = mlc.ConfigDict(dict(name="prf_retrieval", ks=_KS,
                               rel_threshold=2, rocchio_beta=1.0))
  c.train.update(batch_size=_REVISIONS_PER_STEP // 2, steps=1000,
                 eval_every_epochs=0, log_every_steps=100,
                 checkpoint_every_steps=100000, tensorboard=False,
                 eval_batch_size=200)
  c.study.arms = dict(_ARMS)
  c.study.seeds = (0, 1, 2)
  c.study.metrics = ("map_k0", "map_k1", "map_k3", "map_k5", "ndcg10_k5",
                     "recall100_k5", "mono_violations", "gain_k5",
                     "gate_rel", "gate_irrel")
  c.study.metric_labels = dict(
      map_k0="MAP k=0", map_k1="MAP k=1", map_k3="MAP k=3",
      map_k5="MAP k=5", ndcg10_k5="NDCG@10 k=5", recall100_k5="R@100 k=5",
      mono_violations="AP drops k->k+1 %", gain_k5="AP(5)-AP(0)",
      gate_rel="gate on-subtopic fb", gate_irrel="gate off-subtopic fb")
  c.study.formats = {k: ".2f" for k in c.study.metrics}
  c.study.formats.update(gate_rel=".3f", gate_irrel=".3f")
  c.study.paper_source = ""
  if variant == "synthetic":
    # The test budget: `tiny` runs the same program in the smoke test; this
    # one is lowered by tests/test_full_scale_compile.py.
    c.smoke.enabled = False
  elif variant == "tiny":
    c.data.kwargs.update(
        vocab_size=200, num_topics=8, subtopics=2, topic_words=20,
        subtopic_words=8, stop_words=20, num_docs=200, doc_len=30,
        num_train=64, num_test=32, pool=20, fb_pool=5, max_feedback=3,
        num_candidates=8, hard_negatives=3)
    c.model.kwargs.update(vocab_size=200, hidden=16, num_layers=1,
                          num_heads=2, max_feedback=3)
    c.eval.ks = (0, 1, 3)
    c.study.metrics = ("map_k0", "map_k1", "map_k3", "mono_violations")
    c.study.name = "results_tiny"
    c.train.update(batch_size=8, steps=20, eval_batch_size=32)
    c.smoke.update(enabled=True, steps=2)
  elif variant == "msmarco":
    # Official uniCOIL recipe (zycdev/LoL README, "For sparse retrieval"):
    # bert-base-uncased reformulator, --max_n_prf 5 --shuffle_psgs,
    # NC=1, lambda_cr 1, lr 2e-5, warmup 0.1, 6 epochs, 3 GPUs x 18
    # queries. The data (MS MARCO passage, 8.8M passages, with the
    # uniCOIL index matrices) and a BERT reformulator are not in this repo.
    c.data.update(name="prf_msmarco", data_dir="")
    c.data.kwargs = mlc.ConfigDict()
    c.model.kwargs = mlc.ConfigDict(dict(vocab_size=30522, hidden=768,
                                         num_layers=12, num_heads=12,
                                         max_feedback=5))
    c.schedule.update(name="cosine", learning_rate=2e-5, warmup_epochs=0.6)
    c.train.update(batch_size=54, num_epochs=6, steps=-1)
    c.study.arms = {"uniCOIL + PRF (NC=0)": "method.lol.n_compare=0",
                    "LoL NC=1": "method.lol.n_compare=1"}
    c.smoke.enabled = False
  else:
    raise ValueError(f"unknown lol variant {variant!r}; allowed: {VARIANTS}")
  return c
