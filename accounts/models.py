"""Accounts use django.contrib.auth's User; a user's roles are its groups (see accounts.roles)."""
