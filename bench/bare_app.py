"""The liveness baseline: a bare FastAPI app with the same route, nothing else."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}
