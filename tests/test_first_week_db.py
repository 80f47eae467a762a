"""The first week with a database (issue 17), done as a user does it: through `make`, the
CLI and the generated README's own words, on a SQLite and a PostgreSQL (+ built-in users)
bake. Each variant is baked once (its own xdist group) and its tests run in file order;
the last one adds a resource to the bake, so it comes last.
"""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import textwrap
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import Baked, run, stop_process_group, tool_env
from tests.test_variants import free_port, wait_until_live
from tests.variants import Variant, make_variant

SQLITE = make_variant({"project_slug": "first_week_sqlite"}, "first-week-sqlite")
# A name that sorts after "tests": `make lint` must not care where the package's name falls.
POSTGRES = make_variant(
    {"project_slug": "week_one_pg", "database": "postgresql", "auth": "jwt"},
    "first-week-postgresql",
)
SERVER = ["-h", "127.0.0.1", "-U", "postgres"]
PASSWORD = "a long and unusual passphrase 7391"  # noqa: S105 - a test account
# The shipped migration's name, `file_template` in alembic.ini: date, numbered revision, slug.
MIGRATION_NAME = re.compile(r"^\d{8}_\d{4}_[a-z0-9_]+\.py$")


def param(*variants: Variant) -> list[object]:
    return [
        pytest.param(v, id=v.name, marks=[pytest.mark.slow, pytest.mark.xdist_group(v.name)])
        for v in variants
    ]


def is_postgres(variant: Variant) -> bool:
    return bool(variant.context["database"] == "postgresql")


