"""DeltaTracker: absolute conntrack counters in, exact per-interval deltas out. Pure: no I/O, no clock.

The kernel's counters only grow, so the agent never zeroes them (zeroing dumps lose counts, see the
conntrack facts §4.2). It keeps the last raw counters of every live flow and reports current - previous.

Identity: the key from `parse.scan` (raw original tuple + conntrack id + zone), so a reused id with another
tuple, or the same tuple under a new id, is another flow.

Life of a key:
* seen in the baseline dump, or DESTROYed before the baseline ends (`end_baseline`): its counters so far
  are history the agent did not see, reported as a BASELINE_AT_START loss, never as traffic;
* seen in a later dump for the first time: created since the previous dump, all its counters are new;
* seen again: delta = current - previous; an idle flow costs one bytes comparison;
* missing from a dump: becomes a tombstone for `grace` seconds, because its DESTROY may still be queued or
  be redelivered; DESTROY of a tombstone yields final - previous; expiry without DESTROY is a
  VANISHED_WITHOUT_DESTROY loss (its bytes since the last dump are unknown);
* DESTROY of a live key: final - previous, then the key is finished;
* DESTROY of a never-seen key (born and gone between dumps): all of its final counters;
* finished keys are kept for `grace` seconds so that a redelivered DESTROY or a dump racing the removal
  (same key, same final counters) counts nothing; the key's start time (nf_conntrack_timestamp=1) keeps a
  new connection on the same tuple, which the kernel may give the same id, from looking like one;
* counters lower than the previous ones under the same key: a new flow, counted in full, plus a
  COUNTER_RESET loss for the old flow's unseen tail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kubenetmon.conntrack import parse
from kubenetmon.conntrack.dump import Sighting
from kubenetmon.conntrack.parse import ConntrackEntry
from kubenetmon.records import FlowRecord, LossReason, LossReport

FlowFilter = Callable[[ConntrackEntry], str | None]
"""Returns why a flow is not reported (e.g. 'loopback'), or None to report it."""


def report_everything(entry: ConntrackEntry) -> str | None:
    """A FlowFilter that keeps every flow."""
    return None


@dataclass(slots=True)
class PendingFlow:
    """One flow's deltas so far in the open interval."""

    entry: ConntrackEntry
    orig_packets: int = 0
    orig_bytes: int = 0
    reply_packets: int = 0
    reply_bytes: int = 0


@dataclass(slots=True)
class LossTally:
    """Losses of one reason in the open interval."""

    count: int = 0
    bytes: int = 0
    packets: int = 0


@dataclass(slots=True)
class TrackerStats:
    """Cumulative counts, for the daemon's metrics and for tests."""

    dumps: int = 0
    entries_seen: int = 0
    destroys_seen: int = 0
    duplicate_destroys: int = 0
    filtered: dict[str, int] = field(default_factory=dict)


