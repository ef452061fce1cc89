"""edge-agent: forklift utilisation tracking from Wi-Fi, BLE and GNSS, on the forklift itself."""

__version__ = "0.1.0"
