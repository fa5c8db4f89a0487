"""Oversight of a running hall: the discipline watcher, and what runs it beside an engine."""
