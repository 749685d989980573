"""One owner per project index: the lock, the socket server and its client."""
