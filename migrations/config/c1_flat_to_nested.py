"""Flat config.json of installations made by the early project bootstrapper -> nested keys.

Mapping (every other key is kept as it is, in place; a flat key whose nested place is
already taken is kept as it is too):
- alert_thresholds_days [a, b, c...] -> sorted ascending: alerts.critical_days = the smallest,
  alerts.warning_days = the next (the smallest again if there is only one), alerts.info_days =
  the third (the bootstrapper's "info" level), alerts.other_thresholds_days = any further ones.
- lock_timeout_minutes -> lock.timeout_minutes
- roles -> organization.roles; workspaces -> organization.workspaces
"""

SOURCE = "json-flat"
TARGET = "json-nested"
FROM_GENERATION = 1
DESCRIPTION = "flat settings of the early bootstrapper become the app's nested sections"

MOVES = {"lock_timeout_minutes": ("lock", "timeout_minutes"),
         "roles": ("organization", "roles"),
         "workspaces": ("organization", "workspaces")}


def _alerts(thresholds):
    if not isinstance(thresholds, list) or not thresholds or not all(
            isinstance(t, int) and not isinstance(t, bool) for t in thresholds):
        raise ValueError("alert_thresholds_days must be a non-empty list of whole numbers of days")
    ordered = sorted(thresholds)
    alerts = {"critical_days": ordered[0], "warning_days": ordered[1] if len(ordered) > 1 else ordered[0]}
    if len(ordered) > 2:
        alerts["info_days"] = ordered[2]
    if len(ordered) > 3:
        alerts["other_thresholds_days"] = ordered[3:]
    return alerts


def convert(settings: dict) -> dict:
    out = {}
    for key, value in settings.items():
        if key == "alert_thresholds_days":
            out.setdefault("alerts", {}).update(_alerts(value))
        elif key in MOVES and MOVES[key][1] not in settings.get(MOVES[key][0], {}):
            section, name = MOVES[key]
            out.setdefault(section, {})[name] = value
        elif isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out
