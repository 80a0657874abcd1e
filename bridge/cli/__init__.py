"""The ``amd-bridge`` command line."""
