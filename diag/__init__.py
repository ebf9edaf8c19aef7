"""wnvdiag: read Windows network-virtualization ETL traces and diagnose them.

The package reads like its pipeline: ``read`` (the ETL container) → ``decode`` (one module per
provider) → ``facts`` → ``engine`` (durable_rules) → ``store`` → ``report``. ``diag.api`` is the
library surface; ``diag.cli`` is a thin typer layer over it.
"""

__version__ = "0.1.0"
