"""A faithful stand-in for OpenAI's Files, Batches and Embeddings API, run as its own process.

Start it with :func:`tests.emulator.fixture.run_emulator` (or ``python -m tests.emulator``)
and point the real ``openai`` SDK at its ``base_url``. See ``README.md`` in this folder.
"""
