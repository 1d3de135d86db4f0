"""What settings an installation of generation N actually runs on: each release's loading rules
and defaults are data, one file per range of releases in migrations/config/effective/."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from upgrader.errors import MalformedMigrations
from upgrader.i18n import T, Text
from upgrader.paths import migrations_dir

SECTIONS = ("alerts", "lock", "organization")
FLAT_KEYS = {
    "alert_thresholds_days": (("alerts", "critical_days"), ("alerts", "warning_days")),
    "lock_timeout_minutes": (("lock", "timeout_minutes"),),
    "roles": (("organization", "roles"),),
    "workspaces": (("organization", "workspaces"),),
}


@dataclass(frozen=True)
class Rules:
    """How the releases of generations `first`..`last` read their settings."""

    first: int
    last: int
    releases: Text  # the file's `releases`, shown in the user's language
    reads: tuple[str, ...]
    defaults: dict

    def reads_file(self, name: str | None) -> bool:
        return name in self.reads


def _malformed(path: Path, problem: str | Text) -> MalformedMigrations:
    return MalformedMigrations(
        T(
            "The migrations folder is malformed: {folder}: {reason}",
            folder=f"config/effective/{path.name}",
            reason=problem,
        )
    )


def _rules(path: Path) -> Rules:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise _malformed(path, T("not a mapping"))
        if data.get("flat_keys_read"):
            raise _malformed(path, T("a release that reads flat keys is not supported"))
        span = data["generations"]
        releases = Text(data["releases"])  # translated by the catalogue (build/catalogs.py extracts it)
        return Rules(span["from"], span["to"], releases, tuple(data["reads"]), data["defaults"])
    except KeyError as exc:
        raise _malformed(path, T("lacks {key}", key=exc)) from exc
    except (yaml.YAMLError, TypeError) as exc:
        raise _malformed(path, f"{type(exc).__name__}: {exc}") from exc


@lru_cache(maxsize=4)
def load_rules(folder: Path | None = None) -> tuple[Rules, ...]:
    folder = folder or migrations_dir() / "config" / "effective"
    return tuple(sorted((_rules(p) for p in folder.glob("g*.yaml")), key=lambda r: r.first))


def rules_for(generation: int) -> Rules:
    """The rules of `generation`; a later generation without a file of its own reads settings as
    the last one described does (a release adds a file only when its loading or defaults change)."""
    ranges = load_rules()
    for rules in ranges:
        if rules.first <= generation <= rules.last:
            return rules
    if generation > ranges[-1].last:
        return ranges[-1]
    raise LookupError(f"no settings rules for generation {generation}")


def deep_merge(base: dict, extra: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def effective(rules: Rules, name: str | None, settings: dict) -> dict:
    """The sections a release reads: its defaults, with the file's nested keys merged on top when it
    reads a file of that name (flat keys never count: no getter reads them)."""
    read = {s: settings[s] for s in SECTIONS if isinstance(settings.get(s), dict)} if rules.reads_file(name) else {}
    return deep_merge(rules.defaults, read)


def leaves(settings: dict) -> dict[tuple[str, str], object]:
    return {(s, k): v for s in SECTIONS if isinstance(settings.get(s), dict) for k, v in settings[s].items()}
