"""The demo installation generator builds what each WEMS generation really looks like on disk."""

import json
import shutil

import apsw
import pytest
import yaml

from upgrader.demo import create_installation, schema_file, write_config

GENERATIONS = range(1, 9)
EMPLOYEES, YEARS, VISITS_PER_YEAR = 40, 2, 2
RECORD_TABLES = ("caces", "medical_visits", "online_trainings")
SOFT_DELETE_TABLES = ("employees", *RECORD_TABLES)
PATH_COLUMNS = {
    "employees": "avatar_path",
    "caces": "document_path",
    "medical_visits": "document_path",
    "online_trainings": "certificate_path",
    "contracts": "contract_document_path",
    "contract_amendments": "document_path",
}


def connect(db, read_only=False):
    flags = apsw.SQLITE_OPEN_READONLY if read_only else apsw.SQLITE_OPEN_READWRITE
    return apsw.Connection(str(db), flags=flags)


def scalar(conn, sql):
    return conn.execute(sql).fetchone()[0]


def table_names(conn):
    return sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))


def shape(conn):
    """Every table's `PRAGMA table_info` and every index's SQL."""
    tables = {t: conn.execute(f'PRAGMA table_info("{t}")').fetchall() for t in table_names(conn)}
    indexes = sorted(conn.execute("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index'"))
    return tables, indexes


