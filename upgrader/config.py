"""The installation's settings file: read strictly, validated by the app's rules, converted by
the chain of converters in migrations/config/, and written as the app's commented YAML, so that
the latest release reads the settings the old release actually ran on (upgrader.effective)."""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from upgrader.effective import FLAT_KEYS as NOT_READ_FLAT_KEYS
from upgrader.effective import SECTIONS, Rules, effective, leaves, rules_for
from upgrader.errors import BadConfig
from upgrader.i18n import N_, T, Text, _
from upgrader.paths import migrations_dir

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 100
MAX_WHOLE = 1_000_000
TOO_LONG = T("a number far too long to be a setting")
#: Python's JSON parser's own words for a mistake, to translate (an unknown one is shown as it is).
JSON_PROBLEMS = (
    N_("Expecting value"),
    N_("Expecting property name enclosed in double quotes"),
    N_("Expecting ':' delimiter"),
    N_("Expecting ',' delimiter"),
    N_("Unterminated string starting at"),
    N_("Invalid control character at"),
    N_("Invalid \\escape"),
    N_("Invalid \\uXXXX escape"),
    N_("Extra data"),
)
_JSON_TOKEN = re.compile(r'("(?:[^"\\]|\\.)*")(\s*:)?|[{}\[\]]')
_LONG_NUMBER = re.compile(r"-?\d{4000,}")
FLAT_KEYS = {"alert_thresholds_days", "lock_timeout_minutes", "export_filename_template", "log_level"}
NESTED_SECTIONS = {"alerts", "lock", "organization"}
POSITIVE = [
    ("alerts", "critical_days"),
    ("alerts", "warning_days"),
    ("lock", "timeout_minutes"),
    ("lock", "heartbeat_interval_seconds"),
]
NAME_LISTS = [("organization", "roles"), ("organization", "workspaces")]
RETIRED_SUFFIX = ".before-wems-upgrade"
MAIN_FILE = "settings"
OTHER_SETTINGS_FILES = ("config/backup_config.json", "config/alert_settings.json")
SETTINGS_FILES = ("config.yaml", "config.yml", "config.json") + OTHER_SETTINGS_FILES
NOT_READ_KEY = "not_read_before_wems_upgrade"

# The comments written into config.yaml, each line in the user's language (translated when the
# file is written, see _comment); the settings themselves (keys, values) never change with it.
# Nothing reads these comments back: a file is recognised by its settings, never by its text.
TITLE = N_("Wareflow EMS configuration")
SYNTAX = N_("Lines starting with # are comments. Indent with spaces, never tabs.")
HEADER = (TITLE, N_("Converted by wems-upgrade from {source}; the original is kept as {retired}."), SYNTAX)
NEW_HEADER = (
    TITLE,
    N_("Written by wems-upgrade: the settings the previous release ran on, where the latest differs."),
    SYNTAX,
)
NOT_READ_HEADER = N_("NOT READ BEFORE THIS UPGRADE: kept here as comments, not used.")
EMPTY_SETTINGS = N_("No settings of its own: Wareflow EMS uses its defaults.")
SECTION_COMMENTS = {
    "alerts": N_("ALERTS: when expiring CACES, medical visits and trainings are flagged"),
    "lock": N_("LOCK: stops two people from changing the database at the same time"),
    "organization": N_("ORGANIZATION: the choices offered in the employee forms"),
}
KEY_COMMENTS = {
    ("alerts", "critical_days"): N_("Critical alert when the expiry is this many days away or less"),
    ("alerts", "warning_days"): N_("Warning when the expiry is this many days away or less"),
    ("lock", "timeout_minutes"): N_("A lock not refreshed for this many minutes is considered abandoned"),
    ("lock", "heartbeat_interval_seconds"): N_("How often a running app refreshes its lock, in seconds"),
    ("organization", "roles"): N_("Job roles"),
    ("organization", "workspaces"): N_("Work areas of the warehouse"),
}


