"""Okta's filter language: the SCIM expression parser, and ``filter``/``q`` as DuckDB SQL over
stored events or as a Python test on one event. Feeds, export and the simulator all use it."""
