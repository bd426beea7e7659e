"""HTTP controllers: thin translations between requests and the log."""
