"""Links to the PBXs' control channels, where decisions become channel variables."""
