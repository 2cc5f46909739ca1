#!/usr/bin/env bash
# Regenerates the Python code for proto/kubenetmon/v1/*.proto into src/kubenetmon/transport/proto/.
# Usage: scripts/gen-proto.sh [OUTPUT_DIR]   (a test passes a temporary directory to check the
# committed files are current). Needs grpcio-tools and mypy-protobuf (the dev extra).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/src/kubenetmon/transport/proto}"
python="${PYTHON:-python3}"
if [ -x "$root/.venv/bin/python" ] && [ -z "${PYTHON:-}" ]; then python="$root/.venv/bin/python"; fi
plugin_dir="$(dirname "$("$python" -c 'import sys; print(sys.executable)')")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Messages only: the client and the service speak raw bytes through transport.codec, so no gRPC stubs.
PATH="$plugin_dir:$PATH" "$python" -m grpc_tools.protoc \
    --proto_path="$root/proto" \
    --python_out="$work" \
    --mypy_out=quiet:"$work" \
    "$root"/proto/kubenetmon/v1/*.proto

mkdir -p "$out"
for generated in "$work"/kubenetmon/v1/*_pb2.py "$work"/kubenetmon/v1/*_pb2.pyi; do
    cp "$generated" "$out/$(basename "$generated")"
done
[ -f "$out/__init__.py" ] || printf '"""Generated protobuf modules (scripts/gen-proto.sh); do not edit."""\n' >"$out/__init__.py"
