"""Search: query modes over the store (vector, hybrid), later the server."""
