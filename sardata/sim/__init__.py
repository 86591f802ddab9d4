"""Simulators that write datasets in real on-disk layouts, so the real source adapters ingest them (``sardata sim``,
pipeline steps ``sim-sar`` / ``sim-pdw`` / ``sim-radchar``):

* ``sar_targets``: speckled vehicle-like chips as MSTAR raw Phoenix files + an MSTAR-10 JPEG folder (the demo data);
* ``pdw``: a package, the multifunction-radar PDW simulator (``radar.md`` §2: emitter types, waveform plan, ESM
  receiver, intercept window) and its pool / cross-mode downstream HDF5 datasets for the ``pdwsim`` source;
* ``pdw_reference``: the trivial rules on raw PDW trains a cross-mode table must beat;
* ``radchar_fixture``: synthetic RadChar-format IQ frames (tests, and studies when the real files are absent).
"""
