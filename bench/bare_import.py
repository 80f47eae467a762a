"""The import baseline: a bare app that imports only FastAPI, SQLAlchemy and pydantic."""

import pydantic  # noqa: F401
import sqlalchemy  # noqa: F401
from fastapi import FastAPI

app = FastAPI()
