"""The networks: one interface (interface.py), one registry (registry.py), one file per family (vgg.py, ...)."""
