#!/usr/bin/env python3
"""Writes the README's configuration reference from the daemons' own click options.

    python scripts/cli_reference.py           rewrite the tables between the README's markers
    python scripts/cli_reference.py --check   exit 1 if the README is out of date (a test runs this)

The tables are the flags' single source of truth made readable; the charts' drift test keeps the Helm
values in step with the same options.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click
import click._utils

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
COMMANDS = ("agent", "server")


def table(name: str) -> str:
    """A markdown table of one subcommand's options: flag, environment variable, default, meaning."""
    sys.path.insert(0, str(ROOT / "src"))
    from kubenetmon.cli import main  # noqa: PLC0415 - imported after the path is set

    command = main.get_command(click.Context(main), name)
    assert command is not None
    lines = ["| Flag | Environment variable | Default | Meaning |", "|---|---|---|---|"]
    for param in command.params:
        if not isinstance(param, click.Option) or param.hidden or "--help" in param.opts:
            continue
        flags = " / ".join(f"`{opt}`" for opt in [*param.opts, *param.secondary_opts])
        if param.multiple:
            flags += " (repeatable)"
        env = f"`{param.envvar}`" if isinstance(param.envvar, str) else ""
        default_text = _default(param)
        meaning = (param.help or "").replace("|", "\\|")
        lines.append(f"| {flags} | {env} | {default_text} | {meaning} |")
    return "\n".join(lines)


def _default(param: click.Option) -> str:
    if param.is_flag and param.secondary_opts:
        return f"`{param.opts[0] if param.default else param.secondary_opts[0]}`"
    # click marks "no default" with a sentinel object; booleans off and empty values read as no default.
    if isinstance(param.default, click._utils.Sentinel) or param.default in (None, (), "", False):
        return ""
    return f"`{param.default}`"


def rendered(text: str) -> str:
    """The README text with every marked table regenerated."""
    for name in COMMANDS:
        pattern = re.compile(
            rf"(<!-- cli-reference:{name} -->\n)(?:.*?\n)?(<!-- /cli-reference:{name} -->)", re.DOTALL
        )
        if not pattern.search(text):
            raise SystemExit(f"README.md has no <!-- cli-reference:{name} --> markers")
        text = pattern.sub(lambda m, n=name: m.group(1) + table(n) + "\n" + m.group(2), text)
    return text


def main() -> int:
    current = README.read_text()
    fresh = rendered(current)
    if "--check" in sys.argv[1:]:
        if fresh != current:
            print("README.md configuration reference is out of date: run python scripts/cli_reference.py")
            return 1
        return 0
    README.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
