"""Deployment assets; ``deploy.local`` is the embedded stack that ``make run`` starts."""
