"""Converters from other frameworks' checkpoints to the model zoo's variables.

`torch_to_flax`: PyTorch state dicts (RobustBench WRN, torchvision ResNet).
Imported lazily by users; torch is optional.
"""
