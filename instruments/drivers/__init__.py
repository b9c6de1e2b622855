"""Drivers translate protocol requests into one instrument's calls."""
