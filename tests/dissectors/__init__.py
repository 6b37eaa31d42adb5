"""Dissectors written for the tests; the compiler reads their source, so they live in files."""
