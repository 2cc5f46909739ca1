"""`python -m tests.clickhouse_http --path DIR [--port N]`: serve until SIGTERM, print `PORT n` once up."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from tests.clickhouse_http.engine import Engine
from tests.clickhouse_http.server import EndpointServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.clickhouse_http", description=__doc__)
    parser.add_argument("--path", required=True, help="chDB engine directory this process will own")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--drop-insert-responses",
        type=int,
        default=0,
        help="commit the first N inserts, then close the connection without answering (lost responses)",
    )
    args = parser.parse_args(argv)
    engine = Engine(args.path)
    server = EndpointServer((args.host, args.port), engine, args.drop_insert_responses)

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
