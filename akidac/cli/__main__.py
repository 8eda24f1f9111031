"""`python -m akidac.cli` is the same program as `akidac`."""

from akidac.cli import main

main()
