"""In-repo TFDS dataset `dsprites_gen`: dSprites generated from its definition.

Importing this package registers the builder with TFDS under `dsprites_gen`
(configs `full`, 737,280 images, and `small`, a subsampled grid at
32x32).
"""

from common.data.dsprites_gen.dsprites_gen_dataset_builder import Builder
from common.data.dsprites_gen.dsprites_gen_dataset_builder import downsample2x
from common.data.dsprites_gen.dsprites_gen_dataset_builder import FACTOR_NAMES
from common.data.dsprites_gen.dsprites_gen_dataset_builder import FACTOR_VALUES
from common.data.dsprites_gen.dsprites_gen_dataset_builder import factor_grid
from common.data.dsprites_gen.dsprites_gen_dataset_builder import render_sprites
from common.data.dsprites_gen.dsprites_gen_dataset_builder import SMALL_INDICES

__all__ = ["Builder", "FACTOR_NAMES", "FACTOR_VALUES", "downsample2x", "SMALL_INDICES", "factor_grid",
           "render_sprites"]
