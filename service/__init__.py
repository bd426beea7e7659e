"""HTTP, command line and wiring of the ledger service."""
