"""The read side: pure folds of event streams into answers (grows with point-in-time queries)."""
