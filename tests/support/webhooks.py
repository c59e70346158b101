"""Secrets the inbound-webhook tests' apps are registered with."""

PRIMARY = "primary-secret-AAAAAAAA"
SECOND = "second-secret-BBBBBBBBB"
