"""The plan store: the Durable Object's storage logic, on the ``Sql`` seam.

Readers (the isolate cache, ``/health``, ``flagedge eval``) ask three things:
which plan version is current, the plan itself, and whether a key is in some
of the segments that are too large to ship to the isolate.

The synchronizer writes through a lease and a staging area:

* ``begin_sync`` takes a lease (one writer at a time; a second run gets
  ``Busy``) and returns what the run needs to know about the live plan and any
  work staged by an earlier run that ran out of budget.
* ``stage`` writes one piece of the next plan into staging tables, in one
  synchronous transaction. A piece never changes what readers see.
* ``publish`` applies the complete units (the flag/rule-based-segment unit
  and finished segments) to the live tables and bumps the version, all in one
  transaction. It refuses, and changes nothing, when the result would name a
  segment that is not present.
* ``end_sync`` records the run's status and releases the lease.

Every write checks that the caller still holds the lease (fencing), so a run
whose lease expired cannot interleave its writes with the run that took over.
Every method takes and returns plain JSON-able values, so the Durable Object
can expose them over RPC unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from worker.sql import Sql

__all__ = ["Busy", "LeaseLost", "PlanStore", "StoreError"]

SCHEMA_VERSION = 1

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS flags (name TEXT PRIMARY KEY, body TEXT NOT NULL,"
    " refs TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rbs (name TEXT PRIMARY KEY, body TEXT NOT NULL,"
    " refs TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS segments (name TEXT PRIMARY KEY, till INTEGER NOT NULL,"
    " size INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS segment_keys (segment TEXT NOT NULL, key TEXT NOT NULL,"
    " PRIMARY KEY (segment, key)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS stage_units (unit TEXT PRIMARY KEY, data TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS stage_defs (kind TEXT NOT NULL, name TEXT NOT NULL,"
    " body TEXT, refs TEXT, PRIMARY KEY (kind, name)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS stage_keys (segment TEXT NOT NULL, key TEXT NOT NULL,"
    " present INTEGER NOT NULL, PRIMARY KEY (segment, key)) WITHOUT ROWID",
)

# Segment names that the live flags and rule-based segments name.
_REFERENCED = (
    "SELECT j.value FROM flags, json_each(flags.refs) AS j"
    " UNION SELECT j.value FROM rbs, json_each(rbs.refs) AS j"
)

SPLITS_UNIT = "splits"
SEGMENT_UNIT = "segment:"


class StoreError(Exception):
    """The store refused an operation; nothing was changed."""


class Busy(StoreError):
    """Another synchronizer run holds the lease."""


class LeaseLost(StoreError):
    """The caller's lease expired and another run took it over."""


