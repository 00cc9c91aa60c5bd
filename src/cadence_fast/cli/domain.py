"""`cadence-fast domain register|describe|list|update|deprecate|delete`.

Flag names follow the `cadence` CLI where it has them (--domain/-d, --retention/--rd in
days, --description/--desc, --owner_email/--oe, --data k=v,..., --domain_id,
--add_bad_binary/--remove_bad_binary/--reason). The domain name may also be given
positionally: `cadence-fast domain describe samples`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from cadence_fast.cli.args import domain_api
from cadence_fast.cli.common import (
    CliError,
    add_address,
    add_json,
    call,
    print_fields,
    print_json,
    print_table,
    run_command,
    to_dict,
)

if TYPE_CHECKING:
    from cadence.api.v1 import domain_pb2

RPC_TIMEOUT = 10.0
DEFAULT_RETENTION_DAYS = 3  # the `cadence` CLI's default


def register(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser("domain", help="manage domains")
    gsub = group.add_subparsers(dest="domain_command", metavar="COMMAND")

    p = _command(gsub, "register", "register a new domain", _register)
    _add_name(p)
    p.add_argument(
        "--retention",
        "--rd",
        type=int,
        default=DEFAULT_RETENTION_DAYS,
        metavar="DAYS",
        help="workflow execution retention in days (default %(default)s)",
    )
    _add_info_flags(p)
    p.add_argument("--global_domain", "--gd", action="store_true", help="register a global domain")
    p.add_argument(
        "--active_cluster", "--ac", default="", help="active cluster (the single cluster, cluster0)"
    )

    p = _command(gsub, "describe", "show a domain", _describe)
    _add_name(p)
    p.add_argument("--domain_id", default="", help="describe by id instead of name")

    p = _command(gsub, "list", "list every domain", _list)
    p.add_argument(
        "--page_size", "--ps", type=int, default=100, help="domains per request (default %(default)s)"
    )

    p = _command(gsub, "update", "change a domain's settings", _update)
    _add_name(p)
    p.add_argument(
        "--retention", "--rd", type=int, metavar="DAYS", help="workflow execution retention in days"
    )
    _add_info_flags(p)
    p.add_argument("--add_bad_binary", metavar="CHECKSUM", help="mark a binary checksum as bad")
    p.add_argument("--remove_bad_binary", metavar="CHECKSUM", help="unmark a bad binary checksum")
    p.add_argument("--reason", default="", help="reason for --add_bad_binary")
    p.add_argument("--active_cluster", "--ac", help="active cluster (the single cluster, cluster0)")

    p = _command(gsub, "deprecate", "deprecate a domain (it refuses new workflows)", _deprecate)
    _add_name(p)

    p = _command(gsub, "delete", "delete a deprecated domain", _delete)
    _add_name(p)


def _command(
    gsub: argparse._SubParsersAction, name: str, help: str, fn: Callable[[argparse.Namespace], int | None]
) -> argparse.ArgumentParser:
    p = gsub.add_parser(name, help=help)
    add_address(p)
    add_json(p)
    p.set_defaults(handler=run_command(fn))
    return p


def _add_name(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", metavar="NAME", help="domain name (or --domain)")
    p.add_argument("--domain", "-d", "--do", dest="domain", help="domain name")


def _add_info_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--description", "--desc", help="description")
    p.add_argument("--owner_email", "--oe", help="owner email")
    p.add_argument(
        "--data", action="append", metavar="K=V,...", help="data entries key=value, comma separated"
    )


# --- argument helpers ------------------------------------------------------------------------


def _name(args: argparse.Namespace, required: bool = True) -> str:
    if args.name and args.domain and args.name != args.domain:
        raise CliError(f"two domain names given: {args.name!r} and --domain {args.domain!r}")
    name = args.name or args.domain or ""
    if required and not name:
        raise CliError("a domain name is required: --domain NAME")
    return str(name)


def parse_data(values: Sequence[str] | None) -> dict[str, str]:
    data: dict[str, str] = {}
    for value in values or ():
        for item in value.split(","):
            if not item.strip():
                continue
            key, sep, val = item.partition("=")
            if not sep or not key.strip():
                raise CliError(f"--data: {item!r} is not key=value")
            data[key.strip()] = val.strip()
    return data


def _days(days: int) -> timedelta:
    return timedelta(days=days)


def _call(method: Any, request: Any) -> Any:
    return call(method, request, RPC_TIMEOUT)


# --- output ------------------------------------------------------------------------------------


def _status_name(status: int) -> str:
    from cadence.api.v1 import domain_pb2

    return domain_pb2.DomainStatus.Name(status).removeprefix("DOMAIN_STATUS_") if status else "INVALID"


def _archival_name(status: int) -> str:
    from cadence.api.v1 import domain_pb2

    return domain_pb2.ArchivalStatus.Name(status).removeprefix("ARCHIVAL_STATUS_")


def _retention_days(domain: domain_pb2.Domain) -> str:
    seconds = domain.workflow_execution_retention_period.seconds
    return f"{seconds // 86400}" if seconds % 86400 == 0 else f"{seconds / 86400:.2f}"


def _print_domain(domain: domain_pb2.Domain) -> None:
    bad = domain.bad_binaries.binaries
    print_fields(
        [
            ("Name", domain.name),
            ("UUID", domain.id),
            ("Description", domain.description),
            ("OwnerEmail", domain.owner_email),
            ("DomainData", ", ".join(f"{k}={v}" for k, v in sorted(domain.data.items()))),
            ("Status", _status_name(domain.status)),
            ("RetentionInDays", _retention_days(domain)),
            ("IsGlobalDomain", str(domain.is_global_domain).lower()),
            ("ActiveClusterName", domain.active_cluster_name),
            ("Clusters", ", ".join(c.cluster_name for c in domain.clusters)),
            ("FailoverVersion", domain.failover_version),
            ("HistoryArchivalStatus", _archival_name(domain.history_archival_status)),
            ("HistoryArchivalURI", domain.history_archival_uri),
            ("VisibilityArchivalStatus", _archival_name(domain.visibility_archival_status)),
            ("VisibilityArchivalURI", domain.visibility_archival_uri),
            (
                "BadBinaries",
                ", ".join(f"{k} ({v.reason})" if v.reason else k for k, v in sorted(bad.items())),
            ),
        ]
    )


# --- commands ----------------------------------------------------------------------------------


def _register(args: argparse.Namespace) -> None:
    from cadence.api.v1 import service_domain_pb2 as pb

    name = _name(args)
    request = pb.RegisterDomainRequest(
        name=name,
        description=args.description or "",
        owner_email=args.owner_email or "",
        data=parse_data(args.data),
        is_global_domain=args.global_domain,
        active_cluster_name=args.active_cluster,
    )
    request.workflow_execution_retention_period.FromTimedelta(_days(args.retention))
    stub = domain_api(args)
    _call(stub.RegisterDomain, request)
    if args.json:
        print_json(_call(stub.DescribeDomain, pb.DescribeDomainRequest(name=name)).domain)
    else:
        print(f"Domain {name} successfully registered.")


def _describe(args: argparse.Namespace) -> None:
    from cadence.api.v1 import service_domain_pb2 as pb

    name = _name(args, required=not args.domain_id)
    if name and args.domain_id:
        raise CliError("give a domain name or --domain_id, not both")
    request = (
        pb.DescribeDomainRequest(id=args.domain_id) if args.domain_id else pb.DescribeDomainRequest(name=name)
    )
    domain = _call(domain_api(args).DescribeDomain, request).domain
    if args.json:
        print_json(domain)
    else:
        _print_domain(domain)


def _list(args: argparse.Namespace) -> None:
    from cadence.api.v1 import service_domain_pb2 as pb

    if args.page_size <= 0:
        raise CliError(f"--page_size must be positive, got {args.page_size}")
    stub = domain_api(args)
    domains: list[domain_pb2.Domain] = []
    token = b""
    while True:
        resp = _call(stub.ListDomains, pb.ListDomainsRequest(page_size=args.page_size, next_page_token=token))
        domains.extend(resp.domains)
        token = resp.next_page_token
        if not token:
            break
    if args.json:
        print_json([to_dict(d) for d in domains])
        return
    print_table(
        [
            "NAME",
            "UUID",
            "STATUS",
            "RETENTION_DAYS",
            "GLOBAL",
            "ACTIVE_CLUSTER",
            "OWNER_EMAIL",
            "DESCRIPTION",
        ],
        [
            (
                d.name,
                d.id,
                _status_name(d.status),
                _retention_days(d),
                str(d.is_global_domain).lower(),
                d.active_cluster_name,
                d.owner_email,
                d.description,
            )
            for d in domains
        ],
    )


def _update(args: argparse.Namespace) -> None:
    from cadence.api.v1 import service_domain_pb2 as pb
    from google.protobuf import field_mask_pb2

    name = _name(args)
    request = pb.UpdateDomainRequest(name=name)
    paths: list[str] = []
    if args.description is not None:
        request.description = args.description
        paths.append("description")
    if args.owner_email is not None:
        request.owner_email = args.owner_email
        paths.append("owner_email")
    if args.data:
        request.data.update(parse_data(args.data))
        paths.append("data")
    if args.retention is not None:
        request.workflow_execution_retention_period.FromTimedelta(_days(args.retention))
        paths.append("workflow_execution_retention_period")
    if args.add_bad_binary:
        request.bad_binaries.binaries[args.add_bad_binary].reason = args.reason
        paths.append("bad_binaries")
    if args.remove_bad_binary:
        request.delete_bad_binary = args.remove_bad_binary
        paths.append("delete_bad_binary")
    if args.active_cluster is not None:
        request.active_cluster_name = args.active_cluster
        paths.append("active_cluster_name")
    if not paths:
        raise CliError(
            "nothing to update: give at least one of --retention, --description, --owner_email, "
            "--data, --add_bad_binary, --remove_bad_binary, --active_cluster"
        )
    request.update_mask.CopyFrom(field_mask_pb2.FieldMask(paths=paths))
    domain = _call(domain_api(args).UpdateDomain, request).domain
    if args.json:
        print_json(domain)
    else:
        print(f"Domain {name} successfully updated.")


def _deprecate(args: argparse.Namespace) -> None:
    from cadence.api.v1 import service_domain_pb2 as pb

    name = _name(args)
    _call(domain_api(args).DeprecateDomain, pb.DeprecateDomainRequest(name=name))
    if args.json:
        print_json({"name": name, "status": "DEPRECATED"})
    else:
        print(f"Domain {name} successfully deprecated.")


def _delete(args: argparse.Namespace) -> None:
    from cadence.api.v1 import service_domain_pb2 as pb

    name = _name(args)
    _call(domain_api(args).DeleteDomain, pb.DeleteDomainRequest(name=name))
    if args.json:
        print_json({"name": name, "deleted": True})
    else:
        print(f"Domain {name} successfully deleted.")
