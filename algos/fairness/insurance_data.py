"""Tables with protected attributes of mixed types, as procedural sources.

For dcov_fairness (Lee et al. 2025, arXiv:2509.08163). Two generators
(`config.data.source = "generator"`, input key "x", preprocess "none");
batches carry `x` `[b, d]` (model inputs, no protected attribute), `y` `[b]`
float target, `label` `[b]` int (0/1 for classification, else 0), `s`
`[b, q]` the encoded protected attributes (`protected.encode`), `groups`
`[b, k]` int codes of each protected attribute (continuous ones in
`age_bands` training-quantile bands) and `mask`.

* `fair_insurance` (generated): a motor-insurance-like table. Protected:
  gender (binary), age (continuous, 18-80), region (5 categories). Inputs
  are proxies of them plus two legitimate risk factors:
  x = [risk1, risk2, power ~ gender, experience ~ age, density ~ region,
  occupation_area ~ interaction]. The target (claim cost, or a claim for
  `task="classification"`) depends on the risk factors, on each protected
  attribute and on an intersectional term `interaction`:
    "xor":    (2 gender - 1) * sign(region): each of gender and region is
              independent of it (exactly, by the region probabilities), the
              pair determines it: invisible to every marginal measure
              ("fairness gerrymandering").
    "corner": 1[female and region 4], centred (visible marginally too).
    "none":   no interaction.
  Seeds: the table is fixed by `data_seed`; `config.seed` draws batches.
* `compas` (real, full scale): ProPublica's `compas-scores-two-years.csv`
  under `config.data.data_dir`, the usual ProPublica row filters; target
  `two_year_recid`; protected sex (binary), race (4 categories:
  African-American, Caucasian, Hispanic, Other), age (continuous); inputs
  priors and juvenile counts, charge degree. A missing file is a
  FileNotFoundError naming it. (The paper's preprocessing of COMPAS was
  not available offline: this is the common one.)

Training batches are drawn uniformly with replacement from the training
rows (a pure function of the step key); the held-out rows are one eval
batch, padded with masked rows (`train.eval_batch_size` >= their number).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from algos.fairness import protected
from common import config as config_lib
from common.data import procedural


@dataclasses.dataclass(frozen=True)
class Table:
  """A split table; `names`/`kinds`/`blocks` describe the protected ones."""
  train: dict[str, np.ndarray]
  test: dict[str, np.ndarray]
  names: tuple[str, ...]
  kinds: tuple[str, ...]
  blocks: tuple[int, ...]

  def __hash__(self):
    return id(self)


INSURANCE_DEFAULTS = dict(num_examples=6000, test_fraction=1 / 3,
                          interaction="xor", interaction_strength=1.0,
                          task="regression", noise=0.5, proxy_noise=0.6,
                          age_bands=3, data_seed=0)
INSURANCE_RULES = {
    "num_examples": config_lib.at_least(50, integer=True),
    "test_fraction": config_lib.between(0.05, 0.95),
    "interaction": config_lib.one_of("xor", "corner", "none"),
    "interaction_strength": config_lib.at_least(0.0),
    "task": config_lib.one_of("regression", "classification"),
    "noise": config_lib.at_least(0.0),
    "proxy_noise": config_lib.at_least(0.0),
    "age_bands": config_lib.at_least(1, integer=True),
    "data_seed": config_lib.at_least(0, integer=True),
}
COMPAS_DEFAULTS = dict(test_fraction=0.3, age_bands=3, data_seed=0)
COMPAS_RULES = {k: INSURANCE_RULES[k] for k in COMPAS_DEFAULTS}

# Region probabilities: regions 0-2 and 3-4 each hold half the mass, so the
# "xor" term is independent of region and of gender on its own.
REGION_P = np.array([0.2, 0.15, 0.15, 0.25, 0.25])
REGION_SIGN = np.array([1.0, 1.0, 1.0, -1.0, -1.0])
REGION_EFFECT = np.array([0.3, -0.2, 0.1, -0.3, 0.2])


def _split(n: int, test_fraction: float, rng) -> np.ndarray:
  test = np.zeros(n, bool)
  test[rng.permutation(n)[:int(round(n * test_fraction))]] = True
  return test


def _assemble(x, y, label, columns, kinds, names, test,
              age_bands) -> Table:
  train = ~test
  s, blocks = protected.encode(columns, kinds, train)
  codes = []
  for col, kind in zip(columns, kinds):
    if kind == "continuous":
      edges = np.quantile(col[train], np.linspace(0, 1, age_bands + 1)[1:-1])
      codes.append(np.searchsorted(edges, col, side="right"))
    else:
      codes.append(np.asarray(col))
  groups = np.stack(codes, 1).astype(np.int32)
  mean, std = x[train].mean(0), x[train].std(0)
  x = ((x - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)
  parts = dict(x=x, y=y.astype(np.float32), label=label.astype(np.int32),
               s=s, groups=groups)
  return Table({k: v[train] for k, v in parts.items()},
               {k: v[test] for k, v in parts.items()}, tuple(names),
               tuple(kinds), blocks)


@functools.lru_cache(maxsize=8)
def insurance_table(num_examples: int, test_fraction: float,
                    interaction: str, interaction_strength: float, task: str,
                    noise: float, proxy_noise: float, age_bands: int,
                    data_seed: int) -> Table:
  """The generated insurance-like table (see the module doc)."""
  rng = np.random.default_rng(data_seed)
  n = num_examples
  gender = rng.integers(0, 2, n)                    # 1 = female
  region = rng.choice(5, size=n, p=REGION_P)
  age = rng.uniform(18.0, 80.0, n)
  a = (age - 49.0) / 17.9
  if interaction == "xor":
    inter = (2.0 * gender - 1.0) * REGION_SIGN[region]
  elif interaction == "corner":
    corner = ((gender == 1) & (region == 4)).astype(np.float64)
    inter = (corner - corner.mean()) / corner.std()
  else:
    inter = np.zeros(n)
  risk = rng.normal(size=(n, 2))
  e = proxy_noise * rng.normal(size=(n, 4))
  x = np.stack([risk[:, 0], risk[:, 1], gender + e[:, 0], a + e[:, 1],
                3.0 * REGION_EFFECT[region] + e[:, 2], inter + e[:, 3]], 1)
  signal = (0.8 * risk[:, 0] + 0.5 * risk[:, 1] + 0.5 * gender + 0.4 * a
            + REGION_EFFECT[region] + interaction_strength * inter)
  if task == "classification":
    p = 1.0 / (1.0 + np.exp(-(signal - 0.25)))
    label = (rng.uniform(size=n) < p).astype(np.int64)
    y = label.astype(np.float64)
  else:
    y = signal + noise * rng.normal(size=n)
    label = np.zeros(n, np.int64)
  test = _split(n, test_fraction, rng)
  return _assemble(x, y, label, (gender, age, region),
                   ("binary", "continuous", "categorical"),
                   ("gender", "age", "region"), test, age_bands)


COMPAS_FILE = "compas-scores-two-years.csv"
RACES = ("African-American", "Caucasian", "Hispanic")   # others -> "Other"


@functools.lru_cache(maxsize=2)
def compas_table(data_dir: str, test_fraction: float, age_bands: int,
                 data_seed: int) -> Table:
  """ProPublica COMPAS two-year recidivism (see the module doc)."""
  path = os.path.join(os.path.expanduser(data_dir), COMPAS_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"compas: {path} not found; put ProPublica's {COMPAS_FILE} (github."
        "com/propublica/compas-analysis) under config.data.data_dir")
  with open(path, newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
  # ProPublica's filters (compas-analysis.ipynb): screening within 30 days
  # of the arrest (rows without the field dropped), a known recidivism
  # outcome, no ordinary traffic offences, a score.
  df = [r for r in rows if r["days_b_screening_arrest"].strip()
        and abs(float(r["days_b_screening_arrest"])) <= 30
        and r["is_recid"] != "-1" and r["c_charge_degree"] != "O"
        and r["score_text"] != "N/A"]
  col = lambda name: np.array([float(r[name]) for r in df])
  race = np.array([RACES.index(r["race"]) if r["race"] in RACES else 3
                   for r in df])
  sex = np.array([r["sex"] == "Female" for r in df], np.int64)
  x = np.stack([col("priors_count"), col("juv_fel_count"),
                col("juv_misd_count"), col("juv_other_count"),
                np.array([r["c_charge_degree"] == "F" for r in df], float)],
               1)
  label = col("two_year_recid").astype(np.int64)
  rng = np.random.default_rng(data_seed)
  test = _split(len(df), test_fraction, rng)
  return _assemble(x, label.astype(float), label,
                   (sex, col("age"), race),
                   ("binary", "continuous", "categorical"),
                   ("sex", "age", "race"), test, age_bands)


def table(config: Any) -> Table:
  """The table of `config.data` (`fair_insurance` or `compas`)."""
  name = config.data.name
  if name == "fair_insurance":
    kw = procedural.settings(config, INSURANCE_DEFAULTS, INSURANCE_RULES)
    return insurance_table(*(kw[k] for k in INSURANCE_DEFAULTS))
  if name == "compas":
    kw = procedural.settings(config, COMPAS_DEFAULTS, COMPAS_RULES)
    return compas_table(config.data.data_dir, *(kw[k] for k in
                                                COMPAS_DEFAULTS))
  raise ValueError(f"no fairness table {name!r}; allowed: fair_insurance, "
                   "compas")


def table_generator(config: Any, t: Table) -> procedural.Generator:
  """Uniform training draws; the held-out rows as one padded eval batch."""
  n_test = len(t.test["y"])
  if config.train.eval_batch_size < n_test:
    raise config_lib.ConfigError(
        f"train.eval_batch_size={config.train.eval_batch_size} is smaller "
        f"than the {n_test} held-out rows of {config.data.name!r}, which are "
        f"evaluated as one batch: use >= {n_test}")
  train = {k: jnp.asarray(v) for k, v in t.train.items()}
  n_train = len(t.train["y"])

  def sample(rng, n):
    idx = jax.random.randint(rng, (n,), 0, n_train)
    return {**{k: v[idx] for k, v in train.items()},
            "mask": jnp.ones((n,), bool)}

  def eval_sample(rng, n):
    del rng
    pad = max(n - n_test, 0)
    out = {k: jnp.asarray(np.pad(v, [(0, pad)] + [(0, 0)] * (v.ndim - 1)))
           for k, v in t.test.items()}
    out["mask"] = jnp.asarray(np.arange(n_test + pad) < n_test)
    return out

  return procedural.Generator(
      sample=sample, example=procedural.example_from(sample), num_classes=1,
      epoch_size=n_train, eval_sample=eval_sample, eval_examples=n_test)


@procedural.register_generator("fair_insurance")
def fair_insurance(config: Any) -> procedural.Generator:
  return table_generator(config, table(config))


@procedural.register_generator("compas")
def compas(config: Any) -> procedural.Generator:
  return table_generator(config, table(config))
