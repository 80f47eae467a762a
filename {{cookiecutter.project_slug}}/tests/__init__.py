import os

# The suite runs in the test environment, whatever the shell or `.env` says: importing the
# application module builds its settings, and without ENVIRONMENT a process is production.
os.environ["ENVIRONMENT"] = "test"
