"""Backups: taken (take.py), checked and restored (manifest.py, restore.py), copied off the box (remote.py), on a
timer (schedule.py). Qdrant's snapshot API is reached through its container (qdrant.py)."""
