#!/usr/bin/python3
"""Reference verifier for edge-agent records (docs/attestation.md, docs/consumers.md).

Reads records as a CBOR sequence (what `edge-agent queue export`, the file uplink and
`edge-agent collect export` write; one MQTT message is one record) or, with --hex, one
record as hex text. For each record it checks the COSE_Sign1 envelope, the deterministic
encoding and the Ed25519 or ES256 signature (and a session record's binding), and prints one JSON object per line. It then checks
the chain links between the records it holds. Exit status: 0 all good, 1 a bad record or
link, 2 usage.

Needs cbor2 and cryptography (Debian: python3-cbor2 python3-cryptography).
"""

import hashlib
import io
import json
import sys

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

MAX_RECORD = 64 << 10
ALG_EDDSA = -8
ALG_ES256 = -7
KCWT = 13
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


class Bad(Exception):
    """A record that is malformed or badly signed."""


def device_id(kid, alg=ALG_EDDSA):
    """The libp2p peer ID of the device key: base58btc(multihash(protobuf key)). Ed25519
    keys use the identity multihash; P-256 keys (protobuf type 3, PKIX DER) SHA-256."""
    if alg == ALG_EDDSA:
        pb = b"\x08\x01\x12\x20" + kid
        mh = bytes([0x00, len(pb)]) + pb
    else:
        der = p256_key(kid).public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        pb = b"\x08\x03\x12" + bytes([len(der)]) + der
        mh = b"\x12\x20" + hashlib.sha256(pb).digest()
    n = int.from_bytes(mh, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(mh) - len(mh.lstrip(b"\0"))) + out


def p256_key(kid):
    if not isinstance(kid, bytes) or len(kid) != 33 or kid[0] not in (2, 3):
        raise Bad("an ES256 kid must be a 33-byte compressed P-256 point")
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), kid)


def check_sig(alg, kid, prot_raw, payload_raw, sig, what):
    """COSE_Sign1 signature check of EdDSA (Ed25519) or ES256 (r || s, not DER)."""
    tbs = cbor2.dumps(["Signature1", prot_raw, b"", payload_raw])
    try:
        if alg == ALG_EDDSA:
            if not isinstance(kid, bytes) or len(kid) != 32 or len(sig) != 64:
                raise Bad("kid must be a 32-byte Ed25519 key and the signature 64 bytes")
            Ed25519PublicKey.from_public_bytes(kid).verify(sig, tbs)
        elif alg == ALG_ES256:
            if len(sig) != 64:
                raise Bad("an ES256 signature is r || s, 64 bytes")
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            p256_key(kid).verify(der, tbs, ec.ECDSA(hashes.SHA256()))
        else:
            raise Bad("alg %r is neither EdDSA (-8) nor ES256 (-7)" % (alg,))
    except InvalidSignature:
        raise Bad("bad signature" + what) from None


def canonical(value, raw, what):
    """The contract: re-encoding what was decoded gives the same bytes."""
    if cbor2.dumps(value, canonical=True) != raw:
        raise Bad(what + " is not deterministically encoded")


def verify(raw):
    """Checks one record; returns its claims as a dict for printing."""
    if len(raw) > MAX_RECORD:
        raise Bad("record larger than 64 KiB")
    rec = cbor2.loads(raw)
    if not isinstance(rec, cbor2.CBORTag) or rec.tag != 18:
        raise Bad("not a COSE_Sign1 (tag 18)")
    canonical(rec, raw, "the envelope")
    if not isinstance(rec.value, list) or len(rec.value) != 4:
        raise Bad("COSE_Sign1 is not a 4-element array")
    prot_raw, unprot, payload_raw, sig = rec.value
    if not all(isinstance(x, bytes) for x in (prot_raw, payload_raw, sig)) or not isinstance(unprot, dict):
        raise Bad("COSE_Sign1 fields have the wrong types")
    binding = None
    if unprot:
        # A session record: signed by an in-memory Ed25519 key that the binding (a CWT
        # the device key signed, in header 13 "kcwt") names in its cnf claim.
        if set(unprot) != {KCWT} or prot_raw != b"\xa1\x01\x27":
            raise Bad("a session record has protected {1: -8} and only header 13 (kcwt) unprotected")
        binding = check_binding(unprot[KCWT])
        alg, kid = binding["alg"], binding["kid"]
        session_key = binding["key"]
    else:
        prot = cbor2.loads(prot_raw)
        canonical(prot, prot_raw, "the protected header")
        if not isinstance(prot, dict) or set(prot) != {1, 4}:
            raise Bad("the protected header must hold exactly alg (1) and kid (4)")
        alg, kid = prot[1], prot[4]

    # Nothing below the signatures is trusted until they pass.
    if binding:
        check_sig(ALG_EDDSA, session_key, prot_raw, payload_raw, sig, " (session key)")
    else:
        check_sig(alg, kid, prot_raw, payload_raw, sig, "")

    claims = cbor2.loads(payload_raw)
    canonical(claims, payload_raw, "the payload")
    if not isinstance(claims, dict) or not {1, 2, 3, 4, 5, 6, 7} <= set(claims) or not set(claims) <= set(range(1, 11)):
        raise Bad("the payload does not have the claim keys 1-7 (8, 9, 10 optional)")
    chain, seq, prev, kind = claims[1], claims[2], claims[3], claims[5]
    if not (isinstance(chain, bytes) and len(chain) == 16 and isinstance(seq, int) and seq >= 1
            and isinstance(prev, bytes) and len(prev) == 32 and isinstance(kind, str) and kind):
        raise Bad("chain, seq, prev or kind out of range")
    if seq == 1 and prev != bytes(32):
        raise Bad("seq 1 must have a zero prev")
    if binding:
        if binding["chain"] != chain or binding["boot"] != claims.get(9):
            raise Bad("the session binding is for another chain or boot")
        if not binding["nbf"] * 10**9 <= claims[4] < binding["exp"] * 10**9:
            raise Bad("the record's time is outside its session binding's validity")
    return {
        "device": device_id(kid, alg),
        "chain": chain.hex(),
        "seq": seq,
        "prev": prev.hex(),
        "time_ns": str(claims[4]),
        "kind": kind,
        "source": claims[6],
        "payload_sha256": hashlib.sha256(payload_raw).hexdigest(),
    }


