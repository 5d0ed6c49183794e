"""Vector indexes. The index is derived data: it can always be rebuilt from the encrypted
templates in storage."""
