"""Makes the helper module of tests/app (``trained_stages``) importable by its test files."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
