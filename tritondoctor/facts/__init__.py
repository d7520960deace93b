"""Facts gathered once per run into the Snapshot. Only these modules look at the world."""
