"""The README is the front door: its configuration reference must be what the daemons accept."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_configuration_reference_matches_the_daemons_flags() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/cli_reference.py", "--check"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_readme_names_the_test_command_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "sudo make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
