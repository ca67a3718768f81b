"""MaintenanceWindow: the runbook's "Maintenance Procedures", with its checklist enforced."""
