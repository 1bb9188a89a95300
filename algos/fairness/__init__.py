"""Fairness regularisation: distance-covariance penalties (dcov_fairness).

`dcov.py` holds the estimators (dCov^2, JdCov^2, CCdCov^2, the marginal
sum), `protected.py` the encoding of mixed-type protected attributes and
the Jensen-Shannon disparity measures, `dcov_fairness.py` the `Method`,
`insurance_data.py` the generated insurance-like table and the COMPAS CSV
reader, `evaluate.py` the `fairness` evaluator.
"""
