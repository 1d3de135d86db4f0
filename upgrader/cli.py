"""The wems-upgrade command: parses arguments, calls the library, prints, returns an exit code."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import textwrap
from contextlib import closing
from pathlib import Path

import apsw

from upgrader import __version__, i18n, runlog
from upgrader.backup import default_backup_root
from upgrader.console import Console, StopRequests, how_stopped, protect_streams
from upgrader.errors import (
    EXIT_CODES,
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_SOME_SITES,
    EXIT_STOPPED,
    UpgradeError,
    UsageError,
    stopped,
)
from upgrader.i18n import T, _, english
from upgrader.installation import CONFIG_NAMES, locate
from upgrader.journal import journal_path
from upgrader.loader import load_catalog
from upgrader.planner import make_plan
from upgrader.report import (
    SiteOutcome,
    error_json,
    render_backups,
    render_error,
    render_outcome,
    render_plan,
    render_restore,
    render_result,
    render_sites,
    render_sql,
    render_status,
    render_update,
    result_json,
    sql_json,
    status_json,
    to_json,
)
from upgrader.restore import restore
from upgrader.snapshot import open_database
from upgrader.status import Backups, find_backups, installation_status
from upgrader.updates import UpdateCheck
from upgrader.upgrade import Preview, UpgradeResult, upgrade

log = logging.getLogger(__name__)

DEMO_MARKER = ".wems-demo"
DEMO_GENERATION = 1


class _Parser(argparse.ArgumentParser):
    """Command-line mistakes become a UsageError, reported like any other stop (as JSON with --json)."""

    def error(self, message: str):
        """argparse's own text, already in the user's language: a sentence in English; French keeps
        its lowercase after the heading's colon ("UTILISATION : arguments non reconnus : -x.")."""
        if i18n.language() == i18n.DEFAULT:
            message = f"{message[:1].upper()}{message[1:]}"
        raise UsageError(f"{message}.")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's help, never cutting a word at its hyphen ("wems-" / "upgrade", "--data-" / "dir")."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return _wrap(" ".join(text.split(" ")), width)


def _wrap(text: str, width: int, indent: str = "", hanging: str = "") -> list[str]:
    """Lines of at most `width` characters, cut at spaces only (a no-break space holds "défaut :")."""
    return textwrap.wrap(
        text,
        width,
        initial_indent=indent,
        subsequent_indent=hanging,
        break_on_hyphens=False,
        break_long_words=False,
    )


def _help_width() -> int:
    """The width argparse gives the help: the terminal's, less 2."""
    return max(shutil.get_terminal_size().columns - 2, 40)


