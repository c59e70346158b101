"""The tokens the token-API tests store and look for in (or outside) responses."""

ACCESS = "at-valid-0123456789"
REFRESH = "rt-secret-must-never-leave-9876543210"