def _comment(text: str | Text, indent: int = 0) -> str:
    """YAML comment lines for `text`, translated now: every line starts with '# ', so no translation
    (even one that breaks a line) can turn into a setting."""
    shown = str(text) if isinstance(text, Text) else _(text)
    return "".join(f"{' ' * indent}# {line}\n" for line in shown.splitlines() or [""])


def _either(names: list[str] | tuple[str, ...]) -> str | Text:
    """`a`, `a or b`, `a or b or c`, in the user's language."""
    if len(names) == 1:
        return names[0]
    return T("{first} or {last}", first=_either(names[:-1]), last=names[-1])


@dataclass(frozen=True)
class Converter:
    name: str
    source: str
    target: str
    from_generation: int
    description: Text  # the converter's DESCRIPTION, shown in the user's language
    module: ModuleType = field(compare=False, repr=False)
    file: str = MAIN_FILE


@dataclass(frozen=True)
class NotRead:
    """A value in the file that the old release did not read: kept visibly, never activated."""

    key: str
    value: object
    why: str | Text
    leaves: tuple[tuple[str, str], ...]

    @property
    def hint(self) -> Text:
        section, keys = self.leaves[0][0], [key for _s, key in self.leaves]
        if "." in self.key:
            return T("under {section}:", section=section)
        if len(keys) == 1:
            return T("under {section}: as {key}", section=section, key=keys[0])
        return T("under {section}: as {first} and {last}", section=section, first=", ".join(keys[:-1]), last=keys[-1])

    def as_comment(self) -> str:
        """The value, commented out, under a line saying why (in the user's language)."""
        line = f"# {self.key.split('.')[-1]}: {json.dumps(self.value, ensure_ascii=False)}"
        why = T(
            "Not read by Wareflow EMS before this upgrade ({why}); uncomment {hint} to use it",
            why=self.why,
            hint=self.hint,
        )
        return f"{_comment(why)}{line}\n"


@dataclass(frozen=True)
class Explicit:
    """A value the old release took from its own defaults, written because the latest default differs."""

    section: str
    key: str
    value: object
    latest_default: object


@dataclass(frozen=True)
class ConfigPlan:
    """What happens to the settings file; `new_text` None means it stays as it is."""

    source: Path | None
    shape: str
    before: dict
    after: dict
    converters: tuple[Converter, ...] = ()
    new_path: Path | None = None
    new_text: str | None = None
    retire: Path | None = None
    effective_before: dict = field(default_factory=dict)
    not_read: tuple[NotRead, ...] = ()
    explicit: tuple[Explicit, ...] = ()
    releases: str | Text = ""  # the old releases, as the user reads them (Rules.releases)

    @property
    def changes(self) -> bool:
        return self.new_text is not None

    @property
    def read_after(self) -> Path | None:
        return self.new_path or self.source

    def timeout_minutes(self, default: int) -> int:
        value = _get(self.effective_before or self.before, "lock", "timeout_minutes")
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


# --- reading -----------------------------------------------------------------------------


