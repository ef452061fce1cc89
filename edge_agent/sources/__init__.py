"""Sources of observations: Wi-Fi, BLE and GNSS, each live or from a capture, through one parser."""
