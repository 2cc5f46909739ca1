"""ClickHouse: schema, the sink that inserts rows, and the report queries. Remote or embedded (chDB)."""
