"""search() and auto_detect_backend() take the places as one Where; a stray keyword is refused."""

from __future__ import annotations

from typing import Any

import pytest

from kstlib.ops.discovery import Where, auto_detect_backend, search


@pytest.mark.parametrize("find", [search, auto_detect_backend])
def test_a_keyword_that_names_no_place_is_refused_before_any_search(find: Any) -> None:
    with pytest.raises(TypeError, match=r"got unexpected keywords: \['socket'\]"):
        find("bot", socket="kstlib-doc")


def test_where_names_the_four_place_keywords() -> None:
    assert sorted(Where.__annotations__) == ["base_url", "runtime", "socket_name", "socket_path"]
