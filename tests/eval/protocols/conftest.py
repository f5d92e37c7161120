"""Makes the helper module of tests/eval/protocols (``face_surface``) importable by its tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
