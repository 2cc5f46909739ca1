"""The daemon tests reuse the transport tests' throwaway PKI."""

from tests.transport.conftest import pki  # noqa: F401
