"""Every way an upgrade can stop, each with its documented exit code and what to do next."""

from __future__ import annotations

import re

#: Exit codes, documented in --help and README.md.
EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_BAD_INSTALLATION = 3
EXIT_UNKNOWN_SCHEMA = 4
EXIT_NEWER_DATABASE = 5
EXIT_IN_USE = 6
EXIT_ROLLED_BACK = 7
EXIT_BAD_CONFIG = 8
EXIT_BAD_BACKUP = 9
EXIT_NO_ROOM = 10
EXIT_SOME_SITES = 11
EXIT_STOPPED = 12
EXIT_UNFINISHED = 13

EXIT_CODES = {
    EXIT_OK: "success: upgraded, or already up to date (nothing to do)",
    EXIT_INTERNAL: "unexpected error (a bug); nothing was changed",
    EXIT_USAGE: "bad command line, or stopped at a question (nothing was changed)",
    EXIT_BAD_INSTALLATION: "refused: no usable database (missing, empty, not a database, damaged)",
    EXIT_UNKNOWN_SCHEMA: "refused: the database's structure is not one wems-upgrade knows (changed by hand?)",
    EXIT_NEWER_DATABASE: "refused: the database is newer than the requested version or than this upgrader",
    EXIT_IN_USE: "refused: the database is in use (Wareflow EMS is open, or another upgrade runs)",
    EXIT_ROLLED_BACK: "failed: the upgrade went wrong and was undone; the installation is as it was",
    EXIT_BAD_CONFIG: "refused: the configuration file cannot be read or breaks the app's rules",
    EXIT_BAD_BACKUP: "refused: the backup is damaged, changed, or not a wems-upgrade backup",
    EXIT_NO_ROOM: "refused: not enough free disk space, or a folder cannot be written",
    EXIT_SOME_SITES: "several installations: at least one was not upgraded (see the summary table)",
    EXIT_STOPPED: "stopped by Ctrl+C, Ctrl+Break or the window being closed (the message says if anything changed)",
    EXIT_UNFINISHED: "half done: some files are new, some old; run wems-upgrade again to finish or undo it",
}


_KEBAB = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")


