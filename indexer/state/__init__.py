"""Where an index keeps its state: ledger, writer lock, store, layout, doctor."""
