"""Experiment folder of `lol`: LoL: A Comparative Regularization Loss over Query Reformulation Losses for Pseudo-Relevance Feedback.

`STATUS`, `NOTE` and `ALGOS` are read (without importing) by
`common.papers` for `regjax list` and WORKSPACE.md's table.
"""

STATUS = 'implemented'
ALGOS = 'algos/retrieval/lol.py'
NOTE = ("generated topic corpus (3k docs, 50x4 subtopics, BM25 top-10 ~50% "
        "off-subtopic), bag-of-words transformer reformulator in the BM25 "
        "space, 3 seeds, 96 revisions/step: claim not reproduced; LoL "
        "(NC=1/2) below the same revisions without it at every k on every "
        "seed (MAP k=1 38.0 vs 41.6, k=5 43.7 vs 44.6); fewer AP drops as k "
        "grows (44.6 vs 47.8%) mostly by worse small-feedback revisions; "
        "gates barely separate relevant feedback (0.64 vs 0.61); trained "
        "models beat Rocchio from k=2 (44.6 vs 39.7 at k=5); loss and "
        "loss_cr equal the official pairwise_hinge/CE (parity test); "
        "MS MARCO config not run")
