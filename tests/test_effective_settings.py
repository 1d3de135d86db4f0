"""Every generation, with each historical settings shape, upgrades to settings that the latest app
reads as the old release did. Both loaders are written here from the release facts
(shared/wems/README.md), not taken from the code under test."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from upgrader import i18n
from upgrader.demo import write_config
from upgrader.installation import locate
from upgrader.upgrade import upgrade

ALERTS = {"critical_days": 7, "warning_days": 30}
LOCK = {"timeout_minutes": 2, "heartbeat_interval_seconds": 30}
WORKSPACES = ["Quai", "Zone A", "Zone B", "Zone C", "Bureau", "Stockage"]


def _roles(second: str) -> list[str]:
    return ["Cariste", second, "Magasinier", "Réceptionnaire", "Gestionnaire", "Chef d'équipe"]


def _defaults(generation: int) -> dict:
    if generation == 1:
        return {
            "alerts": dict(ALERTS),
            "lock": dict(LOCK),
            "organization": {
                "roles": ["Préparateur", "Réceptionnaire", "Cariste"],
                "workspaces": ["Quai", "Zone A", "Zone B", "Bureau"],
            },
        }
    second = "Préparateur" if generation <= 5 else "Préparateur de commandes"
    return {
        "alerts": dict(ALERTS),
        "lock": dict(LOCK),
        "organization": {"roles": _roles(second), "workspaces": list(WORKSPACES)},
    }


def _names_read(generation: int) -> tuple[str, ...]:
    if generation == 1:
        return ()
    if generation <= 4:
        return ("config.json",)
    return ("config.yaml", "config.json") if generation == 5 else ("config.yaml", "config.yml", "config.json")


def _merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _load(path) -> dict:
    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


def effective(root, generation: int) -> dict:
    """What a release of `generation` reads: defaults + deep merge of the first file it reads;
    only the alerts, lock and organization sections have getters (flat keys have none)."""
    path = next((root / n for n in _names_read(generation) if (root / n).is_file()), None)
    merged = _merge(_defaults(generation), _load(path) if path else {})
    return {section: merged[section] for section in ("alerts", "lock", "organization")}


SHAPES = ["none", "json-nested", "json-flat", "yaml"]


def _settle(root, shape: str) -> None:
    for name in ("config.json", "config.yaml"):
        (root / name).unlink(missing_ok=True)
    if shape != "none":
        write_config(root, shape)


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("generation", range(1, 9))
def test_the_latest_release_reads_what_the_old_release_read(install, generation, shape, language):
    """In either language: the comments of the file written follow it, the settings never do."""
    i18n.use(language)
    root = install(generation)
    _settle(root, shape)
    before = effective(root, generation)
    upgrade(locate(root, environ={}))
    assert effective(root, 8) == before


def test_the_g4_flat_case_keeps_its_alerts_lock_roles_and_workspaces(install):
    root = install(4)
    _settle(root, "json-flat")
    upgrade(locate(root, environ={}))
    after = effective(root, 8)
    assert after["alerts"] == {"critical_days": 7, "warning_days": 30}
    assert after["lock"]["timeout_minutes"] == 2
    assert after["organization"] == {"roles": _roles("Préparateur"), "workspaces": WORKSPACES}
    assert "# alert_thresholds_days: [30, 60, 90]" in (root / "config.yaml").read_text(encoding="utf-8")


def test_a_french_run_writes_french_comments_the_app_reads_past(install):
    i18n.use("fr")
    root = install(4)
    _settle(root, "json-flat")
    before = effective(root, 4)
    upgrade(locate(root, environ={}))
    text = (root / "config.yaml").read_text(encoding="utf-8")
    assert text.startswith("# Configuration de Wareflow EMS\n") and "# alert_thresholds_days: [30, 60, 90]" in text
    assert effective(root, 8) == before
