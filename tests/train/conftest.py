"""Makes the helper modules of tests/train (``gan_task``) and of tests/app (``trained_stages``:
stages written as training leaves them) importable by its test files."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "app"))
