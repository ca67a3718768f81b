"""Rollback: the runbook's "Emergency rollback" (`kubectl rollout undo`) as an object."""
