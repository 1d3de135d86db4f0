"""Realistic Wareflow EMS installations of any schema generation (1..8), for tests and benchmarks.

The database is created from the generation's own `schema.sql` and filled with whatever columns
and tables that schema has. Every value is drawn from one `random.Random(seed)`, so the same
arguments always build the same data.
"""

from __future__ import annotations

import json
import random
import unicodedata
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import NamedTuple, TypeVar

import apsw
import yaml

from upgrader.paths import migrations_dir

END = date(2026, 1, 15)
DB_RELATIVE = Path("data") / "employee_manager.db"
FOLDERS = ("data", "documents", "backups", "logs")
MAX_EMPLOYEES_WITH_FILES = 500
EMPLOYEES_PER_TRANSACTION = 100
WAL_SHARE = 0.10
WAL_MAX_EMPLOYEES = EMPLOYEES_PER_TRANSACTION
PATH_COLUMNS = ("avatar_path", "document_path", "certificate_path", "contract_document_path")
RECORD_TABLES = ("caces", "medical_visits", "online_trainings", "contracts", "contract_amendments")

FIRST_NAMES = (
    "Éloïse",
    "François",
    "Gaëlle",
    "Hélène",
    "Jérôme",
    "Zoé",
    "Noël",
    "Maëlys",
    "Bénédicte",
    "Cédric",
    "Anaïs",
    "Raphaël",
    "Léa",
    "Loïc",
    "Inès",
    "Thérèse",
    "Joël",
    "Chloé",
    "Stéphane",
    "Aurélie",
    "Frédéric",
    "Océane",
    "Benoît",
    "Mélanie",
    "Karim",
    "Sophie",
    "Thomas",
    "Julie",
)
LAST_NAMES = (
    "Lefèvre",
    "Béranger",
    "Dupré",
    "Mélançon",
    "Gérard",
    "Châtelain",
    "Pérez",
    "Léger",
    "Thébault",
    "Rivière",
    "Bélanger",
    "Côté",
    "Crémieux",
    "Fréchette",
    "Hébert",
    "Lemaître",
    "Pelletier",
    "Ménard",
    "Boulanger",
    "Garnier",
    "Martin",
    "Bernard",
    "Dubois",
    "Moreau",
    "Benali",
    "N'Diaye",
)
STATUSES = ("actif",) * 6 + ("inactif",)
WORKSPACES = ("Quai", "Zone A", "Zone B", "Préparation", "Expédition")
ROLES = ("Cariste", "Préparateur de commandes", "Magasinier", "Chef d'équipe")
CONTRACT_TYPES = ("CDI",) * 5 + ("CDD",) * 2 + ("Intérim",) * 2 + ("Alternance",)
CACES_YEARS = {"R489-1A": 5, "R489-1B": 5, "R489-3": 5, "R489-4": 5, "R489-5": 10, "R485-2": 5}
VISIT_RESULTS = ("fit",) * 17 + ("fit_with_restrictions",) * 2 + ("unfit",)
TRAININGS = (
    "Sécurité incendie",
    "Gestes et postures",
    "Prévention des chutes de plain-pied",
    "Manipulation des produits dangereux",
    "Sauveteur secouriste du travail (SST)",
    "Habilitation électrique H0B0",
    "Règles de circulation dans l'entrepôt",
)
TRAINING_VALIDITY_MONTHS = (12, 24, 36, None, None)
DELETION_REASONS = (
    "Doublon saisi par erreur",
    "Départ de l'entreprise",
    "Document remplacé par une version à jour",
    "Saisie erronée",
    "Demande du salarié (RGPD)",
)
CONTRACT_NOTES = (
    None,
    None,
    "Reprise de l'ancienneté acquise en intérim.",
    "Télétravail non applicable.",
)
AMENDMENT_DESCRIPTIONS = (
    "Augmentation annuelle négociée",
    "Revalorisation après l'entretien professionnel",
)
DOCUMENT_FOLDERS = {"caces": "caces", "medical_visits": "medical", "online_trainings": "trainings"}
EMAIL_DOMAIN = "entrepot-rhone.fr"
APP_VERSIONS = {6: "2.1.2", 7: "2.1.4", 8: "2.3.2"}
PDF_BYTES = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"

