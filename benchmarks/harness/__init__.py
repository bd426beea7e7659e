"""What every benchmark shares: processes, PostgreSQL, wrk, CPU meters, percentiles, tables."""
