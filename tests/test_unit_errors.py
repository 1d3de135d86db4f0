"""Errors as scripts see them: one stable kebab-case reference per situation, each in the README;
a malformed migrations/ folder is a bug of the build (exit 1), never a traceback."""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import shutil
from pathlib import Path

import pytest

import upgrader
from upgrader import errors
from upgrader.cli import main
from upgrader.effective import load_rules
from upgrader.errors import MalformedMigrations, UpgradeError, kebab_case
from upgrader.loader import load_catalog, parse_app_operations
from upgrader.operations import parse_operations, split_statements
from upgrader.paths import migrations_dir

README = Path(__file__).resolve().parents[1] / "README.md"


def every_error_class() -> list[type[UpgradeError]]:
    """UpgradeError and every subclass defined anywhere in the package."""
    for module in pkgutil.iter_modules(upgrader.__path__):
        if module.name != "__main__":
            importlib.import_module(f"upgrader.{module.name}")
    found, todo = [], [UpgradeError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return found


def readme_references() -> dict[str, int]:
    """{reference: exit code} from the README's table of references."""
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| (\d+) \|", README.read_text(encoding="utf-8"), re.MULTILINE)
    return {name: int(code) for name, code in rows}


def test_every_error_class_has_its_own_kebab_case_reference():
    classes = every_error_class()
    references = [cls.reference for cls in classes]
    assert all(errors.is_reference(r) for r in references), references
    assert len(set(references)) == len(references), sorted(references)


def test_the_readme_lists_every_reference_with_its_exit_code():
    documented = readme_references()
    assert documented == {cls.reference: cls.exit_code for cls in every_error_class()}


@pytest.mark.parametrize(
    "name, reference",
    [
        ("DatabaseInUse", "database-in-use"),
        ("Unfinishable", "unfinishable"),
        ("NoRoom", "no-room"),
        ("UpgradeError", "upgrade-error"),
        ("A", "a"),
    ],
)
def test_kebab_case_of_a_class_name(name, reference):
    assert kebab_case(name) == reference


@pytest.mark.parametrize(
    "text, ok",
    [
        ("database-in-use", True),
        ("no-room", True),
        ("usage", True),
        ("g8-target", True),
        ("Database-in-use", False),
        ("database_in_use", False),
        ("-no", False),
        ("no-", False),
        ("a--b", False),
        ("", False),
    ],
)
def test_what_a_reference_may_look_like(text, ok):
    assert errors.is_reference(text) is ok


def test_a_reference_is_a_class_attribute_a_raise_site_may_override():
    assert errors.DatabaseInUse("x").reference == "database-in-use"
    assert errors.DatabaseInUse("x", reference="settings-changed").reference == "settings-changed"
    assert errors.DatabaseInUse.reference == "database-in-use"


def test_a_subclass_without_a_reference_gets_its_class_name():
    class SomethingNew(errors.BadBackup):
        pass

    assert (SomethingNew.reference, SomethingNew.exit_code) == ("something-new", errors.EXIT_BAD_BACKUP)


@pytest.mark.parametrize(
    "error, reference",
    [
        (errors.damaged_database("db", ["page 3"]), "damaged-database"),
        (errors.stopped("Ctrl+C"), "stopped"),
        (errors.stopped("Ctrl+C", working=False), "stopped"),
        (errors.stopped("Ctrl+C", half_done=True), "stopped-half-done"),
    ],
)
def test_the_error_helpers_name_their_situation(error, reference):
    assert error.reference == reference


# --- a malformed migrations/ folder ------------------------------------------------------------


@pytest.fixture
def migrations(tmp_path) -> Path:
    folder = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), folder)
    return folder


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _break_gap(folder: Path) -> None:
    shutil.rmtree(folder / "g4_medical_result_index")


def _break_baseline(folder: Path) -> None:
    (folder / "g1_baseline" / "up.sql").write_text("SELECT 1;\n", encoding="utf-8")


def _break_generation(folder: Path) -> None:
    _edit(folder / "g3_employee_contact" / "step.toml", "generation = 3", "generation = 4")


def _break_toml(folder: Path) -> None:
    (folder / "g2_optional_documents" / "step.toml").write_text("generation = = 2\n", encoding="utf-8")


def _break_description(folder: Path) -> None:
    path = folder / "g2_optional_documents" / "step.toml"
    path.write_text(re.sub(r"(?m)^description\s*=.*\n", "", path.read_text(encoding="utf-8")), encoding="utf-8")


def _break_rebuild(folder: Path) -> None:
    _edit(
        folder / "g8_optional_employee_fields" / "up.sql",
        'SELECT "id", "external_id", "first_name", "last_name"',
        'SELECT "id", "external_id", "last_name", "first_name"',
    )


def _break_statement(folder: Path) -> None:
    with (folder / "g5_migration_log" / "up.sql").open("a", encoding="utf-8") as f:
        f.write("\nUPDATE employees SET first_name = 'x'\n")


