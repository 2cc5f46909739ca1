"""`records.Batch` and acknowledgements to and from protobuf bytes: the only module that knows protobuf.

Records travel as parallel columns (see proto/kubenetmon/v1/flows.proto): decoding is a few C-level
passes over packed arrays instead of one protobuf message per record. Addresses are 4 or 16 raw bytes,
times integer Unix nanoseconds; a time converts back to exactly the float it was made from (for any
wall-clock time after April 1970, where floats are spaced more than a nanosecond apart).

`decode_batch` validates everything the server relies on and raises `InvalidBatch` with a precise reason.
Counters cannot be negative on the wire (uint64), so that needs no check. Validating is cheap; building
`FlowRecord`s is not (addresses to text, one tuple per record), and the server's receive path only counts
them: so a decoded batch's `records` are built on first use, from the validated `FlowColumns` it keeps.
"""

from __future__ import annotations

import enum
import ipaddress
import operator
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

from google.protobuf.message import DecodeError

from kubenetmon.errors import Rejected
from kubenetmon.records import Batch, FlowRecord, LossReason, LossReport
from kubenetmon.transport.proto import flows_pb2

_NS = 1_000_000_000
_ADDRESS_FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}
_ADDRESS_LENGTH = {4: 4, 6: 16}
_ADDRESS_COLUMNS = ("orig_src", "orig_dst", "reply_src", "reply_dst")
_PORT_COLUMNS = ("orig_sport", "orig_dport", "reply_sport", "reply_dport")
_COUNTER_COLUMNS = ("orig_bytes", "orig_packets", "reply_bytes", "reply_packets")
_COLUMNS = tuple(field.name for field in flows_pb2.FlowColumns.DESCRIPTOR.fields)

_SERVICE = flows_pb2.DESCRIPTOR.services_by_name["FlowService"]
STREAM_METHOD = f"/{_SERVICE.full_name}/{_SERVICE.methods_by_name['Stream'].name}"
"""The gRPC method path of FlowService.Stream; client and service exchange raw bytes on it."""

_LOSS_TO_WIRE = {reason: flows_pb2.LossReason.Value(f"LOSS_REASON_{reason.name}") for reason in LossReason}
_LOSS_FROM_WIRE = {wire: reason for reason, wire in _LOSS_TO_WIRE.items()}


class InvalidBatch(Rejected):
    """A FlowBatch the server cannot accept. `kind` is a short fixed label for metrics; the message says
    exactly what is wrong and where."""

    def __init__(self, kind: str, message: str, seq: int = 0) -> None:
        super().__init__(message)
        self.kind = kind
        self.seq = seq


class AckStatus(enum.Enum):
    """What the server did with a batch."""

    ACCEPTED = flows_pb2.BatchAck.STATUS_ACCEPTED
    """Durable on the server."""
    DUPLICATE = flows_pb2.BatchAck.STATUS_DUPLICATE
    """Already durable from an earlier send."""
    REJECTED = flows_pb2.BatchAck.STATUS_REJECTED
    """Invalid; will never be accepted."""
    RETRY = flows_pb2.BatchAck.STATUS_RETRY
    """Not taken now; resend after `retry_after_ms`."""


@dataclass(frozen=True, slots=True)
class Ack:
    """The server's answer to one batch, with flow-control hints (0 = no hint)."""

    seq: int
    status: AckStatus
    reason: str = ""
    retry_after_ms: int = 0
    max_records_per_batch: int = 0
    max_in_flight: int = 0


def encode_batch(batch: Batch) -> bytes:
    """Serialize a batch; raises ValueError naming the batch if a record cannot be represented."""
    name = f"batch {batch.epoch}/{batch.seq} of {batch.node}"
    if any(record.node != batch.node for record in batch.records):
        raise ValueError(f"cannot encode {name}: every record must come from node {batch.node!r}")
    try:
        return _encode(batch)
    except (ValueError, TypeError, KeyError, OSError) as exc:
        raise ValueError(f"cannot encode {name}: {exc}") from exc


def decode_batch(payload: bytes, max_records: int) -> Batch:
    """Parse and validate a FlowBatch; raises `InvalidBatch` saying precisely what is wrong. The batch
    keeps `payload` as its `encoded` form; its `records` are `DecodedRecords`, built on first use."""
    try:
        message = flows_pb2.FlowBatch.FromString(payload)
    except DecodeError as exc:
        raise InvalidBatch("undecodable", f"not a kubenetmon.v1.FlowBatch message: {exc}") from exc
    seq = message.seq
    if not message.node:
        raise InvalidBatch("missing_node", "batch has an empty node name", seq)
    if not message.epoch:
        raise InvalidBatch("missing_epoch", "batch has an empty epoch", seq)
    try:
        columns = _validated(message.node, message.flows, max_records)
        losses = tuple(_loss_from_wire(index, loss) for index, loss in enumerate(message.losses))
    except InvalidBatch as exc:
        exc.seq = seq
        raise
    return Batch(
        node=message.node,
        epoch=message.epoch,
        seq=seq,
        records=DecodedRecords(columns),
        losses=losses,
        encoded=payload,
    )