ALERTS = {"critical_days": 7, "warning_days": 30}
LOCK = {"timeout_minutes": 2, "heartbeat_interval_seconds": 30}
COMPANY = {"name": "Entrepôt Général du Rhône", "siret": "12345678900012"}
EMAIL_RECIPIENT = "rh@entrepôt-rhône.fr"
YAML_HEADER = (
    "# Wareflow EMS : configuration de l'application\n"
    "# Seuils d'alerte en jours avant l'échéance d'un CACES ou d'une visite médicale.\n"
    "# Modifié à la main par Hélène Gérard (service RH).\n"
)


class Person(NamedTuple):
    """What the records of one employee are drawn from."""

    id: str
    entry: date
    contract_type: str
    role: str
    workspace: str


@dataclass(frozen=True)
class Table:
    """One table as the schema defines it: its columns, in order, and whether each takes NULL."""

    name: str
    nullable: dict[str, bool]

    @property
    def insert_sql(self) -> str:
        columns = ", ".join(f'"{c}"' for c in self.nullable)
        marks = ", ".join("?" for _ in self.nullable)
        return f'INSERT INTO "{self.name}" ({columns}) VALUES ({marks})'

    def allows_null(self, column: str) -> bool:
        return self.nullable.get(column, False)

    def values(self, row: dict) -> tuple:
        """The row's values for this table's columns; keys the table lacks are dropped."""
        return tuple(row.get(c) for c in self.nullable)


def schema_file(generation: int) -> Path:
    """The `schema.sql` of one generation."""
    found = sorted(migrations_dir().glob(f"g{generation}_*/schema.sql"))
    if len(found) != 1:
        raise ValueError(f"expected one schema file for generation {generation}, found {len(found)}")
    return found[0]


def read_tables(conn: apsw.Connection) -> dict[str, Table]:
    """The tables of an open database, as `PRAGMA table_info` describes them."""
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {name: Table(name, {c[1]: not c[3] for c in conn.execute(f'PRAGMA table_info("{name}")')}) for name in names}


