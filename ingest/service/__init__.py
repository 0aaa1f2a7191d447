"""The long-running side: the daemon and its jobs, its local HTTP API and /metrics, and the
client the CLI uses to reach that API while the daemon holds the database."""