def _break_app_checks(folder: Path) -> None:
    with (folder / "g7_contracts" / "app_checks.sql").open("a", encoding="utf-8") as f:
        f.write("\n-- name: nothing\n-- no SQL here\n")


def _break_schema(folder: Path) -> None:
    with (folder / "g6_soft_delete" / "schema.sql").open("a", encoding="utf-8") as f:
        f.write("\nCREATE TABLE oops (;\n")


BROKEN = {
    "a generation missing": (_break_gap, "without gaps; found g1, g2, g3, g5, g6, g7, g8"),
    "up.sql in g1": (_break_baseline, "g1 is the baseline"),
    "step.toml names another generation": (_break_generation, "g3_employee_contact: step.toml says generation 4"),
    "step.toml not TOML": (_break_toml, "g2_optional_documents: TOMLDecodeError"),
    "step.toml without description": (_break_description, "g2_optional_documents: step.toml lacks 'description'"),
    "a rebuild that moves values": (_break_rebuild, "g8_optional_employee_fields: rebuild of employees"),
    "an unfinished statement": (_break_statement, "g5_migration_log: incomplete SQL statement"),
    "schema.sql not SQL": (_break_schema, 'g6_soft_delete: schema.sql: near ";": syntax error'),
    "schema.sql empty": (
        lambda folder: (folder / "g2_optional_documents" / "schema.sql").write_text("-- nothing\n", encoding="utf-8"),
        "g2_optional_documents: schema.sql creates no table",
    ),
    "an app check without SQL": (_break_app_checks, "g7_contracts: app_checks.sql: 'nothing' has no SQL"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_malformed_migrations_folder_is_named_when_loaded(migrations, case):
    breaks, message = BROKEN[case]
    breaks(migrations)
    with pytest.raises(MalformedMigrations) as failure:
        load_catalog(migrations)
    assert message in failure.value.message
    assert (failure.value.exit_code, failure.value.reference) == (errors.EXIT_INTERNAL, "malformed-migrations")


def test_a_missing_migrations_folder_is_malformed(tmp_path):
    with pytest.raises(MalformedMigrations, match="is missing"):
        load_catalog(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "parse, text, message",
    [
        (split_statements, "SELECT 1;\nSELECT 2", "incomplete SQL statement at the end: SELECT 2"),
        (parse_operations, 'CREATE TABLE "new_t" ("a" TEXT);\nDROP TABLE "t";\n', "rebuild of t must be"),
        (
            parse_operations,
            'CREATE TABLE "new_t" ("a" TEXT, "b" TEXT);\nINSERT INTO "new_t" ("a", "b") SELECT "b", '
            '"a" FROM "t";\nDROP TABLE "t";\nALTER TABLE "new_t" RENAME TO "t";\n',
            "same columns",
        ),
        (parse_app_operations, "SELECT 1;\n-- name: x\nSELECT 2;", "before the first"),
    ],
)
def test_the_parsers_raise_malformed_migrations(parse, text, message):
    with pytest.raises(MalformedMigrations, match=message):
        parse(text)


@pytest.fixture
def broken_build(migrations, monkeypatch) -> Path:
    """This wems-upgrade, built with a migrations/ folder whose g8 rebuild moves values."""
    _break_rebuild(migrations)
    monkeypatch.setattr("upgrader.loader.migrations_dir", lambda: migrations)
    return migrations


@pytest.mark.parametrize("args", [["--yes"], ["--dry-run"], ["--status"], []])
def test_a_build_with_malformed_migrations_exits_1_with_a_plain_message(install, capsys, broken_build, args):
    root = install(3)
    assert main([*args, "--yes", "--data-dir", str(root)] if args else ["--version"]) == errors.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.startswith("ERROR: The migrations folder is malformed: g8_optional_employee_fields: rebuild of")
    assert "send this message and the log to support" in err and "Traceback" not in err


def test_a_build_with_malformed_migrations_as_json(install, capsys, broken_build):
    assert main(["--json", "--yes", "--data-dir", str(install(3))]) == errors.EXIT_INTERNAL
    result = json.loads(capsys.readouterr().out)
    assert (result["status"], result["exit_code"]) == ("error", errors.EXIT_INTERNAL)
    assert result["error"]["reference"] == "malformed-migrations"


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("flat_keys_read: false", "flat_keys_read: true", "g1.yaml: a release that reads flat keys is not supported"),
        ("releases:", "released:", "g1.yaml: lacks 'releases'"),
        ("generations: {from: 1, to: 1}", "generations: [1, 1]", "g1.yaml: TypeError"),
        ("reads: []", "reads: [", "g1.yaml: ParserError"),
    ],
)
def test_a_malformed_effective_settings_file_is_malformed_migrations(migrations, old, new, message):
    _edit(migrations / "config" / "effective" / "g1.yaml", old, new)
    with pytest.raises(MalformedMigrations) as failure:
        load_rules(migrations / "config" / "effective")
    assert "The migrations folder is malformed: config/effective/" + message in failure.value.message
