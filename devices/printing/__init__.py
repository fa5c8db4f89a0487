"""Ticket printing: the ticket's layout and the printer agent."""
