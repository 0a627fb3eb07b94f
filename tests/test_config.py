"""kstlib.conf.yml: parsing, validation messages, lookup order, from_config. No engine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kstlib.ops.config import (
    CONFIG_FILENAME,
    OpsConfig,
    config_candidates,
    find_config_file,
    load_config,
    parse_config,
)
from kstlib.ops.exceptions import OpsError, SessionConfigError
from kstlib.ops.manager import SessionConfigError as ManagerSessionConfigError
from kstlib.ops.manager import SessionManager
from kstlib.ops.models import BackendType

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "kstlib.conf.yml"
SRC = "/etc/kstlib/kstlib.conf.yml"


def parse(text: str) -> OpsConfig:
    return parse_config(text, source=SRC)


def error_of(text: str) -> SessionConfigError:
    with pytest.raises(SessionConfigError) as info:
        parse(text)
    return info.value


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No config anywhere: empty cwd, HOME and XDG_CONFIG_HOME in tmp, no $KSTLIB_CONFIG."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("KSTLIB_CONFIG", raising=False)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- parsing what is valid ---------------------------------------------------------------


def test_full_session_is_parsed_into_a_session_config() -> None:
    cfg = parse(
        """
ops:
  default_backend: tmux
  tmux_socket: work
  sessions:
    bot:
      command: python bot.py
      working_dir: /srv/bot
      env: {MODE: fast, RETRIES: 3}
    web:
      backend: container
      runtime: docker
      image: nginx:1.27
      command: [nginx, -g, "daemon off;"]
      ports: ["127.0.0.1:8080:80"]
      volumes: ["/srv/site:/usr/share/nginx/html:ro"]
      restart: unless-stopped
      memory: 256m
      cpus: 0.5
