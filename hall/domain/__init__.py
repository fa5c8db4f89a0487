"""The pure domain of one hall: events, commands, the state fold and the decisions.

Nothing here does I/O or reads the clock: ``now`` is always an argument.
"""
