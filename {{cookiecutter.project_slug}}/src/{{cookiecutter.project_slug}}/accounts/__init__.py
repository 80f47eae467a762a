"""Accounts by mail: password reset and email verification, through single-use links."""
