"""Offline audit of the locked dependencies (`uv.lock`) against known vulnerabilities.

    python -m security.audit                      every locked package against the bundled DB
    python -m security.audit --db PATH            ... against another OSV source (see below)
    python -m security.audit build SOURCE         rebuild the bundled DB from an OSV source

The advisories are those of the Python Packaging Advisory Database (PyPA, the data behind
PyPI's own vulnerability reports and pip-audit), in the OSV format. No tool that installs from
PyPI, Debian or npm ships that data (pip-audit, safety and osv-scanner all fetch it at run time;
the one package that bundles a database, `safety-db`, stopped in July 2021), so a compact
snapshot of it is kept here, `security/pypa-advisories.json.gz` (CC-BY 4.0, PyPA), and any
newer OSV source can be given with `--db`: a folder of OSV files (.yaml or .json, e.g. a clone of
the PyPA database) or a zip of them (osv.dev's `PyPI/all.zip`).

A package is affected when its locked version is listed by an advisory or falls in one of its
ECOSYSTEM ranges (introduced <= v < fixed, or <= last_affected), PEP 440 order. Every run says
what it checked against: the source, its date and its age. A result is "nothing known as of
that date", never "no known vulnerabilities": advisories published after the snapshot are not
covered. Exit codes: 0 nothing found, 1 affected packages found, 2 no usable database.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import re
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from packaging.version import InvalidVersion, Version

HERE = Path(__file__).resolve().parent
BUNDLED_DB = HERE / "pypa-advisories.json.gz"
STALE_DAYS = 90


def normalize(name: str) -> str:
    """PEP 503 name normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()


# --- the database --------------------------------------------------------------------------------


def _compact(record: dict) -> list[dict]:
    """The PyPI entries of one OSV record, as few fields as the matching needs."""
    if record.get("withdrawn"):
        return []
    entries = []
    for affected in record.get("affected", []):
        package = affected.get("package", {})
        if package.get("ecosystem") != "PyPI":
            continue
        ranges = [
            [[kind, value] for event in r.get("events", []) for kind, value in event.items()]
            for r in affected.get("ranges", [])
            if r.get("type") in ("ECOSYSTEM", "SEMVER")
        ]
        entries.append(
            {
                "id": record["id"],
                "aliases": record.get("aliases", []),
                "package": normalize(package["name"]),
                "ranges": ranges,
                "versions": [] if ranges else [str(v) for v in affected.get("versions", [])],
                "fixed": sorted({v for r in ranges for kind, v in r if kind == "fixed"}),
                "summary": (record.get("summary") or record.get("details") or "").strip()
                .splitlines()[0][:160] if (record.get("summary") or record.get("details")) else "",
                "published": str(record.get("published", ""))[:10],
            }
        )
    return entries


def _osv_records(source: Path) -> list[dict]:
    """Every OSV record of a folder (.yaml/.yml/.json, recursively) or a zip of them."""
    import yaml

    def parse(name: str, text: str) -> dict | None:
        if name.endswith(".json"):
            return json.loads(text)
        if name.endswith((".yaml", ".yml")):
            return yaml.safe_load(text)
        return None

    records = []
    if source.is_file() and source.suffix == ".zip":
        with zipfile.ZipFile(source) as archive:
            for name in archive.namelist():
                record = parse(name, archive.read(name).decode())
                if isinstance(record, dict) and "id" in record:
                    records.append(record)
        return records
    for path in sorted(source.rglob("*")):
        if path.is_file():
            record = parse(path.name, path.read_text())
            if isinstance(record, dict) and "id" in record:
                records.append(record)
    return records


@dataclass(frozen=True)
class Database:
    entries: list[dict]
    source: str
    as_of: date
    """The date of the newest record: advisories after it are unknown to this database."""

    def age_days(self, today: date | None = None) -> int:
        return ((today or datetime.now(UTC).date()) - self.as_of).days


def build(source: Path, label: str) -> dict:
    """The compact database of an OSV source."""
    records = _osv_records(source)
    if not records:
        raise ValueError(f"no OSV records under {source}")
    entries = [entry for record in records for entry in _compact(record)]
    newest = max(str(r.get("modified") or r.get("published") or "")[:10] for r in records)
    return {
        "source": label,
        "license": "CC-BY-4.0 (Python Packaging Advisory Database, PyPA)",
        "as_of": newest,
        "records": len(records),
        "entries": entries,
    }


def load(path: Path) -> Database:
    """The bundled compact database (.json.gz) or any OSV source (folder or zip)."""
    path = Path(path)
    if path.name.endswith(".json.gz"):
        with gzip.open(path, "rt") as handle:
            data = json.load(handle)
    else:
        data = build(path, str(path))
    if not data["entries"]:
        raise ValueError(f"{path}: no advisories")
    return Database(data["entries"], data["source"], date.fromisoformat(data["as_of"]))


