"""Text data for language models: in-repo TFDS corpora and packed rows.

* `stdlib_corpus`: `python_stdlib`, the interpreter's standard library
  (sources and docstrings), split by file.
* `arithmetic`: `arithmetic`, verifiable problems with several scratchpad
  formats, and their answer checker.
* `packing`: documents -> fixed-length rows with document masks.
* `source`: `open_data(config.data)` for `config.data.source = "text"`.

Importing this package registers the two builders with TFDS; `source`
(which imports `common.data.sources`) is imported on use.
"""

from common.data.text import arithmetic
from common.data.text import stdlib_corpus
