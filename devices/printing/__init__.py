"""Thermal ticket printing: the ticket layout (ESC/POS bytes) and the printers that take them.

python-escpos stays inside this package: hall/ and scheduling/ never import it.
"""
