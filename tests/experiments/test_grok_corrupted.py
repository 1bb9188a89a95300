"""grok_corrupted through the harness: a tiny full-batch run memorises its
corrupted labels, and the evaluator reports every part and the pruning."""

from __future__ import annotations

from common import config as config_lib
from common.protocols import supervised


def test_tiny_full_batch_run_memorises_the_corrupted_labels(tmp_path):
  config = config_lib.load_config("experiments/grok_corrupted/config.py")
  config = config_lib.apply_overrides(config, {
      "data.kwargs.p": 13, "data.kwargs.corruption": 0.3,
      "model.kwargs.width": 64, "train.batch_size": 88,
      "train.eval_batch_size": 88, "train.steps": 150,
      "train.eval_every_epochs": 0, "train.log_every_steps": 150})
  result = supervised.train(config, str(tmp_path), show_progress=False)
  final = result.final
  assert final["corrupted_train_acc"] == 100.0      # memorised
  assert final["train_acc"] == 100.0
  assert final["corrupted_true_acc"] < 50.0
  for key in ("test_acc", "ipr_mean", "pruned_corrupted_train_acc",
              "random_pruned_test_acc", "pruned_neurons"):
    assert key in final