def exit_codes_text(width: int = 78) -> str:
    """The --help epilog: every exit code and what it means, in the user's language."""
    lines = [_("exit codes:")]
    for code, text in EXIT_CODES.items():
        lines += _wrap(_(text), width, f"  {code:>2}  ", " " * 6)
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    """The command line, its help in the user's language (built after i18n.use)."""
    width = _help_width()
    parser = _Parser(
        prog="wems-upgrade",
        description="\n".join(
            _wrap(_("Upgrade a Wareflow EMS installation to the newest release, all or nothing."), width)
        ),
        epilog=exit_codes_text(width),
        formatter_class=_HelpFormatter,
    )
    add = parser.add_argument
    add(
        "folder",
        nargs="?",
        type=Path,
        metavar="DIR",
        help=_("the Wareflow EMS folder, as with --data-dir (a folder dropped onto wems-upgrade.exe lands here)"),
    )
    add(
        "--data-dir",
        type=Path,
        action="append",
        metavar="DIR",
        help=_("a Wareflow EMS folder (default: the current folder); repeat it for several installations"),
    )
    add(
        "--sites-file",
        type=Path,
        metavar="FILE",
        help=_("a text file listing installation folders, one per line (# starts a comment)"),
    )
    add(
        "--to-version",
        metavar="VERSION",
        help=_("upgrade to this release (e.g. 2.1.4) or generation (e.g. g7); default: the latest"),
    )
    add(
        "--dry-run",
        action="store_true",
        help=_("run the whole upgrade on a temporary copy and report; change nothing"),
    )
    add("--status", action="store_true", help=_("show what the installation is and what an upgrade would do"))
    add(
        "--show-sql",
        action="store_true",
        help=_("print the exact SQL the upgrade would run, step by step (with --json: as lists); change nothing"),
    )
    add(
        "--demo",
        nargs="?",
        const=Path("wems-demo"),
        type=Path,
        metavar="DIR",
        help=_(
            "create a demo installation of the oldest release in DIR (default: ./wems-demo) and "
            "upgrade it without asking"
        ),
    )
    add(
        "--backup-dir",
        type=Path,
        metavar="DIR",
        help=_("where to keep backups (default: the installation's backups)"),
    )
    add("--no-backup", action="store_true", help=_("upgrade without a backup first (asks for confirmation)"))
    add(
        "--full-check",
        action="store_true",
        help=_(
            "check the whole database file, even above 256 MB (about 1.5 s more per GB); by default "
            "a large file is checked where the upgrade changed it"
        ),
    )
    add(
        "--restore",
        nargs="?",
        const="",
        metavar="BACKUP",
        help=_("put the installation back as BACKUP holds it (asks which one if not given)"),
    )
    add(
        "--from-other-installation",
        action="store_true",
        help=_("with --restore: accept a backup made from another installation folder"),
    )
    add("--list-backups", action="store_true", help=_("list the backups and exit"))
    add("--yes", "-y", action="store_true", help=_("answer yes to every question (for scripts)"))
    add("--json", action="store_true", help=_("print one JSON object with the result instead of text"))
    add("--no-color", action="store_true", help=_("no colours (also: the NO_COLOR environment variable)"))
    add(
        "--no-update-check",
        action="store_true",
        help=_("do not ask whether a newer wems-upgrade is published"),
    )
    add(
        "--lang",
        choices=i18n.LANGUAGES,
        help=_("the language of the screens: en or fr (default: the system's language); --json is always English"),
    )
    add("--version", action="store_true", help=_("show versions and exit"))
    return parser


def version_text() -> str:
    catalog = load_catalog()
    latest = catalog.latest
    return "\n".join(
        (
            f"wems-upgrade {__version__}",
            _("targets Wareflow EMS {release} (schema {label})").format(
                release=latest.last_release, label=latest.label
            ),
            f"SQLite {apsw.sqlite_lib_version()} (apsw {apsw.apsw_version()})",
            _("migrations sha256 {digest}").format(digest=catalog.digest),
        )
    )


def make_demo(folder: Path, console: Console) -> Path:
    """A fresh demo installation of the oldest release in `folder` (only ever replacing an earlier demo)."""
    from upgrader.demo import create_installation

    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        if not (folder / DEMO_MARKER).exists():
            raise UsageError(T("{folder} exists and is not a wems-upgrade demo; choose another folder.", folder=folder))
        shutil.rmtree(folder)
    create_installation(folder, DEMO_GENERATION)
    (folder / DEMO_MARKER).write_text("Demo installation made by wems-upgrade --demo.\n", encoding="utf-8")
    console.say(
        _("Created a demo installation of the oldest Wareflow EMS release in {folder}").format(folder=folder.resolve())
        + "\n"
    )
    return folder


def read_sites_file(path: Path) -> list[Path]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise UsageError(
            T("The sites file {path} cannot be read ({reason}).", path=path, reason=exc.strerror or exc)
        ) from exc
    except UnicodeDecodeError:
        raise UsageError(T("The sites file {path} is not UTF-8 text: save it as UTF-8.", path=path)) from None
    entries = [line.split("#", 1)[0].strip() for line in lines]
    if any("\0" in entry for entry in entries):
        raise UsageError(T("The sites file {path} holds an invisible NUL character: save it as UTF-8 text.", path=path))
    return [(path.parent / entry) for entry in entries if entry]


