"""Wire codec cost per record: encode (agent) and decode with validation (server), bytes on the wire.

Run: PYTHONPATH=src python -m benchmarks.transport_codec [--records N] [--repeat R]

Baselines measured in the same run:
- floor: building the same FlowRecord objects from ready Python values, which any decoder must do;
- jsonl: the agent's JSON-lines form (to_json_dict + orjson, and back through from_json_dict).
gzip rows show what `ClientSettings.compression` would save on the wire and cost in CPU.
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import time
from collections.abc import Callable

import orjson

from kubenetmon.records import Batch, FlowRecord
from kubenetmon.transport import codec


def synthetic_records(count: int, node: str = "ip-10-0-1-5.ec2.internal", seed: int = 7) -> list[FlowRecord]:
    """A node's interval: 90 % IPv4, 10 % IPv6, TCP and UDP, a thousand local addresses and remote ones
    nearly all distinct (the worst case for the decoder's per-batch address cache), realistic counters."""
    rng = random.Random(seed)
    records = []
    for _ in range(count):
        if rng.random() < 0.9:
            local, remote = (
                f"198.18.{rng.randrange(4)}.{rng.randrange(2, 250)}",
                f"198.19.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            )
            family = 4
        else:
            local, remote = f"fd00:db8::{rng.randrange(1, 4000):x}", f"fd00:db8:1::{rng.randrange(1, 4000):x}"
            family = 6
        sport, dport = rng.randrange(32768, 61000), rng.choice([443, 80, 5432, 9000, 8123, 53])
        start = 1_795_687_200.0 + rng.randrange(6) * 10
        records.append(
            FlowRecord(
                node, rng.choice([6, 6, 6, 17]), family,
                local, remote, sport, dport, remote, local, dport, sport,
                rng.randrange(40, 10**9), rng.randrange(1, 10**6),
                rng.randrange(40, 10**8), rng.randrange(1, 10**5),
                start, start + 10.0,
            )
        )  # fmt: skip
    return records


def best_of(repeat: int, action: Callable[[], object]) -> float:
    """CPU seconds of the cheapest of `repeat` runs (CPU time, so other load on the machine hardly
    counts; the minimum, so a cache-cold or disturbed run does not either)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        action()
        best = min(best, time.process_time() - started)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=8192, help="records per batch (the agent's maximum)")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    records = synthetic_records(args.records)
    batch = Batch(records[0].node, "5f0c0e4bd3a94e4a9ad1c2e2a4b9a6f1", 123, records)
    payload = codec.encode_batch(batch)
    assert list(codec.decode_batch(payload, args.records).records) == records
    values = [tuple(getattr(r, f) for f in FlowRecord.__slots__) for r in records]  # type: ignore[attr-defined]
    lines = [orjson.dumps(r.to_json_dict()) for r in records]
    zipped = gzip.compress(payload, compresslevel=6)
    n, repeat = args.records, args.repeat

    per_record = {
        "encode (agent)": best_of(repeat, lambda: codec.encode_batch(batch)),
        "decode + validate (server)": best_of(repeat, lambda: codec.decode_batch(payload, n)),
        "floor: FlowRecord(...) only": best_of(repeat, lambda: [FlowRecord(*v) for v in values]),
        "jsonl encode": best_of(repeat, lambda: [orjson.dumps(r.to_json_dict()) for r in records]),
        "jsonl decode": best_of(repeat, lambda: [FlowRecord.from_json_dict(orjson.loads(x)) for x in lines]),
        "gzip -6 compress": best_of(repeat, lambda: gzip.compress(payload, compresslevel=6)),
        "gzip decompress": best_of(repeat, lambda: gzip.decompress(zipped)),
    }
    print(f"transport codec, {n} records per batch, best of {repeat}, load average {os.getloadavg()[0]:.1f}")
    for name, seconds in per_record.items():
        print(f"  {name:30} {seconds / n * 1e6:8.3f} us/record")
    decode, floor = per_record["decode + validate (server)"], per_record["floor: FlowRecord(...) only"]
    print(f"  decode / floor                 {decode / floor:8.2f}x  (FlowRecord construction is the floor)")
    print(f"  jsonl decode / decode          {per_record['jsonl decode'] / decode:8.2f}x")
    print(
        f"  jsonl encode / encode          {per_record['jsonl encode'] / per_record['encode (agent)']:8.2f}x"
    )
    print(f"  wire bytes per record          {len(payload) / n:8.1f}  (gzip: {len(zipped) / n:.1f}, jsonl: "
          f"{sum(map(len, lines)) / n + 1:.1f})")  # fmt: skip
    print(f"  decode throughput, one core    {n / decode:10,.0f} records/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
