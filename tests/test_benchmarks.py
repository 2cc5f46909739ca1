"""Every benchmark `make bench` lists can be started: it takes its arguments from the dispatcher.

The benchmarks themselves run on demand (they take minutes and need a quiet machine); this only checks
that each one's entry point parses `--help` as `python -m benchmarks NAME --help` would call it.
"""

from __future__ import annotations

import importlib

import pytest

from benchmarks.__main__ import BENCHMARKS


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_each_benchmark_answers_help_through_the_dispatcher(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    module = importlib.import_module(BENCHMARKS[name][0])
    with pytest.raises(SystemExit) as exited:
        module.main(["--help"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("usage: ")
