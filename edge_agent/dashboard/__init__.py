"""The supervisor dashboard: MQTT ingest of the agents' windows, a SQLite store, an ASGI web app.

ingest.py subscribes (MQTT 5 shared subscription), store.py keeps each window id once, app.py serves
the page (static/) and the JSON API documented in docs/dashboard.md.
"""
