"""The bare-view baseline: the least Django can do for a signed webhook (verify, insert one row)."""
