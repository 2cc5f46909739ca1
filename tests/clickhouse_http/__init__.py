"""A test-only ClickHouse HTTP endpoint backed by the chDB engine, for testing the remote store path.

It speaks enough of ClickHouse's HTTP interface for unmodified clickhouse-connect and runs in its own
process (`python -m tests.clickhouse_http`), so a test process can keep its own embedded engine elsewhere
and a test can stop and restart the endpoint to simulate an outage. Not part of the product.
"""
