"""Independent DKIM verifier for the tests: Debian's python3-dkim (dkimpy).

Usage: python3 dkim_verify.py MESSAGE_FILE '{"sel._domainkey.d.test": "v=DKIM1; ..."}'

Verifies every DKIM-Signature of the message (topmost first) with dkimpy,
answering its key look-ups from the JSON map given on the command line (no
network, no resolver), and prints one JSON array of "<d=>:pass|fail" strings.
It only reads; it never signs, so it cannot share a bug with the signer.
"""
import json
import sys

import dkim


def main() -> None:
    with open(sys.argv[1], "rb") as f:
        message = f.read()
    records = {k.lower().rstrip("."): v for k, v in json.loads(sys.argv[2]).items()}

    def dnsfunc(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode("ascii")
        txt = records.get(name.lower().rstrip("."))
        return None if txt is None else txt.encode("ascii")

    verifier = dkim.DKIM(message)
    count = sum(1 for k, _ in verifier.headers if k.lower() == b"dkim-signature")
    results = []
    for idx in range(count):
        d = dkim.DKIM(message)
        try:
            ok = d.verify(idx=idx, dnsfunc=dnsfunc)
        except dkim.DKIMException as e:
            print(f"signature {idx}: {e}", file=sys.stderr)
            ok = False
        domain = d.domain.decode("ascii") if d.domain else "?"
        results.append(f"{domain}:{'pass' if ok else 'fail'}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