class DeltaTracker:
    """Turns dumps and DESTROY events of one conntrack table into per-interval flow deltas."""

    def __init__(
        self, grace: float, accept: FlowFilter = report_everything, *, baselined: bool = False
    ) -> None:
        self._grace = grace
        self._accept = accept
        self._live: dict[bytes, bytes] = {}
        self._tombstones: dict[bytes, tuple[bytes, float]] = {}
        self._finished: dict[bytes, tuple[bytes, float]] = {}
        self._pending: dict[bytes, PendingFlow | None] = {}
        self._losses: dict[LossReason, LossTally] = {}
        self._baselining = not baselined
        self.stats = TrackerStats()

    @property
    def tracked_flows(self) -> int:
        """Flows whose previous counters are held (live plus tombstones)."""
        return len(self._live) + len(self._tombstones)

    @property
    def baselining(self) -> bool:
        """True until `end_baseline` (or `restore`)."""
        return self._baselining

    def observe_dump(self, sightings: Iterable[Sighting], now: float) -> int:
        """Apply one full dump; return its entry count. Keys missing from it become tombstones."""
        live = self._live
        # Updated in place, and an idle flow stores nothing: the sighting's fresh key and counter objects
        # die at once, so memory does not churn (and fragment) with every dump.
        unseen = set(live)
        get = live.get
        discard = unseen.discard
        changed = self._changed
        seen = 0
        for key, raw, message in sightings:
            seen += 1
            prev = get(key)
            if prev == raw:
                discard(key)
            else:
                changed(key, raw, prev, message, unseen)
        deadline = now + self._grace
        for key in unseen:
            self._tombstones[key] = (live.pop(key), deadline)
        self.stats.dumps += 1
        self.stats.entries_seen += seen
        return seen

    def _changed(
        self, key: bytes, raw: bytes, prev: bytes | None, message: memoryview, unseen: set[bytes]
    ) -> None:
        if prev is not None:
            unseen.discard(key)
        else:
            if key in self._tombstones:
                prev = self._tombstones.pop(key)[0]
            elif key in self._finished:
                if self._finished[key][0] == raw:  # a dump that raced the removal
                    return
                del self._finished[key]
            if prev is None and self._baselining:
                self._live[key] = raw
                self._lose(LossReason.BASELINE_AT_START, parse.counters(raw))
                return
        self._live[key] = raw
        self._count(key, raw, prev, message)

    def end_baseline(self) -> None:
        """Close the baseline phase: from now on an unknown key is a flow created since the last dump.

        The agent calls it after the first dump and the event drain that follows it, so a flow that
        existed before the agent and ended while the first dump ran is history too, not traffic.
        """
        self._baselining = False

    def observe_destroys(self, sightings: Iterable[Sighting], now: float) -> None:
        """Apply DESTROY events (final counters); each key is then finished."""
        for key, raw, message in sightings:
            self.stats.destroys_seen += 1
            prev = self._live.pop(key, None)
            if prev is None and key in self._tombstones:
                prev = self._tombstones.pop(key)[0]
            if prev is None and key in self._finished:
                if self._finished[key][0] == raw:
                    self.stats.duplicate_destroys += 1
                    continue
                del self._finished[key]
            self._finished[key] = (raw, now + self._grace)
            if prev is None and self._baselining:
                self._lose(LossReason.BASELINE_AT_START, parse.counters(raw))
            else:
                self._count(key, raw, prev, message)

    def expire(self, now: float) -> None:
        """Give up on tombstones whose grace is over (a loss each) and forget finished keys past theirs."""
        for key in _expired(self._tombstones, now):
            del self._tombstones[key]
            self._lose(LossReason.VANISHED_WITHOUT_DESTROY, None)
        for key in _expired(self._finished, now):
            del self._finished[key]

    def note_loss(self, reason: LossReason, count: int) -> None:
        """Record losses found outside the tracker (event overflows, malformed messages)."""
        if count:
            self._losses.setdefault(reason, LossTally()).count += count

    def close_interval(
        self, node: str, start: float, end: float
    ) -> tuple[list[FlowRecord], list[LossReport]]:
        """The records and losses of the interval [start, end]; the next interval starts empty."""
        # A pending flow always moved: `_count` creates and adds to one only for a non-zero delta.
        records = [_record(node, flow, start, end) for flow in self._pending.values() if flow is not None]
        losses = [LossReport(reason, t.count, t.bytes, t.packets) for reason, t in self._losses.items()]
        self._pending = {}
        self._losses = {}
        return records, losses

    def snapshot(self) -> tuple[dict[bytes, bytes], dict[bytes, bytes]]:
        """(live, tombstones) as key -> raw counters, for persisting across a graceful restart."""
        return dict(self._live), {key: raw for key, (raw, _) in self._tombstones.items()}

    def restore(self, live: dict[bytes, bytes], tombstones: dict[bytes, bytes], now: float) -> None:
        """Continue from a snapshot: its flows are known, so the next dump is not a baseline."""
        self._live = dict(live)
        self._tombstones = {key: (raw, now + self._grace) for key, raw in tombstones.items()}
        self._baselining = False

    def _count(self, key: bytes, raw: bytes, prev: bytes | None, message: memoryview) -> None:
        try:
            op, ob, rp, rb = parse.counters(raw)
            if prev is not None:
                pp, pb, qp, qb = parse.counters(prev)
                if op >= pp and ob >= pb and rp >= qp and rb >= qb:
                    op, ob, rp, rb = op - pp, ob - pb, rp - qp, rb - qb
                else:
                    self._lose(LossReason.COUNTER_RESET, None)
        except parse.MalformedMessage:
            self._lose(LossReason.MALFORMED_NETLINK, None)
            return
        if not (op or ob or rp or rb):
            return
        pending = self._pending
        if key in pending:
            flow = pending[key]
        else:
            flow = pending[key] = self._describe(message)
        if flow is not None:
            flow.orig_packets += op
            flow.orig_bytes += ob
            flow.reply_packets += rp
            flow.reply_bytes += rb

    def _describe(self, message: memoryview) -> PendingFlow | None:
        try:
            entry = parse.decode(message, 0, len(message))
        except parse.MalformedMessage:
            self._lose(LossReason.MALFORMED_NETLINK, None)
            return None
        reason = self._accept(entry)
        if reason is not None:
            self.stats.filtered[reason] = self.stats.filtered.get(reason, 0) + 1
            return None
        return PendingFlow(entry)

    def _lose(self, reason: LossReason, counts: tuple[int, int, int, int] | None) -> None:
        tally = self._losses.setdefault(reason, LossTally())
        tally.count += 1
        if counts is not None:
            tally.packets += counts[0] + counts[2]
            tally.bytes += counts[1] + counts[3]


def _expired(entries: dict[bytes, tuple[bytes, float]], now: float) -> list[bytes]:
    # Deadlines grow with insertion order (constant grace, monotonic now), so the expired ones lead.
    expired = []
    for key, (_, deadline) in entries.items():
        if deadline > now:
            break
        expired.append(key)
    return expired


def _record(node: str, flow: PendingFlow, start: float, end: float) -> FlowRecord:
    orig, reply = flow.entry.orig, flow.entry.reply
    return FlowRecord(
        node=node,
        proto=orig.proto,
        family=orig.family,
        orig_src=orig.src,
        orig_dst=orig.dst,
        orig_sport=orig.sport,
        orig_dport=orig.dport,
        reply_src=reply.src,
        reply_dst=reply.dst,
        reply_sport=reply.sport,
        reply_dport=reply.dport,
        orig_bytes=flow.orig_bytes,
        orig_packets=flow.orig_packets,
        reply_bytes=flow.reply_bytes,
        reply_packets=flow.reply_packets,
        start=start,
        end=end,
    )
