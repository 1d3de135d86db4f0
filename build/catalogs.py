"""The translation catalogues: find every text to translate, keep each language's `.po`, compile `.mo`.

    python build/catalogs.py            # update the .pot and every .po from the sources, compile .mo
    python build/catalogs.py --check    # exit 1 if a catalogue is out of date (CI runs this as a test)

Texts come from the program (`_()`, `N_()`, `T()`, `ngettext()`, `nT()` with literal English
arguments) and from `migrations/` (each step's description and releases, each app check's name).
Pure Python (no GNU gettext needed): the `.mo` is the format `gettext.GNUTranslations` reads.
"""

from __future__ import annotations

import argparse
import ast
import re
import struct
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "upgrader"
MIGRATIONS = ROOT / "migrations"
LOCALE = SOURCES / "locale"
DOMAIN = "wems-upgrade"
TRANSLATED = ("fr",)
PLURAL_FORMS = {"fr": "nplurals=2; plural=(n > 1);"}
SINGLE = {"_", "N_", "T"}
PLURAL = {"ngettext", "nT"}


@dataclass
class Entry:
    msgid: str
    plural: str | None = None
    translation: list[str] = field(default_factory=lambda: [""])
    places: list[str] = field(default_factory=list)
    fuzzy: bool = False

    @property
    def done(self) -> bool:
        return not self.fuzzy and all(self.translation)


# --- finding the texts ------------------------------------------------------------------------


def _literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            yield node.func.id, node


def source_texts(path: Path) -> list[tuple[str, str | None, int]]:
    """(msgid, plural msgid, line) of every marked text of one Python file."""
    found = []
    for name, call in _calls(ast.parse(path.read_text(encoding="utf-8"))):
        args = [_literal(arg) for arg in call.args]
        if name in SINGLE and args and args[0] is not None:
            found.append((args[0], None, call.lineno))
        elif name in PLURAL and len(args) >= 2 and args[0] is not None and args[1] is not None:
            found.append((args[0], args[1], call.lineno))
    return found


def _migration_texts() -> list[tuple[str, str]]:
    found = []
    for step in sorted(MIGRATIONS.glob("g*_*/step.toml")):
        meta = tomllib.loads(step.read_text(encoding="utf-8"))
        place = step.relative_to(ROOT).as_posix()
        found += [(meta[key], place) for key in ("description", "releases") if meta.get(key)]
    for converter in sorted(MIGRATIONS.glob("config/c*_*.py")):
        place = converter.relative_to(ROOT).as_posix()
        for node in ast.parse(converter.read_text(encoding="utf-8")).body:
            names = [target.id for target in getattr(node, "targets", []) if isinstance(target, ast.Name)]
            if isinstance(node, ast.Assign) and "DESCRIPTION" in names and _literal(node.value):
                found.append((node.value.value, place))
    for rules in sorted(MIGRATIONS.glob("config/effective/g*.yaml")):
        place = rules.relative_to(ROOT).as_posix()
        for line in rules.read_text(encoding="utf-8").splitlines():
            match = re.match(r'releases:\s*"(.+)"\s*$', line)
            if match:
                found.append((match.group(1), place))
    for checks in sorted(MIGRATIONS.glob("g*_*/app_checks.sql")):
        place = checks.relative_to(ROOT).as_posix()
        for line in checks.read_text(encoding="utf-8").splitlines():
            match = re.match(r"--\s*name:\s*(.+?)\s*$", line)
            if match:
                found.append((match.group(1), place))
    return found


def extract() -> dict[str, Entry]:
    """Every text the program can show, by msgid, with where it is used."""
    entries: dict[str, Entry] = {}

    def add(msgid: str, plural: str | None, place: str) -> None:
        entry = entries.setdefault(msgid, Entry(msgid, plural))
        if place not in entry.places:
            entry.places.append(place)

    for path in sorted(SOURCES.rglob("*.py")):
        for msgid, plural, _line in source_texts(path):
            add(msgid, plural, path.relative_to(ROOT).as_posix())
    for msgid, place in _migration_texts():
        add(msgid, None, place)
    return entries


# --- .po files --------------------------------------------------------------------------------


