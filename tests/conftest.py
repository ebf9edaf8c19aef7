import sys
from pathlib import Path

# Let tests import their helpers (tests/samples.py) whether or not the package is installed.
sys.path.insert(0, str(Path(__file__).resolve().parent))
