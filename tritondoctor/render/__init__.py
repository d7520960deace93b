"""Everything a person reads: findings, trees, plans, smoke results. rich is imported here only."""
