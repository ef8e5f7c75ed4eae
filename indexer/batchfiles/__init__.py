"""Batch files: /v1/embeddings request shards and their output/error files."""
