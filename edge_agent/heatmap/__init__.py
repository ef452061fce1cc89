"""Utilisation heatmaps: estimates -> time windows of dwell/moving seconds per grid cell and zone.

window.py holds the Window record and its merge, grid.py the cell geometry and the spread of one
estimate over cells, accumulator.py the windowing on observation time, codec.py the wire format.
"""