def _unquote(text: str) -> str:
    return ast.literal_eval(text)


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")
    lines = escaped.split("\n")
    parts = [line + "\\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    if len(parts) <= 1:
        return f'"{parts[0] if parts else ""}"'
    return '""\n' + "\n".join(f'"{part}"' for part in parts)


def read_po(path: Path) -> tuple[str, dict[str, Entry]]:
    return parse_po(path.read_text(encoding="utf-8"))


def parse_po(text: str) -> tuple[str, dict[str, Entry]]:
    """(header, entries) of a .po text; obsolete (#~) entries are dropped."""
    header, entries = "", {}
    for block in re.split(r"\n\s*\n", text):
        entry, key, fuzzy, places = {}, None, False, []
        for line in block.splitlines():
            if line.startswith("#,"):
                fuzzy = "fuzzy" in line
            elif line.startswith("#:"):
                places += line[2:].split()
            elif line.startswith("#"):
                continue
            elif line.startswith('"') and key:
                entry[key] += _unquote(line)
            elif line.strip():
                key, _sep, rest = line.partition(" ")
                entry[key] = _unquote(rest)
        if "msgid" not in entry:
            continue
        if entry["msgid"] == "":
            header = entry.get("msgstr", "")
            continue
        plural = entry.get("msgid_plural")
        translation = [entry[f"msgstr[{i}]"] for i in range(2)] if plural else [entry.get("msgstr", "")]
        entries[entry["msgid"]] = Entry(entry["msgid"], plural, translation, places, fuzzy)
    return header, entries


def po_header(language: str) -> str:
    return (
        "Project-Id-Version: wems-upgrade\n"
        f"Language: {language}\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=UTF-8\n"
        "Content-Transfer-Encoding: 8bit\n"
        f"Plural-Forms: {PLURAL_FORMS.get(language, 'nplurals=2; plural=(n != 1);')}\n"
    )


def render_po(header: str, entries: list[Entry]) -> str:
    blocks = [f'msgid ""\nmsgstr {_quote(header)}\n']
    for entry in entries:
        lines = [f"#: {place}" for place in entry.places]
        flags = (["fuzzy"] if entry.fuzzy else []) + (
            ["python-brace-format"] if re.search(r"\{[a-z_]+\}", entry.msgid) else []
        )
        if flags:
            lines.append("#, " + ", ".join(flags))
        lines.append(f"msgid {_quote(entry.msgid)}")
        if entry.plural is None:
            lines.append(f"msgstr {_quote(entry.translation[0])}")
        else:
            lines.append(f"msgid_plural {_quote(entry.plural)}")
            lines += [f"msgstr[{i}] {_quote(text)}" for i, text in enumerate(entry.translation)]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def po_path(language: str) -> Path:
    return LOCALE / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def merged(language: str, found: dict[str, Entry], imported: dict[str, Entry] | None = None) -> str:
    """The language's .po brought up to the sources: new texts untranslated, gone texts dropped,
    `imported` translations (from other .po files) taking the place of the known ones."""
    path = po_path(language)
    header, known = read_po(path) if path.exists() else (po_header(language), {})
    known.update({msgid: entry for msgid, entry in (imported or {}).items() if entry.done})
    entries = []
    for msgid, entry in found.items():
        old = known.get(msgid)
        translation = old.translation if old and old.plural == entry.plural else [""] * (2 if entry.plural else 1)
        entries.append(Entry(msgid, entry.plural, list(translation), list(entry.places), bool(old and old.fuzzy)))
    return render_po(header, entries)


# --- .mo files --------------------------------------------------------------------------------


def compile_mo(header: str, entries: dict[str, Entry]) -> bytes:
    """The GNU .mo of the finished translations (the untranslated fall back to English)."""
    pairs = [(b"", header.encode("utf-8"))]
    for entry in entries.values():
        if not entry.done:
            continue
        key = entry.msgid if entry.plural is None else f"{entry.msgid}\0{entry.plural}"
        pairs.append((key.encode("utf-8"), "\0".join(entry.translation).encode("utf-8")))
    pairs.sort()
    count = len(pairs)
    keys_start = 7 * 4 + 16 * count
    ids, strs, key_index, value_index = b"", b"", [], []
    for key, _value in pairs:
        key_index.append((len(key), keys_start + len(ids)))
        ids += key + b"\0"
    values_start = keys_start + len(ids)
    for _key, value in pairs:
        value_index.append((len(value), values_start + len(strs)))
        strs += value + b"\0"
    head = struct.pack("<7I", 0x950412DE, 0, count, 7 * 4, 7 * 4 + 8 * count, 0, 0)
    table = b"".join(struct.pack("<2I", *item) for item in key_index + value_index)
    return head + table + ids + strs


def mo_path(language: str) -> Path:
    return po_path(language).with_suffix(".mo")


# --- the command ------------------------------------------------------------------------------


def outputs(imported: dict[str, Entry] | None = None) -> dict[Path, bytes]:
    """Every catalogue file as the sources make it now."""
    found = extract()
    files = {LOCALE / f"{DOMAIN}.pot": render_po(po_header("en"), list(found.values())).encode("utf-8")}
    for language in TRANSLATED:
        text = merged(language, found, imported)
        files[po_path(language)] = text.encode("utf-8")
        files[mo_path(language)] = compile_mo(*parse_po(text))
    return files


def _write(path: Path, content: bytes) -> None:
    """Whole or not at all: another process may be reading the catalogue."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".tmp")
    scratch.write_bytes(content)
    scratch.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report out-of-date catalogues, change nothing")
    parser.add_argument(
        "--import",
        dest="imports",
        nargs="*",
        type=Path,
        default=[],
        metavar="PO",
        help="take the French translations of these .po files too",
    )
    parser.add_argument("--missing", action="store_true", help="list the French texts still to translate")
    args = parser.parse_args(argv)
    imported: dict[str, Entry] = {}
    for path in args.imports:
        imported.update(read_po(path)[1])
    stale = []
    for path, content in outputs(imported).items():
        if not path.exists() or path.read_bytes() != content:
            stale.append(path)
            if not args.check:
                _write(path, content)
    if args.missing:
        for entry in read_po(po_path("fr"))[1].values():
            if not entry.done:
                print(f"untranslated ({', '.join(entry.places)}): {entry.msgid!r}")
    for path in stale:
        print(("out of date: " if args.check else "updated: ") + path.relative_to(ROOT).as_posix())
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
