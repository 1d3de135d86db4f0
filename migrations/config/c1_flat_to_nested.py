"""Flat config.json of installations made by the early project bootstrapper -> the nested shape.

No release ever read the flat keys (alert_thresholds_days, lock_timeout_minutes, roles,
workspaces): the app ran on its defaults. So they are not mapped onto live settings: the
effective-settings rules (upgrader/effective.py, migrations/config/effective/) set them aside
before this converter runs, and the YAML keeps them as comments. Every other key is kept as it is.

Each converter names the settings file it converts (FILE): "settings" is the main file
(config.yaml/yml/json). A later format change of config/backup_config.json or
config/alert_settings.json would add a converter with FILE set to that path.
"""

FILE = "settings"
SOURCE = "json-flat"
TARGET = "json-nested"
FROM_GENERATION = 1
DESCRIPTION = (
    "flat settings of the early bootstrapper, which no release read, are kept as comments, not turned into settings"
)


def convert(settings: dict) -> dict:
    return dict(settings)
