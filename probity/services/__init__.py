"""Use cases. Every interface (CLI, API, web, worker, tests) goes through these, built by
``probity.services.container.build_services``."""
