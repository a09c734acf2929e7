"""npe2 adapters in front of the analysis: the reader, the sample data and the layer data.

They never raise for bad input (a notification says what went wrong) and hold no logic of
their own: :mod:`.reader` calls :func:`napari_calcinosis.dicom.load_study`, :mod:`.layer_data`
turns a study into napari LayerData tuples, :mod:`.sample_data` builds the bundled samples.
They import napari's non-GUI parts only; the widgets live in ``napari_calcinosis._qt``.
"""
