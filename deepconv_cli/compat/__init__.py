"""The library behaviour deepconv relies on where no public API exists: one small module per library (lightning,
litdata, rich, torch), each access to a private name in one place, and tests/test_compat.py failing loudly when an
upgrade changes what we rely on. Nothing is imported here, so importing one module does not import the others."""
