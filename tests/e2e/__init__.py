"""End-to-end tests: against the local test bed, or the cluster KUBECONFIG names."""
