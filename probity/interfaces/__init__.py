"""Interfaces: thin layers over the services (CLI now; API and web later). No business rules."""
