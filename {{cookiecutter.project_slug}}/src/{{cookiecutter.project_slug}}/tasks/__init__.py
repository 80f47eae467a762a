"""Background tasks on taskiq: the broker (`broker.py`), what every task run gets
(`middleware.py`) and the worker and scheduler processes (`worker.py`). Tasks live next to
their domain (`items/tasks.py`) or here when they belong to none (`maintenance.py`)."""
