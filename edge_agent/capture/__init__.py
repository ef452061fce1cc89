"""Capture writers: pcap (radiotap beacons, BLE LE LL advertisements) and NMEA, for bundles.

Used by `edge-agent record` and by firmware_sim; the readers live in edge_agent.sources.
"""
