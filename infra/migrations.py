"""Durable Object migrations, as a versioned list, and what to send to Cloudflare.

Cloudflare applies a migration when a script upload carries it, and rejects an
upload whose migration repeats a tag already applied ("migration tag
precondition failed"). So the program never sends a fixed block: it reads the
tag the live script carries (``None`` when the script does not exist, as on
the first ``pulumi up`` and after ``pulumi destroy``) and sends only the
migrations after it, with ``old_tag`` set to the live one, or nothing at all
when the script is up to date.

Renaming the store class is a two-step change: add a migration with
``renamed_classes`` and rename the class and its binding in the same commit;
deploy; only then may a later migration delete anything. Never edit or remove
an entry that has been deployed anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi_cloudflare as cloudflare

__all__ = ["MIGRATIONS", "Migration", "MigrationError", "current_classes", "pending_migrations"]


class MigrationError(Exception):
    """The live script's migration tag does not fit the list below."""


@dataclass(frozen=True)
class Migration:
    tag: str
    new_sqlite_classes: tuple[str, ...] = ()
    renamed_classes: tuple[tuple[str, str], ...] = ()
    deleted_classes: tuple[str, ...] = ()


MIGRATIONS: tuple[Migration, ...] = (Migration("v1", new_sqlite_classes=("FlagStore",)),)


def current_classes(migrations: Sequence[Migration] = MIGRATIONS) -> set[str]:
    """The Durable Object classes that exist once every migration is applied."""
    classes: set[str] = set()
    for migration in migrations:
        classes |= set(migration.new_sqlite_classes)
        for old, new in migration.renamed_classes:
            classes.discard(old)
            classes.add(new)
        classes -= set(migration.deleted_classes)
    return classes


def _renamed(pairs: tuple[tuple[str, str], ...], kind: type) -> list[object] | None:
    return [kind(from_=old, to=new) for old, new in pairs] or None


def pending_migrations(
    applied_tag: str | None, migrations: Sequence[Migration] = MIGRATIONS
) -> cloudflare.WorkersScriptMigrationsArgs | None:
    """What the next upload must carry, given the live script's tag."""
    tags = [m.tag for m in migrations]
    if len(set(tags)) != len(tags):
        raise MigrationError(f"migration tags must be unique: {tags}")
    if applied_tag in (None, ""):
        todo = list(migrations)
        applied_tag = None
    elif applied_tag in tags:
        todo = list(migrations[tags.index(applied_tag) + 1 :])
    else:
        raise MigrationError(
            f"the deployed Worker's Durable Object migration tag is {applied_tag!r}, which is not "
            f"in infra/migrations.py ({', '.join(tags)}); it was deployed from other code. "
            "See the README's 'Durable Object migrations' section to recover."
        )
    if not todo:
        return None
    if len(todo) == 1:
        only = todo[0]
        return cloudflare.WorkersScriptMigrationsArgs(
            old_tag=applied_tag,
            new_tag=only.tag,
            new_sqlite_classes=list(only.new_sqlite_classes) or None,
            renamed_classes=_renamed(  # type: ignore[arg-type]
                only.renamed_classes, cloudflare.WorkersScriptMigrationsRenamedClassArgs
            ),
            deleted_classes=list(only.deleted_classes) or None,
        )
    return cloudflare.WorkersScriptMigrationsArgs(
        old_tag=applied_tag,
        new_tag=todo[-1].tag,
        steps=[
            cloudflare.WorkersScriptMigrationsStepArgs(
                new_sqlite_classes=list(m.new_sqlite_classes) or None,
                renamed_classes=_renamed(  # type: ignore[arg-type]
                    m.renamed_classes, cloudflare.WorkersScriptMigrationsStepRenamedClassArgs
                ),
                deleted_classes=list(m.deleted_classes) or None,
            )
            for m in todo
        ],
    )
