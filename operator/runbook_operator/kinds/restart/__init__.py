"""Restart: the runbook's "Application Restart" (`kubectl rollout restart`) as an object."""
