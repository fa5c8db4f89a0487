"""Hall: the core of one service hall (domain, engine, journals, API)."""
