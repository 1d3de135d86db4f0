"""The user's language: English or French, chosen from the system or --lang, through gettext.

English is the source language: every msgid is the English text, so English needs no catalogue.
French comes from `upgrader/locale/fr/LC_MESSAGES/wems-upgrade.mo` (compiled from the `.po` beside it
by `python build/catalogs.py`), embedded in the executable like `migrations/`.

Texts are translated when shown, never when made: `_()` for a text shown at once, `N_()` to mark a
text kept for later (a class attribute, a table), `T()` / `nT()` for a text with values that must
also exist in English (an error: the screen reads it translated; `--json` and the log in English).
"""

from __future__ import annotations

import argparse
import gettext
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from upgrader.paths import resource_root

DOMAIN = "wems-upgrade"
LANGUAGES = ("en", "fr")
DEFAULT = "en"

_translations: gettext.NullTranslations = gettext.NullTranslations()
_language = DEFAULT


def locale_dir() -> Path:
    return resource_root() / "upgrader" / "locale"


def use(language: str) -> None:
    """Show every later text in `language` (one of LANGUAGES)."""
    global _translations, _language
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}")
    if language == DEFAULT:
        _translations = gettext.NullTranslations()
    else:
        _translations = gettext.translation(DOMAIN, locale_dir(), languages=[language])
    _language = language


def language() -> str:
    return _language


def _(message: str) -> str:
    return _translations.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translations.ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark `message` for the catalogue; it is translated later, where it is shown."""
    return message


class Text:
    """A text with values, kept in English and shown in the user's language: `str()` translates."""

    __slots__ = ("n", "params", "plural", "singular")

    def __init__(self, singular: str, plural: str | None = None, n: int | None = None, **params):
        self.singular, self.plural, self.n, self.params = singular, plural, n, params

    def _render(self, translations: gettext.NullTranslations) -> str:
        if self.plural is None:
            template = translations.gettext(self.singular)
        else:
            template = translations.ngettext(self.singular, self.plural, self.n or 0)
        if self.plural is None and not self.params:
            return template
        values = {key: str(value) if isinstance(value, Text) else value for key, value in self.params.items()}
        return template.format(n=self.n, **values) if self.plural is not None else template.format(**values)

    def english(self) -> str:
        values = {key: english(value) for key, value in self.params.items()}
        return Text(self.singular, self.plural, self.n, **values)._render(gettext.NullTranslations())

    def __str__(self) -> str:
        return self._render(_translations)

    def __repr__(self) -> str:
        return f"Text({self.english()!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Text) and self.english() == other.english()

    def __hash__(self) -> int:
        return hash(self.english())


def T(message: str, **params) -> Text:
    """`message` with `{name}` values: English in `--json` and the log, translated on the screen."""
    return Text(message, **params)


def nT(singular: str, plural: str, n: int, **params) -> Text:
    """Like T(), with a singular and a plural form chosen by `n` (also available as `{n}`)."""
    return Text(singular, plural, n, **params)


def localize(text: str | Text) -> str:
    """A text as the user reads it: a Text rendered, a marked msgid translated, anything else as is."""
    return str(text) if isinstance(text, Text) else _(text)


def english(text: str | Text | object) -> str:
    """A text as the log and `--json` keep it."""
    return text.english() if isinstance(text, Text) else str(text)


def _from_locale_name(name: str) -> str | None:
    """'fr_FR.UTF-8' -> 'fr'; 'C' or 'POSIX' -> 'en'; a language we do not speak -> None."""
    code = name.split(".")[0].split("@")[0].replace("-", "_").split("_")[0].lower()
    if code in ("c", "posix"):
        return DEFAULT
    return code if code in LANGUAGES else None


def posix_language(environ: Mapping[str, str] | None = None) -> str:
    """The language of LC_ALL, LC_MESSAGES or LANG, in POSIX's order of precedence."""
    environ = os.environ if environ is None else environ
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(variable)
        if value:
            return _from_locale_name(value) or DEFAULT
    return DEFAULT


#: Windows primary language ids (the low 10 bits of a LANGID).
WINDOWS_LANGUAGES = {0x09: "en", 0x0C: "fr"}


def windows_language() -> str:
    """The language of the Windows user interface (GetUserDefaultUILanguage)."""
    import ctypes

    langid = ctypes.windll.kernel32.GetUserDefaultUILanguage()  # type: ignore[attr-defined,unused-ignore]
    return WINDOWS_LANGUAGES.get(langid & 0x3FF, DEFAULT)


def system_language() -> str:
    """The user's language: Windows' display language, or LC_ALL / LC_MESSAGES / LANG elsewhere."""
    if sys.platform == "win32":
        try:
            return windows_language()
        except (OSError, AttributeError):
            return DEFAULT
    return posix_language()


#: argparse's own texts the user can meet (its help headings, its complaints about the command line).
ARGPARSE_MESSAGES = (
    N_("usage: "),
    N_("options"),
    N_("positional arguments"),
    N_("show this help message and exit"),
    N_("the following arguments are required: %s"),
    N_("unrecognized arguments: %s"),
    N_("expected one argument"),
    N_("expected at most one argument"),
    N_("expected at least one argument"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("ambiguous option: %(option)s could match %(matches)s"),
    N_("invalid %(type)s value: %(value)r"),
    N_("ignored explicit argument %r"),
    N_("not allowed with argument %s"),
)


def translate_argparse() -> None:
    """argparse looks up its texts through its module's `_`: point it at ours."""
    argparse._ = _  # type: ignore[attr-defined]
    argparse.ngettext = ngettext  # type: ignore[attr-defined]
