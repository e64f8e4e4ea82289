"""Tools for the project's own targets: `make run` and `make compliance`."""
