"""Many processes, many halls, one Redis: writer leases, following, forwarding."""
