"""Administration: the `tessera` command."""
