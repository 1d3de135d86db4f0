"""The wems-upgrade command: parses arguments, calls the library, prints, returns an exit code."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import apsw

from upgrader import __version__, runlog
from upgrader.backup import Backup, default_backup_root, list_backups
from upgrader.console import Console, started_by_double_click
from upgrader.errors import (EXIT_CODES, EXIT_INTERNAL, EXIT_OK, EXIT_SOME_SITES, UpgradeError,
                             UsageError)
from upgrader.installation import locate
from upgrader.loader import load_catalog
from upgrader.report import (SiteOutcome, error_json, render_backups, render_error, render_outcome,
                             render_plan, render_restore, render_result, render_sites, render_status,
                             result_json, to_json)
from upgrader.restore import restore
from upgrader.status import installation_status
from upgrader.upgrade import UpgradeResult, upgrade

DEMO_MARKER = ".wems-demo"
DEMO_GENERATION = 1


def _parser() -> argparse.ArgumentParser:
    codes = "\n".join(f"  {code:>2}  {text}" for code, text in EXIT_CODES.items())
    parser = argparse.ArgumentParser(
        prog="wems-upgrade",
        description="Upgrade a Wareflow EMS installation to the newest release, all or nothing.",
        epilog=f"exit codes:\n{codes}", formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--data-dir", type=Path, action="append", metavar="DIR",
        help="a Wareflow EMS folder (default: the current folder); repeat it for several installations")
    add("--sites-file", type=Path, metavar="FILE",
        help="a text file listing installation folders, one per line (# starts a comment)")
    add("--to-version", metavar="VERSION",
        help="upgrade to this release (e.g. 2.1.4) or generation (e.g. g7); default: the latest")
    add("--dry-run", action="store_true", help="run the whole upgrade on a temporary copy and report; change nothing")
    add("--status", action="store_true", help="show what the installation is and what an upgrade would do")
    add("--demo", nargs="?", const=Path("wems-demo"), type=Path, metavar="DIR",
        help="create a demo installation of the oldest release in DIR (default: ./wems-demo) and "
             "upgrade it without asking")
    add("--backup-dir", type=Path, metavar="DIR", help="where to keep backups (default: the installation's backups)")
    add("--no-backup", action="store_true", help="upgrade without a backup first (asks for confirmation)")
    add("--restore", nargs="?", const="", metavar="BACKUP",
        help="put the installation back as BACKUP holds it (asks which one if not given)")
    add("--from-other-installation", action="store_true",
        help="with --restore: accept a backup made from another installation folder")
    add("--list-backups", action="store_true", help="list the backups and exit")
    add("--yes", "-y", action="store_true", help="answer yes to every question (for scripts)")
    add("--json", action="store_true", help="print one JSON object with the result instead of text")
    add("--no-color", action="store_true", help="no colours (also: the NO_COLOR environment variable)")
    add("--version", action="store_true", help="show versions and exit")
    return parser


def version_text() -> str:
    catalog = load_catalog()
    latest = catalog.latest
    return (f"wems-upgrade {__version__}\n"
            f"targets Wareflow EMS {latest.last_release} (schema {latest.label})\n"
            f"SQLite {apsw.sqlite_lib_version()} (apsw {apsw.apsw_version()})\n"
            f"migrations sha256 {catalog.digest}")


def make_demo(folder: Path, console: Console) -> Path:
    """A fresh demo installation of the oldest release in `folder` (only ever replacing an earlier demo)."""
    from upgrader.demo import create_installation

    if folder.exists() and any(folder.iterdir()):
        if not (folder / DEMO_MARKER).exists():
            raise UsageError(f"{folder} exists and is not a wems-upgrade demo; choose another folder.")
        shutil.rmtree(folder)
    create_installation(folder, DEMO_GENERATION)
    (folder / DEMO_MARKER).write_text("Demo installation made by wems-upgrade --demo.\n", encoding="utf-8")
    console.say(f"Created a demo installation of the oldest Wareflow EMS release in {folder.resolve()}\n")
    return folder


def read_sites_file(path: Path) -> list[Path]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise UsageError(f"The sites file {path} cannot be read ({exc.strerror or exc}).") from exc
    entries = [line.split("#", 1)[0].strip() for line in lines]
    return [(path.parent / entry) for entry in entries if entry]


def sites(args: argparse.Namespace) -> list[Path]:
    found = list(args.data_dir or [])
    if args.sites_file:
        found += read_sites_file(args.sites_file)
    return found or [Path(".")]


# --- one installation ------------------------------------------------------------------------

def choose_backup(backups: list, console: Console) -> Path:
    usable = [b for b in backups if isinstance(b, Backup)]
    if not usable:
        raise UsageError("There is no backup to restore.")
    if not console.interactive:
        raise UsageError("Name the backup to restore: --restore <folder> (see --list-backups).")
    console.say(render_backups(usable))
    answer = console.ask(f"Which backup do you want to restore? [1-{len(usable)}]")
    if not answer.isdigit() or not 1 <= int(answer) <= len(usable):
        raise UsageError("No backup chosen. Nothing was changed.")
    return usable[int(answer) - 1].folder


def run_restore(args: argparse.Namespace, folder: Path, console: Console) -> dict:
    installation = locate(folder)
    root = args.backup_dir or default_backup_root(installation)
    chosen = Path(args.restore) if args.restore else choose_backup(list_backups(root), console)
    console.confirm(f"Replace the database and settings of {installation.root} with the backup {chosen}?",
                    args.yes)
    result = restore(installation, chosen, args.backup_dir, other_installation=args.from_other_installation)
    console.say(render_restore(result))
    return {"status": "restored", "installation": str(installation.root), "restored": str(result.restored.folder),
            "saved": str(result.saved.folder) if result.saved else None, "exit_code": EXIT_OK}


def run_upgrade(args: argparse.Namespace, folder: Path, console: Console) -> UpgradeResult:
    shown = []

    def confirm(result: UpgradeResult) -> None:
        console.say(render_plan(result) + "\n")
        shown.append(True)
        question = ("Upgrade this installation now? A verified backup is made first."
                    if result.space and result.space.backup_size else "Upgrade this installation now, WITHOUT a backup?")
        console.confirm(question, args.yes)

    if args.no_backup and not args.dry_run:
        console.confirm("Upgrade WITHOUT a backup? If anything goes wrong later, there will be no way back.",
                        args.yes)
    result = upgrade(locate(folder), args.to_version, dry_run=args.dry_run, backup=not args.no_backup,
                     backup_root=args.backup_dir, progress=console.progress(), confirm=confirm)
    console.say(render_outcome(result) if shown else render_result(result))
    return result


def _holds_a_database(folder: Path) -> bool:
    """Only a folder that holds a WEMS database gets a logs/ folder of ours."""
    try:
        return locate(folder).database.is_file()
    except UpgradeError:
        return False


def run_one(args: argparse.Namespace, folder: Path, console: Console) -> tuple[int, dict, str]:
    """Do what was asked on one installation: (exit code, JSON object, one-line summary)."""
    writes = not (args.dry_run or args.status or args.list_backups) and _holds_a_database(folder)
    log_path = runlog.start(folder, writes)
    try:
        if args.list_backups:
            backups = list_backups(args.backup_dir or default_backup_root(locate(folder)))
            console.say(render_backups(backups))
            return EXIT_OK, {"wems_upgrade": __version__, "status": "listed", "exit_code": EXIT_OK,
                             "backups": [str(b.folder) for b in backups if isinstance(b, Backup)],
                             "log": str(log_path) if log_path else None}, "listed"
        if args.status:
            status = installation_status(locate(folder), args.to_version, args.backup_dir)
            console.say(render_status(status))
            return EXIT_OK, {**result_json(status.result, log_path), "status": "status"}, "status shown"
        if args.restore is not None:
            return EXIT_OK, {"wems_upgrade": __version__, **run_restore(args, folder, console),
                             "log": str(log_path) if log_path else None}, "restored"
        result = run_upgrade(args, folder, console)
        return EXIT_OK, result_json(result, log_path), result.status.replace("_", " ")
    except UpgradeError as error:
        runlog.log.warning("%s: %s %s", error.status, error.message, error.details)
        console.warn(render_error(error, log_path))
        return error.exit_code, error_json(error, folder, log_path), error.message
    except Exception as exc:  # noqa: BLE001 - no traceback reaches the user; it goes to the log
        runlog.log.exception("unexpected error")
        error = UpgradeError(f"wems-upgrade met an unexpected problem ({type(exc).__name__}).")
        console.warn(render_error(error, log_path))
        return EXIT_INTERNAL, error_json(error, folder, log_path), error.message
    finally:
        runlog.stop()


def run_sites(args: argparse.Namespace, folders: list[Path], console: Console) -> int:
    """Each installation on its own: one failing never touches the others; a table ends the run."""
    outcomes, objects = [], []
    for folder in folders:
        console.say(f"===== {folder} =====")
        code, obj, summary = run_one(args, folder, console)
        outcomes.append(SiteOutcome(folder, code, summary))
        objects.append(obj)
        console.say("")
    console.say(render_sites(outcomes))
    code = EXIT_OK if all(o.exit_code == EXIT_OK for o in outcomes) else EXIT_SOME_SITES
    if args.json:
        console.raw(to_json({"status": "ok" if code == EXIT_OK else "some_failed", "exit_code": code,
                             "sites": objects}))
    return code


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console(no_color=args.no_color, quiet=args.json)
    try:
        if args.version:
            console.say(version_text()) if not args.json else console.raw(to_json({"version": version_text()}))
            return EXIT_OK
        if args.demo:
            args.yes = True
        try:
            folders = [make_demo(args.demo, console)] if args.demo else sites(args)
        except UpgradeError as error:
            console.warn(render_error(error))
            return error.exit_code
        if len(folders) > 1:
            return run_sites(args, folders, console)
        code, obj, _summary = run_one(args, folders[0], console)
        if args.json:
            console.raw(to_json({**obj, "exit_code": code}))
        return code
    finally:
        if started_by_double_click() and console.interactive:
            console.ask("Press Enter to close this window.")
