"""DatabaseRestore: the runbook's disaster recovery, refused unless clearly intended."""
