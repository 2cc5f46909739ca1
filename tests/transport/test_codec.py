"""The wire codec: batches survive the round trip exactly, and malformed batches are refused with a
precise reason instead of reaching the server."""

from __future__ import annotations

from fractions import Fraction

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from hypothesis import given
from hypothesis import strategies as st

from kubenetmon.records import Batch, FlowRecord, LossReason, LossReport
from kubenetmon.transport import codec
from kubenetmon.transport.codec import Ack, AckStatus, InvalidBatch
from kubenetmon.transport.proto import flows_pb2
from tests.transport.conftest import make_records

V6 = FlowRecord(
    node="node-a",
    proto=17,
    family=6,
    orig_src="fd00:db8::10",
    orig_dst="::ffff:c612:10a",
    orig_sport=5353,
    orig_dport=53,
    reply_src="::ffff:c612:10a",
    reply_dst="fd00:db8::10",
    reply_sport=53,
    reply_dport=5353,
    orig_bytes=2**64 - 1,
    orig_packets=0,
    reply_bytes=0,
    reply_packets=2**63,
    start=1795687200.123456,
    end=1795687260.987654,
)
LOSSES = (LossReport(LossReason.EVENTS_OVERFLOW, 3), LossReport(LossReason.SPOOL_OVERFLOW, 7, 9000, 12))
BATCH = Batch("node-a", "epoch-1", 42, [*make_records("node-a", 3), V6], LOSSES)


def wire(batch: Batch = BATCH) -> flows_pb2.FlowBatch:
    return flows_pb2.FlowBatch.FromString(codec.encode_batch(batch))


def rejection(message: flows_pb2.FlowBatch, max_records: int = 1000) -> InvalidBatch:
    with pytest.raises(InvalidBatch) as caught:
        codec.decode_batch(message.SerializeToString(), max_records)
    return caught.value


def test_a_batch_round_trips_exactly() -> None:
    decoded = codec.decode_batch(codec.encode_batch(BATCH), 1000)
    assert list(decoded.records) == list(BATCH.records)
    assert tuple(decoded.losses) == LOSSES
    assert (decoded.node, decoded.epoch, decoded.seq) == ("node-a", "epoch-1", 42)


def test_a_decoded_batch_keeps_the_bytes_it_was_decoded_from_outside_equality() -> None:
    payload = codec.encode_batch(BATCH)
    decoded = codec.decode_batch(payload, 1000)
    assert decoded.encoded == payload
    assert BATCH.encoded == b""
    assert decoded == Batch(BATCH.node, BATCH.epoch, BATCH.seq, list(BATCH.records), LOSSES)


def test_an_empty_batch_round_trips() -> None:
    empty = Batch("node-a", "e", 0, [], ())
    decoded = codec.decode_batch(codec.encode_batch(empty), 1000)
    assert list(decoded.records) == []
    assert decoded.seq == 0


def test_addresses_travel_as_raw_bytes() -> None:
    columns = wire().flows
    assert [len(a) for a in columns.orig_src] == [4, 4, 4, 16]
    assert columns.orig_src[0] == bytes([198, 18, 1, 10])


def test_ipv4_mapped_addresses_come_back_in_python_canonical_form() -> None:
    decoded = codec.decode_batch(codec.encode_batch(BATCH), 1000).records[-1]
    assert decoded.orig_dst == "::ffff:c612:10a"


def test_times_travel_as_unix_nanoseconds_of_the_exact_float() -> None:
    columns = wire().flows
    assert columns.start_unix_nano[-1] == round(Fraction(V6.start) * 10**9)
    assert columns.end_unix_nano[0] == 1795687210_000000000


ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
u16 = st.integers(0, 0xFFFF)
u64 = st.integers(0, 2**64 - 1)
seconds = st.floats(min_value=1e9, max_value=4e9, allow_nan=False)


@st.composite
def records(draw: st.DrawFn) -> FlowRecord:
    family = draw(st.sampled_from([4, 6]))
    address = ipv4 if family == 4 else ipv6
    start = draw(seconds)
    return FlowRecord(
        "node-a",
        draw(st.integers(0, 255)),
        family,
        draw(address),
        draw(address),
        draw(u16),
        draw(u16),
        draw(address),
        draw(address),
        draw(u16),
        draw(u16),
        draw(u64),
        draw(u64),
        draw(u64),
        draw(u64),
        start,
        draw(st.floats(min_value=start, max_value=4.1e9)),
    )


