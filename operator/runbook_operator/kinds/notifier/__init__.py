"""Notifier: where operations tell people of their moments (Slack, webhook, Statuspage)."""