def columns_of(batch: Batch) -> FlowColumns:
    """The batch's records as validated columns: kept from decoding for a decoded batch, otherwise
    encoded and decoded (raises ValueError like `encode_batch`)."""
    records = batch.records
    if isinstance(records, DecodedRecords):
        return records.columns
    decoded = decode_batch(encode_batch(batch), max(1, len(records))).records
    assert isinstance(decoded, DecodedRecords)
    return decoded.columns


def seq_of(payload: bytes) -> int:
    """The seq an encoded batch claims, or 0 if it does not parse (to acknowledge a batch refused unread)."""
    try:
        return flows_pb2.FlowBatch.FromString(payload).seq
    except DecodeError:
        return 0


def encode_ack(ack: Ack) -> bytes:
    """Serialize an acknowledgement."""
    return flows_pb2.BatchAck(
        seq=ack.seq,
        status=ack.status.value,
        reason=ack.reason,
        retry_after_ms=ack.retry_after_ms,
        max_records_per_batch=ack.max_records_per_batch,
        max_in_flight=ack.max_in_flight,
    ).SerializeToString()


def decode_ack(payload: bytes) -> Ack:
    """Parse an acknowledgement; raises ValueError for bytes that are not one or an unknown status."""
    try:
        message = flows_pb2.BatchAck.FromString(payload)
        status = AckStatus(message.status)
    except (DecodeError, ValueError) as exc:
        raise ValueError(f"not a valid kubenetmon.v1.BatchAck: {exc}") from exc
    return Ack(
        seq=message.seq,
        status=status,
        reason=message.reason,
        retry_after_ms=message.retry_after_ms,
        max_records_per_batch=message.max_records_per_batch,
        max_in_flight=message.max_in_flight,
    )


def _encode(batch: Batch) -> bytes:
    records = batch.records
    message = flows_pb2.FlowBatch(node=batch.node, epoch=batch.epoch, seq=batch.seq)
    columns = message.flows
    for name in ("proto", "family", *_PORT_COLUMNS, *_COUNTER_COLUMNS):
        getattr(columns, name).extend([getattr(record, name) for record in records])
    families = [_ADDRESS_FAMILY[record.family] for record in records]
    for name in _ADDRESS_COLUMNS:
        texts = [getattr(record, name) for record in records]
        getattr(columns, name).extend(map(socket.inet_pton, families, texts))
    columns.start_unix_nano.extend([_unix_nano(record.start) for record in records])
    columns.end_unix_nano.extend([_unix_nano(record.end) for record in records])
    message.losses.extend(_loss_to_wire(loss) for loss in batch.losses)
    return message.SerializeToString()


@dataclass(frozen=True, slots=True)
class FlowColumns:
    """One batch's records as validated wire columns: element i of each belongs to record i. Addresses
    are raw (4 or 16 bytes, as `family` says), times Unix nanoseconds."""

    node: str
    count: int
    proto: Sequence[int]
    family: Sequence[int]
    orig_src: Sequence[bytes]
    orig_dst: Sequence[bytes]
    orig_sport: Sequence[int]
    orig_dport: Sequence[int]
    reply_src: Sequence[bytes]
    reply_dst: Sequence[bytes]
    reply_sport: Sequence[int]
    reply_dport: Sequence[int]
    orig_bytes: Sequence[int]
    orig_packets: Sequence[int]
    reply_bytes: Sequence[int]
    reply_packets: Sequence[int]
    start_unix_nano: Sequence[int]
    end_unix_nano: Sequence[int]

    def address_texts(self, texts: dict[bytes, str]) -> tuple[list[str], list[str], list[str], list[str]]:
        """orig_src, orig_dst, reply_src, reply_dst as text. `texts` caches raw -> text and is extended
        with the addresses it lacked: a node talks to far fewer peers than it has flows, so each distinct
        address is converted once and its text object shared by every record (less memory downstream)."""
        raw = [list(self.orig_src), list(self.orig_dst), list(self.reply_src), list(self.reply_dst)]
        texts.update({address: _address_text(address) for address in set().union(*raw).difference(texts)})
        get = texts.__getitem__
        return list(map(get, raw[0])), list(map(get, raw[1])), list(map(get, raw[2])), list(map(get, raw[3]))

    def records(self) -> list[FlowRecord]:
        """The records as `FlowRecord`s."""
        orig_src, orig_dst, reply_src, reply_dst = self.address_texts({})
        starts, ends = self.start_unix_nano, self.end_unix_nano
        seconds = {nanos: nanos / _NS for nanos in {*starts, *ends}}
        # One C-level map over the columns; FlowRecord's constructor is most of the cost.
        return list(
            map(
                FlowRecord,
                [self.node] * self.count,
                self.proto,
                self.family,
                orig_src,
                orig_dst,
                self.orig_sport,
                self.orig_dport,
                reply_src,
                reply_dst,
                self.reply_sport,
                self.reply_dport,
                self.orig_bytes,
                self.orig_packets,
                self.reply_bytes,
                self.reply_packets,
                map(seconds.__getitem__, starts),
                map(seconds.__getitem__, ends),
            )
        )