def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    return date(day.year + month // 12, month % 12 + 1, min(day.day, 28))


def ascii_fold(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain.lower() if ch.isalnum())


class Records:
    """Draws the rows of one installation, employee by employee, from one random generator."""

    def __init__(self, rng: random.Random, tables: dict[str, Table], years: int, visits_per_year: int):
        self.rng = rng
        self.tables = tables
        self.years = years
        self.visits_per_year = visits_per_year
        self.start = END - timedelta(days=365 * years)

    def uid(self) -> str:
        return uuid.UUID(int=self.rng.getrandbits(128)).hex

    def day_between(self, first: date, last: date) -> date:
        return first + timedelta(days=self.rng.randint(0, max(0, (last - first).days)))

    def stamp(self, day: date) -> str:
        """A peewee DATETIME text on that day."""
        rng = self.rng
        clock = f"{rng.randint(7, 18):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
        return f"{day.isoformat()} {clock}.{rng.randint(1, 999_999):06d}"

    def null_here(self, table: str, column: str, share: float) -> bool:
        """Whether to leave this value NULL: only where the column takes NULL, for about `share` of rows."""
        drawn = self.rng.random() < share
        return drawn and self.tables[table].allows_null(column)

    def or_null(self, table: str, column: str, share: float, value):
        """`value`, or NULL for about `share` of rows where the column takes NULL."""
        return None if self.null_here(table, column, share) else value

    def document(self, table: str, column: str, row_id: str, share_null: float = 0.2) -> str | None:
        return self.or_null(table, column, share_null, f"documents/{DOCUMENT_FOLDERS[table]}/{row_id}.pdf")

    def soft_delete(self, row: dict, since: date) -> dict:
        """Mark about 5% of rows deleted; tables without the columns simply drop them."""
        if self.rng.random() < 0.05:
            row["deleted_at"] = self.stamp(self.day_between(since, END))
            row["deleted_by"] = "admin"
            row["deletion_reason"] = self.rng.choice(DELETION_REASONS)
        return row

    def person(self) -> Person:
        rng = self.rng
        entry = self.day_between(self.start - timedelta(days=365 * 8), self.start)
        kind, role, workspace = rng.choice(CONTRACT_TYPES), rng.choice(ROLES), rng.choice(WORKSPACES)
        return Person(self.uid(), entry, kind, role, workspace)

    def employee(self, index: int, person: Person) -> dict:
        rng = self.rng
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        created = self.stamp(person.entry)
        row = {
            "id": person.id,
            "external_id": f"WMS-{index + 1:06d}" if rng.random() < 0.7 else None,
            "first_name": first,
            "last_name": last,
            "current_status": rng.choice(STATUSES),
            "workspace": person.workspace,
            "role": person.role,
            "contract_type": self.or_null("employees", "contract_type", 0.05, person.contract_type),
            "entry_date": self.or_null("employees", "entry_date", 0.05, person.entry.isoformat()),
            "avatar_path": f"documents/avatars/{person.id}.png" if rng.random() < 0.3 else None,
            "phone": None if rng.random() < 0.15 else f"06 {rng.randint(0, 99_999_999):08d}",
            "email": None if rng.random() < 0.2 else f"{ascii_fold(first)}.{ascii_fold(last)}@{EMAIL_DOMAIN}",
            "created_at": created,
            "updated_at": max(created, self.stamp(self.day_between(person.entry, END))),
        }
        return self.soft_delete(row, person.entry)

    def caces(self, person: Person) -> Iterator[dict]:
        for kind in self.rng.sample(sorted(CACES_YEARS), self.rng.randint(1, 3)):
            done = self.day_between(self.start, self.start + timedelta(days=364))
            while done < END:
                row_id = self.uid()
                yield self.soft_delete(
                    {
                        "id": row_id,
                        "employee_id": person.id,
                        "kind": kind,
                        "completion_date": done.isoformat(),
                        "expiration_date": add_years(done, CACES_YEARS[kind]).isoformat(),
                        "document_path": self.document("caces", "document_path", row_id),
                        "created_at": self.stamp(done),
                    },
                    done,
                )
                done = add_years(done, CACES_YEARS[kind])

    def visits(self, person: Person) -> Iterator[dict]:
        slot = 365 // self.visits_per_year
        for number in range(self.years * self.visits_per_year):
            first = self.start + timedelta(days=number * slot)
            day = self.day_between(first, first + timedelta(days=slot - 1))
            kind = "initial" if number == 0 else self.rng.choice(("periodic",) * 9 + ("recovery",))
            row_id = self.uid()
            yield self.soft_delete(
                {
                    "id": row_id,
                    "employee_id": person.id,
                    "visit_type": kind,
                    "visit_date": day.isoformat(),
                    "expiration_date": add_years(day, 1 if kind == "recovery" else 2).isoformat(),
                    "result": self.rng.choice(VISIT_RESULTS),
                    "document_path": self.document("medical_visits", "document_path", row_id),
                    "created_at": self.stamp(day),
                },
                day,
            )

    def trainings(self, person: Person) -> Iterator[dict]:
        for year in range(self.years):
            for _ in range(self.rng.randint(1, 2)):
                first = self.start + timedelta(days=365 * year)
                done = self.day_between(first, first + timedelta(days=364))
                months = self.rng.choice(TRAINING_VALIDITY_MONTHS)
                row_id = self.uid()
                yield self.soft_delete(
                    {
                        "id": row_id,
                        "employee_id": person.id,
                        "title": self.rng.choice(TRAININGS),
                        "completion_date": done.isoformat(),
                        "validity_months": months,
                        "expiration_date": add_months(done, months).isoformat() if months else None,
                        "certificate_path": self.document("online_trainings", "certificate_path", row_id, 0.25),
                        "created_at": self.stamp(done),
                    },
                    done,
                )

    def contract(self, person: Person, kind: str, start: date, end: date | None, active: bool) -> dict:
        rng = self.rng
        row_id = self.uid()
        trial_days = {"CDI": 60, "Alternance": 45}.get(kind)
        created = self.stamp(start)
        return {
            "id": row_id,
            "employee_id": person.id,
            "contract_type": kind,
            "start_date": start.isoformat(),
            "end_date": end.isoformat() if end else None,
            "trial_period_end": (start + timedelta(days=trial_days)).isoformat() if trial_days else None,
            "gross_salary": None if rng.random() < 0.1 else f"{rng.randint(1800, 3400)}.00",
            "weekly_hours": rng.choice(("35.00", "35.00", "39.00")),
            "position": person.role,
            "department": person.workspace,
            "manager": None if rng.random() < 0.3 else f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
            "status": "active" if active else "ended",
            "end_reason": None if active else "completion",
            "contract_document_path": None if rng.random() < 0.3 else f"documents/contracts/{row_id}.pdf",
            "created_at": created,
            "updated_at": created,
            "created_by": "admin",
            "notes": rng.choice(CONTRACT_NOTES),
        }

    def contracts(self, person: Person) -> Iterator[dict]:
        """One contract, or a fixed-term one followed by a CDI."""
        rng = self.rng
        if rng.random() < 0.35:
            first_end = person.entry + timedelta(days=rng.randint(180, 540))
            yield self.contract(person, rng.choice(("CDD", "Intérim")), person.entry, first_end, False)
            yield self.contract(person, "CDI", first_end + timedelta(days=1), None, True)
            return
        end = None if person.contract_type == "CDI" else END + timedelta(days=rng.randint(30, 400))
        yield self.contract(person, person.contract_type, person.entry, end, True)

    def amendments(self, contract: dict) -> Iterator[dict]:
        rng = self.rng
        if contract["status"] != "active" or rng.random() < 0.65:
            return
        start = date.fromisoformat(contract["start_date"])
        for _ in range(rng.randint(1, 2)):
            day = self.day_between(start, END)
            old = rng.randint(1800, 3000)
            row_id = self.uid()
            yield {
                "id": row_id,
                "contract_id": contract["id"],
                "amendment_date": day.isoformat(),
                "amendment_type": "salary_change",
                "description": rng.choice(AMENDMENT_DESCRIPTIONS),
                "old_field_name": "gross_salary",
                "old_value": f"{old}.00",
                "new_value": f"{old + rng.randint(50, 250)}.00",
                "document_path": None if rng.random() < 0.5 else f"documents/amendments/{row_id}.pdf",
                "created_at": self.stamp(day),
                "created_by": "admin",
            }

    def records(self, person: Person) -> Iterator[tuple[str, dict]]:
        """Every row that belongs to one employee, with its table's name."""
        yield from (("caces", r) for r in self.caces(person))
        yield from (("medical_visits", r) for r in self.visits(person))
        yield from (("online_trainings", r) for r in self.trainings(person))
        if "contracts" in self.tables:
            for contract in list(self.contracts(person)):
                yield "contracts", contract
                yield from (("contract_amendments", r) for r in self.amendments(contract))

    def stale_lock(self, generation: int) -> dict:
        beat = END - timedelta(days=1)
        return {
            "id": self.uid(),
            "hostname": "PC-ENTREPÔT-03",
            "username": "hgerard",
            "locked_at": self.stamp(beat),
            "last_heartbeat": f"{beat.isoformat()} 19:42:07.318204",
            "process_id": 4242,
            "app_version": APP_VERSIONS.get(generation, "0.1.0"),
        }


def make_layout(root: Path) -> Path:
    """Create the installation's folders; return where its database goes."""
    for folder in FOLDERS:
        (root / folder).mkdir(parents=True, exist_ok=True)
    db = root / DB_RELATIVE
    if db.exists():
        raise FileExistsError(f"an installation already exists at {root}")
    return db


def open_like_the_app(db: Path) -> apsw.Connection:
    conn = apsw.Connection(str(db))
    conn.setbusytimeout(5000)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "cache_size=-131072"):
        conn.execute(f"PRAGMA {pragma}").fetchall()
    return conn


