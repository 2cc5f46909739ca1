"""Agent cost on a big conntrack table, measured against `conntrack -L` in the same run (needs root).

    python -m benchmarks agent [--sizes 10000,100000,500000] [--rounds 3] [--allow-raise-max]

For each size N: a fresh namespace (random name) gets one nft ct rule, nf_conntrack_acct=1 and
nf_conntrack_timestamp=1 (as the agent sets them), and N synthetic entries loaded with `conntrack -R`
(70 % TCP ESTABLISHED/ASSURED, 30 % UDP, IPv4 and IPv6 mixed 9:1, timeout 3600 s). Then, per round, the
median of:

* `conntrack -L > /dev/null`: user+sys CPU of the child and wall time;
* our dump+parse: `TableReader.sightings()` consumed (key + raw counters per entry), CPU of this process;
* a full agent interval: dump + deltas + tombstone expiry + closing the interval (steady state after
  the baseline dump; synthetic entries are idle, so no record is decoded);
* RSS per tracked flow: VmRSS after the baseline dump minus VmRSS before it, over N, measured in a fresh
  child interpreter; tracemalloc's view of the same is reported as `traced/flow`.

`nf_conntrack_max` is host-wide and caps every namespace. Sizes above it are skipped unless
--allow-raise-max, which raises it in the root namespace for that size and restores it afterwards.
The namespace is deleted afterwards, also on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

MAX_PATH = Path("/proc/sys/net/netfilter/nf_conntrack_max")


def entry_lines(count: int) -> Iterator[str]:
    """`conntrack -R` lines for `count` distinct synthetic entries."""
    for i in range(count):
        host, port = divmod(i, 50000)
        sport = 1024 + port
        if i % 10 == 9:
            src, dst = f"fd00:db8:1::{host:x}:{port:x}", f"fd00:db8:2::{port % 4000:x}"
        else:
            src, dst = f"198.18.{host % 250}.{(port >> 8) & 255}", f"198.19.{port & 255}.{host % 250 + 1}"
        if i % 10 < 7:
            state = "--state ESTABLISHED -u ASSURED"
            yield f"-I -p tcp -s {src} -d {dst} --sport {sport} --dport 443 {state} -t 3600"
        else:
            yield f"-I -p udp -s {src} -d {dst} --sport {sport} --dport 53 -t 3600"


def run(*args: str, check: bool = True) -> str:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if check and done.returncode:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@contextlib.contextmanager
def filled_namespace(count: int) -> Iterator[str]:
    name = "kbench" + secrets.token_hex(3)
    run("ip", "netns", "add", name)
    try:
        run(
            "ip",
            "netns",
            "exec",
            name,
            "nft",
            "add table inet b; add chain inet b c; add rule inet b c ct state new",
        )
        # As the agent sets them: counters, and start times (8 more bytes in every key).
        for knob in ("nf_conntrack_acct", "nf_conntrack_timestamp"):
            run("ip", "netns", "exec", name, "sysctl", "-qw", f"net.netfilter.{knob}=1")
        with tempfile.NamedTemporaryFile("w", suffix=".ct") as lines:
            lines.write("\n".join(entry_lines(count)) + "\n")
            lines.flush()
            run("ip", "netns", "exec", name, "conntrack", "-R", lines.name)
        loaded = int(run("ip", "netns", "exec", name, "conntrack", "-C").strip())
        if loaded != count:
            raise RuntimeError(f"loaded {loaded} of {count} entries")
        yield name
    finally:
        run("ip", "netns", "del", name, check=False)


@contextlib.contextmanager
def conntrack_max_at_least(count: int, allowed: bool) -> Iterator[bool]:
    """Yields whether `count` entries fit; raises nf_conntrack_max temporarily only when allowed."""
    original = int(MAX_PATH.read_text())
    if count <= original:
        yield True
        return
    if not allowed:
        yield False
        return
    MAX_PATH.write_text(f"{count + 10000}\n")
    try:
        yield True
    finally:
        MAX_PATH.write_text(f"{original}\n")


def conntrack_list_cost(namespace: str) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of `conntrack -L > /dev/null` in the namespace."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    with Path(os.devnull).open("w") as sink:
        subprocess.run(
            ["ip", "netns", "exec", namespace, "conntrack", "-L"], stdout=sink, stderr=sink, check=True
        )
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def child_measurement(namespace: str, rounds: int) -> dict[str, float]:
    code = f"from benchmarks.agent_child import main; main({namespace!r}, {rounds})"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(["src", ".", *sys.path])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env)
    if done.returncode:
        raise RuntimeError(f"measurement in {namespace} failed:\n{done.stderr}")
    return dict(json.loads(done.stdout))


def measure(count: int, rounds: int) -> dict[str, float]:
    with filled_namespace(count) as namespace:
        listing = [conntrack_list_cost(namespace) for _ in range(rounds)]
        ours = child_measurement(namespace, rounds)
    ours["ctl_cpu"] = statistics.median(cpu for cpu, _ in listing)
    ours["ctl_wall"] = statistics.median(wall for _, wall in listing)
    return ours


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks agent")
    parser.add_argument("--sizes", default="10000,100000,500000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--allow-raise-max", action="store_true")
    args = parser.parse_args(argv)
    print(f"nf_conntrack_max (root netns) = {MAX_PATH.read_text().strip()}")
    header = (
        f"{'entries':>8} | {'ct -L cpu':>9} {'wall':>6} | {'dump+parse cpu':>14} {'wall':>6} | "
        f"{'interval cpu':>12} {'wall':>6} | {'ratio':>5} | {'RSS/flow':>8} {'traced/flow':>11} | "
        f"{'steady':>7} {'decode':>7}"
    )
    print(header)
    print("-" * len(header))
    for count in (int(size) for size in args.sizes.split(",")):
        with conntrack_max_at_least(count, args.allow_raise_max) as fits:
            if not fits:
                print(f"{count:>8} | skipped: above nf_conntrack_max (use --allow-raise-max)")
                continue
            m = measure(count, args.rounds)
        print(
            f"{count:>8} | {m['ctl_cpu']:8.3f}s {m['ctl_wall']:5.2f}s | {m['dump_cpu']:13.3f}s "
            f"{m['dump_wall']:5.2f}s | {m['interval_cpu']:11.3f}s {m['interval_wall']:5.2f}s | "
            f"{m['interval_cpu'] / m['ctl_cpu']:5.2f} | {m['rss_per_flow']:7.0f}B "
            f"{m['traced_per_flow']:10.0f}B"
            f" | {m['rss_steady_per_flow']:6.0f}B {m['decode_us']:5.1f}us"
        )
    print("ratio = full agent interval CPU / conntrack -L CPU (floor: <= 2.5 at 100k)")
    print("RSS/flow = after the baseline dump (floor: <= 256 B); steady = after the timed intervals")
    print("decode = extra CPU per flow whose counters moved (full decode into a record), not in 'interval'")
    return 0
