"""``python -m napari_calcinosis`` runs the command line."""

import sys

from napari_calcinosis.cli import main

if __name__ == "__main__":
    sys.exit(main())
