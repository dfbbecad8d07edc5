"""Foundations: storage, where things live, settings, documents, encoding, models and metrics.

Every other layer builds on these; they import nothing above them.
"""
