"""kubenetmon: Kubernetes network metering from the kernel's conntrack table to ClickHouse."""

__version__ = "0.1.0"
