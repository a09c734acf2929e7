"""napari-calcinosis: soft-tissue calcification on chest radiographs and body CT."""

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("napari-calcinosis")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
