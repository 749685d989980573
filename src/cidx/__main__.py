"""`python -m cidx` runs the command line."""

from cidx.cli.app import main

main()
