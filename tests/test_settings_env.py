"""Bad environment settings are one clear error naming the variable (issue 10 point 10).

Never an "unexpected ValueError/OSError" (exit 1, "this is a bug"): the CLI
exits 2 with one line that names the variable to fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kstlib.cli import main
from kstlib.ops import pytest_plugin
from kstlib.ops.exceptions import SessionConfigError


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("TMUX_TMPDIR", str(tmp_path))
    monkeypatch.delenv("KSTLIB_CONFIG", raising=False)


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert err.startswith("kstlib: error: ") and err.count("\n") == 1, err
    assert "unexpected" not in err
    return err


LIST = ("ops", "list", "-b", "tmux", "-L", "sec-settings")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("a" * 5000, "cannot be used (File name too long)"),
        ("/no/such/kstlib.conf.yml", "does not exist"),
        ("/", "is not a file"),
    ],
)
def test_a_bad_kstlib_config_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str, problem: str
) -> None:
    monkeypatch.setenv("KSTLIB_CONFIG", value)
    err = one_line_error(capsys, *LIST)
    assert err.startswith("kstlib: error: $KSTLIB_CONFIG: config file ")
    assert problem in err and len(err) < 300


def test_a_config_home_too_long_to_be_a_path_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", "/" + "x" * 5000)
    err = one_line_error(capsys, *LIST)
    assert "check $XDG_CONFIG_HOME and $HOME" in err and len(err) < 300


@pytest.mark.parametrize("value", ["yes", "true", "2"])
def test_a_bad_require_engines_setting_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("KSTLIB_REQUIRE_ENGINES", value)
    with pytest.raises(SessionConfigError, match=r"^KSTLIB_REQUIRE_ENGINES: .* must be 1") as info:
        pytest_plugin.require_engines()
    assert info.value.field == "KSTLIB_REQUIRE_ENGINES"


@pytest.mark.parametrize(("value", "required"), [("1", True), ("0", False), ("", False)])
def test_require_engines_reads_0_and_1(
    monkeypatch: pytest.MonkeyPatch, value: str, required: bool
) -> None:
    monkeypatch.setenv("KSTLIB_REQUIRE_ENGINES", value)
    assert pytest_plugin.require_engines() is required
