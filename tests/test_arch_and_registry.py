"""The Arch value and the space registry (what every space must do: test_space_contract.py)."""
from __future__ import annotations

import pytest

from raynas import Arch
from search_spaces import get_space, register_space
from search_spaces.nb201 import NB201Space


def test_arch_equality_follows_the_canonical_key_and_text_is_kept():
    a = Arch(space="s", text="a", key="k", spec=("a",))
    b = Arch(space="s", text="b", key="k", spec=("b",))
    c = Arch(space="t", text="a", key="k", spec=("a",))
    assert a == b and hash(a) == hash(b) and str(a) == "a" and str(b) == "b"
    assert a != c
    assert len({a, b, c}) == 2


def test_unknown_space_lists_the_registered_ones():
    with pytest.raises(ValueError, match=r"unknown search space 'nb999'.*'nb201'"):
        get_space("nb999")


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        register_space("nb201")(NB201Space)

