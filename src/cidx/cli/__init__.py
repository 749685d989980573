"""The command line: parse, call one core function, render the typed result."""