def _early_flags(argv: list[str]) -> argparse.Namespace:
    """--json, --yes, --no-color and --lang, read even from a command line the full parser rejects."""
    probe = _Parser(add_help=False)
    for flag in ("--json", "--yes", "--no-color"):
        probe.add_argument(flag, action="store_true")
    probe.add_argument("--lang")
    try:
        return probe.parse_known_args(["--yes" if a == "-y" else a for a in argv])[0]
    except UpgradeError:
        return argparse.Namespace(json=False, yes=False, no_color=False, lang=None)


def choose_language(flags: argparse.Namespace) -> str:
    """--lang, else the system's language; always English for --json (scripts read it)."""
    if flags.json:
        return i18n.DEFAULT
    if flags.lang in i18n.LANGUAGES:
        return flags.lang
    return i18n.system_language()


def sites(args: argparse.Namespace) -> list[Path]:
    found = ([args.folder] if args.folder else []) + list(args.data_dir or [])
    if args.sites_file:
        found += read_sites_file(args.sites_file)
    return found or [Path(".")]


# --- one installation ------------------------------------------------------------------------


def choose_backup(backups: Backups, console: Console) -> Path:
    usable = backups.usable
    if not usable:
        raise UsageError(T("There is no backup to restore."))
    if not console.interactive:
        raise UsageError(T("Name the backup to restore: --restore <folder> (see --list-backups)."))
    console.say(render_backups(Backups(usable, [])))
    answer = console.ask(T("Which backup do you want to restore? [1-{last}]", last=len(usable)))
    if not answer.isdigit() or not 1 <= int(answer) <= len(usable):
        raise UsageError(T("No backup chosen. Nothing was changed."))
    return usable[int(answer) - 1].folder


def run_restore(args: argparse.Namespace, folder: Path, console: Console) -> dict:
    installation = locate(folder)
    root = args.backup_dir or default_backup_root(installation)
    chosen = Path(args.restore) if args.restore else choose_backup(find_backups(root), console)
    console.confirm(
        T(
            "Replace the database and settings of {installation} with the backup {backup}?",
            installation=installation.root,
            backup=chosen,
        ),
        args.yes,
    )
    result = restore(installation, chosen, args.backup_dir, other_installation=args.from_other_installation)
    console.say(render_restore(result))
    return {
        "status": "restored",
        "installation": str(installation.root),
        "restored": str(result.restored.folder),
        "saved": str(result.saved.folder) if result.saved else None,
        "exit_code": EXIT_OK,
    }


def show_sql(args: argparse.Namespace, folder: Path, console: Console, log_path: Path | None) -> dict:
    """--show-sql: the plan's statements, read-only like --status (no lock, no backup, no copy)."""
    installation = locate(folder)
    catalog = load_catalog()
    target = catalog.resolve_target(args.to_version)
    with closing(open_database(installation.database)) as conn:
        plan = make_plan(conn, catalog, target)
    console.say(render_sql(plan, installation))
    return sql_json(plan, installation, log_path)


def run_upgrade(args: argparse.Namespace, folder: Path, console: Console) -> UpgradeResult:
    shown = []

    def confirm(preview: Preview) -> None:
        console.say(render_plan(preview) + "\n")
        shown.append(True)
        question = (
            T("Upgrade this installation now? A backup is kept first.")
            if preview.space.backup_size
            else T("Upgrade this installation now, WITHOUT a backup?")
        )
        console.confirm(question, args.yes)

    if args.no_backup and not args.dry_run:
        console.confirm(
            T("Upgrade WITHOUT a backup? If anything goes wrong later, there will be no way back."), args.yes
        )
    bars = console.progress()
    try:
        result = upgrade(
            locate(folder),
            args.to_version,
            dry_run=args.dry_run,
            backup=not args.no_backup,
            backup_root=args.backup_dir,
            progress=bars,
            confirm=confirm,
            full_check=args.full_check,
        )
    finally:
        if bars:
            bars.close()
    console.say(render_outcome(result) if shown else render_result(result))
    return result


def _holds_a_database(folder: Path) -> bool:
    """Only a folder that holds a WEMS database gets a logs/ folder of ours."""
    try:
        return locate(folder).database.is_file()
    except UpgradeError:
        return False


