"""A bench farm through labgrid: places as rigs, leases, `hil farm`, `hil places` (docs/farm.md)."""
