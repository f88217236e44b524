"""Monitoring-centre core: feed decoding, caseload, rules engine, alerts, crime mapping,
simulator and the command line. Imports no Qt: the desktop application (``ui/``) and the
headless commands run exactly this code."""

__version__ = "0.1.0"
