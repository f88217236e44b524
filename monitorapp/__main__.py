"""``python -m monitorapp`` works the same as the ``monitorapp`` console script."""
import sys

from monitorapp.cli import main

sys.exit(main())
