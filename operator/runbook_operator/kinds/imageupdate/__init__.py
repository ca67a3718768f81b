"""ImageUpdate: `kubectl set image`, its rollout and health check, and undo on failure."""