def _footprint(folder: Path) -> tuple:
    """Which file each installation name is (a swap puts other files there), and any unfinished journal."""
    try:
        installation = locate(folder)
    except (UpgradeError, OSError):
        return ()
    paths = [installation.database] + [installation.root / name for name in CONFIG_NAMES]
    return tuple(map(_identity, paths)) + (journal_path(installation.database).exists(),)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _maybe_half_done(folder: Path, before: tuple) -> bool:
    """False only when the installation is surely as it was: the same files, no unfinished journal."""
    after = _footprint(folder)
    return after != before or bool(after and after[-1])


def run_one(args: argparse.Namespace, folder: Path, console: Console) -> tuple[int, dict, str]:
    """Do what was asked on one installation: (exit code, JSON object, one-line summary)."""
    before = _footprint(folder)
    writes = not (args.dry_run or args.status or args.show_sql or args.list_backups) and _holds_a_database(folder)
    log_path = runlog.start(folder, writes)
    try:
        if args.list_backups:
            backups = find_backups(args.backup_dir or default_backup_root(locate(folder)))
            console.say(render_backups(backups))
            return (
                EXIT_OK,
                {
                    "wems_upgrade": __version__,
                    "status": "listed",
                    "exit_code": EXIT_OK,
                    "backups": [str(b.folder) for b in backups.usable],
                    "unusable": [{"folder": str(path), "reason": english(reason)} for path, reason in backups.unusable],
                    "log": str(log_path) if log_path else None,
                },
                "listed",
            )
        if args.status:
            status = installation_status(locate(folder), args.to_version, args.backup_dir)
            console.say(render_status(status))
            return EXIT_OK, status_json(status, log_path), "status shown"
        if args.show_sql:
            return EXIT_OK, show_sql(args, folder, console, log_path), "SQL shown"
        if args.restore is not None:
            return (
                EXIT_OK,
                {
                    "wems_upgrade": __version__,
                    **run_restore(args, folder, console),
                    "log": str(log_path) if log_path else None,
                },
                "restored",
            )
        result = run_upgrade(args, folder, console)
        return EXIT_OK, result_json(result, log_path), result.status.replace("_", " ")
    except UpgradeError as error:
        log.warning("%s (%s): %s %s", error.status, error.reference, error.message, error.details)
        console.warn(render_error(error, log_path))
        return error.exit_code, error_json(error, folder, log_path), error.message
    except Exception as exc:
        log.exception("unexpected error")
        unexpected = UpgradeError(T("wems-upgrade met an unexpected problem ({kind}).", kind=type(exc).__name__))
        console.warn(render_error(unexpected, log_path))
        return EXIT_INTERNAL, error_json(unexpected, folder, log_path), unexpected.message
    except KeyboardInterrupt as exc:
        interrupted = stopped(how_stopped(exc), half_done=_maybe_half_done(folder, before))
        log.warning("stopped by %s: %s", english(how_stopped(exc)), interrupted.advice)
        console.warn(render_error(interrupted, log_path))
        return interrupted.exit_code, error_json(interrupted, folder, log_path), interrupted.message
    finally:
        runlog.stop()


def run_sites(args: argparse.Namespace, folders: list[Path], console: Console) -> tuple[int, dict]:
    """Each installation on its own: one failing never touches the others; a stop request ends the
    run; a table ends it. Returns the exit code and the JSON object."""
    outcomes, objects = [], []
    for folder in folders:
        console.say(f"===== {folder} =====")
        code, obj, summary = run_one(args, folder, console)
        outcomes.append(SiteOutcome(folder, code, summary))
        objects.append(obj)
        console.say("")
        if code == EXIT_STOPPED:
            break
    console.say(render_sites(outcomes, len(folders)))
    codes = {o.exit_code for o in outcomes}
    code = EXIT_STOPPED if EXIT_STOPPED in codes else EXIT_OK if codes == {EXIT_OK} else EXIT_SOME_SITES
    status = {EXIT_OK: "ok", EXIT_STOPPED: "stopped"}.get(code, "some_failed")
    return code, {"status": status, "exit_code": code, "sites": objects}