def dump(db):
    conn = connect(db, read_only=True)
    try:
        return {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY rowid').fetchall() for t in table_names(conn)}
    finally:
        conn.close()


@pytest.fixture(scope="module", params=GENERATIONS, ids=lambda g: f"g{g}")
def built(request, tmp_path_factory):
    """(generation, root, read-only connection) of an installation left with a pending -wal."""
    root = tmp_path_factory.mktemp(f"g{request.param}")
    db = create_installation(
        root, request.param, employees=EMPLOYEES, years=YEARS, visits_per_year=VISITS_PER_YEAR, seed=7
    )
    conn = connect(db, read_only=True)
    yield request.param, root, conn
    conn.close()


def test_tables_and_indexes_match_the_generation_schema(built):
    generation, _, conn = built
    fresh = apsw.Connection(":memory:")
    fresh.execute(schema_file(generation).read_text(encoding="utf-8"))
    assert shape(conn) == shape(fresh)
    fresh.close()


def test_layout_and_app_pragmas(built):
    _, root, conn = built
    assert (root / "data" / "employee_manager.db").is_file()
    assert not any((root / "backups").iterdir())
    assert not any((root / "logs").iterdir())
    assert scalar(conn, "PRAGMA journal_mode") == "wal"


def test_data_tables_are_filled(built):
    generation, _, conn = built
    assert scalar(conn, "SELECT count(*) FROM employees") == EMPLOYEES
    assert scalar(conn, "SELECT count(*) FROM medical_visits") == EMPLOYEES * YEARS * VISITS_PER_YEAR
    for table in RECORD_TABLES:
        assert scalar(conn, f"SELECT count(*) FROM {table}") > 0
    if generation >= 5:
        assert scalar(conn, "SELECT count(*) FROM migrations") == 0
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_one_stale_app_lock(built):
    _, _, conn = built
    assert conn.execute("SELECT last_heartbeat < '2026-01-15' FROM app_locks").fetchall() == [(1,)]


def test_pending_wal_holds_committed_rows(built, tmp_path):
    _, root, conn = built
    db = root / "data" / "employee_manager.db"
    assert db.with_name(db.name + "-wal").stat().st_size > 0
    shutil.copy(db, tmp_path / "only_the_db_file.db")
    alone = connect(tmp_path / "only_the_db_file.db")
    try:
        visits = "SELECT count(*) FROM medical_visits"
        assert scalar(alone, visits) < scalar(conn, visits)
    finally:
        alone.close()


def test_every_referenced_document_exists(built):
    _, root, conn = built
    referenced = 0
    for table, column in PATH_COLUMNS.items():
        if table not in table_names(conn):
            continue
        for (path,) in conn.execute(f'SELECT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL'):
            assert not path.startswith("/") and path.startswith("documents/")
            assert 0 < (root / path).stat().st_size < 1024
            referenced += 1
    assert referenced > 0


def test_document_paths_are_null_only_where_allowed(built):
    generation, _, conn = built
    nulls = sum(
        scalar(conn, f"SELECT count(*) FROM {t} WHERE document_path IS NULL") for t in ("caces", "medical_visits")
    )
    assert (nulls > 0) == (generation >= 2)


def test_names_are_accented(built):
    _, _, conn = built
    names = "".join(first + last for first, last in conn.execute("SELECT first_name, last_name FROM employees"))
    assert any(ch in names for ch in "éèëïçâêôÉ")


def test_soft_deleted_rows_from_g6(built):
    generation, _, conn = built
    if generation < 6:
        assert "deleted_at" not in {c[1] for c in conn.execute("PRAGMA table_info(employees)")}
        return
    for table in SOFT_DELETE_TABLES:
        sql = f"SELECT deleted_by, deletion_reason FROM {table} WHERE deleted_at IS NOT NULL"
        deleted = conn.execute(sql).fetchall()
        assert deleted and all(by == "admin" and reason for by, reason in deleted)


def test_contracts_from_g7(built):
    generation, _, conn = built
    if generation < 7:
        assert "contracts" not in table_names(conn)
        return
    assert scalar(conn, "SELECT count(DISTINCT employee_id) FROM contracts") == EMPLOYEES
    assert scalar(conn, "SELECT count(*) FROM contract_amendments") > 0
    assert scalar(conn, "SELECT count(*) FROM contracts WHERE contract_document_path IS NOT NULL") > 0


def test_employee_contract_fields_null_only_in_g8(built):
    generation, _, conn = built
    nulls = scalar(conn, "SELECT count(*) FROM employees WHERE contract_type IS NULL OR entry_date IS NULL")
    assert (nulls > 0) == (generation == 8)


def test_same_seed_same_data_and_no_wal_without_pending(tmp_path):
    first = create_installation(tmp_path / "a", 8, employees=20, seed=3)
    again = create_installation(tmp_path / "b", 8, employees=20, seed=3, pending_wal=False)
    other = create_installation(tmp_path / "c", 8, employees=20, seed=4, pending_wal=False)
    assert not again.with_name(again.name + "-wal").exists()
    assert dump(first) == dump(again)
    assert dump(first) != dump(other)


def test_refuses_to_overwrite_an_installation(tmp_path):
    create_installation(tmp_path, 1, employees=2)
    with pytest.raises(FileExistsError):
        create_installation(tmp_path, 1, employees=2)


@pytest.mark.parametrize(
    "generation, name", [(1, "config.json"), (4, "config.json"), (5, "config.yaml"), (8, "config.yaml")]
)
def test_config_of_the_era(tmp_path, generation, name):
    create_installation(tmp_path, generation, employees=2)
    assert [p.name for p in tmp_path.glob("config.*")] == [name]


def test_no_config(tmp_path):
    create_installation(tmp_path, 8, employees=2, config=None)
    assert not list(tmp_path.glob("config.*"))


def test_json_nested_config(tmp_path):
    data = json.loads(write_config(tmp_path, "json-nested").read_text(encoding="utf-8"))
    assert data["alerts"] == {"critical_days": 7, "warning_days": 30}
    assert data["lock"] == {"timeout_minutes": 2, "heartbeat_interval_seconds": 30}
    assert "Préparation" in data["organization"]["workspaces"]
    assert data["company"]["name"] == "Entrepôt Général du Rhône"
    assert data["email_recipient"] == "rh@entrepôt-rhône.fr"


def test_json_flat_config(tmp_path):
    path = write_config(tmp_path, "json-flat")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["alert_thresholds_days"] == [30, 60, 90]
    assert {"lock_timeout_minutes", "export_filename_template", "roles", "workspaces", "log_level"} <= set(data)
    assert "Expédition" in path.read_text(encoding="utf-8")


def test_yaml_config(tmp_path):
    text = write_config(tmp_path, "yaml").read_bytes().decode("utf-8")
    assert text.startswith("#")
    data = yaml.safe_load(text)
    assert data["organization"]["contract_types"] == ["CDI", "CDD", "Intérim", "Alternance"]
    assert data["alerts"]["warning_days"] == 30
    assert data["company"]["name"] == "Entrepôt Général du Rhône"
    assert "Préparateur de commandes" in text


def test_unknown_config_shape(tmp_path):
    with pytest.raises(ValueError):
        write_config(tmp_path, "toml")
