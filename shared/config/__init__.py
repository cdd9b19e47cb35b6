"""Configuration: the typed settings read from the environment."""
