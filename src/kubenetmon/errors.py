"""The exceptions kubenetmon raises on purpose.

    KubenetmonError
    ├── SettingsError            a flag, variable or file has a wrong value; the message names it
    ├── ConntrackError           the kernel side
    │   ├── NetlinkError         a netlink call failed (carries errno)
    │   └── NotReady             the node cannot be metered as configured (acct off, no conntrack, ...)
    ├── TransportError           agent <-> server
    │   ├── Unavailable          the peer cannot be reached now; retry later
    │   └── Rejected             the peer refused a batch; do not retry it unchanged
    ├── InventoryError           Kubernetes API or static inventory
    └── StoreError               ClickHouse
        ├── TransientStoreError  worth retrying (network, overload, timeouts)
        └── PermanentStoreError  retrying the same request cannot help (schema, auth, bad data)

Each adapter translates its library's exceptions into this tree in one place; expected outcomes (a flow
skipped as loopback, a record that could not be attributed) are return values, not exceptions.
"""

from __future__ import annotations


class KubenetmonError(Exception):
    """Base of every error kubenetmon raises deliberately."""


class SettingsError(KubenetmonError):
    """A configuration value is wrong; the message names the flag or variable and what it expects."""


class ConntrackError(KubenetmonError):
    """The conntrack table could not be read as needed."""


class NetlinkError(ConntrackError):
    """A netlink request failed; `errno` is the kernel's error number."""

    def __init__(self, errno: int, message: str) -> None:
        super().__init__(f"{message} (errno {errno})")
        self.errno = errno


class NotReady(ConntrackError):
    """The node cannot be metered as configured; the message says what to do."""


class TransportError(KubenetmonError):
    """Agent/server communication failed."""


class Unavailable(TransportError):
    """The peer cannot be reached right now; the caller should retry with backoff."""


class Rejected(TransportError):
    """The peer refused the request for a reason that retrying unchanged cannot fix."""


class InventoryError(KubenetmonError):
    """The Kubernetes API or the static inventory could not be read."""


class StoreError(KubenetmonError):
    """A ClickHouse operation failed."""


class TransientStoreError(StoreError):
    """A ClickHouse operation failed for a reason that may go away (network, overload, timeout)."""


class PermanentStoreError(StoreError):
    """A ClickHouse operation failed for a reason retrying cannot fix (schema, permissions, bad data)."""
