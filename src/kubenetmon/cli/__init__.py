"""The `kubenetmon` command. Each subcommand lives in its own module and is imported only when used.

Subcommands parse flags, build their component's settings and call its `run()`; they hold no logic.
Every option can also be set through an environment variable named `KUBENETMON_<OPTION>` (shown in
`--help`), so charts and shells configure the same fields.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from kubenetmon import __version__, logs

if TYPE_CHECKING:
    from kubenetmon.transport.tls import TlsSettings

# name -> (module, one-line help shown even before the module is imported)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "agent": (
        "kubenetmon.cli.agent",
        "Meter this node's conntrack table and ship per-interval flow records.",
    ),
    "server": (
        "kubenetmon.cli.server",
        "Receive agent batches, attribute them and store them in ClickHouse.",
    ),
    "doctor": ("kubenetmon.cli.doctor", "Check that this node can be metered, and say what to fix."),
    "query": ("kubenetmon.cli.query", "Run SQL against the configured store."),
    "report": ("kubenetmon.cli.report", "Ready answers: cross-zone talkers, zone matrix, cloud services."),
    "certs": ("kubenetmon.cli.certs", "Make a CA and per-node certificates for mTLS (local use)."),
    "demo": (
        "kubenetmon.cli.demo",
        "Run the whole system on a lab in network namespaces and show the result.",
    ),
    "lab": ("kubenetmon.cli.lab", "Build or tear down the network-namespace lab by hand."),
}

F = TypeVar("F", bound=Callable[..., Any])


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when that subcommand runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = SUBCOMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(entry[0])
        command = module.command
        if not isinstance(command, click.Command):
            raise TypeError(f"{entry[0]}.command is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The static one-liners keep `kubenetmon --help` fast: no subcommand module is imported for it.
        with formatter.section("Commands"):
            formatter.write_dl([(name, text) for name, (_, text) in sorted(SUBCOMMANDS.items())])


def logging_options(func: F) -> F:
    """--log-level and --log-format, shared by every subcommand that runs for a while."""
    func = option(
        "--log-format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="Log line format on stderr; json for log pipelines.",
    )(func)
    return option(
        "--log-level",
        type=click.Choice(["debug", "info", "warning", "error"]),
        default="info",
        show_default=True,
        help="Minimum level of log lines.",
    )(func)


def option(*names: str, prefix: str = "KUBENETMON_", **kwargs: Any) -> Callable[[F], F]:
    """A click option that also reads <prefix><FIRST NAME> (shown in --help), the charts' interface."""
    env = prefix + names[0].lstrip("-").split("/")[0].replace("-", "_").upper()
    return click.option(*names, envvar=env, show_envvar=True, **kwargs)


def tls_options(func: F) -> F:
    """--tls-cert, --tls-key, --tls-ca and --insecure: mutual TLS between agents and server."""
    for decorator in reversed(
        [
            option("--tls-cert", type=click.Path(path_type=Path), help="This side's certificate (PEM)."),
            option("--tls-key", type=click.Path(path_type=Path), help="Its private key (PEM)."),
            option(
                "--tls-ca",
                type=click.Path(path_type=Path),
                help="CA bundle that must have signed the other side's certificate.",
            ),
            option(
                "--insecure",
                is_flag=True,
                default=False,
                help="Plaintext and unauthenticated (logs a warning); for labs only.",
            ),
        ]
    ):
        func = decorator(func)
    return func


def tls_settings(
    tls_cert: Path | None, tls_key: Path | None, tls_ca: Path | None, insecure: bool, server_name: str = ""
) -> TlsSettings:
    """The values of `tls_options` as settings (validated by the component that uses them)."""
    from kubenetmon.transport.tls import TlsSettings  # noqa: PLC0415 - keeps `kubenetmon --help` free of grpc

    return TlsSettings(cert=tls_cert, key=tls_key, ca=tls_ca, insecure=insecure, server_name=server_name)


def setup_logging(log_level: str, log_format: str) -> None:
    """Apply the values of `logging_options`."""
    logs.configure(log_level, "json" if log_format == "json" else "text")


@click.group(
    cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110}
)
@click.version_option(__version__, prog_name="kubenetmon")
def main() -> None:
    """kubenetmon: Kubernetes network metering from conntrack to ClickHouse."""
