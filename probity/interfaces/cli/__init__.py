"""The ``probity`` command line (Typer)."""
