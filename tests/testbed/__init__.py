"""A real Kubernetes control plane on loopback for the e2e tests (see testbed.py)."""
