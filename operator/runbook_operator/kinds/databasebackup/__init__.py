"""DatabaseBackup: the runbook's "Database Backup", one-shot or on a schedule."""