def _run(args: argparse.Namespace, console: Console) -> tuple[int, dict | None]:
    """What the parsed command line asks: (exit code, the --json object)."""
    if args.version:
        try:
            text = version_text()
        except UpgradeError as error:
            console.warn(render_error(error))
            return error.exit_code, error_json(error, None)
        if args.json:
            return EXIT_OK, {"version": text}
        console.say(text)
        return EXIT_OK, None
    if args.demo:
        args.yes = True
    try:
        folders = [make_demo(args.demo, console)] if args.demo else sites(args)
    except UpgradeError as error:
        console.warn(render_error(error))
        return error.exit_code, error_json(error, None)
    if len(folders) > 1:
        return run_sites(args, folders, console)
    check = update_check(args, folders)
    code, obj, _summary = run_one(args, folders[0], console)
    show_update(check, console)
    return code, {**obj, "exit_code": code}


def update_check(args: argparse.Namespace, folders: list[Path]) -> UpdateCheck | None:
    """The look for a newer wems-upgrade, started in the background while the run works: only for a
    person reading the screens of one installation (never --json, --no-update-check, a sites file;
    nor --show-sql, whose text is SQL to save and run)."""
    if args.json or args.no_update_check or args.sites_file or args.show_sql or len(folders) != 1:
        return None
    return UpdateCheck(__version__).start()


def show_update(check: UpdateCheck | None, console: Console) -> None:
    """The last lines of the run: a newer wems-upgrade, if the check found one in time (silent otherwise)."""
    newer = check.result() if check else None
    if newer:
        console.say("\n" + render_update(newer))


def _refuse_combinations(args: argparse.Namespace) -> None:
    chosen = [
        flag
        for flag, on in (
            ("--dry-run", args.dry_run),
            ("--status", args.status),
            ("--list-backups", args.list_backups),
            ("--restore", args.restore is not None),
            ("--demo", args.demo is not None),
        )
        if on
    ]
    if args.show_sql and chosen:
        raise UsageError(
            T(
                "--show-sql cannot be combined with {flag}: it only prints the SQL an upgrade "
                "would run. Nothing was changed.",
                flag=chosen[0],
            )
        )
    if args.dry_run and args.restore is not None:
        raise UsageError(
            T("--dry-run cannot be combined with --restore: a restore has no dry run. Nothing was changed.")
        )
    if args.to_version and args.restore is not None:
        raise UsageError(
            T(
                "--to-version cannot be combined with --restore: a restore puts back the version the "
                "backup holds. Nothing was changed."
            )
        )


def _outcome(argv: list[str], console: Console) -> tuple[int, dict | None, bool]:
    """(exit code, the --json object, whether a double-clicked window should wait before closing)."""
    try:
        args = _parser().parse_args(argv)
        _refuse_combinations(args)
    except UsageError as error:
        console.warn(render_error(error))
        return error.exit_code, error_json(error, None), True
    try:
        code, obj = _run(args, console)
        return code, obj, not args.version
    except KeyboardInterrupt as exc:
        interrupted = stopped(how_stopped(exc), working=False)
        console.warn(render_error(interrupted))
        return interrupted.exit_code, error_json(interrupted, None), True


def main(argv: list[str] | None = None) -> int:
    """Arguments in, exit code out: with --json exactly one JSON object, whatever happens."""
    argv = sys.argv[1:] if argv is None else list(argv)
    protect_streams()
    flags = _early_flags(argv)
    i18n.use(choose_language(flags))
    i18n.translate_argparse()
    console = Console(no_color=flags.no_color, quiet=flags.json)
    code = EXIT_STOPPED
    try:
        with StopRequests() as stop:
            code, obj, pause = _outcome(argv, console)
            stop.ignore()
            if flags.json and obj is not None:
                console.json(to_json(obj))
        if pause and not flags.yes and not stop.closing:
            console.pause()
    except KeyboardInterrupt:
        pass
    return code