"""
    )
    bot, web = cfg.session("bot"), cfg.session("web")
    assert bot.backend is BackendType.TMUX
    assert bot.command == "python bot.py"
    assert bot.working_dir == "/srv/bot"
    assert bot.env == {"MODE": "fast", "RETRIES": "3"}
    assert bot.socket_name == "work"  # ops.tmux_socket is the default
    assert web.backend is BackendType.CONTAINER
    assert web.runtime == "docker"
    assert web.command == ("nginx", "-g", "daemon off;")
    assert web.ports == ("127.0.0.1:8080:80",)
    assert (web.restart, web.memory, web.cpus) == ("unless-stopped", "256m", 0.5)
    assert web.socket_name is None  # tmux defaults do not leak into containers
    assert cfg.path == Path(SRC)


def test_docker_and_podman_as_backend_mean_container_on_that_runtime() -> None:
    cfg = parse("ops: {default_backend: podman, sessions: {a: {image: alpine}, "
                "b: {backend: docker, image: alpine}}}")
    assert cfg.default_backend is BackendType.CONTAINER
    assert cfg.container_runtime == "podman"
    assert (cfg.session("a").backend, cfg.session("a").runtime) == (BackendType.CONTAINER, "podman")
    assert cfg.session("b").runtime == "docker"


def test_container_runtime_default_and_auto() -> None:
    cfg = parse("ops: {container_runtime: docker, sessions: {a: {backend: container, image: x}}}")
    assert cfg.session("a").runtime == "docker"
    assert parse("ops: {container_runtime: auto}").container_runtime is None


def test_log_volume_is_one_more_volume_and_relative_paths_follow_the_file() -> None:
    cfg = parse(
        "ops:\n  sessions:\n    web:\n      backend: container\n      image: alpine\n"
        "      volumes: ['./data:/data', 'cache:/cache', '/abs:/abs:ro']\n"
        "      log_volume: ../logs:/var/log/app\n"
    )
    assert cfg.session("web").volumes == (
        "/etc/kstlib/data:/data",
        "cache:/cache",
        "/abs:/abs:ro",
        "/etc/logs:/var/log/app",
    )


def test_tmux_working_dir_resolves_against_the_file_container_one_does_not() -> None:
    cfg = parse("ops: {sessions: {t: {working_dir: ./run}, "
                "c: {backend: docker, image: alpine, working_dir: app}}}")
    assert cfg.session("t").working_dir == "/etc/kstlib/run"
    assert cfg.session("c").working_dir == "app"


def test_tilde_is_expanded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/alice")
    cfg = parse("ops: {sessions: {t: {working_dir: ~/src}}}")
    assert cfg.session("t").working_dir == "/home/alice/src"


def test_yaml_conveniences_numbers_in_argv_and_unquoted_restart_no() -> None:
    cfg = parse("ops: {sessions: {a: {command: [sleep, 30], backend: docker, image: x, "
                "restart: no, memory: 1024}}}")
    assert cfg.session("a").command == ("sleep", "30")
    assert cfg.session("a").restart == "no"
    assert cfg.session("a").memory == "1024"


def test_engines_give_base_url_and_runtime() -> None:
    cfg = parse(
        "ops:\n  engines:\n    remote: {base_url: 'tcp://10.0.0.5:2375', runtime: docker}\n"
        "    plain: unix:///run/podman/podman.sock\n"
        "  sessions:\n    a: {backend: container, image: x, engine: remote}\n"
    )
    assert cfg.engines["plain"].base_url == "unix:///run/podman/podman.sock"
    assert cfg.engines["plain"].runtime is None
    a = cfg.session("a")
    assert (a.base_url, a.runtime) == ("tcp://10.0.0.5:2375", "docker")


def test_other_top_level_sections_are_ignored() -> None:
    cfg = parse("logger: {level: INFO}\nsecrets: [1, 2]\nops: {sessions: {a: {}}}\n")
    assert list(cfg.sessions) == ["a"]


@pytest.mark.parametrize("text", ["", "# only a comment\n", "logger: {}\n", "ops:\n",
                                  "ops: {sessions: }"])
def test_empty_configs(text: str) -> None:
    assert parse(text).sessions == {}


def test_session_with_no_body_is_a_default_tmux_session() -> None:
    cfg = parse("ops:\n  sessions:\n    shell:\n")
    assert cfg.session("shell").command is None
    assert cfg.session("shell").backend is BackendType.TMUX


def test_example_config_file_is_valid() -> None:
    cfg = load_config(EXAMPLE)
    assert set(cfg.sessions) == {"bot", "worker", "web", "indexer"}
    assert cfg.tmux_binary == "tmux"
    assert cfg.session("bot").socket_name == "bots"
    assert cfg.session("worker").socket_name == "kstlib"
    web = cfg.session("web")
    assert web.volumes[-1] == f"{EXAMPLE.parent}/logs/web:/var/log/nginx"
    indexer = cfg.session("indexer")
    assert (indexer.runtime, indexer.base_url) == ("podman", "unix:///run/podman/podman.sock")


# -- errors name the file, the line, the session and the key -------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ops:\n  sessions:\n    bot:\n      colour: blue\n",
         f"{SRC}:4: ops.sessions.bot.colour: unknown key"),
        ("ops:\n  default_backnd: tmux\n",
         f"{SRC}:2: ops.default_backnd: unknown key (did you mean 'default_backend'?"),
        ("ops:\n  sessions:\n    bot:\n      env:\n        MODE: x\n        1BAD: y\n",
         f"{SRC}:4: ops.sessions.bot.env: key '1BAD' must match"),
        ("ops:\n  sessions:\n    bot:\n      env:\n        DEBUG: yes\n",
         f"{SRC}:5: ops.sessions.bot.env[DEBUG]: expected a string, got bool (YAML reads"),
        ("ops:\n  sessions:\n    bot:\n      backend: docker\n      image: x\n"
         "      ports:\n        - 22:22\n",
         f"{SRC}:6: ops.sessions.bot.ports: expected a string, got int (YAML reads an "
         "unquoted mapping such as 22:22 as a base-60 number"),
        ("ops:\n  sessions:\n    bot:\n      backend: lxc\n",
         f"{SRC}:4: ops.sessions.bot.backend: 'lxc' is not a backend (choose from tmux, "
         "container, docker, podman, swarm)"),
        ("ops:\n  sessions:\n    9bot: {}\n",
         f"{SRC}:3: ops.sessions.9bot: invalid session name: '9bot' must start with a letter"),
        ("ops:\n  sessions:\n    web:\n      backend: container\n",
         f"{SRC}:3: ops.sessions.web.image: is required for a container session"),
        ("ops:\n  sessions:\n    web: {backend: docker, image: Alpine}\n",
         f"{SRC}:3: ops.sessions.web.image: 'Alpine' is not a valid image reference"),
        ("ops:\n  sessions:\n    web: {backend: docker, image: x, volumes: [data]}\n",
         f"{SRC}:3: ops.sessions.web.volumes: 'data' must be host:container"),
        ("ops:\n  sessions:\n    web: {backend: docker, image: x, log_volume: logs}\n",
         f"{SRC}:3: ops.sessions.web.log_volume: 'logs' must be host:container"),
        ("ops:\n  sessions:\n    web: {backend: docker, image: x, volumes: ./a:/a}\n",
         f"{SRC}:3: ops.sessions.web.volumes: expected a list of strings, got str"),
        ("ops:\n  sessions:\n    a:\n      command: {run: x}\n",
         f"{SRC}:4: ops.sessions.a.command: expected a string or a list of strings, got dict"),
        ("ops:\n  sessions:\n    a: {backend: docker, image: x, restart: sometimes}\n",
         f"{SRC}:3: ops.sessions.a.restart: 'sometimes' must be no, always"),
        ("ops:\n  sessions:\n    a: {backend: docker, image: x, cpus: lots}\n",
         f"{SRC}:3: ops.sessions.a.cpus: 'lots' must be a number of CPUs"),
        ("ops:\n  sessions:\n    a: {init: maybe}\n",
         f"{SRC}:3: ops.sessions.a.init: expected true or false, got str"),
        ("ops:\n  sessions:\n    a: {backend: docker, image: x, runtime: podman}\n",
         f"{SRC}:3: ops.sessions.a.runtime: 'podman' contradicts backend 'docker'"),
        ("ops:\n  sessions:\n    a: {backend: container, image: x, engine: nope}\n",
         f"{SRC}:3: ops.sessions.a.engine: 'nope' is not an engine (known: none defined"),
        ("ops:\n  engines: {e: tcp://h:1}\n  sessions:\n"
         "    a: {backend: container, image: x, engine: e, base_url: tcp://h:2}\n",
         f"{SRC}:4: ops.sessions.a.engine: give either engine or base_url, not both"),
        ("ops:\n  engines:\n    e: {runtime: docker}\n",
         f"{SRC}:3: ops.engines.e.base_url: is required"),
        ("ops:\n  engines:\n    e: {base_url: x, colour: red}\n",
         f"{SRC}:3: ops.engines.e.colour: unknown key"),
        ("ops:\n  tmux_socket: a/b\n",
         f"{SRC}:2: ops.tmux_socket: 'a/b' must be a short name without '/'"),
        ("ops:\n  container_runtime: lxc\n",
         f"{SRC}:2: ops.container_runtime: 'lxc' is not docker or podman"),
        ("ops:\n  default_backend: docker\n  container_runtime: podman\n",
         f"{SRC}:3: ops.container_runtime: 'podman' contradicts default_backend 'docker'"),
        ("ops:\n  tmux_binary: 12\n",
         f"{SRC}:2: ops.tmux_binary: expected a string, got int"),
        ("ops: [a]\n", f"{SRC}:1: ops: expected a mapping, got list"),
        ("ops:\n  sessions: [a, b]\n", f"{SRC}:2: ops.sessions: expected a mapping, got list"),
        ("ops:\n  sessions:\n    a: [x]\n", f"{SRC}:3: ops.sessions.a: expected a mapping, got list"),
        ("- just\n- a list\n", f"{SRC}: (top level): expected a mapping with an 'ops' key"),
    ],
)
def test_invalid_config_messages(text: str, expected: str) -> None:
    err = error_of(text)
    assert str(err).startswith(expected), str(err)
    assert "\n" not in str(err)
    assert isinstance(err, ValueError)
    assert isinstance(err, OpsError)


def test_error_field_is_the_key_path() -> None:
    err = error_of("ops:\n  sessions:\n    bot:\n      env: {1BAD: x}\n")
    assert err.field == "ops.sessions.bot.env"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ops:\n  sessions:\n    bot: [\n", f"{SRC}:4: invalid YAML: "),
        ("ops:\n\tsessions: {}\n", f"{SRC}:2: invalid YAML: "),
        ("ops: {a: 1\n", f"{SRC}:2: invalid YAML: "),
        ("ops:\n  sessions:\n    bot: {}\n    bot: {}\n",
         f"{SRC}:4: invalid YAML: duplicate key 'bot' (first on line 3)"),
    ],
)
def test_invalid_yaml_is_a_config_error_with_the_line(text: str, expected: str) -> None:
    err = error_of(text)
    assert str(err).startswith(expected), str(err)
    assert "\n" not in str(err)


def test_yaml_tags_that_run_code_are_refused() -> None:
    err = error_of("ops: !!python/object/apply:os.system ['echo pwned']\n")
    assert "invalid YAML" in str(err)


def test_session_lookup_error_lists_what_is_defined() -> None:
    cfg = parse("ops: {sessions: {a: {}, b: {}}}")
    with pytest.raises(SessionConfigError, match=r"session 'zz' is not defined: it is not in "
                       r"/etc/kstlib/kstlib.conf.yml \(defined there: a, b\)"):
        cfg.session("zz")


# -- finding the file ---------------------------------------------------------------------


def test_no_config_anywhere_is_an_empty_config(isolated: Path) -> None:
    assert find_config_file() is None
    cfg = load_config()
    assert cfg == OpsConfig()
    with pytest.raises(SessionConfigError, match="no config file found"):
        cfg.session("bot")


def test_lookup_order(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    xdg = write(isolated / "xdg" / "kstlib" / CONFIG_FILENAME, "ops: {sessions: {x: {}}}")
    assert find_config_file() == xdg
    cwd = write(Path.cwd() / CONFIG_FILENAME, "ops: {sessions: {c: {}}}")
    assert find_config_file() == cwd
    env = write(isolated / "env.yml", "ops: {sessions: {e: {}}}")
    monkeypatch.setenv("KSTLIB_CONFIG", str(env))
    assert find_config_file() == env
    explicit = write(isolated / "explicit.yml", "ops: {sessions: {p: {}}}")
    assert find_config_file(explicit) == explicit
    assert list(load_config(explicit).sessions) == ["p"]
    assert list(load_config().sessions) == ["e"]


def test_xdg_default_is_home_dot_config(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME")
    found = write(isolated / "home" / ".config" / "kstlib" / CONFIG_FILENAME, "ops: {}")
    assert find_config_file() == found
    # A relative XDG_CONFIG_HOME is invalid per the XDG spec and ignored.
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    assert config_candidates()[1] == found
    assert find_config_file() == found


def test_asked_for_file_must_exist(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SessionConfigError, match=r"config file '.*missing.yml' does not exist"):
        load_config(isolated / "missing.yml")
    monkeypatch.setenv("KSTLIB_CONFIG", str(isolated / "gone.yml"))
    with pytest.raises(SessionConfigError, match=r"gone\.yml' does not exist; check --config"):
        load_config()
    with pytest.raises(SessionConfigError, match="is not a file"):
        load_config(isolated)


def test_broken_file_in_cwd_is_an_error_not_ignored(isolated: Path) -> None:
    write(Path.cwd() / CONFIG_FILENAME, "ops:\n  sessions: [\n")
    with pytest.raises(SessionConfigError, match=r"kstlib.conf.yml:\d+: invalid YAML"):
        load_config()


def test_file_that_is_not_utf8_or_too_large(isolated: Path) -> None:
    binary = isolated / "bin.yml"
    binary.write_bytes(b"ops: \xff\xfe\n")
    with pytest.raises(SessionConfigError, match="is not UTF-8 text"):
        load_config(binary)
    big = isolated / "big.yml"
    big.write_text("#" * (1024 * 1024 + 1))
    with pytest.raises(SessionConfigError, match="more than the 1048576 allowed"):
        load_config(big)


def test_relative_paths_follow_the_file_not_the_cwd(isolated: Path) -> None:
    # (tmux_binary is no path to resolve: a relative one is refused, see test_config_hostile)
    path = write(isolated / "proj" / CONFIG_FILENAME,
                 "ops: {sessions: {a: {working_dir: .}}}")
    cfg = load_config(path)
    assert cfg.session("a").working_dir == str(isolated / "proj")


# -- SessionManager.from_config -----------------------------------------------------------


def test_from_config_builds_the_manager(isolated: Path) -> None:
    path = write(isolated / "c.yml",
                 "ops:\n  tmux_binary: /usr/bin/tmux\n  sessions:\n"
                 "    bot: {command: 'sleep 30', env: {A: '1'}, socket_name: bots}\n"
                 "    web: {backend: podman, image: 'alpine:3.20', ports: ['8080:80']}\n")
    bot = SessionManager.from_config("bot", path=path)
    assert bot.backend is BackendType.TMUX
    assert (bot.config.command, bot.config.env, bot.config.socket_name) == (
        "sleep 30", {"A": "1"}, "bots")
    assert bot.runner.tmux_bin == "/usr/bin/tmux"  # type: ignore[attr-defined]
    web = SessionManager.from_config("web", path=path)
    assert (web.backend, web.config.runtime, web.config.ports) == (
        BackendType.CONTAINER, "podman", ("8080:80",))


def test_from_config_overrides_and_default_lookup(isolated: Path) -> None:
    write(Path.cwd() / CONFIG_FILENAME, "ops: {sessions: {bot: {command: 'sleep 30'}}}")
    bot = SessionManager.from_config("bot", command="sleep 5", socket_name="other")
    assert (bot.config.command, bot.config.socket_name) == ("sleep 5", "other")
    moved = SessionManager.from_config("bot", backend="container", image="alpine:3.20")
    assert moved.backend is BackendType.CONTAINER


def test_from_config_errors_are_upstream_importable(isolated: Path) -> None:
    assert ManagerSessionConfigError is SessionConfigError
    with pytest.raises(ManagerSessionConfigError, match="session 'ghost' is not defined"):
        SessionManager.from_config("ghost")
    path = write(isolated / "bad.yml", "ops: {sessions: {bot: {colour: red}}}")
    with pytest.raises(ManagerSessionConfigError, match=r"bad.yml:1: ops.sessions.bot.colour"):
        SessionManager.from_config("bot", path=os.fspath(path))


def test_every_yaml_block_of_the_config_docs_is_valid() -> None:
    import re

    doc = (EXAMPLE.parent.parent / "docs" / "config.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", doc, flags=re.S)
    assert len(blocks) >= 3
    for block in blocks:
        parse(block)
    # The complete example in the docs is the example file, verbatim.
    assert blocks[-1] == EXAMPLE.read_text()