def kebab_case(name: str) -> str:
    """`DatabaseInUse` -> `database-in-use`."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", name).lower()


def is_reference(text: str) -> bool:
    return _KEBAB.fullmatch(text) is not None


class UpgradeError(Exception):
    """A stop the user must hear about: what is wrong, that nothing changed, what to do.

    `reference` names the situation for scripts (`--json`'s `error.reference`): stable, kebab-case,
    one per class and listed in README.md. A subclass that sets none gets its class name in
    kebab-case; a raise site may pass its own for a situation the class shares with others.
    """

    exit_code = EXIT_INTERNAL
    status = "error"
    reference = "unexpected-error"
    advice = "Nothing was changed. Please send the log file to support."

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "reference" not in cls.__dict__:
            cls.reference = kebab_case(cls.__name__)

    def __init__(
        self, message: str, details: list[str] | None = None, advice: str | None = None, reference: str | None = None
    ):
        super().__init__(message)
        self.message = message
        self.details = list(details or [])
        if advice:
            self.advice = advice
        if reference:
            self.reference = reference


class MalformedMigrations(UpgradeError, ValueError):
    """The migrations/ folder breaks its own rules (a gap, a malformed rebuild, a bad app_checks.sql):
    a bug of this build of wems-upgrade, never of the installation. Found before anything is read."""

    reference = "malformed-migrations"
    advice = (
        "Nothing was changed. This build of wems-upgrade carries broken migrations: "
        "please send this message and the log to support."
    )


class UsageError(UpgradeError):
    exit_code = EXIT_USAGE
    reference = "usage"
    status = "usage"
    advice = "Run wems-upgrade --help to see the options."


class BadInstallation(UpgradeError):
    exit_code = EXIT_BAD_INSTALLATION
    reference = "no-usable-database"
    status = "refused"
    advice = (
        "Nothing was changed. Check that --data-dir points at the Wareflow EMS folder "
        "(the one holding data/employee_manager.db)."
    )


class UnknownSchema(UpgradeError):
    exit_code = EXIT_UNKNOWN_SCHEMA
    reference = "unknown-structure"
    status = "refused"
    advice = (
        "Nothing was changed. The database was probably changed by hand. Send this report "
        "to support; do not try to fix the database yourself."
    )


class SchemaConflict(UnknownSchema):
    """An operation found the object it creates already there, but different."""

    reference = "schema-conflict"


class NewerDatabase(UpgradeError):
    exit_code = EXIT_NEWER_DATABASE
    reference = "newer-database"
    status = "refused"
    advice = "Nothing was changed. Use the newest wems-upgrade, or keep this version of Wareflow EMS."


class DatabaseInUse(UpgradeError):
    exit_code = EXIT_IN_USE
    reference = "database-in-use"
    status = "refused"
    advice = "Nothing was changed. Close Wareflow EMS on every computer, then run wems-upgrade again."


class UpgradeFailed(UpgradeError):
    exit_code = EXIT_ROLLED_BACK
    reference = "upgrade-failed"
    status = "rolled_back"
    advice = "The upgrade was undone: your installation is exactly as it was. Please send the log to support."


class Unfinished(UpgradeError):
    """The swap of the files could neither be completed nor undone: the installation is a mix
    until the next run settles it from the journal."""

    exit_code = EXIT_UNFINISHED
    reference = "unfinished"
    status = "unfinished"
    advice = "Run wems-upgrade again: it finishes or undoes the change. Do not start Wareflow EMS before."


class BadConfig(UpgradeError):
    exit_code = EXIT_BAD_CONFIG
    reference = "bad-settings"
    status = "refused"
    advice = (
        "Nothing was changed. Correct the configuration file at the place shown (or rename it "
        "to let Wareflow EMS use its defaults), then run wems-upgrade again."
    )


class BadBackup(UpgradeError):
    exit_code = EXIT_BAD_BACKUP
    reference = "bad-backup"
    status = "refused"
    advice = "Nothing was changed. Choose another backup (wems-upgrade --list-backups)."


class NoRoom(UpgradeError):
    exit_code = EXIT_NO_ROOM
    reference = "no-room"
    status = "refused"
    advice = (
        "Nothing was changed. Free some disk space or make the folder writable "
        "(or choose another place for backups with --backup-dir), then run wems-upgrade again."
    )


class Stopped(UpgradeError):
    """Ctrl+C, Ctrl+Break, the console window closing, or a request to terminate."""

    exit_code = EXIT_STOPPED
    reference = "stopped"
    status = "stopped"
    advice = "Nothing was changed: the installation is as it was."


class DamagedDatabase(BadInstallation):
    """The installation's own database fails SQLite's check: its fault, not a backup's."""

    reference = "damaged-database"


class StoppedHalfDone(Stopped):
    """Stopped while the files were being replaced: the next run finishes or undoes the change."""

    reference = "stopped-half-done"


def damaged_database(path, problems: list[str]) -> BadInstallation:
    """The installation's own database fails SQLite's check: its fault, not a backup's."""
    return DamagedDatabase(
        f"The database {path} is damaged: SQLite's own check finds problems in it.",
        problems[:10],
        advice="Nothing was changed. Do not let Wareflow EMS keep writing to it. Put back a backup made "
        "before the damage (wems-upgrade --list-backups, then --restore), or send this report "
        "and the log to support.",
    )


def stopped(how: str, *, half_done: bool = False, working: bool = True) -> Stopped:
    """The stop in words: whether an installation may be left half-changed, and what to do."""
    if half_done:
        return StoppedHalfDone(
            f"Stopped by {how} while the installation's files were being replaced.",
            advice="Run wems-upgrade again: it finishes or undoes the interrupted change. "
            "Do not start Wareflow EMS before.",
        )
    if not working:
        return Stopped(f"Stopped by {how}.", advice="No installation was being changed at that moment.")
    return Stopped(f"Stopped by {how}.")
