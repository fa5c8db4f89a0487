"""Displays: what people watch or hear (hall and window screens, announcements)."""