@given(st.lists(records(), max_size=20), st.integers(0, 2**64 - 1))
def test_any_valid_batch_round_trips_exactly(flows: list[FlowRecord], seq: int) -> None:
    batch = Batch("node-a", "e", seq, flows)
    decoded = codec.decode_batch(codec.encode_batch(batch), 1000)
    assert list(decoded.records) == flows
    assert decoded.seq == seq


@given(st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_are_rejected_never_crash(data: bytes) -> None:
    try:
        codec.decode_batch(data, 1000)
    except InvalidBatch as exc:
        assert exc.kind
        assert str(exc)


def test_undecodable_bytes_are_rejected() -> None:
    with pytest.raises(InvalidBatch, match=r"not a kubenetmon\.v1\.FlowBatch") as caught:
        codec.decode_batch(b"\xff\xff\xff", 1000)
    assert caught.value.kind == "undecodable"


def test_a_batch_without_a_node_is_rejected() -> None:
    message = wire()
    message.node = ""
    exc = rejection(message)
    assert (exc.kind, exc.seq) == ("missing_node", 42)


def test_a_batch_without_an_epoch_is_rejected() -> None:
    message = wire()
    message.epoch = ""
    assert rejection(message).kind == "missing_epoch"


def test_columns_of_different_lengths_are_rejected() -> None:
    message = wire()
    message.flows.orig_dport.append(80)
    exc = rejection(message)
    assert exc.kind == "ragged_columns"
    assert "orig_dport=5" in str(exc)


def test_more_records_than_the_limit_are_rejected() -> None:
    exc = rejection(wire(), max_records=3)
    assert exc.kind == "too_many_records"
    assert str(exc) == "batch has 4 records, the limit is 3"


def test_a_port_above_65535_is_rejected_naming_the_record() -> None:
    message = wire()
    message.flows.reply_dport[2] = 65536
    exc = rejection(message)
    assert exc.kind == "bad_port"
    assert str(exc) == "record 2: reply_dport 65536 is above 65535"


def test_a_protocol_above_255_is_rejected() -> None:
    message = wire()
    message.flows.proto[0] = 256
    assert rejection(message).kind == "bad_protocol"


def test_an_unknown_family_is_rejected() -> None:
    message = wire()
    message.flows.family[1] = 5
    exc = rejection(message)
    assert exc.kind == "bad_family"
    assert str(exc) == "record 1: family 5 is neither 4 nor 6"


def test_an_address_of_the_wrong_length_for_its_family_is_rejected() -> None:
    message = wire()
    message.flows.reply_src[1] = b"\x01\x02\x03"
    exc = rejection(message)
    assert exc.kind == "bad_address"
    assert str(exc) == "record 1: reply_src is 3 bytes, an IPv4 address is 4"


def test_an_ipv4_address_on_an_ipv6_record_is_rejected() -> None:
    message = wire()
    message.flows.orig_dst[3] = bytes(4)
    assert str(rejection(message)) == "record 3: orig_dst is 4 bytes, an IPv6 address is 16"


def test_an_interval_that_ends_before_it_starts_is_rejected() -> None:
    message = wire()
    message.flows.start_unix_nano[0] = message.flows.end_unix_nano[0] + 1
    exc = rejection(message)
    assert exc.kind == "bad_interval"
    assert str(exc).startswith("record 0: start ")


def test_an_unknown_loss_reason_is_rejected() -> None:
    message = wire()
    message.losses[1].reason = 99  # type: ignore[assignment]
    exc = rejection(message)
    assert exc.kind == "bad_loss_reason"
    assert str(exc) == "loss report 1: unknown reason code 99"


def test_counters_cannot_be_negative_on_the_wire() -> None:
    negative = BATCH.records[0]._replace(orig_bytes=-1)
    with pytest.raises(ValueError, match="cannot encode batch epoch-1/42 of node-a"):
        codec.encode_batch(Batch("node-a", "epoch-1", 42, [negative]))


def test_a_record_from_another_node_cannot_be_encoded() -> None:
    stray = BATCH.records[0]._replace(node="node-b")
    with pytest.raises(ValueError, match="every record must come from node 'node-a'"):
        codec.encode_batch(Batch("node-a", "e", 1, [stray]))


def test_acks_round_trip() -> None:
    ack = Ack(
        7, AckStatus.RETRY, "store down", retry_after_ms=500, max_records_per_batch=100, max_in_flight=2
    )
    assert codec.decode_ack(codec.encode_ack(ack)) == ack


def test_an_ack_with_an_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match=r"not a valid kubenetmon\.v1\.BatchAck"):
        codec.decode_ack(flows_pb2.BatchAck(seq=1, status=42).SerializeToString())  # type: ignore[arg-type]


