"""In-repo TFDS dataset `segshapes` (procedural 32x32 segmentation).

Importing this package registers the builder with TFDS (configs `fewshot`,
`source`, `target`).
"""

from common.data.segshapes import render
from common.data.segshapes.render import IGNORE
from common.data.segshapes.render import SLICES
from common.data.segshapes.segshapes_dataset_builder import Builder
from common.data.segshapes.segshapes_dataset_builder import CONFIGS
from common.data.segshapes.segshapes_dataset_builder import NUM_FOLDS
from common.data.segshapes.segshapes_dataset_builder import fold_classes
from common.data.segshapes.segshapes_dataset_builder import scenes

__all__ = ["Builder", "CONFIGS", "IGNORE", "NUM_FOLDS", "SLICES",
           "fold_classes", "render", "scenes"]
