"""The committed protobuf modules are exactly what scripts/gen-proto.sh makes from the .proto today."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "src/kubenetmon/transport/proto"


def test_generated_code_matches_the_proto(tmp_path: Path) -> None:
    subprocess.run(
        [str(ROOT / "scripts/gen-proto.sh"), str(tmp_path)],
        check=True,
        env={**os.environ, "PYTHON": sys.executable},
    )
    generated = sorted(p.name for p in tmp_path.iterdir() if p.name != "__init__.py")
    assert generated == ["flows_pb2.py", "flows_pb2.pyi"]
    for name in generated:
        assert (tmp_path / name).read_text() == (COMMITTED / name).read_text(), (
            f"{name} is stale: run `make proto` and commit the result"
        )
