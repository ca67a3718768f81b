"""BackupDestination: where a namespace's backups go unless they say otherwise."""
