"""`abusedesk audit keygen|public-key|checkpoint|verify`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from abusedesk.cli import context
from abusedesk.evidence import audit, checkpoints

app = typer.Typer(help="audit commands", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _checkpoint_dict(cp: checkpoints.Checkpoint | None) -> dict[str, object] | None:
    return None if cp is None else {"n": cp.n, "seq": cp.seq, "signed": cp.sig is not None}


@app.command()
def keygen(
    force: Annotated[bool, typer.Option(help="Replace an existing key (a key rotation; keep the old .pub).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create the Ed25519 key that signs the audit checkpoints (setting audit.signing_key) and sign the head.

    The chain is walked from its first entry before the first signed checkpoint is written: a broken chain is not
    signed over. Prints the public key; keep a copy away from this machine to check checkpoints against.
    """
    with context.errors_to_exit(), context.runtime(create=True) as rt:
        path = checkpoints.key_path(rt.settings)
        with rt.sessions() as session:
            result = audit.verify(
                session, checkpoint_log=checkpoints.read_log(checkpoints.log_path(rt.settings), audit.GENESIS)
            )
        if not result.ok:
            raise context.fail(f"audit log BROKEN at entry {result.first_bad_seq}: {result.problem}; no key made")
        public = checkpoints.generate_key(path, force=force)
        cp = rt.checkpointer.record_head()  # signs the head (the empty one of a new desk too)
        if as_json:
            data = {
                "key": str(path),
                "key_id": checkpoints.key_id(public),
                "public_key": checkpoints.public_pem(public).decode(),
                "checkpoint": _checkpoint_dict(cp),
            }
            context.emit(data, True)
            return
        typer.echo(f"audit signing key {path} (key id {checkpoints.key_id(public)}), public key beside it (.pub)")
        if cp is not None:
            typer.echo(f"signed checkpoint {cp.n}: entry {cp.seq} in {checkpoints.log_path(rt.settings)}")
        typer.echo(checkpoints.public_pem(public).decode().rstrip())


@app.command("public-key")
def public_key(as_json: JsonOpt = False) -> None:
    """Print the public key of the audit signing key (PEM), for officials and for `audit verify --public-key`."""
    with context.errors_to_exit(), context.runtime() as rt:
        path = checkpoints.key_path(rt.settings)
        pub = checkpoints.public_key_path(path)
        key = checkpoints.load_public_key(pub if pub.exists() else path)
        pem = checkpoints.public_pem(key).decode()
        if as_json:
            context.emit({"key_id": checkpoints.key_id(key), "public_key": pem}, True)
        else:
            typer.echo(pem.rstrip())


@app.command()
def checkpoint(as_json: JsonOpt = False) -> None:
    """Sign the chain's current head now (normally done after every commit that appends)."""
    with context.errors_to_exit(), context.runtime() as rt:
        cp = rt.checkpointer.record_head()
        if as_json:
            context.emit({"checkpoint": _checkpoint_dict(cp)}, True)
        elif cp is None:
            typer.echo("no new checkpoint: the head is already checkpointed, or the chain does not extend the last one")
        else:
            typer.echo(f"checkpoint {cp.n}: entry {cp.seq} {'signed' if cp.sig else 'UNSIGNED (no key)'}")


@app.command()
def verify(
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    expect_head: Annotated[
        str | None,
        typer.Option(
            help="SEQ:HASH of an entry kept elsewhere (as printed by an earlier verify) that must still be there."
        ),
    ] = None,
    public_key: Annotated[
        list[Path] | None,
        typer.Option("--public-key", help="A trusted public key (PEM); repeat for keys of earlier rotations."),
    ] = None,
    unsigned: Annotated[
        bool, typer.Option("--unsigned", help="Accept a log without signed checkpoints (a desk with no key yet).")
    ] = False,
) -> None:
    """Walk the hash chain and the signed checkpoints; exit 1 naming the first bad entry or checkpoint."""
    with context.errors_to_exit(), context.runtime() as rt:
        anchors = (audit.Anchor.parse(expect_head),) if expect_head else ()
        with rt.sessions() as session:
            result = audit.verify_settings(
                session,
                rt.settings,
                anchors=anchors,
                public_keys=tuple(public_key or ()),
                require_signed=not unsigned,
            )
        data = result.to_dict()
        data["checkpoint_log"] = str(checkpoints.log_path(rt.settings))
        if as_json:
            context.emit(data, True)
        elif result.ok:
            checked = (
                f", signed checkpoint at entry {result.signed_seq} matches (key {', '.join(result.key_ids)})"
                if result.signed_seq is not None
                else (f", checkpointed entry {result.anchor_seq} matches" if result.anchor_seq else "")
            )
            tail = f"; {result.unsigned_tail} entries after it not signed yet" if result.signed_seq is not None else ""
            typer.echo(f"audit log intact: {result.entries} entries{checked}{tail}; head {result.head}")
        else:
            where = f"at entry {result.first_bad_seq}" if result.first_bad_seq is not None else "NOT VERIFIED"
            typer.echo(f"audit log BROKEN {where}: {result.problem}")
        if not result.ok:
            raise typer.Exit(1)
