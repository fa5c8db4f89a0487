"""Reports: a read model of the journal in SQLite, and the figures managers read from it."""
