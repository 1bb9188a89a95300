"""`python -m common ...` is the same as the `regjax` command."""
from common import cli

cli.main()
