"""config.json -> config.yaml, which the app prefers from the builds of 2026-01-23 (g5) on.

The settings are the same; only the file changes. The YAML is written in the commented
layout of the app's own default file (see upgrader/config.py).
"""

FILE = "settings"
SOURCE = "json-nested"
TARGET = "yaml"
FROM_GENERATION = 5
DESCRIPTION = "config.json becomes config.yaml, the format the app prefers"


def convert(settings: dict) -> dict:
    return dict(settings)
