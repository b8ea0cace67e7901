"""Operator commands: ``flask --app wsgi db upgrade`` and ``flask --app wsgi create-admin EMAIL``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import click
from alembic import command
from alembic.config import Config
from flask import Flask, current_app
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from referral.errors import DomainError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # Percent signs in passwords would otherwise be read as interpolation.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _engine() -> Engine:
    return cast(Engine, current_app.extensions["referral.engine"])


@click.group("db", help="Database schema migrations (Alembic).")
def db_group() -> None:
    pass


@db_group.command("upgrade", help="Create or upgrade the schema to REVISION (default: head).")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    if _engine().dialect.name == "sqlite":
        Path(current_app.instance_path).mkdir(parents=True, exist_ok=True)
    upgrade_database(_engine(), revision)
    click.echo(f"database at {revision}")


@db_group.command("downgrade", help="Step the schema back to REVISION.")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    config = alembic_config(_engine().url.render_as_string(hide_password=False))
    with _engine().begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


@db_group.command("current", help="Show the schema revision.")
def db_current() -> None:
    config = alembic_config(_engine().url.render_as_string(hide_password=False))
    with _engine().begin() as connection:
        config.attributes["connection"] = connection
        command.current(config)


@click.command("create-admin", help="Create a platform admin and print its id and first API token as JSON.")
@click.argument("email")
def create_admin(email: str) -> None:
    from referral.services.organizations import create_platform_admin

    factory = cast(sessionmaker[Session], current_app.extensions["referral.sessionmaker"])
    with factory() as session:
        try:
            user, token = create_platform_admin(session, email)
        except DomainError as exc:
            raise click.ClickException(exc.message) from None
    click.echo(json.dumps({"user_id": str(user.id), "token": token}))


def register_commands(app: Flask) -> None:
    app.cli.add_command(db_group)
    app.cli.add_command(create_admin)
