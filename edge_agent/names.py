"""Names that become MQTT topic levels and user names (agent ids, site names, share groups).

Kept apart from config.py so the commands that only check a name do not import the TOML
config loader at start-up (~15 ms).
"""

from __future__ import annotations

import re

AGENT_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
"""No '/', '+', '#', spaces or control characters: 1-64 of A-Z a-z 0-9 . _ -, starting with a
letter or digit."""
