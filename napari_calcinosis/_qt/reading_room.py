"""The reading room: every panel of the plugin in one dock, as tabs in reading order.

Findings (window, cursor value, ruler, detection), Views (the CT's coronal and sagittal
planes linked to the axial view, :mod:`.ortho_views`), Review (lesions, distribution and symmetry),
Clinical, Differential, Report, and PACS (find and open a study on the hospital's
archive). Each tab scrolls on its own, so the dock asks for the width of its widest panel
and little height: on a 1600 x 1000 screen the canvas keeps more than half the width and
no panel lies off-screen. ``napari-calcinosis view`` docks this
one widget; the panels can still be docked one by one from the Plugins menu.
"""

from typing import TYPE_CHECKING, Any

from magicgui.widgets import Container
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFrame, QScrollArea, QTabWidget, QVBoxLayout, QWidget

from .annotation_widget import LesionReviewWidget
from .classification_panel import ClassificationPanel
from .clinical_widget import ClinicalWidget
from .detection_widget import DetectionWidget
from .distribution_widget import DistributionWidget
from .ortho_views import OrthoViews
from .pacs_widget import PacsWidget
from .report_widget import ReportWidget
from .window_widget import WindowPresetWidget

if TYPE_CHECKING:
    import napari

#: Tabs in reading order: (tab title, [(panel display name, panel class), ...]).
TABS = (
    ("Findings", (("CT window presets", WindowPresetWidget),
                  ("Calcinosis detection", DetectionWidget))),
    ("Views", (("Orthogonal views", OrthoViews),)),
    ("Review", (("Lesion review", LesionReviewWidget),
                ("Distribution and symmetry", DistributionWidget))),
    ("Clinical", (("Clinical input", ClinicalWidget),)),
    ("Differential", (("Differential", ClassificationPanel),)),
    ("Report", (("Report", ReportWidget),)),
    ("PACS", (("PACS", PacsWidget),)),
)
#: Tabs whose panel scrolls its own list (it takes the whole page, not a scrolled page).
OWN_SCROLL = ("Views", "Differential", "Report")
#: Width of the dock's content: the widest panel fits, the canvas keeps the rest.
ROOM_WIDTH = 440


def _page(panels: list[Any]) -> QScrollArea:
    """A tab's page: its panels one under the other in a vertical scroll area."""
    inner = QWidget()
    layout = QVBoxLayout(inner)
    layout.setContentsMargins(2, 2, 2, 2)
    layout.setSpacing(4)
    for panel in panels:
        layout.addWidget(panel.native)
    layout.addStretch(1)
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(inner)
    return scroll


class ReadingRoom(Container):
    """Every panel of the plugin in one dock (see the module docstring).

    Attributes
    ----------
    panels : dict
        Panel display name (as in the manifest) -> the panel.
    tabs : QTabWidget
        The tabs, in reading order.
    """

    def __init__(self, viewer: "napari.viewer.Viewer"):
        super().__init__(labels=False)
        self.margins = (0, 0, 0, 0)
        self.panels: dict[str, Any] = {}
        self._tab_of: dict[str, int] = {}
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        for index, (title, entries) in enumerate(TABS):
            made = []
            for name, cls in entries:
                panel = cls(viewer)
                self.panels[name], self._tab_of[name] = panel, index
                made.append(panel)
            page = made[0].native if title in OWN_SCROLL else _page(made)
            self.tabs.addTab(page, title)
        self.native.layout().addWidget(self.tabs)
        self.native.setMinimumWidth(ROOM_WIDTH)
        self.native.setMaximumWidth(ROOM_WIDTH)

    def show_panel(self, name: str) -> None:
        """Bring the tab holding panel ``name`` to the front."""
        if name in self._tab_of:
            self.tabs.setCurrentIndex(self._tab_of[name])

    def current_tab(self) -> str:
        """The title of the tab in front."""
        return self.tabs.tabText(self.tabs.currentIndex())

    def set_clinical(self, clinical: Any) -> None:
        """Fill the clinical form with ``clinical`` and store it (see
        :meth:`ClinicalWidget.set_clinical`)."""
        self.panels["Clinical input"].set_clinical(clinical)

    def reset_choices(self, *_: Any) -> None:
        """napari asks the docked widget to refresh its layer choices: pass it on."""
        for panel in self.panels.values():
            reset = getattr(panel, "reset_choices", None)
            if reset is not None:
                reset()
