"""Many nodes at once: per-node `check --json` reports collected (Ray) or read (files written by
Slurm, Kubernetes or anything else) and merged into groups of nodes that look the same."""
