"""Search over a long-lived process: an HTTP JSON server (:mod:`~indexer.serve.web`, the
only module that imports the web framework) and an MCP server over stdio
(:mod:`~indexer.serve.tools`, the only one that imports the MCP SDK), both answering
through one :class:`~indexer.serve.searcher.Searcher` that keeps the model and the table
warm."""
