"""One module per `cidx` command; each exposes `register(app)`."""
