"""Every way an upgrade can stop, each with its documented exit code and what to do next."""

from __future__ import annotations

import re
from collections.abc import Sequence

from upgrader.i18n import N_, T, Text, english, localize

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
    EXIT_OK: N_("success: upgraded, or already up to date (nothing to do)"),
    EXIT_INTERNAL: N_("unexpected error (a bug); nothing was changed"),
    EXIT_USAGE: N_("bad command line, or stopped at a question (nothing was changed)"),
    EXIT_BAD_INSTALLATION: N_("refused: no usable database (missing, empty, not a database, damaged)"),
    EXIT_UNKNOWN_SCHEMA: N_("refused: the database's structure is not one wems-upgrade knows (changed by hand?)"),
    EXIT_NEWER_DATABASE: N_("refused: the database is newer than the requested version or than this upgrader"),
    EXIT_IN_USE: N_("refused: the database is in use (Wareflow EMS is open, or another upgrade runs)"),
    EXIT_ROLLED_BACK: N_("failed: the upgrade went wrong and was undone; the installation is as it was"),
    EXIT_BAD_CONFIG: N_("refused: the configuration file cannot be read or breaks the app's rules"),
    EXIT_BAD_BACKUP: N_("refused: the backup is damaged, changed, or not a wems-upgrade backup"),
    EXIT_NO_ROOM: N_("refused: not enough free disk space, or a folder cannot be written"),
    EXIT_SOME_SITES: N_("several installations: at least one was not upgraded (see the summary table)"),
    EXIT_STOPPED: N_("stopped by Ctrl+C, Ctrl+Break or the window being closed (the message says if anything changed)"),
    EXIT_UNFINISHED: N_("half done: some files are new, some old; run wems-upgrade again to finish or undo it"),
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
    advice = N_("Nothing was changed. Please send the log file to support.")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "reference" not in cls.__dict__:
            cls.reference = kebab_case(cls.__name__)

    def __init__(
        self,
        message: str | Text,
        details: Sequence[str | Text] | None = None,
        advice: str | Text | None = None,
        reference: str | None = None,
    ):
        """`message`, `details` and `advice` stay in English (`--json`, the log); `shown()` translates."""
        super().__init__(english(message))
        self.message = english(message)
        self.details = [english(d) for d in details or []]
        self._texts: tuple[str | Text, list, str | Text | None] = (message, list(details or []), advice)
        if advice:
            self.advice = english(advice)
        if reference:
            self.reference = reference

    @property
    def text(self) -> Text:
        """The message as a Text, to put inside another message (translated with it)."""
        message = self._texts[0]
        return message if isinstance(message, Text) else Text(message)

    def shown(self) -> tuple[str, list[str], str]:
        """(message, details, advice) in the user's language."""
        message, details, advice = self._texts
        return localize(message), [localize(d) for d in details], localize(advice or type(self).advice)


class MalformedMigrations(UpgradeError, ValueError):
    """The migrations/ folder breaks its own rules (a gap, a malformed rebuild, a bad app_checks.sql):
    a bug of this build of wems-upgrade, never of the installation. Found before anything is read."""

    reference = "malformed-migrations"
    advice = N_(
        "Nothing was changed. This build of wems-upgrade carries broken migrations: "
        "please send this message and the log to support."
    )


class UsageError(UpgradeError):
    exit_code = EXIT_USAGE
    reference = "usage"
    status = "usage"
    advice = N_("Run wems-upgrade --help to see the options.")


class BadInstallation(UpgradeError):
    exit_code = EXIT_BAD_INSTALLATION
    reference = "no-usable-database"
    status = "refused"
    advice = N_(
        "Nothing was changed. Check that --data-dir points at the Wareflow EMS folder "
        "(the one holding data/employee_manager.db)."
    )


class UnknownSchema(UpgradeError):
    exit_code = EXIT_UNKNOWN_SCHEMA
    reference = "unknown-structure"
    status = "refused"
    advice = N_(
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
    advice = N_("Nothing was changed. Use the newest wems-upgrade, or keep this version of Wareflow EMS.")


class DatabaseInUse(UpgradeError):
    exit_code = EXIT_IN_USE
    reference = "database-in-use"
    status = "refused"
    advice = N_("Nothing was changed. Close Wareflow EMS on every computer, then run wems-upgrade again.")


class UpgradeFailed(UpgradeError):
    exit_code = EXIT_ROLLED_BACK
    reference = "upgrade-failed"
    status = "rolled_back"
    advice = N_("The upgrade was undone: your installation is exactly as it was. Please send the log to support.")


class Unfinished(UpgradeError):
    """The swap of the files could neither be completed nor undone: the installation is a mix
    until the next run settles it from the journal."""

    exit_code = EXIT_UNFINISHED
    reference = "unfinished"
    status = "unfinished"
    advice = N_("Run wems-upgrade again: it finishes or undoes the change. Do not start Wareflow EMS before.")


class BadConfig(UpgradeError):
    exit_code = EXIT_BAD_CONFIG
    reference = "bad-settings"
    status = "refused"
    advice = N_(
        "Nothing was changed. Correct the configuration file at the place shown (or rename it "
        "to let Wareflow EMS use its defaults), then run wems-upgrade again."
    )


class BadBackup(UpgradeError):
    exit_code = EXIT_BAD_BACKUP
    reference = "bad-backup"
    status = "refused"
    advice = N_("Nothing was changed. Choose another backup (wems-upgrade --list-backups).")


class NoRoom(UpgradeError):
    exit_code = EXIT_NO_ROOM
    reference = "no-room"
    status = "refused"
    advice = N_(
        "Nothing was changed. Free some disk space or make the folder writable "
        "(or choose another place for backups with --backup-dir), then run wems-upgrade again."
    )


class Stopped(UpgradeError):
    """Ctrl+C, Ctrl+Break, the console window closing, or a request to terminate."""

    exit_code = EXIT_STOPPED
    reference = "stopped"
    status = "stopped"
    advice = N_("Nothing was changed: the installation is as it was.")


class DamagedDatabase(BadInstallation):
    """The installation's own database fails SQLite's check: its fault, not a backup's."""

    reference = "damaged-database"


class StoppedHalfDone(Stopped):
    """Stopped while the files were being replaced: the next run finishes or undoes the change."""

    reference = "stopped-half-done"


def damaged_database(path, problems: list[str]) -> BadInstallation:
    """The installation's own database fails SQLite's check: its fault, not a backup's."""
    return DamagedDatabase(
        T("The database {path} is damaged: SQLite's own check finds problems in it.", path=path),
        problems[:10],
        advice=T(
            "Nothing was changed. Do not let Wareflow EMS keep writing to it. Put back a backup made "
            "before the damage (wems-upgrade --list-backups, then --restore), or send this report "
            "and the log to support."
        ),
    )


def stopped(how: str | Text, *, half_done: bool = False, working: bool = True) -> Stopped:
    """The stop in words: whether an installation may be left half-changed, and what to do."""
    if half_done:
        return StoppedHalfDone(
            T("Stopped by {how} while the installation's files were being replaced.", how=how),
            advice=T(
                "Run wems-upgrade again: it finishes or undoes the interrupted change. "
                "Do not start Wareflow EMS before."
            ),
        )
    if not working:
        return Stopped(T("Stopped by {how}.", how=how), advice=T("No installation was being changed at that moment."))
    return Stopped(T("Stopped by {how}.", how=how))
