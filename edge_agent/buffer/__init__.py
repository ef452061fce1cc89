"""The agent's SQLite outbox: windows, health and, when enabled, raw data, kept until sent."""
