"""Node readiness checks: can this namespace's conntrack table be metered, and what to do if not.

The agent runs them at start (with fixing allowed) and logs one line per problem; `kubenetmon doctor`
prints the same results as a table or JSON.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass

from kubenetmon.conntrack import netlink, netns, sysctl
from kubenetmon.conntrack.dump import TableReader
from kubenetmon.errors import ConntrackError

SAMPLE_ENTRIES = 2000
ENABLE_RULE = (
    "nft 'add table inet kubenetmon; add chain inet kubenetmon track; "
    "add rule inet kubenetmon track ct state new'"
)


class Status(enum.StrEnum):
    """Outcome of one check."""

    OK = "ok"
    FIXED = "fixed"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check: its name, outcome, what was found and, unless OK, what to do."""

    name: str
    status: Status
    detail: str
    remedy: str = ""

    def log_line(self) -> str:
        """The single log line for this result."""
        return f"{self.name}: {self.detail}" + (f"; {self.remedy}" if self.remedy else "")


def run_checks(namespace: str | None, fix: bool) -> list[CheckResult]:
    """All checks, in order; `fix` lets the knob checks set the sysctls they find wrong."""
    results = [_knob(knob, namespace, fix) for knob in sysctl.NEEDED]
    results.append(_table_usage(namespace))
    results.append(_counters(namespace))
    return results


def _knob(knob: sysctl.Knob, namespace: str | None, fix: bool) -> CheckResult:
    value = sysctl.read(knob.name, namespace)
    if value is None:
        return CheckResult(
            knob.name,
            Status.FAIL,
            "sysctl missing: conntrack is not available in this kernel",
            "load nf_conntrack (modprobe nf_conntrack_netlink) or use a kernel with CONFIG_NF_CONNTRACK",
        )
    if value == knob.wanted:
        return CheckResult(knob.name, Status.OK, f"{knob.name}={value}")
    if fix:
        try:
            sysctl.write(knob.name, knob.wanted, namespace)
        except OSError as exc:
            return CheckResult(
                knob.name,
                Status.FAIL,
                f"{knob.name}={value} and setting it failed ({exc.strerror}): {knob.why}",
                f"run `{sysctl.command(knob)}` on the node, or give the agent CAP_NET_ADMIN",
            )
        return CheckResult(knob.name, Status.FIXED, f"{knob.name} was {value}, set to {knob.wanted}")
    return CheckResult(
        knob.name, Status.FAIL, f"{knob.name}={value}: {knob.why}", f"run `{sysctl.command(knob)}`"
    )


def _table_usage(namespace: str | None) -> CheckResult:
    count = sysctl.read("nf_conntrack_count", namespace) or 0
    limit = sysctl.read("nf_conntrack_max", namespace) or 0
    if count == 0:
        return CheckResult(
            "conntrack active",
            Status.WARN,
            "the table is empty: no traffic yet, or no rule in this namespace uses conntrack "
            "(the kernel tracks a namespace only once a rule needs it)",
            f"if traffic flows, add a conntrack-using rule, e.g. {ENABLE_RULE}",
        )
    if limit and count >= 0.9 * limit:
        return CheckResult(
            "conntrack active",
            Status.WARN,
            f"{count} of {limit} entries in use: new flows may be dropped",
            "raise net.netfilter.nf_conntrack_max in the host's root namespace",
        )
    return CheckResult("conntrack active", Status.OK, f"{count} entries (limit {limit})")


def _counters(namespace: str | None) -> CheckResult:
    try:
        reader = TableReader(netns.run_in(namespace, netlink.open_socket))
    except (OSError, ConntrackError) as exc:
        return CheckResult(
            "ctnetlink",
            Status.FAIL,
            f"cannot open a ctnetlink socket: {exc}",
            "run the agent as root or with CAP_NET_ADMIN in the node's network namespace",
        )
    try:
        sample = list(itertools.islice(reader.entries(), SAMPLE_ENTRIES))
    except (OSError, ConntrackError) as exc:
        return CheckResult("ctnetlink", Status.FAIL, f"conntrack dump failed: {exc}", "needs CAP_NET_ADMIN")
    finally:
        reader.close()
    without = sum(not entry.has_counters for entry in sample)
    if not sample:
        return CheckResult("counters", Status.OK, "no entries to sample yet")
    if without == len(sample):
        return CheckResult(
            "counters",
            Status.FAIL,
            f"none of {len(sample)} sampled entries has byte counters (created while nf_conntrack_acct=0)",
            "set nf_conntrack_acct=1; only flows created after that are counted",
        )
    if without:
        return CheckResult(
            "counters",
            Status.WARN,
            f"{without} of {len(sample)} sampled entries have no counters and will never be counted "
            "(created while nf_conntrack_acct=0)",
            "nothing to do: they age out; new flows are counted",
        )
    return CheckResult("counters", Status.OK, f"all {len(sample)} sampled entries have byte counters")
