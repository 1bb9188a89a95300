"""Adversarial robustness: attacks, adversarial training and distillation."""