def newer_schema() -> descriptor_pool.DescriptorPool:
    """kubenetmon.v1 as a later version might extend it: a field added to each message."""
    proto = descriptor_pb2.FileDescriptorProto()
    flows_pb2.DESCRIPTOR.CopyToProto(proto)
    added = {"FlowBatch": ("agent_version", 99, "TYPE_STRING", "LABEL_OPTIONAL"),
             "FlowColumns": ("tcp_flags", 17, "TYPE_UINT32", "LABEL_REPEATED"),
             "BatchAck": ("server_load", 99, "TYPE_UINT32", "LABEL_OPTIONAL")}  # fmt: skip
    for message in proto.message_type:
        if message.name in added:
            name, number, kind, label = added[message.name]
            message.field.add(
                name=name,
                number=number,
                type=descriptor_pb2.FieldDescriptorProto.Type.Value(kind),
                label=descriptor_pb2.FieldDescriptorProto.Label.Value(label),
            )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return pool


def newer(pool: descriptor_pool.DescriptorPool, name: str) -> type:
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"kubenetmon.v1.{name}"))


def test_fields_from_a_newer_agent_are_ignored() -> None:
    pool = newer_schema()
    message = newer(pool, "FlowBatch").FromString(codec.encode_batch(BATCH))
    message.agent_version = "9.9.9"
    message.flows.tcp_flags.extend([2, 18, 16, 17])
    decoded = codec.decode_batch(message.SerializeToString(), 1000)
    assert list(decoded.records) == list(BATCH.records)
    assert tuple(decoded.losses) == LOSSES


def test_fields_from_a_newer_server_are_ignored() -> None:
    message = newer(newer_schema(), "BatchAck")(seq=3, status=1, server_load=80)
    assert codec.decode_ack(message.SerializeToString()) == Ack(3, AckStatus.ACCEPTED)


def test_the_stream_method_path_comes_from_the_proto() -> None:
    assert codec.STREAM_METHOD == "/kubenetmon.v1.FlowService/Stream"


def test_a_decoded_batch_builds_its_records_only_when_they_are_read() -> None:
    decoded = codec.decode_batch(codec.encode_batch(BATCH), 1000)
    records = decoded.records
    assert isinstance(records, codec.DecodedRecords)
    assert len(records) == 4
    assert records._records is None  # counting them built nothing
    assert records[0] == BATCH.records[0]
    assert records._records is not None


def test_a_decoded_batch_s_columns_are_its_validated_wire_columns() -> None:
    columns = codec.columns_of(codec.decode_batch(codec.encode_batch(BATCH), 1000))
    assert (columns.node, columns.count) == ("node-a", 4)
    assert list(columns.orig_src)[-1] == bytes.fromhex("fd000db8000000000000000000000010")
    assert list(columns.start_unix_nano)[-1] == round(Fraction(V6.start) * 10**9)
    assert columns.records() == list(BATCH.records)


def test_columns_of_a_batch_built_in_memory_come_from_encoding_it() -> None:
    columns = codec.columns_of(BATCH)
    assert columns.records() == list(BATCH.records)


def test_address_texts_extend_the_cache_and_share_one_text_per_address() -> None:
    texts: dict[bytes, str] = {}
    orig_src, _, _, reply_dst = codec.columns_of(BATCH).address_texts(texts)
    assert orig_src == [record.orig_src for record in BATCH.records]
    assert texts[bytes([198, 18, 1, 10])] == "198.18.1.10"
    assert orig_src[0] is reply_dst[0]