def check_binding(cwt):
    """Checks a session binding (docs/attestation.md, binding) and returns its claims."""
    if not isinstance(cwt, list) or len(cwt) != 4 or cwt[1] != {}:
        raise Bad("the session binding is not an untagged COSE_Sign1 with an empty unprotected header")
    prot_raw, _, claims_raw, sig = cwt
    prot = cbor2.loads(prot_raw)
    canonical(prot, prot_raw, "the binding's protected header")
    if not isinstance(prot, dict) or set(prot) != {1, 4}:
        raise Bad("the binding's protected header must hold exactly alg (1) and kid (4)")
    check_sig(prot[1], prot[4], prot_raw, claims_raw, sig, " (session binding)")
    c = cbor2.loads(claims_raw)
    canonical(c, claims_raw, "the binding's claims")
    if not isinstance(c, dict) or set(c) != {4, 5, 8, "boot", "chain"}:
        raise Bad("the binding's claims must be exp, nbf, cnf, boot and chain")
    key = c[8].get(1) if isinstance(c[8], dict) else None
    if not isinstance(key, dict) or key.get(1) != 1 or key.get(-1) != 6 or not isinstance(key.get(-2), bytes):
        raise Bad("the binding's cnf is not an Ed25519 COSE_Key")
    return {"alg": prot[1], "kid": prot[4], "key": key[-2], "exp": c[4], "nbf": c[5], "boot": c["boot"], "chain": c["chain"]}


def read_sequence(data):
    """Splits a CBOR sequence into the raw bytes of each item."""
    fp = io.BytesIO(data)
    dec = cbor2.CBORDecoder(fp)
    while fp.tell() < len(data):
        start = fp.tell()
        dec.decode()
        yield data[start:fp.tell()]


def main(argv):
    args = [a for a in argv if a != "--hex"]
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: edge_verify.py [--hex] FILE|-", file=sys.stderr)
        return 2
    data = sys.stdin.buffer.read() if args[0] == "-" else open(args[0], "rb").read()
    if "--hex" in argv:
        data = bytes.fromhex(data.decode().strip())
    bad = 0
    held = {}  # (device, chain) -> {seq: (prev, payload_sha256)}
    try:
        raws = list(read_sequence(data))
    except Exception as e:  # a truncated file: report what was read
        print(json.dumps({"error": "unreadable CBOR sequence: %s" % e}))
        return 1
    for i, raw in enumerate(raws):
        try:
            r = verify(raw)
        except (Bad, ValueError, cbor2.CBORDecodeError) as e:
            bad += 1
            print(json.dumps({"index": i, "error": str(e)}))
            continue
        held.setdefault((r["device"], r["chain"]), {})[r["seq"]] = (r["prev"], r["payload_sha256"])
        print(json.dumps(r, sort_keys=True))
    for (dev, chain), seqs in sorted(held.items()):
        for seq, (prev, _) in sorted(seqs.items()):
            before = seqs.get(seq - 1)
            if before and before[1] != prev:
                bad += 1
                print(json.dumps({"device": dev, "chain": chain, "seq": seq, "error": "broken link"}))
    print("%d records, %d bad" % (len(raws), bad), file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
