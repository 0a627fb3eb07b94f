"""exists() answers for the exact name only, on both engines and both of Podman's paths.

Podman answers a name with a character outside 0-9a-f through libpod's cheap
``/exists`` endpoint (such a name cannot be an id prefix); an all-hex name is
inspected and compared, since the endpoint also accepts id prefixes.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from kstlib.ops import ContainerRunner

from .test_containers import cfg, names, runner, runtime  # noqa: F401  (fixtures)


def test_exists_matches_exact_names_only(runner: ContainerRunner, names: Callable[..., str]) -> None:
    plain = names("ex")  # has '-' and letters past f: the /exists path on Podman
    runner.start(cfg(plain, ["sleep", "60"]))
    assert runner.exists(plain)
    assert not runner.exists(plain[:-2])  # a prefix of the name is another name
    assert not runner.exists(plain + "x")
    hexname = "fade" + secrets.token_hex(5)  # all hex: could be an id prefix
    runner.start(cfg(hexname, ["sleep", "60"]))
    try:
        assert runner.exists(hexname)
        assert not runner.exists(hexname[:-2])
    finally:
        runner.stop(hexname, graceful=False)
    assert not runner.exists(hexname)
    assert not runner.exists("9-not-a-container-name")  # no engine can hold it: False, no call
