"""pyfd: restricted-Python BPF flow dissectors."""
