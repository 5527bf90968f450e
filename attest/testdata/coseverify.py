#!/usr/bin/python3
"""Independent verifier for edge-agent records (shares no code with attest).

Reads hex records, one per line, on stdin; prints one line per record:
"ok <device-kind> <alg>" or "bad <reason>". Uses Python's cryptography
(Debian python3-cryptography) and its own minimal CBOR reader.
"""
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


class Reader:
    def __init__(self, b):
        self.b, self.i = b, 0

    def head(self):
        ib = self.b[self.i]
        self.i += 1
        major, info = ib >> 5, ib & 31
        if info < 24:
            return major, info
        n = {24: 1, 25: 2, 26: 4, 27: 8}[info]
        v = int.from_bytes(self.b[self.i:self.i + n], "big")
        self.i += n
        return major, v

    def item(self):
        start = self.i
        major, v = self.head()
        if major == 0:
            val = v
        elif major == 1:
            val = -1 - v
        elif major in (2, 3):
            raw = self.b[self.i:self.i + v]
            self.i += v
            val = bytes(raw) if major == 2 else raw.decode()
        elif major == 4:
            val = [self.item()[0] for _ in range(v)]
        elif major == 5:
            val = {}
            for _ in range(v):
                k = self.item()[0]
                val[k] = self.item()[0]
        elif major == 6:
            val = ("tag", v, self.item()[0])
        elif major == 7:
            val = {20: False, 21: True, 22: None}.get(v, ("simple", v))
        return val, bytes(self.b[start:self.i])


def cbor(b):
    r = Reader(b)
    v, _ = r.item()
    if r.i != len(b):
        raise ValueError("trailing bytes")
    return v


def items(b):
    """The top-level items of an array, as raw bytes."""
    r = Reader(b)
    major, n = r.head()
    assert major == 4
    return [r.item()[1] for _ in range(n)]


def bstr_head(n):
    if n < 24:
        return bytes([0x40 | n])
    if n < 256:
        return bytes([0x58, n])
    if n < 65536:
        return bytes([0x59]) + n.to_bytes(2, "big")
    return bytes([0x5A]) + n.to_bytes(4, "big")


def sig_structure(protected, payload):
    out = bytes([0x84, 0x6A]) + b"Signature1"
    out += bstr_head(len(protected)) + protected + bytes([0x40])
    return out + bstr_head(len(payload)) + payload


def verify(alg, key, protected, payload, sig):
    tbs = sig_structure(protected, payload)
    if alg == -8:
        ed25519.Ed25519PublicKey.from_public_bytes(key).verify(sig, tbs)
    elif alg == -7:
        if len(sig) != 64:
            raise InvalidSignature("ES256 signature must be 64 bytes r||s")
        pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key)
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        pub.verify(der, tbs, ec.ECDSA(hashes.SHA256()))
    else:
        raise InvalidSignature("alg %d" % alg)


def check(raw):
    tag = cbor(raw)
    if not (isinstance(tag, tuple) and tag[0] == "tag" and tag[1] == 18):
        return "bad not COSE_Sign1"
    parts = items(raw[1:])
    protected = cbor(parts[0])
    unprotected = cbor(parts[1])
    payload = cbor(parts[2])
    sig = cbor(parts[3])
    ph = cbor(protected)
    claims = cbor(payload)
    if not unprotected:
        alg, kid = ph[1], ph[4]
        try:
            verify(alg, kid, protected, payload, sig)
        except (InvalidSignature, ValueError) as e:
            return "bad record signature %r" % (e,)
        return "ok direct %d" % alg
    if set(unprotected) != {13} or ph != {1: -8}:
        return "bad session headers"
    cwt = unprotected[13]
    # The CWT, re-encoded by finding its bytes inside the unprotected header.
    uraw = parts[1]
    cparts = items(uraw[2:])  # skip a1 0d
    cprot, cpay, csig = cbor(cparts[0]), cbor(cparts[2]), cbor(cparts[3])
    if cbor(cparts[1]) != {}:
        return "bad binding unprotected header"
    bph = cbor(cprot)
    balg, bkid = bph[1], bph[4]
    try:
        verify(balg, bkid, cprot, cpay, csig)
    except (InvalidSignature, ValueError) as e:
        return "bad binding signature %r" % (e,)
    bc = cbor(cpay)
    key = bc[8][1]
    if key[1] != 1 or key[-1] != 6:
        return "bad cnf not Ed25519"
    if bc["chain"] != claims[1]:
        return "bad binding chain"
    if bc["boot"] != claims.get(9):
        return "bad binding boot"
    t = claims[4]
    if not (bc[5] * 10**9 <= t < bc[4] * 10**9):
        return "bad binding expired or not yet valid"
    try:
        verify(-8, key[-2], protected, payload, sig)
    except (InvalidSignature, ValueError) as e:
        return "bad session signature %r" % (e,)
    assert cwt is not None
    return "ok session %d" % balg


def main():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            print(check(bytes.fromhex(line)))
        except Exception as e:  # malformed input is a verdict, not a crash
            print("bad malformed %r" % (e,))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
