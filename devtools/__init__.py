"""Development tools: `make run`'s runner and the local processes of the tests. Not in the
image."""
