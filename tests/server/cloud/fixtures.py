"""Small vendor-shaped range files. TEST-NET ranges stand in for cloud ranges."""

from __future__ import annotations

import json

AWS = {
    "syncToken": "1",
    "createDate": "2026-11-26-00-00-00",
    "prefixes": [
        {
            "ip_prefix": "198.51.100.0/24",
            "region": "us-east-1",
            "service": "EC2",
            "network_border_group": "us-east-1",
        },
        {
            "ip_prefix": "198.51.100.0/24",
            "region": "us-east-1",
            "service": "S3",
            "network_border_group": "us-east-1",
        },
        {
            "ip_prefix": "198.51.100.0/24",
            "region": "us-east-1",
            "service": "AMAZON",
            "network_border_group": "us-east-1",
        },
        {
            "ip_prefix": "198.51.0.0/16",
            "region": "GLOBAL",
            "service": "AMAZON",
            "network_border_group": "GLOBAL",
        },
        {
            "ip_prefix": "203.0.113.0/24",
            "region": "eu-west-1",
            "service": "EC2",
            "network_border_group": "eu-west-1",
        },
        {
            "ip_prefix": "203.0.113.0/24",
            "region": "eu-west-1",
            "service": "AMAZON",
            "network_border_group": "eu-west-1",
        },
    ],
    "ipv6_prefixes": [
        {
            "ipv6_prefix": "2001:db8:2::/48",
            "region": "us-east-1",
            "service": "DYNAMODB",
            "network_border_group": "x",
        },
    ],
}
GCP = {
    "syncToken": "1",
    "creationTime": "2026-11-26T00:00:00",
    "prefixes": [
        {"ipv4Prefix": "192.0.2.0/25", "service": "Google Cloud", "scope": "europe-west1"},
        {"ipv6Prefix": "2001:db8:3::/48", "service": "Google Cloud", "scope": "us-central1"},
    ],
}
GOOG = {
    "syncToken": "1",
    "creationTime": "x",
    "prefixes": [{"ipv4Prefix": "192.0.2.0/25"}, {"ipv4Prefix": "192.0.2.0/24"}],
}
AZURE = {
    "changeNumber": 1,
    "cloud": "Public",
    "values": [
        {
            "name": "AzureCloud",
            "id": "AzureCloud",
            "properties": {
                "region": "",
                "systemService": "",
                "addressPrefixes": ["2001:db8:1::/48", "192.0.2.128/26"],
            },
        },
        {
            "name": "AzureCloud.westeurope",
            "id": "AzureCloud.westeurope",
            "properties": {
                "region": "westeurope",
                "systemService": "",
                "addressPrefixes": ["2001:db8:1::/48"],
            },
        },
        {
            "name": "Storage",
            "id": "Storage",
            "properties": {
                "region": "",
                "systemService": "AzureStorage",
                "addressPrefixes": ["2001:db8:1::/48"],
            },
        },
        {
            "name": "Sql.WestEurope",
            "id": "Sql.WestEurope",
            "properties": {
                "region": "westeurope",
                "systemService": "AzureSQL",
                "addressPrefixes": ["192.0.2.192/26"],
            },
        },
    ],
}


def dump(document: object) -> bytes:
    return json.dumps(document).encode()
