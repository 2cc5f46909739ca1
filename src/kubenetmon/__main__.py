"""`python -m kubenetmon` runs the CLI."""

from kubenetmon.cli import main

main()
