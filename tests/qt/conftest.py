"""Qt state that outlives a test: reset before every viewer test."""

from __future__ import annotations

import pytest
from review_helpers import release_modifiers


@pytest.fixture(autouse=True)
def _no_modifier_key_held():
    """Start every test with no modifier key held in Qt's application-wide state.

    A synthesized Shift/Ctrl click in an earlier test would otherwise leave Qt believing the
    key is still down (see ``review_helpers.release_modifiers``), and change what clicks and
    table row selections do in every later viewer.
    """
    release_modifiers()
    yield