# --- matching ------------------------------------------------------------------------------------


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def in_range(version: Version, events: list[list[str]]) -> bool:
    """OSV range semantics over ordered events: affected from an `introduced` up to (not
    including) a `fixed` or `limit`, or up to and including a `last_affected`."""
    affected = False
    ordered = sorted(
        ((Version("0") if value == "0" else _version(value), kind) for kind, value in events),
        key=lambda pair: (pair[0] is None, pair[0] or Version("0")),
    )
    for bound, kind in ordered:
        if bound is None:
            continue  # an unparsable bound: the explicit version list decides
        if kind == "introduced" and bound <= version:
            affected = True
        elif (kind in ("fixed", "limit") and bound <= version) or (
            kind == "last_affected" and bound < version
        ):
            affected = False
    return affected


def affects(entry: dict, version: str) -> bool:
    if version in entry["versions"]:
        return True
    parsed = _version(version)
    return parsed is not None and any(in_range(parsed, events) for events in entry["ranges"])


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    advisory: str
    aliases: tuple[str, ...]
    fixed: tuple[str, ...]
    summary: str


def locked_packages(lock: Path) -> dict[str, str]:
    """name -> version of every package pinned in uv.lock (the project itself left out)."""
    data = tomllib.loads(Path(lock).read_text())
    return {
        normalize(p["name"]): p["version"]
        for p in data.get("package", [])
        if "version" in p and not {"editable", "virtual"} & set(p.get("source", {}))
    }


def audit(packages: dict[str, str], database: Database) -> list[Finding]:
    by_package: dict[str, list[dict]] = {}
    for entry in database.entries:
        by_package.setdefault(entry["package"], []).append(entry)
    findings = []
    for name, version in sorted(packages.items()):
        for entry in by_package.get(name, []):
            if affects(entry, version):
                findings.append(
                    Finding(name, version, entry["id"], tuple(entry["aliases"]),
                            tuple(entry["fixed"]), entry["summary"])
                )
    return findings


# --- command line --------------------------------------------------------------------------------


def _report(lock: Path, database: Database, packages: dict[str, str], findings: list[Finding]) -> dict:
    return {
        "lock": str(lock),
        "packages_checked": len(packages),
        "database": database.source,
        "database_as_of": database.as_of.isoformat(),
        "database_age_days": database.age_days(),
        "advisories": len({e["id"] for e in database.entries}),
        "affected_packages": sorted({f.package for f in findings}),
        "findings": [f.__dict__ | {"aliases": list(f.aliases), "fixed": list(f.fixed)} for f in findings],
    }


def _print(report: dict, out: io.TextIOBase) -> None:
    print(
        f"audit: {report['packages_checked']} packages of {report['lock']} checked against "
        f"{report['advisories']} advisories ({report['database']}, as of "
        f"{report['database_as_of']}, {report['database_age_days']} days old)",
        file=out,
    )
    if report["database_age_days"] > STALE_DAYS:
        print(
            f"audit: WARNING the database is older than {STALE_DAYS} days: vulnerabilities "
            f"published after {report['database_as_of']} are NOT checked (give a newer OSV "
            "source with --db)",
            file=out,
        )
    for f in report["findings"]:
        fixed = ", ".join(f["fixed"]) or "no fix listed"
        aliases = ", ".join(f["aliases"][:2])
        print(f"  {f['package']} {f['version']}: {f['advisory']} ({aliases}) fixed in {fixed}: "
              f"{f['summary']}", file=out)
    if report["findings"]:
        print(f"audit: {len(report['affected_packages'])} locked package(s) affected", file=out)
    else:
        print(f"audit: none of the locked versions is affected by an advisory known as of "
              f"{report['database_as_of']}", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m security.audit", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    builder = sub.add_parser("build", help="rebuild the bundled database from an OSV source")
    builder.add_argument("source", type=Path)
    builder.add_argument("--label", default=None, help="where the source came from (recorded)")
    builder.add_argument("--out", type=Path, default=BUNDLED_DB)
    parser.add_argument("--lock", type=Path, default=Path("uv.lock"))
    parser.add_argument("--db", type=Path, default=BUNDLED_DB)
    parser.add_argument("--report", type=Path, default=Path("reports/audit.json"))
    args = parser.parse_args(argv)

    if args.command == "build":
        data = build(args.source, args.label or str(args.source))
        with gzip.open(args.out, "wt", compresslevel=9) as handle:
            json.dump(data, handle, separators=(",", ":"), sort_keys=True)
        print(f"{len(data['entries'])} PyPI entries of {data['records']} records, as of "
              f"{data['as_of']} -> {args.out}")
        return 0
    try:
        database = load(args.db)
    except (OSError, ValueError, KeyError) as error:
        print(f"audit: no usable vulnerability database ({error}): NOTHING was checked",
              file=sys.stderr)
        return 2
    packages = locked_packages(args.lock)
    findings = audit(packages, database)
    report = _report(args.lock, database, packages, findings)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=1) + "\n")
    _print(report, sys.stdout)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
