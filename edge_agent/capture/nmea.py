"""Old name of nmea_writer, kept only until edge_agent/commands/record.py imports its sentence
builders from edge_agent.capture.writers; then delete this file."""

from edge_agent.capture.nmea_writer import gga, gst, rmc

__all__ = ["gga", "gst", "rmc"]
