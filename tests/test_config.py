"""Settings files: every historical shape becomes the latest YAML, losing nothing; bad files are
refused with their line and column before anything is written."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from support import file_digests

from upgrader import errors
from upgrader.cli import main
from upgrader.config import load_converters, plan_config, read_settings, render_yaml
from upgrader.demo import write_config
from upgrader.errors import BadConfig
from upgrader.installation import locate
from upgrader.upgrade import upgrade

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**9), 10**9), text, st.floats(allow_nan=False, allow_infinity=False)
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=12,
)
positive = st.integers(1, 3650)
names = st.lists(text.filter(lambda t: t != ""), min_size=1, max_size=6)


@st.composite
def nested_settings(draw):
    critical = draw(positive)
    settings = {
        "alerts": {"critical_days": critical, "warning_days": draw(st.integers(critical, 3650))},
        "lock": {"timeout_minutes": draw(positive), "heartbeat_interval_seconds": draw(positive)},
        "organization": {"roles": draw(names), "workspaces": draw(names)},
    }
    for key, value in draw(st.dictionaries(text.filter(lambda k: k not in settings), values, max_size=4)).items():
        settings[key] = value
    keys = draw(st.permutations(list(settings)))
    return {k: settings[k] for k in keys}


@given(nested_settings())
@hyp_settings(max_examples=150, deadline=None)
def test_the_yaml_written_gives_back_every_value_in_order(settings):
    loaded = yaml.safe_load(render_yaml(settings))
    assert loaded == settings
    assert list(loaded) == list(settings)


@given(nested_settings())
@hyp_settings(max_examples=60, deadline=None)
def test_a_nested_json_file_converts_to_the_same_settings(tmp_path_factory, settings):
    folder = tmp_path_factory.mktemp("cfg")
    source = folder / "config.json"
    source.write_text(json.dumps(settings, ensure_ascii=False), encoding="utf-8")
    plan = plan_config(source, 8)
    assert plan.new_path.name == "config.yaml"
    assert yaml.safe_load(plan.new_text) == settings


def test_the_flat_keys_no_release_read_are_kept_as_comments_never_activated(tmp_path):
    source = tmp_path / "config.json"
    source.write_text(
        json.dumps(
            {
                "alert_thresholds_days": [90, 30, 60],
                "lock_timeout_minutes": 15,
                "export_filename_template": "employés_{date}.xlsx",
                "roles": ["Préparateur", "Cariste"],
                "workspaces": ["Quai", "Zone A"],
                "log_level": "INFO",
                "siret": "12345678900012",
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    plan = plan_config(source, 8, from_generation=4)
    assert [c.name for c in plan.converters] == ["c1_flat_to_nested", "c2_json_to_yaml"]
    g4_roles = ["Cariste", "Préparateur", "Magasinier", "Réceptionnaire", "Gestionnaire", "Chef d'équipe"]
    assert plan.after == {
        "export_filename_template": "employés_{date}.xlsx",
        "log_level": "INFO",
        "siret": "12345678900012",
        "organization": {"roles": g4_roles},
    }
    assert yaml.safe_load(plan.new_text) == plan.after
    assert (
        "# Not read by Wareflow EMS before this upgrade (flat key of the early template); "
        "uncomment under alerts: as critical_days and warning_days to use it\n"
        "# alert_thresholds_days: [90, 30, 60]\n"
    ) in plan.new_text
    assert '# roles: ["Préparateur", "Cariste"]' in plan.new_text and "# lock_timeout_minutes: 15" in plan.new_text


def test_a_flat_file_stays_json_for_a_target_before_yaml(tmp_path):
    source = write_config(tmp_path, "json-flat")
    plan = plan_config(source, 4)
    assert plan.new_path == source and plan.retire.name == "config.json.before-wems-upgrade"
    written = json.loads(plan.new_text)
    assert "lock" not in written and written["not_read_before_wems_upgrade"]["lock_timeout_minutes"] == 2


def test_a_yaml_file_is_left_untouched(tmp_path):
    source = write_config(tmp_path, "yaml")
    plan = plan_config(source, 8)
    assert not plan.changes


BAD_FILES = {
    "bad json": ("config.json", b'{\n  "alerts": {\n    "critical_days": 7,,\n  }\n}', (3, 24)),
    "tab in yaml": ("config.yaml", b"alerts:\n\tcritical_days: 7\n", (2, 1)),
    "bom": ("config.json", b'\xef\xbb\xbf{"alerts": {}}', (1, 1)),
    "empty": ("config.json", b"  \n", (1, 1)),
    "yaml bomb": ("config.yaml", b'a: &a ["x","x"]\nb: &b [*a,*a]\nc: &c [*b,*b]\n', (1, 4)),
    "huge": ("config.yaml", b"k: " + b"x" * (2 * 1024 * 1024) + b"\n", (1, 1)),
    "not a mapping": ("config.yaml", b"- just\n- a list\n", (1, 1)),
    "not utf-8": ("config.json", b'{"name": "Entrep\xf4t"}', (1, 17)),
    "critical above warning": ("config.yaml", b"alerts:\n  critical_days: 40\n  warning_days: 30\n", (2, 3)),
    "negative timeout": ("config.json", b'{"lock": {"timeout_minutes": -5}}', (1, 11)),
    "roles not text": ("config.yaml", b"organization:\n  roles: [1, 2]\n", (2, 3)),
    "empty workspaces": ("config.yaml", b"organization:\n  workspaces: []\n", (2, 3)),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_a_bad_settings_file_is_refused_with_line_and_column(tmp_path, case):
    name, content, (line, column) = BAD_FILES[case]
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(BadConfig) as refusal:
        plan_config(path, 8)
    assert f"line {line}, column {column}" in refusal.value.message, refusal.value.message


def test_a_bad_settings_file_stops_the_upgrade_and_changes_nothing(install, capsys):
    root = install(2)
    (root / "config.json").write_text('{"alerts": {"critical_days": 40, "warning_days": 30}}', encoding="utf-8")
    before = file_digests(root)
    assert main(["--yes", "--data-dir", str(root)]) == errors.EXIT_BAD_CONFIG
    err = capsys.readouterr().err
    assert "line 1, column" in err and "critical_days" in err and "Nothing was changed" in err
    assert file_digests(root) == before


@pytest.mark.parametrize(
    "generation,shape",
    [(1, "json-nested"), (2, "json-flat"), (3, "json-nested"), (4, "json-flat"), (5, "yaml"), (7, "yaml")],
)
def test_each_era_upgrades_with_its_settings_kept(install, generation, shape):
    root = install(generation)
    for name in ("config.json", "config.yaml"):
        (root / name).unlink(missing_ok=True)
    source = write_config(root, shape)
    original_bytes = source.read_bytes()
    expected = plan_config(source, 8, from_generation=generation).after
    result = upgrade(locate(root, environ={}))
    assert result.config.read_after == root / "config.yaml"
    assert read_settings(root / "config.yaml")[1] == expected
    if shape == "yaml":
        assert (root / "config.yaml").read_bytes() == original_bytes
    else:
        assert not (root / "config.json").exists()
        assert (root / "config.json.before-wems-upgrade").read_bytes() == original_bytes
        assert (result.backup.folder / "config.json").read_bytes() == original_bytes


def test_a_failing_settings_write_undoes_the_database_too(install, capsys, monkeypatch):
    from support import content

    root = install(3)
    original = content(root)
    original_json = (root / "config.json").read_bytes()

    def full_disk(config):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("upgrader.upgrade._write_temps", full_disk)
    assert main(["--yes", "--data-dir", str(root)]) == errors.EXIT_NO_ROOM
    assert "backup made before this attempt" not in capsys.readouterr().err, "the original is still there"
    assert not any((root / "backups").iterdir()), "the backup begun for it went with the undo"
    assert content(root) == original
    assert (root / "config.json").read_bytes() == original_json
    assert not (root / "config.yaml").exists()


def test_a_failing_rename_of_the_old_settings_puts_everything_back(install, monkeypatch):
    import os

    from support import content

    root = install(1)
    original = content(root)
    real_replace = os.replace

    def refuse(src, dst):
        if str(src).endswith("config.json"):
            raise OSError(5, "Input/output error")
        return real_replace(src, dst)

    monkeypatch.setattr("upgrader.journal.os.replace", refuse)
    with pytest.raises(errors.UpgradeError):
        upgrade(locate(root, environ={}))
    assert content(root) == original
    assert (root / "config.json").exists() and not (root / "config.yaml").exists()


def test_the_dry_run_shows_the_yaml_and_the_settings_that_change(install, capsys):
    root = install(2)
    (root / "config.json").unlink()
    write_config(root, "json-flat")
    before = file_digests(root)
    assert main(["--yes", "--data-dir", str(root), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "alert_thresholds_days: the file says [30, 60, 90]" in out
    assert "alerts.critical_days = 7 and alerts.warning_days = 30" in out
    assert "+ alerts.critical_days" not in out
    assert "Settings: 4 value(s) in config.json that Wareflow EMS" in out
    assert "config.yaml would be:" in out and "| # alert_thresholds_days: [30, 60, 90]" in out
    assert file_digests(root) == before


def test_converters_are_chained_in_order():
    converters = load_converters()
    assert [(c.source, c.target) for c in converters] == [("json-flat", "json-nested"), ("json-nested", "yaml")]


def test_a_nested_file_with_a_flat_key_keeps_the_nested_value_live_and_the_flat_one_commented(tmp_path):
    source = tmp_path / "config.json"
    source.write_text(json.dumps({"lock": {"timeout_minutes": 5}, "lock_timeout_minutes": 15}), encoding="utf-8")
    plan = plan_config(source, 8)
    assert plan.shape == "json-nested"
    assert plan.after == {"lock": {"timeout_minutes": 5}}
    assert "# lock_timeout_minutes: 15" in plan.new_text


def test_a_flat_value_the_app_would_refuse_is_kept_as_a_comment_not_refused(tmp_path):
    source = tmp_path / "config.json"
    source.write_bytes(b'{"alert_thresholds_days": ["soon"]}')
    plan = plan_config(source, 8, from_generation=3)
    assert '# alert_thresholds_days: ["soon"]' in plan.new_text


def test_a_g1_installation_without_settings_gets_its_code_constants_written(tmp_path):
    plan = plan_config(None, 8, from_generation=1, root=tmp_path)
    assert plan.new_path == tmp_path / "config.yaml"
    assert yaml.safe_load(plan.new_text) == {
        "organization": {
            "roles": ["Préparateur", "Réceptionnaire", "Cariste"],
            "workspaces": ["Quai", "Zone A", "Zone B", "Bureau"],
        }
    }


# --- the comments in the user's language ----------------------------------------------------------


def _data_lines(text: str) -> list[str]:
    """The lines of a YAML file that are not comments: what the app reads."""
    return [line for line in text.splitlines() if not line.lstrip().startswith("#")]


def _comment_lines(text: str) -> list[str]:
    return [line.lstrip() for line in text.splitlines() if line.lstrip().startswith("#")]


def _upgraded_in(install, language: str, generation: int = 4, *, name: str | None = None):
    """A g`generation` installation with the flat config.json of its era, upgraded in `language`."""
    root = install(generation, name or f"{language}-g{generation}")
    (root / "config.json").unlink(missing_ok=True)
    write_config(root, "json-flat")
    assert main(["--yes", "--data-dir", str(root), "--lang", language]) == 0
    return root


def test_a_french_run_writes_french_comments_and_the_very_same_settings(install):
    english = (_upgraded_in(install, "en") / "config.yaml").read_text(encoding="utf-8")
    french = (_upgraded_in(install, "fr") / "config.yaml").read_text(encoding="utf-8")
    assert yaml.safe_load(french) == yaml.safe_load(english)
    assert _data_lines(french) == _data_lines(english), "keys and values never change with the language"
    comments = _comment_lines(french)
    assert comments[:2] == [
        "# Configuration de Wareflow EMS",
        "# Converti par wems-upgrade depuis config.json\u00a0; l'original est conservé sous le nom "
        "config.json.before-wems-upgrade.",
    ]
    assert "# ORGANISATION\u00a0: les choix proposés dans les fiches des salariés" in comments
    assert (
        "# Non lu par Wareflow EMS avant cette mise à niveau (clé à plat du modèle initial)\u00a0; pour l'utiliser, "
        "décommentez-le dans la section alerts, sous les noms critical_days et warning_days"
    ) in comments
    assert "# alert_thresholds_days: [30, 60, 90]" in comments, "the value kept as a comment is data, not a text"
    texts = {line for line in _comment_lines(english) if not re.match(r"# [a-z_]+: ", line)}  # not values
    assert len(texts) > 5 and not texts & set(comments), "no comment left in English"


def test_every_comment_of_the_layout_is_written_in_french():
    from upgrader import i18n

    settings = {
        "alerts": {"critical_days": 7, "warning_days": 30},
        "lock": {"timeout_minutes": 2, "heartbeat_interval_seconds": 30},
        "organization": {"roles": ["Cariste"], "workspaces": ["Quai"]},
    }
    english = render_yaml(settings)
    i18n.use("fr")
    french = render_yaml(settings)
    assert _data_lines(french) == _data_lines(english) and yaml.safe_load(french) == settings
    assert len(_comment_lines(french)) == len(_comment_lines(english)) == 12
    assert not set(_comment_lines(french)) & set(_comment_lines(english))
    assert "  # Alerte critique quand l'échéance est dans ce nombre de jours ou moins\n  critical_days: 7\n" in french
    assert (
        "# ALERTES\u00a0: quand signaler les CACES, visites médicales et formations qui arrivent à échéance" in french
    )
    assert yaml.safe_load(render_yaml({}, None)) == {} and "Aucun paramètre propre" in render_yaml({}, None)


def test_the_upgrader_reads_its_french_file_as_its_english_one(install, capsys):
    """Nothing recognises a file by its comments: a second run, in either language, finds the same."""
    sites = {language: _upgraded_in(install, language) for language in ("fr", "en")}
    written = {language: (root / "config.yaml").read_bytes() for language, root in sites.items()}
    capsys.readouterr()
    for language in ("fr", "en"):
        screens = {}
        for written_in, root in sites.items():
            assert main(["--yes", "--data-dir", str(root), "--lang", language]) == 0
            screens[written_in] = capsys.readouterr().out.replace(str(root), "<ROOT>")
            assert (root / "config.yaml").read_bytes() == written[written_in], "left as it is"
            plan = plan_config(root / "config.yaml", 8)
            assert not plan.changes and plan.after == yaml.safe_load(written["en"])
        assert screens["fr"] == screens["en"]


def test_a_french_file_upgraded_again_later_becomes_the_file_an_english_one_becomes(install, capsys):
    """g2 -> g5 writes config.yaml (in the run's language); g5 -> g8 rewrites it from its settings
    alone (the latest default roles differ), so the language of the first run leaves no trace."""
    finished = {}
    for first in ("fr", "en"):
        root = install(2, f"first-{first}")
        (root / "config.json").write_text('{"alerts": {"critical_days": 5, "warning_days": 20}}', encoding="utf-8")
        assert main(["--yes", "--data-dir", str(root), "--to-version", "g5", "--lang", first]) == 0
        assert ("Configuration de Wareflow EMS" in (root / "config.yaml").read_text(encoding="utf-8")) == (
            first == "fr"
        )
        assert main(["--yes", "--data-dir", str(root), "--lang", "en"]) == 0
        finished[first] = (root / "config.yaml").read_bytes()
    capsys.readouterr()
    assert finished["fr"] == finished["en"]
    assert b"# Wareflow EMS configuration" in finished["en"] and b"\n  roles:\n" in finished["en"], "rewritten"


def test_a_bad_settings_file_is_refused_in_french_with_every_problem(install, capsys):
    root = install(2)
    (root / "config.json").write_text(
        '{"alerts": {"critical_days": 40, "warning_days": 30}, "lock": {"timeout_minutes": 0}}', encoding="utf-8"
    )
    before = file_digests(root)
    assert main(["--yes", "--data-dir", str(root), "--lang", "fr"]) == errors.EXIT_BAD_CONFIG
    err = capsys.readouterr().err
    assert "Le fichier de paramètres config.json est inutilisable\u00a0: ligne 1, colonne" in err
    assert "lock.timeout_minutes doit être un nombre entier supérieur à 0, pas 0" in err, "the other problem too"
    assert "alerts.critical_days (40) ne doit pas dépasser alerts.warning_days (30)" in err
    assert "fichier\u00a0: " in err and "Rien n'a été modifié" in err
    assert file_digests(root) == before


def test_a_refusal_keeps_every_problem_in_english_for_the_log_and_json(tmp_path):
    from upgrader import i18n

    i18n.use("fr")
    path = tmp_path / "config.yaml"
    path.write_bytes(b"alerts:\n  critical_days: 40\n  warning_days: 30\nlock:\n  timeout_minutes: 0\n")
    with pytest.raises(BadConfig) as refusal:
        plan_config(path, 8)
    error = refusal.value
    assert error.message.startswith("The settings file config.yaml cannot be used: line 5, column 3: lock.")
    assert error.details == [
        "alerts.critical_days (40) must not be more than alerts.warning_days (30)",
        f"file: {path}",
    ]
    message, details, _advice = error.shown()
    assert message.startswith("Le fichier de paramètres config.yaml est inutilisable\u00a0: ligne 5, colonne 3\u00a0:")
    assert details == [
        "alerts.critical_days (40) ne doit pas dépasser alerts.warning_days (30)",
        f"fichier\u00a0: {path}",
    ]


@pytest.mark.parametrize(
    ("content", "english", "french"),
    [
        (b'{"alerts": {"critical_days": 7 "warning_days": 30}}', "Expecting ',' delimiter", "une virgule est attendue"),
        (
            b'{"lock": {"timeout_minutes": "' + b"9" * 60 + b'"}}',
            "'" + "9" * 19 + "...(62 characters)",
            "(62 caractères)",
        ),
    ],
)
def test_the_problem_itself_is_in_french_and_stays_english_for_the_log(tmp_path, content, english, french):
    from upgrader import i18n

    path = tmp_path / "config.json"
    path.write_bytes(content)
    i18n.use("fr")
    with pytest.raises(BadConfig) as refusal:
        plan_config(path, 8)
    assert english in refusal.value.message and french not in refusal.value.message
    assert french in refusal.value.shown()[0] and english not in refusal.value.shown()[0]
