"""Simulators: synthetic SAR target chips (``sar_targets``, the demo data), PDW pulse trains of multifunction radars
(``pdw``, radar.md §2) with their trivial reference rules (``pdw_reference``), and RadChar-format IQ frames
(``radchar_fixture``)."""
