"""Server-rendered pages (Jinja2), served by ``probity serve`` beside the API."""
