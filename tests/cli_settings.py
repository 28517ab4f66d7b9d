"""What ``raynas search ARGV`` would run, without running it: shared by the preset tests."""
from __future__ import annotations

import pytest

from raynas import cli
from raynas.experiment import SearchSettings


def cli_search_settings(monkeypatch: pytest.MonkeyPatch, *argv: str) -> SearchSettings:
    """The checked SearchSettings of ``raynas search ARGV`` (run_search replaced by a recorder)."""
    seen = []

    def record(settings, resume=None):
        seen.append(settings.check())
        raise RuntimeError("recorded")

    monkeypatch.setattr("raynas.experiment.run_search", record)
    with pytest.raises(RuntimeError, match="recorded"):
        cli.main(["search", *argv])
    return seen[0]