def shell(
    command: list[str], project: Path, *, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    """A command as typed in the project's directory; the caller checks its exit code."""
    environment = tool_env(**env)
    if "DATABASE_URL" not in env:
        environment.pop("DATABASE_URL", None)  # the project's .env decides, as for a user
    return subprocess.run(
        command,
        cwd=project,
        env=environment,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def succeeds(command: list[str], project: Path, **env: str) -> str:
    done = shell(command, project, **env)
    output = done.stdout + done.stderr
    assert done.returncode == 0, (
        f"`{' '.join(command)}` exited {done.returncode}:\n{output[-6000:]}"
    )
    return output


def fails_in_one_line(
    command: list[str], project: Path, stdin: str, database_url: str, *, naming: str
) -> str:
    """Run a setup step that must fail, saying why in a line or so (no traceback); that
    line, the one that names `naming`."""
    done = shell(command, project, stdin=stdin + "\n", DATABASE_URL=database_url)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert done.returncode != 0, command
    assert "Traceback" not in done.stderr, done.stderr
    assert len(lines) <= 3, lines
    [message] = [line for line in lines if naming in line]
    return message


def postgres_url(name: str) -> str:
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


def database_exists(name: str) -> bool:
    query = f"SELECT 1 FROM pg_database WHERE datname = '{name}'"  # noqa: S608 - our own name
    done = subprocess.run(
        ["psql", *SERVER, "-d", "postgres", "-Atc", query],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip() == "1"


def drop_database(name: str, directory: Path) -> None:
    run(["dropdb", *SERVER, "--force", "--if-exists", name], cwd=directory)


@contextmanager
def empty_database(variant: Variant, directory: Path, *, create: bool = True) -> Iterator[str]:
    """A URL to a database that has no tables (not created at all with `create=False`)."""
    if not is_postgres(variant):
        yield f"sqlite+aiosqlite:///{directory / f'{uuid.uuid4().hex}.db'}"
        return
    name = f"first_week_{uuid.uuid4().hex[:12]}"
    if create:
        run(["createdb", *SERVER, name], cwd=directory)
    try:
        yield postgres_url(name)
    finally:
        drop_database(name, directory)


@contextmanager
def serving(target: str, project: Path, log: Path, database_url: str) -> Iterator[str]:
    """`make <target>` on a free loopback port, until it answers /health/live; stopped
    (its whole process group) afterwards."""
    port = free_port()
    env = {"DATABASE_URL": database_url, "HOST": "127.0.0.1", "PORT": str(port)}
    # `make run` serves metrics on a port of their own: the default one (9100) would be
    # taken by another test running in parallel.
    env["METRICS_PORT"] = str(free_port())
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["make", target],
            cwd=project,
            env=tool_env(**env),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_live(base_url, process, log)
        yield base_url
    finally:
        stop_process_group(process, signal.SIGTERM, timeout=15)


def signed_in(client: httpx.Client, variant: Variant) -> dict[str, str]:
    """Headers of a new user (built-in users), or none when the variant has no auth."""
    if variant.context["auth"] != "jwt":
        return {}
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    registered = client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert registered.status_code == 202, registered.text
    token = client.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


# --- a database that is not there yet --------------------------------------------------


@pytest.mark.parametrize("variant", param(SQLITE))
def test_make_dev_brings_a_new_sqlite_database_up_to_date(
    bake: Callable[[Variant], Baked], variant: Variant, tmp_path: Path
) -> None:
    project = bake(variant).path
    database = tmp_path / "dev.db"
    with serving("dev", project, tmp_path / "dev.log", f"sqlite+aiosqlite:///{database}") as url:
        ready = httpx.get(f"{url}/health/ready", timeout=10)
        items = httpx.get(f"{url}/api/v1/items", timeout=10)
    assert ready.status_code == 200, ready.text
    assert items.status_code == 200, items.text
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [
            ("0001",)
        ]


@pytest.mark.parametrize("variant", param(SQLITE, POSTGRES))
def test_an_unmigrated_database_is_not_ready_and_says_to_run_make_migrate(
    bake: Callable[[Variant], Baked], variant: Variant, tmp_path: Path
) -> None:
    project = bake(variant).path
    log = tmp_path / "run.log"
    with (
        empty_database(variant, tmp_path) as database_url,
        serving("run", project, log, database_url) as url,
        httpx.Client(base_url=url) as api,
    ):
        not_ready = api.get("/health/ready")
        if variant.context["auth"] == "jwt":
            needs_a_table = api.post(
                "/api/v1/auth/register", json={"email": "a@example.com", "password": PASSWORD}
            )
        else:
            needs_a_table = api.get("/api/v1/items")
        succeeds(["make", "migrate"], project, DATABASE_URL=database_url)
        ready = api.get("/health/ready")

    assert not_ready.status_code == 503
    assert needs_a_table.status_code == 503
    assert needs_a_table.headers["content-type"] == "application/problem+json"
    assert "not migrated" in needs_a_table.json()["detail"]
    assert "make migrate" in needs_a_table.json()["detail"]
    head = "0004" if variant.context["auth"] == "jwt" else "0001"  # users: 0002, 0004
    assert f"revision none, migrations at {head}" in log.read_text()  # current and expected
    assert ready.status_code == 200, ready.text


@pytest.mark.parametrize("variant", param(POSTGRES))
def test_a_missing_postgres_database_is_one_line_and_make_db_creates_it(
    bake: Callable[[Variant], Baked], variant: Variant, tmp_path: Path
) -> None:
    project = bake(variant).path
    slug = variant.context["project_slug"]
    with empty_database(variant, tmp_path, create=False) as database_url:
        name = database_url.rsplit("/", 1)[1]
        for command, stdin in [
            (["make", "migrate"], ""),
            (["uv", "run", slug, "create-superuser", "--email", "root@example.com"], PASSWORD),
        ]:
            message = fails_in_one_line(command, project, stdin, database_url, naming=name)
            assert "make db" in message

        succeeds(["make", "db"], project, DATABASE_URL=database_url)
        assert database_exists(name)
        succeeds(["make", "migrate"], project, DATABASE_URL=database_url)
        created = shell(
            ["uv", "run", slug, "create-superuser", "--email", "root@example.com"],
            project,
            stdin=PASSWORD + "\n",
            DATABASE_URL=database_url,
        )
        assert created.returncode == 0, created.stderr


@pytest.mark.parametrize("variant", param(POSTGRES))
def test_a_server_that_does_not_answer_is_one_line_naming_it(
    bake: Callable[[Variant], Baked], variant: Variant
) -> None:
    """A new user whose PostgreSQL is not running yet: each setup step says so in one line
    (it was a 130-line traceback), naming the address it tried."""
    project = bake(variant).path
    slug = variant.context["project_slug"]
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    database_url = f"postgresql+asyncpg://postgres@{address}/{slug}"
    for command, stdin in [
        (["make", "db"], ""),
        (["make", "migrate"], ""),
        (["uv", "run", slug, "create-superuser", "--email", "root@example.com"], PASSWORD),
    ]:
        message = fails_in_one_line(command, project, stdin, database_url, naming=address)
        assert "Cannot reach the database server" in message, message
        assert "Connection refused" in message, message


@pytest.mark.parametrize("variant", param(POSTGRES))
def test_make_test_needs_only_the_server(
    bake: Callable[[Variant], Baked], variant: Variant
) -> None:
    """The default .env names a database that nobody created: the tests do not need it."""
    project = bake(variant).path
    env_file = (project / ".env").read_text()
    [named] = re.findall(r"^DATABASE_URL=.*/(\w+)$", env_file, re.MULTILINE)
    assert named == variant.context["project_slug"]
    assert not database_exists(named)
    succeeds(["make", "test"], project)
    assert not database_exists(named)


# --- a new resource, its migration, and a foreign key to items ---------------------------


def add_notes_as_the_readme_says(project: Path, slug: str) -> None:
    readme = (project / "README.md").read_text()
    steps = readme[readme.index("### Add a resource") :]
    models = re.search(r"```python\n(.*?)```", steps, re.DOTALL)
    registration = re.search(rf"`(from {slug}\.notes import models as \w+  # noqa: F401)`", steps)
    assert models, "the README's steps changed: update this test with them"
    assert registration, "the README's steps changed: update this test with them"
    notes = project / "src" / slug / "notes"
    notes.mkdir()
    (notes / "__init__.py").write_text("")
    (notes / "models.py").write_text(textwrap.dedent(models[1]))
    env_py = project / "migrations" / "env.py"
    items_import = re.compile(rf"^from {slug}\.items import models .*$", re.MULTILINE)
    text, count = items_import.subn(lambda m: f"{m[0]}\n{registration[1]}", env_py.read_text())
    assert count == 1
    env_py.write_text(text)
    assert '`make migration m="add notes"`' in steps


def insert_note(variant: Variant, database_url: str, item_id: str) -> None:
    now = "2026-01-01 00:00:00"
    if is_postgres(variant):
        sql = (
            "INSERT INTO notes (id, item_id, text, created_at, updated_at) "
            "VALUES (:'id', :'item', 'see the manual', now(), now())"
        )
        name = database_url.rsplit("/", 1)[1]
        variables = ["-v", f"id={uuid.uuid4()}", "-v", f"item={item_id}", "-v", "ON_ERROR_STOP=1"]
        subprocess.run(["psql", *SERVER, "-d", name, *variables], input=sql, text=True, check=True)
        return
    with sqlite3.connect(database_url.split(":///", 1)[1]) as connection:
        connection.execute(
            "INSERT INTO notes (id, item_id, text, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
            (uuid.uuid4().hex, uuid.UUID(item_id).hex, "see the manual", now, now),
        )


@pytest.mark.parametrize("variant", param(SQLITE, POSTGRES))
def test_add_a_resource_with_a_foreign_key_as_the_readme_says(
    bake: Callable[[Variant], Baked], variant: Variant, tmp_path: Path
) -> None:
    project = bake(variant).path
    slug = variant.context["project_slug"]
    versions = project / "migrations" / "versions"
    shipped = {path.name for path in versions.glob("*.py")}
    add_notes_as_the_readme_says(project, slug)

    with empty_database(variant, tmp_path) as database_url:
        env = {"DATABASE_URL": database_url}
        succeeds(["make", "migrate"], project, **env)
        succeeds(["make", "migration", "m=add notes"], project, **env)
        [generated] = [path.name for path in versions.glob("*.py") if path.name not in shipped]
        assert all(MIGRATION_NAME.match(name) for name in shipped), shipped
        assert MIGRATION_NAME.match(generated), generated
        # The next number after the highest: the shipped ones may skip one (0003 exists
        # only with tasks=taskiq).
        highest = max(int(name.split("_")[1]) for name in shipped)
        assert generated.endswith(f"_{highest + 1:04d}_add_notes.py")
        succeeds(["make", "migrate"], project, **env)
        succeeds(["uv", "run", "alembic", "check"], project, **env)
        succeeds(["uv", "run", "alembic", "downgrade", "-1"], project, **env)
        succeeds(["uv", "run", "alembic", "upgrade", "head"], project, **env)
        succeeds(["make", "lint"], project)

        # Deleting an item that a note refers to is a 409 problem, over HTTP.
        with (
            serving("run", project, tmp_path / "run.log", database_url) as url,
            httpx.Client(base_url=url, timeout=10) as api,
        ):
            headers = signed_in(api, variant)
            created = api.post("/api/v1/items", json={"name": "manual"}, headers=headers)
            assert created.status_code == 201, created.text
            item_id = created.json()["id"]
            insert_note(variant, database_url, item_id)
            refused = api.delete(f"/api/v1/items/{item_id}", headers=headers)
            still_there = api.get(f"/api/v1/items/{item_id}", headers=headers)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert still_there.status_code == 200
