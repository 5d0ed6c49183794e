"""Renderers shared by the API and the web pages."""
