"""SessionConfigError carries its problem as a field: nobody parses messages."""

from __future__ import annotations

import pickle

import pytest

from kstlib.ops.exceptions import SessionConfigError
from kstlib.ops.validators import config_error


def test_config_error_keeps_field_and_problem_apart() -> None:
    err = config_error("ports", "'x: y' is not a port")
    assert str(err) == "ports: 'x: y' is not a port"
    assert (err.field, err.problem) == ("ports", "'x: y' is not a port")


def test_problem_defaults_to_the_message_without_its_field() -> None:
    assert SessionConfigError("name: bad: very", field="name").problem == "bad: very"
    assert SessionConfigError("something else: bad", field="name").problem == (
        "something else: bad"
    )
    assert SessionConfigError("no field: here").problem == "no field: here"


def test_problem_survives_pickle() -> None:
    err = SessionConfigError("cfg.yml:3: ops.pull: nope", field="ops.pull", problem="nope")
    back = pickle.loads(pickle.dumps(err))
    assert (back.message, back.field, back.problem) == (err.message, "ops.pull", "nope")


def test_the_cli_rewords_an_option_from_the_field_not_the_message() -> None:
    from kstlib.cli.places import option_error

    # A problem that itself holds ": " stays whole.
    err = option_error(config_error("cwd", "'a: b' is not a directory"), "--cwd")
    assert str(err) == "--cwd: 'a: b' is not a directory"
    assert err.problem == "'a: b' is not a directory"


def test_config_file_errors_carry_the_validator_problem(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from kstlib.ops.config import load_config

    path = tmp_path / "kstlib.conf.yml"
    path.write_text("ops:\n  pull: sometimes\n")
    with pytest.raises(SessionConfigError) as info:
        load_config(path)
    assert info.value.field == "ops.pull"
    assert info.value.problem == "'sometimes' must be missing, always or never"
