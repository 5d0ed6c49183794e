"""Probity: accountable, self-hosted face search for investigators.

Nothing heavy happens at import time: models, databases and indexes are built by
``probity.services.container.build_services(settings)``.
"""

__version__ = "0.1.0"

INVESTIGATIVE_LEAD_NOTICE = "Investigative lead — not an identification"
"""Printed with every candidate list, on every interface and export (DESIGN.md, Accountability)."""
