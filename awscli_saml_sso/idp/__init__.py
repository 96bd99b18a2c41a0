"""Where you sign in: stored identity providers, choosing one, passwords in the OS keyring."""
