"""Every benchmark command's --help explains every flag (the CLI rule of tests/test_cli.py)."""

import argparse
from pathlib import Path

import pytest

from tests.helpers import load_script

SCRIPTS = sorted(p.name for p in (Path(__file__).resolve().parents[1] / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_benchmark_flag_is_explained(script, monkeypatch):
    parsers = []

    def stop_at_parsing(self, args=None, namespace=None):
        parsers.append(self)
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", stop_at_parsing)
    with pytest.raises(SystemExit):
        load_script(f"benchmarks/{script}").main([])
    assert parsers, f"{script} parsed no arguments"
    undocumented = [a.option_strings or [a.dest] for a in parsers[0]._actions if not a.help]
    assert not undocumented, f"{script}: flags without help: {undocumented}"
