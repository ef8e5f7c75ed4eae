"""Embedding backends: the contract, the registry, OpenAI and the local model."""
