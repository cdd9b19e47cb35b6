"""Domain records and errors: plain data and the rules on it, no I/O."""