def hold_wal(conn: apsw.Connection) -> None:
    """From now on, committed pages stay in the -wal file, even after close."""
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    conn.execute("PRAGMA wal_autocheckpoint=0").fetchall()
    conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1)


def write_documents(root: Path, table: Table, rows: list[dict]) -> None:
    for column in PATH_COLUMNS:
        if column not in table.nullable:
            continue
        for row in rows:
            if row.get(column):
                target = root / row[column]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(PNG_BYTES if target.suffix == ".png" else PDF_BYTES + row["id"].encode())


class Writer:
    """Inserts rows table by table, and writes the files they point to when asked."""

    def __init__(self, conn: apsw.Connection, tables: dict[str, Table], root: Path, with_files: bool):
        self.conn, self.tables, self.root, self.with_files = conn, tables, root, with_files

    def insert(self, rows_by_table: dict[str, list[dict]]) -> None:
        """Insert in one transaction, parents first."""
        with self.conn:
            for name in ("employees", "app_locks", *RECORD_TABLES):
                rows = rows_by_table.get(name)
                if not rows:
                    continue
                table = self.tables[name]
                self.conn.executemany(table.insert_sql, [table.values(r) for r in rows])
                if self.with_files:
                    write_documents(self.root, table, rows)


T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_employees(writer: Writer, records: Records, count: int) -> list[Person]:
    """Insert `count` employees; return what their records are drawn from."""
    people = []
    for batch in chunks(range(count), EMPLOYEES_PER_TRANSACTION * 10):
        rows = []
        for index in batch:
            person = records.person()
            people.append(person)
            rows.append(records.employee(index, person))
        writer.insert({"employees": rows})
    return people


