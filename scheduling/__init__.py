"""Scheduling: pure policies (who is called next, wait estimates, staffing, simulation)."""