class PlanStore:
    """Plan storage over any ``Sql``; one instance per Durable Object."""

    def __init__(self, sql: Sql) -> None:
        self._sql = sql
        sql.transaction(self._create_schema)

    def _create_schema(self) -> None:
        for statement in _SCHEMA:
            self._sql.execute(statement)
        if self._meta("schema") is None:
            self._set_meta("schema", SCHEMA_VERSION)

    # -- small helpers ---------------------------------------------------

    def _meta(self, key: str) -> Any:
        rows = self._sql.execute("SELECT v FROM meta WHERE k = ?", key)
        return json.loads(rows[0][0]) if rows else None

    def _set_meta(self, key: str, value: Any) -> None:
        self._sql.execute(
            "INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            key,
            json.dumps(value, separators=(",", ":")),
        )

    def _check_lease(self, owner: str) -> None:
        lease = self._meta("lease")
        if not lease or lease.get("owner") != owner:
            raise LeaseLost(
                f"sync run {owner!r} no longer holds the store's lease; its writes were refused"
            )

    # -- readers ---------------------------------------------------------

    def version(self) -> int:
        """The current plan's version; 0 before the first publication."""
        return int(self._meta("version") or 0)

    def read_plan(
        self, known_version: int = -1, max_segment_size: int = -1
    ) -> dict[str, Any] | None:
        """The current plan, or None when it is still ``known_version``.

        Segments with more than ``max_segment_size`` keys (when that is not
        negative) are listed by name and size only; their members stay here
        and are asked for through ``memberships``.
        """
        return self._sql.transaction(lambda: self._read_plan(known_version, max_segment_size))

    def _read_plan(self, known_version: int, max_segment_size: int) -> dict[str, Any] | None:
        version = self.version()
        if version == known_version:
            return None
        if version == 0:
            return {"version": 0}

        segments: dict[str, list[str]] = {}
        large: dict[str, int] = {}
        tills: dict[str, int] = {}
        for name, till, size in self._sql.execute("SELECT name, till, size FROM segments"):
            tills[name] = till
            if 0 <= max_segment_size < size:
                large[name] = size
            else:
                segments[name] = []
        # Only the small segments' keys: a large one's stay here, unread.
        rows = self._sql.execute(
            "SELECT k.segment, k.key FROM segment_keys AS k JOIN segments AS s"
            " ON s.name = k.segment WHERE ? < 0 OR s.size <= ?",
            max_segment_size,
            max_segment_size,
        )
        for segment, key in rows:
            segments[segment].append(key)

        return {
            "version": version,
            "ff_till": self._meta("ff_till"),
            "rbs_till": self._meta("rbs_till"),
            "flags": [row[0] for row in self._sql.execute("SELECT body FROM flags")],
            "rbs": [row[0] for row in self._sql.execute("SELECT body FROM rbs")],
            "segments": segments,
            "large_segments": large,
            "segment_tills": tills,
        }

    def memberships(self, key: str, segments: Iterable[str]) -> list[str]:
        """Which of ``segments`` hold ``key``: one statement, any number of names."""
        names = json.dumps(list(segments))
        rows = self._sql.execute(
            "SELECT j.value FROM json_each(?) AS j WHERE EXISTS"
            " (SELECT 1 FROM segment_keys WHERE segment = j.value AND key = ?)",
            names,
            key,
        )
        return [row[0] for row in rows]

    def status(self) -> dict[str, Any]:
        """What ``/health`` shows: the plan's numbers and the last sync's outcome."""

        def read() -> dict[str, Any]:
            return {
                "version": self.version(),
                "ff_till": self._meta("ff_till"),
                "rbs_till": self._meta("rbs_till"),
                "counts": self._meta("counts")
                or {"flags": 0, "rule_based_segments": 0, "segments": 0, "keys": 0},
                "published_at": self._meta("published_at"),
                "sync": self._meta("status"),
            }

        return self._sql.transaction(read)

    # -- the synchronizer's side ------------------------------------------

    def begin_sync(self, owner: str, now_ms: int, lease_ms: int) -> dict[str, Any]:
        """Take the lease and describe the live plan and any staged work."""
        return self._sql.transaction(lambda: self._begin_sync(owner, now_ms, lease_ms))

    def _begin_sync(self, owner: str, now_ms: int, lease_ms: int) -> dict[str, Any]:
        lease = self._meta("lease")
        if lease and lease.get("owner") != owner and lease.get("expires", 0) > now_ms:
            raise Busy(
                f"another sync run ({lease.get('owner')!r}) holds the store until "
                f"{lease.get('expires')}"
            )
        self._set_meta("lease", {"owner": owner, "expires": now_ms + lease_ms})

        stage = self._meta("stage")
        staged: dict[str, Any] | None = None
        if stage is not None:
            defs: dict[str, dict[str, Any]] = {"ff": {}, "rbs": {}}
            for kind, name, refs in self._sql.execute("SELECT kind, name, refs FROM stage_defs"):
                defs[kind][name] = None if refs is None else json.loads(refs)
            staged = {
                **stage,
                "units": {
                    unit: json.loads(data)
                    for unit, data in self._sql.execute("SELECT unit, data FROM stage_units")
                },
                "flags": defs["ff"],
                "rbs": defs["rbs"],
            }

        return {
            "version": self.version(),
            "fingerprint": self._meta("fingerprint"),
            "ff_till": self._meta("ff_till"),
            "rbs_till": self._meta("rbs_till"),
            "flags": {
                name: json.loads(refs)
                for name, refs in self._sql.execute("SELECT name, refs FROM flags")
            },
            "rbs": {
                name: json.loads(refs)
                for name, refs in self._sql.execute("SELECT name, refs FROM rbs")
            },
            "segments": {
                name: till for name, till in self._sql.execute("SELECT name, till FROM segments")
            },
            "stage": staged,
            "sync": self._meta("sync_state") or {},
            "counts": self._meta("counts"),
            "status": self._meta("status"),
        }

    def stage(self, owner: str, piece: dict[str, Any]) -> None:
        """Write one piece of the next plan into staging; readers see no change."""
        self._sql.transaction(lambda: self._stage(owner, piece))

    def _stage(self, owner: str, piece: dict[str, Any]) -> None:
        self._check_lease(owner)
        if "stage" in piece:
            self._set_meta("stage", piece["stage"])
        elif self._meta("stage") is None:
            raise StoreError("a staged piece must start a stage: it carries no 'stage' header")

        for kind, field in (("ff", "flags"), ("rbs", "rbs")):
            for name, item in piece.get(field, {}).items():
                body = None if item is None else item["body"]
                refs = None if item is None else json.dumps(item["refs"])
                self._sql.execute(
                    "INSERT INTO stage_defs (kind, name, body, refs) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (kind, name) DO UPDATE SET body = excluded.body,"
                    " refs = excluded.refs",
                    kind,
                    name,
                    body,
                    refs,
                )

        for segment, change in piece.get("keys", {}).items():
            for present, field in ((1, "added"), (0, "removed")):
                keys = change.get(field)
                if keys:
                    self._sql.execute(
                        "INSERT INTO stage_keys (segment, key, present)"
                        " SELECT ?, j.value, ? FROM json_each(?) AS j WHERE true"
                        " ON CONFLICT (segment, key) DO UPDATE SET present = excluded.present",
                        segment,
                        present,
                        json.dumps(keys),
                    )

        for unit in piece.get("drop", ()):  # staged work the next plan no longer needs
            self._sql.execute("DELETE FROM stage_units WHERE unit = ?", unit)
            if unit.startswith(SEGMENT_UNIT):
                self._sql.execute(
                    "DELETE FROM stage_keys WHERE segment = ?", unit[len(SEGMENT_UNIT) :]
                )

        for unit, data in piece.get("units", {}).items():
            self._sql.execute(
                "INSERT INTO stage_units (unit, data) VALUES (?, ?)"
                " ON CONFLICT (unit) DO UPDATE SET data = excluded.data",
                unit,
                json.dumps(data),
            )

    def discard_stage(self, owner: str) -> None:
        """Forget all staged work (for example after the configuration changed)."""

        def discard() -> None:
            self._check_lease(owner)
            self._clear_stage()

        self._sql.transaction(discard)

    def _clear_stage(self) -> None:
        for table in ("stage_units", "stage_defs", "stage_keys"):
            self._sql.execute(f"DELETE FROM {table}")
        self._sql.execute("DELETE FROM meta WHERE k = 'stage'")

    def publish(
        self,
        owner: str,
        units: list[str],
        *,
        piece: dict[str, Any] | None = None,
        now_ms: int = 0,
    ) -> dict[str, Any]:
        """Stage ``piece`` (if any) and make ``units`` live, in one transaction.

        In a rebuild stage (the configuration changed) the live plan is
        replaced wholesale by the staged one. Returns the new version and
        counts. Raises ``StoreError``, changing nothing, when the published
        plan would name a segment that is not present.
        """
        return self._sql.transaction(lambda: self._publish(owner, units, piece, now_ms))

    def _publish(
        self, owner: str, units: list[str], piece: dict[str, Any] | None, now_ms: int
    ) -> dict[str, Any]:
        if piece:
            self._stage(owner, piece)
        else:
            self._check_lease(owner)
        stage = self._meta("stage")
        if stage is None:
            raise StoreError("nothing is staged to publish")
        staged_units = {
            unit: json.loads(data)
            for unit, data in self._sql.execute("SELECT unit, data FROM stage_units")
        }
        for unit in units:
            data = staged_units.get(unit)
            if data is None or not data.get("done"):
                raise StoreError(f"unit {unit!r} is not complete and cannot be published")

        if stage.get("rebuild"):
            for table in ("flags", "rbs", "segments", "segment_keys"):
                self._sql.execute(f"DELETE FROM {table}")
            self._set_meta("fingerprint", stage.get("fingerprint"))

        for unit in units:
            data = staged_units[unit]
            if unit == SPLITS_UNIT:
                self._apply_definitions()
                self._set_meta("ff_till", data["since"])
                if data.get("rb_since") is not None:
                    self._set_meta("rbs_till", data["rb_since"])
            else:
                self._apply_segment(unit[len(SEGMENT_UNIT) :], data["since"])
            self._sql.execute("DELETE FROM stage_units WHERE unit = ?", unit)

        self._sql.execute(f"DELETE FROM segment_keys WHERE segment NOT IN ({_REFERENCED})")
        self._sql.execute(f"DELETE FROM segments WHERE name NOT IN ({_REFERENCED})")
        missing = [
            row[0]
            for row in self._sql.execute(
                f"SELECT value FROM ({_REFERENCED}) WHERE value NOT IN (SELECT name FROM segments)"
            )
        ]
        if missing:
            raise StoreError(
                "refusing to publish a plan that names segments not yet synced: "
                + ", ".join(sorted(missing))
            )

        version = self.version() + 1
        self._set_meta("version", version)
        self._set_meta("published_at", now_ms)
        counts = self._counts()
        self._set_meta("counts", counts)
        if not self._sql.execute("SELECT 1 FROM stage_units LIMIT 1"):
            self._clear_stage()
        elif stage.get("rebuild"):
            # What is left now builds on the plan just published.
            self._set_meta("stage", {**stage, "rebuild": False, "base_version": version})
        else:
            self._set_meta("stage", {**stage, "base_version": version})
        return {
            "version": version,
            "counts": counts,
            "ff_till": self._meta("ff_till"),
            "rbs_till": self._meta("rbs_till"),
        }

    def _apply_definitions(self) -> None:
        for kind, table in (("ff", "flags"), ("rbs", "rbs")):
            self._sql.execute(
                f"DELETE FROM {table} WHERE name IN"
                " (SELECT name FROM stage_defs WHERE kind = ? AND body IS NULL)",
                kind,
            )
            self._sql.execute(
                f"INSERT INTO {table} (name, body, refs) SELECT name, body, refs"
                " FROM stage_defs WHERE kind = ? AND body IS NOT NULL AND true"
                " ON CONFLICT (name) DO UPDATE SET body = excluded.body, refs = excluded.refs",
                kind,
            )
        self._sql.execute("DELETE FROM stage_defs")

    def _apply_segment(self, name: str, till: int) -> None:
        self._sql.execute(
            "DELETE FROM segment_keys WHERE segment = ? AND key IN"
            " (SELECT key FROM stage_keys WHERE segment = ? AND present = 0)",
            name,
            name,
        )
        self._sql.execute(
            "INSERT OR IGNORE INTO segment_keys (segment, key)"
            " SELECT segment, key FROM stage_keys WHERE segment = ? AND present = 1",
            name,
        )
        self._sql.execute("DELETE FROM stage_keys WHERE segment = ?", name)
        self._sql.execute(
            "INSERT INTO segments (name, till, size) VALUES"
            " (?, ?, (SELECT count(*) FROM segment_keys WHERE segment = ?))"
            " ON CONFLICT (name) DO UPDATE SET till = excluded.till, size = excluded.size",
            name,
            till,
            name,
        )

    def _counts(self) -> dict[str, int]:
        def count(query: str) -> int:
            return int(self._sql.execute(query)[0][0] or 0)

        return {
            "flags": count("SELECT count(*) FROM flags"),
            "rule_based_segments": count("SELECT count(*) FROM rbs"),
            "segments": count("SELECT count(*) FROM segments"),
            "keys": count("SELECT sum(size) FROM segments"),
        }

    def end_sync(self, owner: str, status: dict[str, Any], sync_state: dict[str, Any]) -> None:
        """Record the run's outcome and release the lease (if still held)."""

        def end() -> None:
            lease = self._meta("lease")
            if lease and lease.get("owner") == owner:
                self._sql.execute("DELETE FROM meta WHERE k = 'lease'")
                self._set_meta("sync_state", sync_state)
            self._set_meta("status", status)

        self._sql.transaction(end)
