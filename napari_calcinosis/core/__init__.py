"""Pure analysis core: numpy, scipy, scikit-image, pydicom, highdicom.

Never imports napari, qtpy or magicgui, so the command line, the tests and other programs can
use it without a display.
"""
