"""The wems-upgrade command: parses arguments, calls the library, prints, returns an exit code."""

from __future__ import annotations

import argparse
import shutil
import sys
import traceback
from pathlib import Path

import apsw

from upgrader import __version__
from upgrader.errors import EXIT_CODES, EXIT_INTERNAL, EXIT_OK, UpgradeError, UsageError
from upgrader.backup import Backup, default_backup_root, list_backups
from upgrader.installation import locate
from upgrader.loader import load_catalog
from upgrader.report import render_backups, render_error, render_restore, render_result
from upgrader.restore import restore
from upgrader.upgrade import upgrade

DEMO_MARKER = ".wems-demo"
DEMO_GENERATION = 1


def _parser() -> argparse.ArgumentParser:
    codes = "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items())
    parser = argparse.ArgumentParser(
        prog="wems-upgrade",
        description="Upgrade a Wareflow EMS installation to the newest release, all or nothing.",
        epilog=f"exit codes:\n{codes}", formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("."), metavar="DIR",
                        help="the Wareflow EMS folder (default: the current folder)")
    parser.add_argument("--to-version", metavar="VERSION",
                        help="upgrade to this release (e.g. 2.1.4) or generation (e.g. g7); default: latest")
    parser.add_argument("--dry-run", action="store_true",
                        help="run the whole upgrade on a temporary copy and report; change nothing")
    parser.add_argument("--demo", nargs="?", const=Path("wems-demo"), type=Path, metavar="DIR",
                        help="create a demo installation of the oldest release in DIR "
                             "(default: ./wems-demo) and upgrade it")
    parser.add_argument("--backup-dir", type=Path, metavar="DIR",
                        help="where to keep backups (default: the installation's backups folder)")
    parser.add_argument("--no-backup", action="store_true",
                        help="upgrade without a backup first (asks for confirmation)")
    parser.add_argument("--restore", nargs="?", const="", metavar="BACKUP",
                        help="put the installation back as BACKUP holds it (asks which one if not given)")
    parser.add_argument("--list-backups", action="store_true", help="list the backups and exit")
    parser.add_argument("--yes", "-y", action="store_true", help="answer yes to every question (for scripts)")
    parser.add_argument("--version", action="store_true", help="show versions and exit")
    return parser


def confirm(question: str, args: argparse.Namespace) -> None:
    """Go on only if the user says yes (or gave --yes); a script without --yes is told to add it."""
    if args.yes:
        return
    if not sys.stdin or not sys.stdin.isatty():
        raise UsageError(f"{question} Add --yes to confirm when running without a keyboard.")
    if input(f"{question} [y/N] ").strip().lower() not in ("y", "yes", "o", "oui"):
        raise UsageError("Stopped at your request. Nothing was changed.")


def choose_backup(backups: list, args: argparse.Namespace) -> Path:
    usable = [b for b in backups if isinstance(b, Backup)]
    if not usable:
        raise UsageError("There is no backup to restore.")
    if not sys.stdin or not sys.stdin.isatty():
        raise UsageError("Name the backup to restore: --restore <folder> (see --list-backups).")
    print(render_backups(usable))
    answer = input(f"Which backup do you want to restore? [1-{len(usable)}] ").strip()
    if not answer.isdigit() or not 1 <= int(answer) <= len(usable):
        raise UsageError("No backup chosen. Nothing was changed.")
    return usable[int(answer) - 1].folder


def _version_text() -> str:
    catalog = load_catalog()
    latest = catalog.latest
    return (f"wems-upgrade {__version__}\n"
            f"targets Wareflow EMS {latest.last_release} (schema {latest.label})\n"
            f"SQLite {apsw.sqlite_lib_version()} (apsw {apsw.apsw_version()})\n"
            f"migrations sha256 {catalog.digest}")


def make_demo(folder: Path) -> Path:
    """A fresh demo installation of the oldest release in `folder` (only ever replacing an earlier demo)."""
    from upgrader.demo import create_installation

    if folder.exists() and any(folder.iterdir()):
        if not (folder / DEMO_MARKER).exists():
            raise UsageError(f"{folder} exists and is not a wems-upgrade demo; choose another folder.")
        shutil.rmtree(folder)
    create_installation(folder, DEMO_GENERATION)
    (folder / DEMO_MARKER).write_text("Demo installation made by wems-upgrade --demo.\n", encoding="utf-8")
    print(f"Created a demo installation of the oldest Wareflow EMS release in {folder.resolve()}\n")
    return folder


def run_restore(args: argparse.Namespace) -> int:
    installation = locate(args.data_dir)
    root = args.backup_dir or default_backup_root(installation)
    folder = Path(args.restore) if args.restore else choose_backup(list_backups(root), args)
    confirm(f"Replace the database and settings of {installation.root} with the backup {folder}?", args)
    print(render_restore(restore(installation, folder, args.backup_dir)))
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    if args.version:
        print(_version_text())
        return EXIT_OK
    if args.list_backups:
        installation = locate(args.data_dir)
        print(render_backups(list_backups(args.backup_dir or default_backup_root(installation))))
        return EXIT_OK
    if args.restore is not None:
        return run_restore(args)
    folder = make_demo(args.demo) if args.demo else args.data_dir
    if args.no_backup and not args.dry_run:
        confirm("Upgrade WITHOUT a backup? If anything goes wrong later, there will be no way back.", args)
    result = upgrade(locate(folder), args.to_version, dry_run=args.dry_run, backup=not args.no_backup,
                     backup_root=args.backup_dir)
    print(render_result(result))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return run(args)
    except UpgradeError as error:
        print(render_error(error), file=sys.stderr)
        return error.exit_code
    except Exception:  # noqa: BLE001 - the user gets a plain message, the trace goes to stderr
        print("ERROR: wems-upgrade met an unexpected problem. Nothing was changed.\n"
              "Please send the text below to support.\n", file=sys.stderr)
        traceback.print_exc()
        return EXIT_INTERNAL
