"""Wire protocols as pure code: parse bytes/text into events, build replies. No asyncio."""
