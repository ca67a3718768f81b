"""EmergencyScale: the runbook's "Scaling Operations" for P1/P2 incidents."""