def _error(path: Path, line: int, column: int, problem: str | Text, more: list[str | Text] | None = None) -> BadConfig:
    """The refusal of a settings file at a line and column; `more`: further problems, before the file."""
    return BadConfig(
        T(
            "The settings file {name} cannot be used: line {line}, column {column}: {problem}.",
            name=path.name,
            line=line,
            column=column,
            problem=problem,
        ),
        [*(more or []), T("file: {path}", path=path)],
    )


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _decode(path: Path) -> str:
    data = path.read_bytes()
    if len(data) > MAX_BYTES:
        raise _error(
            path,
            1,
            1,
            T(
                "it is {size} KB, far more than any settings file (the limit is {limit} KB)",
                size=len(data) // 1024,
                limit=MAX_BYTES // 1024,
            ),
        )
    if data.startswith(b"\xef\xbb\xbf"):
        raise _error(path, 1, 1, T("it starts with an invisible byte-order mark (BOM); save it as 'UTF-8' without BOM"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _position(data[: exc.start].decode("utf-8", "replace"), exc.start)
        raise _error(path, line, column, T("it is not UTF-8 text (save it as UTF-8)")) from None
    if not text.strip():
        raise _error(path, 1, 1, T("it is empty"))
    return text


def _no_constants(name: str):
    raise ValueError(T("{name} is not a number JSON allows", name=name))


def _nested_too_deep(path: Path, line: int, column: int) -> BadConfig:
    return _error(
        path,
        line,
        column,
        T("the settings are nested more than {depth} levels deep, far more than any settings file", depth=MAX_DEPTH),
    )


def _twice(path: Path, line: int, column: int, key, first: int) -> BadConfig:
    return _error(
        path,
        line,
        column,
        T(
            "the setting {key} is written twice (also on line {first}); "
            "Wareflow EMS would silently use only the last one: keep one",
            key=repr(key),
            first=first,
        ),
    )


def _too_long(path: Path, text: str, match: re.Match | None) -> BadConfig:
    where = _position(text, match.start()) if match else (1, 1)
    return _error(path, *where, TOO_LONG)


def _load_json(path: Path, text: str) -> dict:
    try:
        settings = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        problem = Text(exc.msg) if exc.msg in JSON_PROBLEMS else exc.msg
        raise _error(path, exc.lineno, exc.colno, problem) from None
    except RecursionError:
        settings = None
    except ValueError as exc:
        if match := _LONG_NUMBER.search(text):
            raise _too_long(path, text, match) from None
        raise _error(path, 1, 1, exc.args[0] if exc.args and isinstance(exc.args[0], Text) else str(exc)) from None
    _check_json_structure(path, text)
    return settings


def _check_json_structure(path: Path, text: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH and a key written twice in one object (valid JSON)."""
    open_objects: list[dict | None] = []
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        if token in "{[":
            open_objects.append({} if token == "{" else None)
            if len(open_objects) > MAX_DEPTH:
                raise _nested_too_deep(path, *_position(text, match.start()))
        elif token in "}]":
            if open_objects:
                open_objects.pop()
        elif match.group(2) and open_objects and open_objects[-1] is not None:
            key, line = json.loads(match.group(1)), _position(text, match.start())[0]
            if key in open_objects[-1]:
                raise _twice(path, *_position(text, match.start()), key, open_objects[-1][key])
            open_objects[-1][key] = line


def _load_yaml(path: Path, text: str):
    try:
        _check_yaml_events(path, text)
        _check_yaml_nodes(path, yaml.compose(text, Loader=yaml.SafeLoader))
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or str(exc)  # PyYAML's own words, in English
        if "'\\t'" in problem:
            raise _error(
                path, line, column, T("a tab character; YAML files must be indented with spaces only")
            ) from None
        raise _error(path, line, column, problem) from None
    except yaml.YAMLError as exc:
        raise _error(path, 1, 1, str(exc)) from None


def _check_yaml_events(path: Path, text: str) -> None:
    """Refuse anchors and aliases, and nesting deeper than MAX_DEPTH (before anything recurses)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        mark = event.start_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _error(
                path, line, column, T("it uses YAML anchors or aliases (& and *), which a settings file never needs")
            )
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _nested_too_deep(path, line, column)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_yaml_nodes(path: Path, root) -> None:
    """Refuse a key written twice in one mapping, and a value that cannot be read (a number far
    too long, a date that does not exist), each at its line and column."""
    constructor = yaml.SafeLoader("")
    pending = [root] if root is not None else []
    while pending:
        node = pending.pop()
        if isinstance(node, yaml.MappingNode):
            _refuse_twice(path, node)
            pending += [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            pending += node.value
        else:
            _check_scalar(path, constructor, node)


def _refuse_twice(path: Path, node) -> None:
    seen: dict = {}
    for key, _value in node.value:
        if isinstance(key, yaml.ScalarNode):
            mark = key.start_mark
            if (key.tag, key.value) in seen:
                raise _twice(path, mark.line + 1, mark.column + 1, key.value, seen[key.tag, key.value])
            seen[key.tag, key.value] = mark.line + 1


def _check_scalar(path: Path, constructor, node) -> None:
    try:
        constructor.construct_object(node)
    except (ValueError, OverflowError) as exc:
        mark = node.start_mark
        problem = (
            TOO_LONG
            if node.tag.endswith(":int")
            else T("the value {value} cannot be read ({reason})", value=repr(node.value[:40]), reason=exc)
        )
        raise _error(path, mark.line + 1, mark.column + 1, problem) from None


def read_settings(path: Path) -> tuple[str, dict, str]:
    """(shape, settings, text) of a settings file; BadConfig, with line and column, if unusable.

    A JSON file with any of the app's sections (alerts, lock, organization) is nested, as the app
    reads it: flat keys in it are the user's own keys, kept as they are.
    """
    text = _decode(path)
    settings = _load_json(path, text) if path.suffix == ".json" else _load_yaml(path, text)
    if not isinstance(settings, dict):
        raise _error(path, 1, 1, T("it must hold named settings (a mapping), not a single value or a list"))
    if path.suffix != ".json":
        return "yaml", settings, text
    flat = (bool(FLAT_KEYS & settings.keys()) or "roles" in settings) and not NESTED_SECTIONS & settings.keys()
    return ("json-flat" if flat else "json-nested"), settings, text


# --- validating ----------------------------------------------------------------------------


def _get(settings: dict, section: str, key: str):
    part = settings.get(section)
    return part.get(key) if isinstance(part, dict) else None


def problems(settings: dict) -> list[tuple[tuple[str, str], Text]]:
    """The app's own rules: positive whole numbers, critical <= warning, non-empty lists of text."""
    out = []
    for section, key in POSITIVE:
        value = _get(settings, section, key)
        name = f"{section}.{key}"
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            out.append(
                (
                    (section, key),
                    T("{name} must be a whole number above 0, not {value}", name=name, value=_short(value)),
                )
            )
        elif isinstance(value, int) and value > MAX_WHOLE:
            problem = T(
                "{name} must be a whole number from 1 to {most}, not {value}",
                name=name,
                most=MAX_WHOLE,
                value=_short(value),
            )
            out.append(((section, key), problem))
    critical, warning = _get(settings, "alerts", "critical_days"), _get(settings, "alerts", "warning_days")
    if isinstance(critical, int) and isinstance(warning, int) and critical > warning:
        problem = T(
            "alerts.critical_days ({critical}) must not be more than alerts.warning_days ({warning})",
            critical=critical,
            warning=warning,
        )
        out.append((("alerts", "critical_days"), problem))
    for section, key in NAME_LISTS:
        value = _get(settings, section, key)
        if value is not None and (
            not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value)
        ):
            out.append(((section, key), T("{name} must be a non-empty list of names", name=f"{section}.{key}")))
    for section in NESTED_SECTIONS:
        if section in settings and not isinstance(settings[section], dict):
            problem = T(
                "{name} must be a section of settings, not {value}", name=section, value=repr(settings[section])
            )
            out.append(((section, ""), problem))
    return out


def _short(value) -> str | Text:
    text = repr(value)
    if len(text) <= 40:
        return text
    return T("{start}...({length} characters)", start=text[:20], length=len(text))  # always more than 40


def _locate(text: str, keys: list[str]) -> tuple[int, int]:
    """Line and column of a key path in the file's text (the first match of each key in turn)."""
    offset = 0
    for key in keys:
        match = re.compile(rf'(^|[\s{{,])"?{re.escape(key)}"?\s*:', re.M).search(text, offset)
        if not match:
            break
        offset = match.start() + len(match.group(1))
    return _position(text, offset)


def validate(path: Path, text: str, settings: dict, origin: dict[tuple[str, str], list[str]]) -> None:
    """Refuse settings that break the app's rules, pointing at the source line of the first problem."""
    found = problems(settings)
    if found:
        (where, message) = found[0]
        line, column = _locate(text, origin.get(where, [k for k in where if k]))
        more: list[str | Text] = [m for _w, m in found[1:]]
        raise _error(path, line, column, message, more)


# --- converting and writing ------------------------------------------------------------------


def load_converters(folder: Path | None = None) -> list[Converter]:
    folder = folder or migrations_dir() / "config"
    converters = []
    for path in sorted(folder.glob("c*_*.py")):
        spec = importlib.util.spec_from_file_location(f"wems_config_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"The converter {path} cannot be loaded as Python.")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        converters.append(
            Converter(
                path.stem,
                module.SOURCE,
                module.TARGET,
                module.FROM_GENERATION,
                Text(module.DESCRIPTION),
                module,
                getattr(module, "FILE", MAIN_FILE),
            )
        )
    return converters


def convert(
    shape: str, settings: dict, generation: int, converters: list[Converter], file: str = MAIN_FILE
) -> tuple[str, dict, list]:
    """Apply the chain of converters of `file` that start from `shape` and suit the target generation."""
    used = []
    for converter in converters:
        if converter.file == file and converter.source == shape and converter.from_generation <= generation:
            settings = converter.module.convert(settings)
            shape = converter.target
            used.append(converter)
    return shape, settings, used


def _dump(value: dict, indent: int = 0) -> str:
    """YAML for one key, accents written as they are unless that would not read back identically
    (PyYAML leaves some control characters, like U+0085, unquoted); then escaped."""
    text = yaml.safe_dump(value, allow_unicode=True, sort_keys=False, default_flow_style=False, width=1000)
    if yaml.safe_load(text) != value:
        text = yaml.safe_dump(value, allow_unicode=False, sort_keys=False, default_flow_style=False, width=1000)
    return "".join(" " * indent + line + "\n" for line in text.splitlines())


def render_yaml(
    settings: dict, source: str | None = "config.json", retired: str = "", not_read: tuple[NotRead, ...] = ()
) -> str:
    """The app's commented layout, with the user's values and keys in the user's order, then the
    values the old release did not read, as comments."""
    if source:
        title, converted, syntax = HEADER
        converted_from = Text(converted, source=source, retired=retired or source + RETIRED_SUFFIX)
        parts = [_comment(title), _comment(converted_from), _comment(syntax)]
    else:
        parts = [_comment(line) for line in NEW_HEADER]
    if not settings:
        parts.append("\n" + _comment(EMPTY_SETTINGS) + "{}\n")
    for key, value in settings.items():
        if key in SECTION_COMMENTS and isinstance(value, dict) and value:
            parts.append(f"\n{_comment(SECTION_COMMENTS[key])}{key}:\n")
            for sub, subvalue in value.items():
                comment = KEY_COMMENTS.get((key, sub))
                parts.append((_comment(comment, 2) if comment else "") + _dump({sub: subvalue}, 2))
        else:
            parts.append("\n" + _dump({key: value}))
    if not_read:
        parts.append("\n" + _comment(NOT_READ_HEADER) + "".join(item.as_comment() for item in not_read))
    return "".join(parts)


def render_json(settings: dict) -> str:
    return json.dumps(settings, indent=2, ensure_ascii=False) + "\n"


def flatten(settings: dict, prefix: str = "") -> list[str]:
    """`section.key: value` lines, for showing what a conversion changes."""
    lines = []
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            lines += flatten(value, name + ".")
        else:
            lines.append(f"{name}: {json.dumps(value, ensure_ascii=False)}")
    return lines


def _retired_name(source: Path) -> Path:
    candidate = source.with_name(source.name + RETIRED_SUFFIX)
    number = 1
    while candidate.exists():
        number += 1
        candidate = source.with_name(f"{source.name}{RETIRED_SUFFIX}-{number}")
    return candidate


def _set_aside(settings: dict, rules: Rules, name: str | None) -> tuple[dict, tuple[NotRead, ...]]:
    """The settings the old release read, and the values it did not (flat keys; every section of a
    file it did not open), in the file's order."""
    read_file, kept, aside = rules.reads_file(name), {}, []
    for key, value in settings.items():
        if key in NOT_READ_FLAT_KEYS:
            aside.append(NotRead(key, value, T("flat key of the early template"), NOT_READ_FLAT_KEYS[key]))
        elif key in SECTIONS and not read_file and isinstance(value, dict):
            why = (
                T("these releases read {files}", files=_either(rules.reads))
                if rules.reads
                else T("these releases read no settings file")
            )
            aside += [NotRead(f"{key}.{sub}", subvalue, why, ((key, sub),)) for sub, subvalue in value.items()]
        else:
            kept[key] = value
    return kept, tuple(aside)


def _explicit(before: dict, latest: Rules, name: str | None, after: dict) -> tuple[Explicit, ...]:
    """The values the old release ran on that the latest, reading `after`, would read differently."""
    reads = effective(latest, name, after)
    return tuple(
        Explicit(section, key, value, latest.defaults.get(section, {}).get(key))
        for (section, key), value in leaves(before).items()
        if leaves(reads).get((section, key)) != value
    )


def _with_explicit(after: dict, explicit: tuple[Explicit, ...]) -> dict:
    after = {k: dict(v) if k in SECTIONS and isinstance(v, dict) else v for k, v in after.items()}
    for item in explicit:
        after.setdefault(item.section, {})[item.key] = item.value
    return after


def _read(source: Path | None) -> tuple[str, dict, str]:
    return read_settings(source) if source else ("none", {}, "")


def plan_config(
    source: Path | None,
    generation: int,
    converters: list[Converter] | None = None,
    *,
    from_generation: int | None = None,
    root: Path | None = None,
) -> ConfigPlan:
    """What the upgrade from `from_generation` (default: `generation`) to `generation` does with the
    settings file `source` (None: there is none, in `root`), so the latest reads what the old read."""
    old, latest = rules_for(from_generation or generation), rules_for(generation)
    shape, settings, text = _read(source)
    before = effective(old, source.name if source else None, settings)
    kept, aside = _set_aside(settings, old, source.name if source else None)
    new_shape, after, used = convert(shape, kept, generation, converters or load_converters())
    folder = source.parent if source else root
    new_path = source.with_name("config.yaml") if new_shape == "yaml" and source else source
    if new_path is None and folder is not None and latest.reads:
        new_path = folder / latest.reads[0]
    explicit = _explicit(before, latest, new_path.name if new_path else None, after)
    after = _with_explicit(after, explicit)
    if source:
        validate(source, text, after, {})
    common: dict[str, Any] = dict(effective_before=before, releases=old.releases, explicit=explicit)
    if not (used or explicit or (aside and source and old is not latest)) or new_path is None:
        return ConfigPlan(source, shape, settings, settings, **common)
    retired = _retired_name(source) if source else None
    if new_path.suffix == ".json":
        live = {**after, NOT_READ_KEY: {a.key: a.value for a in aside}} if aside else after
        return ConfigPlan(
            source, shape, settings, live, tuple(used), new_path, render_json(live), retired, not_read=aside, **common
        )
    text = render_yaml(after, source.name if source else None, retired.name if retired else "", aside)
    if yaml.safe_load(text) != after:
        raise BadConfig(
            T(
                "The settings of {name} cannot be written as YAML without changing them.",
                name=(source or new_path).name,
            ),
            advice=T("Nothing was changed. Please send the settings file to support."),
        )
    return ConfigPlan(source, shape, settings, after, tuple(used), new_path, text, retired, not_read=aside, **common)


def replacements(config: ConfigPlan) -> list[tuple[Path, Path | None, Path, bool]]:
    """(target, temp holding its new content or None to remove it, aside, keep the aside) for the swap."""
    new_path, source, retire = config.new_path, config.source, config.retire
    if not config.changes or new_path is None:
        return []
    temp = new_path.with_name(new_path.name + ".wems-upgrade-tmp")
    if new_path == source and retire:
        return [(new_path, temp, retire, True)]
    written = [(new_path, temp, new_path.with_name(new_path.name + ".wems-upgrade-old"), False)]
    return written + ([(source, None, retire, True)] if source and retire else [])
