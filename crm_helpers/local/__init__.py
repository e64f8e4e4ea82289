"""The project's local TiDB: building tidb-server, running it, recovery after a crash, the CLI."""
