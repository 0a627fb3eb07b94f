"""The trust model of config files, the bounded read of a file, and what the CLI prints
(issue 21 points 3, 4, 5, 13, 14; issue 22 points 13, 17)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kstlib.cli import main
from kstlib.cli.output import dumps_json, printable, render_status_table
from kstlib.cli.starting import env_options, read_env_file
from kstlib.ops import config
from kstlib.ops.config import load_config, read_config_text
from kstlib.ops.exceptions import SessionConfigError
from kstlib.ops.models import BackendType, SessionConfig, SessionState, SessionStatus

PROJECT = (
    "ops:\n"
    "  insecure_registries: ['10.20.30.40:5000']\n"
    "  engines:\n"
    "    prod: {base_url: 'tcp://10.20.30.40:2375', runtime: docker}\n"
    "    lab: {base_url: 'ssh://ci@lab.invalid', runtime: podman}\n"
    "  sessions:\n"
    "    web:\n"
    "      backend: docker\n"
    "      image: '10.20.30.40:5000/app:1'\n"
    "      insecure_registries: ['10.20.30.41:5000']\n"
    "      registry_auth: {username: ci, password_env: AWS_SECRET_ACCESS_KEY}\n"
)


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(the project folder, now the current one; the user's own config file, not written)."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "kstlib.conf.yml").write_text(PROJECT)
    monkeypatch.chdir(project)
    monkeypatch.delenv("KSTLIB_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    own = tmp_path / "config" / "kstlib" / "kstlib.conf.yml"
    own.parent.mkdir(parents=True)
    return project, own


# -- point 3: registry settings apply from a trusted file only -------------------------------


def test_project_local_registry_settings_are_skipped_with_a_note(folders: tuple[Path, Path]) -> None:
    cfg = load_config()
    assert cfg.project_local
    assert cfg.insecure_registries == ()
    web = cfg.session("web")
    assert web.insecure_registries == () and web.registry_auth is None
    assert cfg.defaults_for("adhoc", BackendType.CONTAINER).get("insecure_registries") is None
    (note,) = cfg.notes
    for key in ("ops.insecure_registries", "ops.sessions.web.insecure_registries",
                "ops.sessions.web.registry_auth", "--config", "ops.trusted_projects"):
        assert key in note


def test_registry_settings_apply_with_config_or_a_trust_list(folders: tuple[Path, Path]) -> None:
    project, own = folders
    named = load_config("kstlib.conf.yml")
    assert named.insecure_registries == ("10.20.30.40:5000",) and not named.notes
    assert named.session("web").insecure_registries == ("10.20.30.40:5000", "10.20.30.41:5000")
    own.write_text(f"ops:\n  trusted_projects: ['{project}']\n")
    trusted = load_config()
    assert not trusted.project_local and not trusted.notes
    assert trusted.insecure_registries == ("10.20.30.40:5000",)
    assert trusted.session("web").registry_auth is not None
    assert not trusted.untrusted_endpoint("tcp://10.20.30.40:2375")


def test_the_users_own_insecure_registries_still_apply(folders: tuple[Path, Path]) -> None:
    _, own = folders
    own.write_text("ops:\n  insecure_registries: ['10.20.30.41:5000']\n")
    cfg = load_config()
    assert cfg.insecure_registries == ("10.20.30.41:5000",)
    assert cfg.session("web").insecure_registries == ("10.20.30.41:5000",)


def test_a_project_file_cannot_trust_itself(folders: tuple[Path, Path]) -> None:
    project, _ = folders
    (project / "kstlib.conf.yml").write_text(PROJECT + f"  trusted_projects: ['{project}']\n")
    cfg = load_config()
    assert cfg.project_local and cfg.insecure_registries == ()
    assert cfg.trusted_projects == ()
    assert any("ignored ops.trusted_projects" in n for n in cfg.notes)


def test_the_cli_prints_the_note_once(
    folders: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ops", "list", "-b", "tmux", "-L", "kstlib-doc-empty", "-q"]) == 0
    err = capsys.readouterr().err
    assert err.count("kstlib: note: skipped ops.insecure_registries") == 1, err


# -- point 4: the user's engines win; project-only remote engines are marked -----------------


def test_the_users_engines_win_and_project_only_remote_engines_are_untrusted(
    folders: tuple[Path, Path],
) -> None:
    _, own = folders
    own.write_text(
        "ops:\n  engines:\n    prod: {base_url: 'unix:///run/docker.sock', runtime: docker}\n"
        "  sessions:\n    web: {command: 'sleep 9'}\n"
    )
    cfg = load_config()
    assert cfg.engines["prod"].base_url == "unix:///run/docker.sock"
    assert cfg.engines["lab"].base_url == "ssh://ci@lab.invalid"  # the project's, kept
    assert cfg.session("web").backend is BackendType.TMUX  # the user's session wins too
    assert cfg.untrusted_endpoint("tcp://10.20.30.40:2375")
    assert cfg.untrusted_endpoint("ssh://ci@lab.invalid")
    assert not cfg.untrusted_endpoint("unix:///run/docker.sock")


def test_an_engine_both_files_name_is_not_untrusted(folders: tuple[Path, Path]) -> None:
    _, own = folders
    own.write_text("ops:\n  engines:\n    mine: {base_url: 'tcp://10.20.30.40:2375'}\n")
    assert not load_config().untrusted_endpoint("tcp://10.20.30.40:2375")


def test_a_bad_trust_list_names_file_and_line(folders: tuple[Path, Path]) -> None:
    _, own = folders
    own.write_text("ops:\n  trusted_projects: [src/app]\n")
    with pytest.raises(SessionConfigError, match=r"kstlib.conf.yml:2: ops.trusted_projects: "
                                                 r"'src/app' must be an absolute path"):
        load_config()


# -- point 14: one open, a bounded read -------------------------------------------------------


def test_a_file_larger_than_its_fstat_says_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.yml"
    path.write_text("# " + "x" * (config.MAX_CONFIG_BYTES + 10) + "\n")
    real_fstat = os.fstat

    def small_fstat(fd: int) -> os.stat_result:  # the file grew after the size was taken
        st = real_fstat(fd)
        return os.stat_result((st.st_mode, *st[1:6], 100, *st[7:]))

    monkeypatch.setattr(os, "fstat", small_fstat)
    with pytest.raises(SessionConfigError, match="more than the 1048576 allowed"):
        load_config(path)


def test_a_fifo_in_place_of_the_file_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "kstlib.conf.yml"
    os.mkfifo(fifo)
    with pytest.raises(SessionConfigError, match="is not a regular file"):
        read_config_text(fifo)  # a swap after the lookup: no writer, no wait


# -- issue 22 point 17: ops.sessions that is not a mapping -----------------------------------


def test_sessions_that_are_not_a_mapping_warn_and_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ops.yml"
    path.write_text("ops:\n  sessions:\n    - web\n")
    code = main(["ops", "list", "-b", "tmux", "-L", "kstlib-doc-empty", "--config", str(path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "kstlib: warning:" in err and "ops.sessions: expected a mapping, got list" in err
    assert out == "No sessions.\n"
    assert main(["ops", "status", "web", "--config", str(path)]) == 2


# -- point 5: one function for what the CLI prints --------------------------------------------

HOSTILE = "\x1b]52;c;ZWNobw==\x07\x1b]0;t\x1b\\\x1b[2J\x9b6n\x90x\x9c\x7f\u202e\r\n\t\x00"


def test_printable_leaves_no_control_character() -> None:
    shown = printable("web" + HOSTILE)
    assert all(c.isprintable() for c in shown), shown
    assert shown.startswith("web\\x1b]52;c;ZWNobw==\\x07")
    assert printable("plain, é ✓") == "plain, é ✓"


def test_tables_and_json_carry_no_raw_control_character() -> None:
    status = SessionStatus("web" + HOSTILE, SessionState.RUNNING, BackendType.CONTAINER,
                           image="nginx" + HOSTILE, runtime="docker")
    table = render_status_table([status])
    assert all(c.isprintable() for line in table.split("\n") for c in line)
    assert table.count("\n") == 1  # a newline in a name does not make a row
    text = dumps_json(status.to_dict())
    assert all(c.isprintable() or c == "\n" for c in text)
    import json

    assert json.loads(text)["name"] == "web" + HOSTILE


# -- point 13: -e KEY and --env-file -----------------------------------------------------------


def test_env_key_alone_takes_kstlibs_value_and_e_wins_over_a_file(tmp_path: Path) -> None:
    env_file = tmp_path / "app.env"
    env_file.write_text("\ufeff# comment\nA=from-file\n  B=b=c \r\nC\n\n")
    env = env_options(["A=given", "D"], [str(env_file)], environ={"C": "c-env", "D": "d-env"})
    assert env == {"A": "given", "B": "b=c ", "C": "c-env", "D": "d-env"}


def test_env_file_errors_name_the_line_never_the_value(tmp_path: Path) -> None:
    env_file = tmp_path / "app.env"
    env_file.write_text("OK=1\nnot a key=s3cr3t-v\n")
    with pytest.raises(SessionConfigError) as info:
        read_env_file(str(env_file), {})
    assert "app.env':2:" in str(info.value) and "s3cr3t" not in str(info.value)
    env_file.write_text("MISSING\n")
    with pytest.raises(SessionConfigError, match=r"app.env':1 names a variable that is not set"):
        read_env_file(str(env_file), {})
    with pytest.raises(SessionConfigError, match="cannot be read"):
        read_env_file(str(tmp_path / "none.env"), {})


# -- issue 22 point 13: values, not a Python tuple ----------------------------------------------


def test_a_container_option_on_tmux_names_its_values_plainly() -> None:
    with pytest.raises(SessionConfigError) as info:
        SessionConfig(name="a", ports=["8080:80", "127.0.0.1:9000:90"])
    assert "ports: 8080:80, 127.0.0.1:9000:90 needs a container" in str(info.value)
    assert "(" not in str(info.value).split("needs")[0]


def test_the_library_refuses_a_project_only_remote_engine_too(folders: tuple[Path, Path]) -> None:
    project, _ = folders
    (project / "kstlib.conf.yml").write_text(
        "ops:\n  engines:\n    prod: {base_url: 'tcp://10.20.30.40:2375', runtime: docker}\n"
        "  sessions:\n    app: {image: 'app:1', engine: prod}\n"
    )
    with pytest.raises(SessionConfigError, match="a remote engine named only by a project-local"):
        load_config().manager_options("app")
    assert load_config("kstlib.conf.yml").manager_options("app")["base_url"].startswith("tcp://")
