"""Thin asyncio layers: bytes in, through a pure protocol, into call sessions."""
