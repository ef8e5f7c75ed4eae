"""Chunking: tokens, document structure, edit-stable chunks under a budget."""
