"""The central daemon: agent batches -> attributed, classified, aggregated rows -> the store."""
