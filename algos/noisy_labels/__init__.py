"""Learning with noisy labels: ELR and the other methods of issue 15.

The noisy training labels come from `config.data.label_noise`
(`common.data.label_noise`); memorisation curves from the `noisy_labels`
evaluator (`common.eval.memorisation`).
"""
