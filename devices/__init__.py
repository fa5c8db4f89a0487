"""Devices: what people touch (kiosk, window caller, evaluation pad, printer and speaker agents)."""
