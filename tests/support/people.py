"""The people every test has (tests/conftest.py makes them): their one password."""

PASSWORD = "correct horse battery staple"
