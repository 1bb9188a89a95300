"""Multiple-instance learning: AEM (attention entropy maximisation) on the
gated-attention MIL model `abmil` (`common/models/abmil.py`), the bag
generator `mil_digits` (`common/data/mil_bags.py`) and the `mil` evaluator
(`common/eval/mil.py`)."""
