"""Helpers shared by the tests (import as `support.<module>`)."""
