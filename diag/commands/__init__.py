"""CLI sub-commands that live in their own modules (registered in ``diag/cli.py``)."""