def insert_records(writer: Writer, records: Records, people: list[Person]) -> None:
    """Insert the CACES, visits, trainings and contracts of these employees, a batch at a time."""
    for batch in chunks(people, EMPLOYEES_PER_TRANSACTION):
        rows: dict[str, list[dict]] = {}
        for person in batch:
            for table, row in records.records(person):
                rows.setdefault(table, []).append(row)
        writer.insert(rows)


def fill(
    conn: apsw.Connection, root: Path, generation: int, records: Records, employees: int, pending_wal: bool
) -> None:
    """Insert all data; with `pending_wal` the last transaction of records stays in the -wal file.

    That tail is the records of the last tenth of the employees, at most one transaction's worth:
    random keys touch pages all over the indexes, so a longer tail would make a -wal file larger
    than the database.
    """
    writer = Writer(conn, records.tables, root, employees <= MAX_EMPLOYEES_WITH_FILES)
    people = insert_employees(writer, records, employees)
    split = len(people) - max(1, min(round(len(people) * WAL_SHARE), WAL_MAX_EMPLOYEES))
    insert_records(writer, records, people[:split])
    if pending_wal:
        hold_wal(conn)
    insert_records(writer, records, people[split:])
    writer.insert({"app_locks": [records.stale_lock(generation)]})


def create_installation(
    root: Path,
    generation: int,
    *,
    employees: int = 50,
    years: int = 3,
    visits_per_year: int = 1,
    seed: int = 1,
    pending_wal: bool = True,
    config: str | None = "era",
) -> Path:
    """Build a Wareflow EMS installation of schema generation 1..8 in `root`; return the database path."""
    root = Path(root)
    db = make_layout(root)
    if config == "era":
        write_config(root, "json-nested" if generation <= 4 else "yaml")
    elif config is not None:
        write_config(root, config)
    if generation >= FIRST_WITH_OTHER_SETTINGS and config is not None:
        write_other_settings(root)
    conn = open_like_the_app(db)
    try:
        conn.execute(schema_file(generation).read_text(encoding="utf-8"))
        records = Records(random.Random(seed), read_tables(conn), years, visits_per_year)
        fill(conn, root, generation, records, employees, pending_wal)
    finally:
        conn.close()
    return db


def nested_config() -> dict:
    return {
        "alerts": dict(ALERTS),
        "lock": dict(LOCK),
        "organization": {"roles": list(ROLES), "workspaces": list(WORKSPACES)},
        "company": dict(COMPANY),
        "email_recipient": EMAIL_RECIPIENT,
    }


def flat_config() -> dict:
    return {
        "alert_thresholds_days": [30, 60, 90],
        "lock_timeout_minutes": 2,
        "export_filename_template": "export_salariés_{date}.xlsx",
        "roles": list(ROLES),
        "workspaces": list(WORKSPACES),
        "log_level": "INFO",
        "company_name": COMPANY["name"],
    }


def yaml_config_text() -> str:
    data = nested_config()
    data["organization"]["contract_types"] = ["CDI", "CDD", "Intérim", "Alternance"]
    return YAML_HEADER + yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


FIRST_WITH_OTHER_SETTINGS = 7
BACKUP_SETTINGS = {
    "enabled": True,
    "frequency": "daily",
    "time": "18:30",
    "keep_last": 10,
    "directory": "backups",
    "compress": True,
    "include_documents": False,
}
ALERT_SETTINGS = {
    "caces": {"enabled": True, "days_before": [30, 60]},
    "medical_visits": {"enabled": True, "days_before": [30]},
    "contracts": {"enabled": True, "days_before": [15, 30], "notify": "Responsable d'entrepôt"},
    "email": {"enabled": False, "recipient": EMAIL_RECIPIENT},
}


def write_other_settings(root: Path) -> list[Path]:
    """config/backup_config.json and config/alert_settings.json, kept by releases from v2.1.3 (g7)."""
    folder = Path(root) / "config"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in (("backup_config.json", BACKUP_SETTINGS), ("alert_settings.json", ALERT_SETTINGS)):
        (folder / name).write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        paths.append(folder / name)
    return paths


def write_config(root: Path, shape: str) -> Path:
    """Write the config file of one historical shape: 'json-nested', 'json-flat' or 'yaml'; return its path."""
    root = Path(root)
    if shape == "yaml":
        path, text = root / "config.yaml", yaml_config_text()
    elif shape in ("json-nested", "json-flat"):
        data = nested_config() if shape == "json-nested" else flat_config()
        path, text = root / "config.json", json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    else:
        raise ValueError(f"unknown config shape {shape!r}: expected 'json-nested', 'json-flat' or 'yaml'")
    root.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
