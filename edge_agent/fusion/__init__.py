"""Fusion: Wi-Fi, BLE and GNSS observations to causal position estimates (see tracker.py)."""
