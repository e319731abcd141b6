"""The analysts' side: saved questions, the dashboard, read-only SQL and what confines it."""
