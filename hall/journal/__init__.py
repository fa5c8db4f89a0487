"""Journals: the port (``base``) and its backends, one module each."""
