"""The command line: one Typer sub-app per module, added in ``main.py``; commands are thin over services."""