_WIRE_COLUMNS = FlowColumns.__dataclass_fields__.keys() - {"node", "count"}


class DecodedRecords(Sequence[FlowRecord]):
    """A decoded batch's records: validated columns, turned into `FlowRecord`s on first use (indexing,
    iteration, equality). `len()` and `columns` do not build them."""

    __slots__ = ("_records", "columns")

    def __init__(self, columns: FlowColumns) -> None:
        self.columns = columns
        self._records: list[FlowRecord] | None = None

    def _built(self) -> list[FlowRecord]:
        if self._records is None:
            self._records = self.columns.records()
        return self._records

    def __len__(self) -> int:
        return self.columns.count

    @overload
    def __getitem__(self, index: int) -> FlowRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[FlowRecord]: ...

    def __getitem__(self, index: int | slice) -> FlowRecord | list[FlowRecord]:
        return self._built()[index]

    def __iter__(self) -> Iterator[FlowRecord]:
        return iter(self._built())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DecodedRecords):
            return self._built() == other._built()
        if isinstance(other, list | tuple):
            return self._built() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"DecodedRecords({self._built()!r})"


def _validated(node: str, columns: flows_pb2.FlowColumns, max_records: int) -> FlowColumns:
    count = len(columns.proto)
    ragged = [name for name in _COLUMNS if len(getattr(columns, name)) != count]
    if ragged:
        lengths = ", ".join(f"{name}={len(getattr(columns, name))}" for name in ragged)
        raise InvalidBatch("ragged_columns", f"columns disagree on the record count {count}: {lengths}")
    if count > max_records:
        raise InvalidBatch("too_many_records", f"batch has {count} records, the limit is {max_records}")
    if count:
        families = columns.family
        _check_range("bad_protocol", "proto", columns.proto, 255)
        for name in _PORT_COLUMNS:
            _check_range("bad_port", name, getattr(columns, name), 0xFFFF)
        if not set(families) <= _ADDRESS_FAMILY.keys():
            index = next(i for i, family in enumerate(families) if family not in _ADDRESS_FAMILY)
            raise InvalidBatch("bad_family", f"record {index}: family {families[index]} is neither 4 nor 6")
        _check_address_lengths(families, [getattr(columns, name) for name in _ADDRESS_COLUMNS])
        starts, ends = columns.start_unix_nano, columns.end_unix_nano
        if any(map(operator.gt, starts, ends)):
            index = next(i for i, (start, end) in enumerate(zip(starts, ends, strict=True)) if start > end)
            raise InvalidBatch(
                "bad_interval", f"record {index}: start {starts[index]} ns is after end {ends[index]} ns"
            )
    return FlowColumns(node, count, **{name: getattr(columns, name) for name in _WIRE_COLUMNS})


def _check_range(kind: str, name: str, column: Sequence[int], maximum: int) -> None:
    if max(column) > maximum:
        index = next(i for i, value in enumerate(column) if value > maximum)
        raise InvalidBatch(kind, f"record {index}: {name} {column[index]} is above {maximum}")


def _check_address_lengths(families: Sequence[int], raw_addresses: list[Sequence[bytes]]) -> None:
    expected = [_ADDRESS_LENGTH[family] for family in families]
    for name, column in zip(_ADDRESS_COLUMNS, raw_addresses, strict=True):
        lengths = list(map(len, column))
        if lengths != expected:
            index = next(
                i for i, (got, want) in enumerate(zip(lengths, expected, strict=True)) if got != want
            )
            raise InvalidBatch(
                "bad_address",
                f"record {index}: {name} is {lengths[index]} bytes, an IPv{families[index]} address is "
                f"{expected[index]}",
            )


def _address_text(raw: bytes) -> str:
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw)
    text = socket.inet_ntop(socket.AF_INET6, raw)
    # inet_ntop writes IPv4-mapped and IPv4-compatible IPv6 addresses with a dotted quad; the rest of
    # kubenetmon (and the JSON-lines sink) uses Python's canonical form.
    return str(ipaddress.IPv6Address(raw)) if "." in text else text


def _unix_nano(seconds: float) -> int:
    whole = int(seconds)
    # Splitting off the whole seconds keeps the product exact to well under a nanosecond.
    return whole * _NS + round((seconds - whole) * 1e9)


def _loss_to_wire(loss: LossReport) -> flows_pb2.LossReport:
    return flows_pb2.LossReport(
        reason=_LOSS_TO_WIRE[loss.reason], count=loss.count, bytes=loss.bytes, packets=loss.packets
    )


def _loss_from_wire(index: int, loss: flows_pb2.LossReport) -> LossReport:
    reason = _LOSS_FROM_WIRE.get(loss.reason)
    if reason is None:
        raise InvalidBatch("bad_loss_reason", f"loss report {index}: unknown reason code {loss.reason}")
    return LossReport(reason=reason, count=loss.count, bytes=loss.bytes, packets=loss.packets)
