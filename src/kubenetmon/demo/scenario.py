"""The demo's traffic mix, and a runner that plays it concurrently, paced over a duration.

Each `FlowPlan` is one kind of traffic between two places, made of `steps` equal steps spread evenly
over the run: short TCP connections (one per step), a long-lived TCP connection (one burst per step),
UDP exchanges (one conntrack flow per step, several datagrams each way) or bursts of one-datagram UDP
flows. Every plan runs on its own thread; a step callback reports progress.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from kubenetmon.lab import Lab, Topology, traffic
from kubenetmon.lab.ranges import Family
from kubenetmon.lab.traffic import FlowResult, Target

Kind = Literal["tcp-short", "tcp-long", "udp", "udp-flows"]
SERVICE_PREFIX = "service:"
KIB = 1024


@dataclass(frozen=True, slots=True)
class FlowPlan:
    """One kind of traffic between a client pod and a target, in `steps` steps."""

    name: str
    kind: Kind
    client: str
    """Pod key `namespace/name`."""
    target: str
    """Pod key, external name, or `service:namespace/name` for a ClusterIP service."""
    family: Family
    steps: int
    up: int
    """Bytes client -> server per step (TCP), or the datagram size (UDP)."""
    down: int = 0
    """Bytes server -> client per step (TCP short), or the answer size (UDP exchange; 0: none)."""
    per_step: int = 1
    """Datagrams per UDP exchange, or one-datagram flows per `udp-flows` step."""


def demo_mix(topology: Topology, duration: float) -> list[FlowPlan]:
    """The demo's traffic over `duration` seconds: every billing class, both families, TCP and UDP.

    Needs the pods, service and externals of `Topology.demo()`.
    """
    front_a1, front_b1 = "shop/frontend-6c8d9f7b4-x2k4p", "shop/frontend-6c8d9f7b4-t5j8l"
    api_a2, api_b1 = "shop/api-5f7b8c6d9-q9w2z", "shop/api-5f7b8c6d9-m3v7r"
    exporter_a1, exporter_a2 = "monitoring/node-exporter-7qk2m", "monitoring/node-exporter-h8d5n"
    exporter_b1 = "monitoring/node-exporter-w4c9s"
    api = SERVICE_PREFIX + topology.service("shop/api").key
    # name, kind, client, target, family, steps per second, bytes up (or datagram size), bytes down
    table: list[tuple[str, Kind, str, str, Family, float, int, int]] = [
        ("frontend → api ClusterIP, short TCP", "tcp-short", front_a1, api, 4, 2, 2 * KIB, 32 * KIB),
        ("frontend → api ClusterIP, short TCP", "tcp-short", front_b1, api, 6, 2, 2 * KIB, 32 * KIB),
        ("frontend → api ClusterIP, UDP", "udp", front_a1, api, 4, 1, 200, 800),
        ("api → cart-0 same node, long TCP", "tcp-long", api_a2, "shop/cart-0", 4, 10, 16 * KIB, 0),
        ("api → cart-0, long TCP", "tcp-long", api_b1, "shop/cart-0", 6, 10, 16 * KIB, 0),
        ("cart-0 → cart-1, long TCP", "tcp-long", "shop/cart-0", "shop/cart-1", 4, 5, 32 * KIB, 0),
        ("loader → S3 us-east-1, uploads", "tcp-short", "batch/loader", "s3", 4, 0.5, 256 * KIB, KIB),
        ("cart-0 → S3 us-east-1, UDP", "udp", "shop/cart-0", "s3", 6, 1, 1000, 200),
        ("loader → internet, downloads", "tcp-short", "batch/loader", "internet", 4, 0.5, 512, 128 * KIB),
        ("frontend → internet, downloads", "tcp-short", front_b1, "internet", 6, 0.5, 512, 64 * KIB),
        ("node-exporter a2 → a1, UDP", "udp-flows", exporter_a2, exporter_a1, 4, 2, 100, 0),
        ("node-exporter b1 → a1, UDP", "udp-flows", exporter_b1, exporter_a1, 6, 2, 100, 0),
    ]
    return [
        FlowPlan(
            name,
            kind,
            client,
            target,
            family,
            steps=max(1, round(duration * per_second)),
            up=up,
            down=down,
            per_step=_PER_STEP.get(kind, 1),
        )
        for name, kind, client, target, family, per_second, up, down in table
    ]


_PER_STEP: dict[Kind, int] = {"udp": 5, "udp-flows": 10}
"""Datagrams per UDP exchange; one-datagram flows per udp-flows step."""


StepCallback = Callable[[int, int], None]
"""Called with (plan index, steps done so far)."""


class TrafficRun:
    """Plays plans concurrently over `duration` seconds; `run()` returns every flow's result."""

    def __init__(self, lab: Lab, plans: Sequence[FlowPlan], duration: float, on_step: StepCallback) -> None:
        self.lab = lab
        self.plans = list(plans)
        self.duration = duration
        self._on_step = on_step
        self._stop = threading.Event()
        self._results: list[list[FlowResult]] = [[] for _ in self.plans]
        self._failures: list[BaseException] = []

    def stop(self) -> None:
        """Ask every plan to stop after its current step."""
        self._stop.set()

    def run(self) -> list[FlowResult]:
        """Run every plan to its end (or to the first failure, which is re-raised)."""
        threads = [
            threading.Thread(target=self._play, args=(index,), name=f"traffic {plan.name}", daemon=True)
            for index, plan in enumerate(self.plans)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                thread.join(max(60.0, 10 * self.duration) - (time.monotonic() - started))
        finally:
            self.stop()
        if self._failures:
            raise self._failures[0]
        if any(thread.is_alive() for thread in threads):
            raise TimeoutError("traffic did not finish in time")
        return [result for results in self._results for result in results]

    def _play(self, index: int) -> None:
        plan = self.plans[index]
        try:
            if plan.kind == "tcp-long":
                self._results[index].append(self._bursts(index, plan))
            else:
                self._steps(index, plan)
        except BaseException as exc:  # handed to run()
            self._failures.append(exc)
            self.stop()

    def _target(self, plan: FlowPlan) -> Target | str:
        if plan.target.startswith(SERVICE_PREFIX):
            return self.lab.topology.service(plan.target.removeprefix(SERVICE_PREFIX))
        return plan.target

    def _steps(self, index: int, plan: FlowPlan) -> None:
        every = self.duration / plan.steps
        began = time.monotonic()
        for step in range(plan.steps):
            delay = began + step * every - time.monotonic()
            if self._stop.wait(max(0.0, delay)):
                return
            self._results[index] += self._step(plan)
            self._on_step(index, step + 1)

    def _step(self, plan: FlowPlan) -> list[FlowResult]:
        target, lab, family = self._target(plan), self.lab, plan.family
        if plan.kind == "tcp-short":
            return [traffic.tcp_transfer(lab, plan.client, target, family=family, up=plan.up, down=plan.down)]
        if plan.kind == "udp":
            exchange = traffic.udp_exchange(
                lab,
                plan.client,
                target,
                count=plan.per_step,
                size=plan.up,
                reply_size=plan.down,
                family=family,
            )
            return [exchange]
        return traffic.udp_flows(lab, plan.client, target, flows=plan.per_step, size=plan.up, family=family)

    def _bursts(self, index: int, plan: FlowPlan) -> FlowResult:
        flow = traffic.start_tcp_bursts(
            self.lab,
            plan.client,
            self._target(plan),
            bursts=plan.steps,
            burst_bytes=plan.up,
            interval=self.duration / plan.steps,
            family=plan.family,
        )
        while not self._stop.wait(0.1):
            done = flow.sent // plan.up
            self._on_step(index, done)
            if done >= plan.steps:
                break
        flow.stop()
        result = flow.wait()
        self._on_step(index, result.sent // plan.up)
        return result
