"""The service's checkpoint and proofs, checked by Go's golang.org/x/mod/sumdb/tlog and note."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from events.merkle import Border
from tests import factories
from tests.proof_support import checkpoint_at_least, signing_client
from tests.support import Tokens, append, unique_id

GO = shutil.which("go")
CHECKER = Path(__file__).resolve().parent.parent / "tlog_go" / "check.go"
GOPATH = Path("/usr/share/gocode")  # where Debian's golang-golang-x-mod-dev installs it
EVENTS = 13

# .ci/run installs both and sets LEDGER_REQUIRE_GO=1, so that there their absence fails.
pytestmark = pytest.mark.skipif(
    not os.environ.get("LEDGER_REQUIRE_GO")
    and (GO is None or not (GOPATH / "src/golang.org/x/mod/sumdb/tlog").is_dir()),
    reason="needs go and golang.org/x/mod (Debian: golang-go, golang-golang-x-mod-dev)",
)


def _checker(tmp_path: Path) -> Path:
    """Build the Go checker without modules, from the packages in GOPATH."""
    assert GO is not None
    binary = tmp_path / "check"
    env = {"GO111MODULE": "off", "GOPATH": str(GOPATH), "GOCACHE": str(tmp_path / "go-cache")}
    env["CGO_ENABLED"] = "0"  # pure Go: no C toolchain needed
    env["HOME"], env["PATH"] = str(tmp_path), str(Path(GO).parent)
    built = subprocess.run(
        [GO, "build", "-o", str(binary), str(CHECKER)], capture_output=True, text=True, env=env
    )
    assert built.returncode == 0, built.stderr
    return binary


def _check(binary: Path, checks: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary)], input=json.dumps(checks), capture_output=True, text=True, timeout=60
    )


async def _proofs(client: Any, tokens: Tokens) -> dict[str, Any]:
    """Sign a checkpoint of at least EVENTS events; gather every proof in it."""
    company = unique_id()
    await append(client, tokens, factories.company_registered(company))
    for i in range(EVENTS - 1):
        await append(client, tokens, factories.valuation_reported(company, value=str(10**9 + i)))
    note, checkpoint = await checkpoint_at_least(client, tokens, EVENTS)
    read, size = tokens.header("read"), checkpoint.size
    inclusion = []
    for position in range(1, size + 1):
        params = {"position": position, "tree_size": size}
        proof = (await client.get("/ledger/proofs/inclusion", params=params, headers=read)).json()
        inclusion.append(
            {"index": position - 1, "leaf": proof["leaf_hash"], "hashes": proof["hashes"]}
        )
    border, consistency = Border(), []
    for first, proof in enumerate(inclusion[:-1], start=1):
        border.append(base64.b64decode(proof["leaf"]))
        params = {"from": first, "to": size}
        answer = await client.get("/ledger/proofs/consistency", params=params, headers=read)
        root = base64.b64encode(border.root()).decode()
        consistency.append({"size": first, "root": root, "hashes": answer.json()["hashes"]})
    vkey = (await client.get("/ledger/public-key")).text.strip()
    return {"vkey": vkey, "checkpoint": note, "inclusion": inclusion, "consistency": consistency}


def _flip(text: str) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[0] ^= 1
    return base64.b64encode(bytes(raw)).decode()


async def test_go_tlog_verifies_the_checkpoint_and_every_proof(
    db_url: str, tokens: Tokens, tmp_path: Path
) -> None:
    binary = _checker(tmp_path)
    async with signing_client(db_url, tmp_path / "keys") as client:
        checks = await _proofs(client, tokens)
    # then Go's tlog verifies the signature and every inclusion and consistency proof
    honest = _check(binary, checks)
    assert (honest.returncode, honest.stdout.strip()) == (0, "ok"), honest.stdout
    # and refuses a proof with one hash altered
    altered = json.loads(json.dumps(checks))
    altered["inclusion"][3]["hashes"][1] = _flip(altered["inclusion"][3]["hashes"][1])
    refused = _check(binary, altered)
    assert refused.returncode == 1 and "inclusion of leaf 3" in refused.stdout, refused.stdout
    altered = json.loads(json.dumps(checks))
    altered["consistency"][4]["hashes"][0] = _flip(altered["consistency"][4]["hashes"][0])
    refused = _check(binary, altered)
    assert refused.returncode == 1 and "consistency of 5" in refused.stdout, refused.stdout
