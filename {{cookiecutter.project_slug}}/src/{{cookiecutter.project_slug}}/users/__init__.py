"""Users: the accounts that sign in with a password (see `auth/` for tokens and login)."""
