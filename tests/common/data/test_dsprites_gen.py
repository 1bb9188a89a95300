"""The generated dSprites: factor grid, order, shapes, and the TFDS builder."""

from __future__ import annotations

import numpy as np

from common.data import dsprites_gen as dg


def test_factor_grid_matches_the_dsprites_definition():
  grid = dg.factor_grid()
  assert grid.shape == (737280, 5) == (3 * 6 * 40 * 32 * 32, 5)
  sizes = [len(dg.FACTOR_VALUES[f]) for f in dg.FACTOR_NAMES]
  assert sizes == [3, 6, 40, 32, 32]
  np.testing.assert_allclose(dg.FACTOR_VALUES["scale"],
                             [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
  assert dg.FACTOR_VALUES["orientation"][0] == 0.0
  np.testing.assert_allclose(dg.FACTOR_VALUES["orientation"][-1], 2 * np.pi)
  np.testing.assert_allclose(dg.FACTOR_VALUES["x_position"][[0, -1]], [0, 1])
  # dSprites order: mixed radix, y position fastest, shape slowest.
  np.testing.assert_array_equal(grid[1], [0, 0, 0, 0, 1])
  np.testing.assert_array_equal(grid[32], [0, 0, 0, 1, 0])
  np.testing.assert_array_equal(grid[32 * 32 * 40 * 6], [1, 0, 0, 0, 0])
  flat = np.ravel_multi_index(grid.T, sizes)
  np.testing.assert_array_equal(flat, np.arange(len(grid)))
  small = dg.factor_grid(dg.SMALL_INDICES)
  assert len(small) == 3 * 3 * 4 * 8 * 8 == 2304


def _render(shape, scale, angle, x=15, y=15):
  return dg.render_sprites(np.array([[shape, scale, angle, x, y]]))[0, :, :, 0]


def test_shapes_are_binary_symmetric_and_grow_with_scale():
  for shape in range(3):
    images = [_render(shape, s, 0) for s in range(6)]
    assert set(np.unique(images[0]).tolist()) == {0, 255}
    areas = [int((im > 0).sum()) for im in images]
    assert all(a < b for a, b in zip(areas, areas[1:])), (shape, areas)
    im = images[-1] > 0
    # Centred at pixel (31, 31): mirror-symmetric left-right at angle 0.
    np.testing.assert_array_equal(im[:, 31 - 20:31 + 21],
                                  im[:, 31 - 20:31 + 21][:, ::-1])
    if shape < 2:   # square and ellipse are also up-down symmetric
      np.testing.assert_array_equal(im[31 - 20:31 + 21],
                                    im[31 - 20:31 + 21][::-1])
  square = _render(0, 5, 0) > 0
  rows, cols = np.nonzero(square)
  assert np.ptp(rows) == np.ptp(cols)                 # a square
  ellipse = _render(1, 5, 0) > 0
  rows, cols = np.nonzero(ellipse)
  assert np.ptp(cols) > 1.8 * np.ptp(rows)            # 2:1, horizontal
  heart = _render(2, 5, 0) > 0
  rows, _ = np.nonzero(heart)
  top, bottom = heart[rows.min() + 1], heart[rows.max() - 1]
  assert top.sum() > bottom.sum()                     # lobes up, tip down


def test_orientation_position_and_shapes_differ():
  np.testing.assert_array_equal(_render(2, 3, 0), _render(2, 3, 39))  # 2 pi
  assert not np.array_equal(_render(2, 3, 0), _render(2, 3, 10))
  # Every scale and orientation step changes the pixels (README: "all
  # pixel outputs were different") within the shape's symmetry period
  # (square: a quarter turn, ellipse: a half turn, heart: a full turn).
  for shape, turns in ((0, 10), (1, 20), (2, 39)):
    looks = {_render(shape, sc, a).tobytes() for sc in range(6)
             for a in range(turns)}
    assert len(looks) == 6 * turns, shape
  # 180-degree point symmetry of the ellipse about its centre pixel (31, 31).
  ellipse = _render(1, 4, 13)[11:52, 11:52]
  np.testing.assert_array_equal(ellipse, ellipse[::-1, ::-1])
  # Position steps are whole pixels: x moves columns, y moves rows.
  base = _render(0, 2, 7, x=10, y=12)
  np.testing.assert_array_equal(np.roll(base, 1, axis=1),
                                _render(0, 2, 7, x=11, y=12))
  np.testing.assert_array_equal(np.roll(base, 1, axis=0),
                                _render(0, 2, 7, x=10, y=13))
  corners = dg.render_sprites(np.array([[s, 5, a, x, y] for s in range(3)
                                        for a in (0, 20) for x in (0, 31)
                                        for y in (0, 31)]))
  # Every sprite stays inside the frame at the extreme positions.
  assert (corners[:, 0].max() == 0 and corners[:, -1].max() == 0
          and corners[:, :, 0].max() == 0 and corners[:, :, -1].max() == 0)
  shapes = [_render(s, 5, 0) for s in range(3)]
  assert len({im.tobytes() for im in shapes}) == 3


def test_small_builder_prepares_through_open_split(tfds_data_dir):
  from common.data import sources  # pylint: disable=g-import-not-at-top
  source = sources.open_split("dsprites_gen/small", "train", tfds_data_dir)
  assert len(source) == 2304 and source.image_shape == (32, 32, 1)
  assert source.num_classes == 3   # supervised label: shape
  batch = source.get(np.array([0, 2303]))
  np.testing.assert_array_equal(batch["label"], [0, 2])
  expected = dg.downsample2x(dg.render_sprites(
      dg.factor_grid(dg.SMALL_INDICES)[[0, 2303]]))
  np.testing.assert_array_equal(batch["image"], expected)
