"""`python -m cidx` runs the command line."""

from cidx.cli.thin import main

main()
