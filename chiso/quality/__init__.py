"""Quality: the Great Expectations gates per layer and the retention of their results."""
