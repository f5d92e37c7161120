"""Makes the helper modules of tests/train (``gan_task``) importable by its test files."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
