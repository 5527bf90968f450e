#!/usr/bin/env node
// Reference verifier for edge-agent records (docs/attestation.md, docs/consumers.md).
//
// Reads records as a CBOR sequence (what `edge-agent queue export`, the file uplink and
// `edge-agent collect export` write; one MQTT message is one record) or, with --hex, one
// record as hex text. For each record it checks the COSE_Sign1 envelope, the deterministic
// encoding and the Ed25519 or ES256 signature (and a session record's binding), and prints one JSON object per line. It then checks
// the chain links between the records it holds. Exit status: 0 all good, 1 a bad record or
// link, 2 usage.
//
// Needs Node >= 18 (its crypto verifies Ed25519) and cborg, pinned in package-lock.json.
import { decode, decodeFirst, encode, Tokenizer, Type } from 'cborg'
import { createHash, createPublicKey, verify } from 'node:crypto'
import { readFileSync } from 'node:fs'

const MAX_RECORD = 64 << 10
const ALG_EDDSA = -8
const ALG_ES256 = -7
const KCWT = 13
// SubjectPublicKeyInfo prefixes of a P-256 key: compressed (33-byte point) and uncompressed (65).
const SPKI_P256_COMPRESSED = Buffer.from('3039301306072a8648ce3d020106082a8648ce3d030107032200', 'hex')
const SPKI_P256 = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex')
const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

class Bad extends Error {}

const hex = (b) => Buffer.from(b).toString('hex')

// The libp2p peer ID of the device key: base58btc(multihash(protobuf key)). Ed25519 keys
// use the identity multihash; P-256 keys (protobuf type 3, uncompressed PKIX DER) SHA-256.
function deviceID (kid, alg = ALG_EDDSA) {
  if (alg === ALG_EDDSA) return base58(Buffer.concat([Buffer.from([0x00, 36, 0x08, 0x01, 0x12, 0x20]), kid]))
  const jwk = p256Key(kid).export({ format: 'jwk' })
  const der = Buffer.concat([SPKI_P256, Buffer.from([4]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')])
  const pb = Buffer.concat([Buffer.from([0x08, 0x03, 0x12, der.length]), der])
  return base58(Buffer.concat([Buffer.from([0x12, 0x20]), createHash('sha256').update(pb).digest()]))
}

function p256Key (kid) {
  if (!(kid instanceof Uint8Array) || kid.length !== 33 || (kid[0] !== 2 && kid[0] !== 3)) {
    throw new Bad('an ES256 kid must be a 33-byte compressed P-256 point')
  }
  try {
    return createPublicKey({ key: Buffer.concat([SPKI_P256_COMPRESSED, kid]), format: 'der', type: 'spki' })
  } catch (e) {
    throw new Bad(`the ES256 kid is not a P-256 point: ${e.message}`)
  }
}

// checkSig verifies a COSE_Sign1 signature: EdDSA (Ed25519) or ES256 (r || s, not DER).
function checkSig (alg, kid, protRaw, payloadRaw, sig, what) {
  const tbs = encode(['Signature1', protRaw, new Uint8Array(0), payloadRaw])
  let ok
  if (alg === ALG_EDDSA) {
    if (!(kid instanceof Uint8Array) || kid.length !== 32 || sig.length !== 64) {
      throw new Bad('kid must be a 32-byte Ed25519 key and the signature 64 bytes')
    }
    const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(kid).toString('base64url') }, format: 'jwk' })
    ok = verify(null, tbs, key, sig)
  } else if (alg === ALG_ES256) {
    if (sig.length !== 64) throw new Bad('an ES256 signature is r || s, 64 bytes')
    ok = verify('sha256', tbs, { key: p256Key(kid), dsaEncoding: 'ieee-p1363' }, sig)
  } else {
    throw new Bad(`alg ${alg} is neither EdDSA (-8) nor ES256 (-7)`)
  }
  if (!ok) throw new Bad('bad signature' + what)
}

// checkBinding checks a session binding (docs/attestation.md, binding), returns its claims.
function checkBinding (cwt) {
  if (!Array.isArray(cwt) || cwt.length !== 4 || !(cwt[1] instanceof Map) || cwt[1].size !== 0) {
    throw new Bad('the session binding is not an untagged COSE_Sign1 with an empty unprotected header')
  }
  const [protRaw, , claimsRaw, sig] = cwt
  checkDeterministic(protRaw, "the binding's protected header")
  const prot = decode(protRaw, { useMaps: true })
  if (!(prot instanceof Map) || prot.size !== 2 || !prot.has(1) || !prot.has(4)) {
    throw new Bad("the binding's protected header must hold exactly alg (1) and kid (4)")
  }
  checkSig(prot.get(1), prot.get(4), protRaw, claimsRaw, sig, ' (session binding)')
  checkDeterministic(claimsRaw, "the binding's claims")
  const c = decode(claimsRaw, { useMaps: true })
  if (!(c instanceof Map) || c.size !== 5 || ![4, 5, 8, 'boot', 'chain'].every((k) => c.has(k))) {
    throw new Bad("the binding's claims must be exp, nbf, cnf, boot and chain")
  }
  const key = c.get(8) instanceof Map ? c.get(8).get(1) : null
  if (!(key instanceof Map) || key.get(1) !== 1 || key.get(-1) !== 6 || !(key.get(-2) instanceof Uint8Array)) {
    throw new Bad("the binding's cnf is not an Ed25519 COSE_Key")
  }
  return { alg: prot.get(1), kid: prot.get(4), key: key.get(-2), exp: BigInt(c.get(4)), nbf: BigInt(c.get(5)), boot: c.get('boot'), chain: c.get('chain') }
}

function base58 (mh) {
  let n = BigInt('0x' + mh.toString('hex'))
  let out = ''
  while (n > 0n) {
    out = B58[Number(n % 58n)] + out
    n /= 58n
  }
  for (let i = 0; i < mh.length && mh[i] === 0; i++) out = '1' + out // base58btc keeps leading zero bytes
  return out
}

// Whether v is exactly an IEEE 754 binary16 value.
function isHalf (v) {
  if (v === 0 || !Number.isFinite(v)) return true
  const a = Math.abs(v)
  let e = Math.floor(Math.log2(a))
  if (2 ** e > a) e--
  if (2 ** (e + 1) <= a) e++
  if (e > 15 || e < -24) return false
  const m = a * 2 ** (e < -14 ? 24 : 10 - e)
  return Number.isInteger(m)
}

function floatSize (v) {
  if (Number.isNaN(v) || isHalf(v)) return 3
  return Math.fround(v) === v ? 5 : 9
}

// The contract is RFC 8949 core deterministic encoding. JavaScript numbers cannot tell
// 1.0 from 1, so instead of re-encoding, walk the tokens: shortest heads (cborg's strict
// mode), definite lengths, shortest floats, map keys in bytewise order.
function checkDeterministic (bytes, what) {
  const t = new Tokenizer(bytes, { strict: true, allowIndefinite: false, allowUndefined: false, allowBigInt: true })
  const item = () => {
    const tok = t.next()
    if (Type.equals(tok.type, Type.float) && typeof tok.value === 'number' && tok.encodedLength !== floatSize(tok.value)) {
      throw new Bad(`${what} is not deterministically encoded: a float wider than it needs`)
    } else if (Type.equals(tok.type, Type.array)) {
      for (let i = 0; i < tok.value; i++) item()
    } else if (Type.equals(tok.type, Type.map)) {
      let prev = null
      for (let i = 0; i < tok.value; i++) {
        const start = t.pos()
        item()
        const key = bytes.subarray(start, t.pos())
        if (prev && Buffer.compare(prev, key) >= 0) throw new Bad(`${what} is not deterministically encoded: map keys out of order`)
        prev = key
        item()
      }
    } else if (Type.equals(tok.type, Type.tag)) {
      item()
    }
  }
  try {
    item()
  } catch (e) {
    throw e instanceof Bad ? e : new Bad(`${what} is not deterministically encoded: ${e.message}`)
  }
  if (!t.done()) throw new Bad(`${what}: trailing bytes`)
}

const tags = []
tags[18] = (decodeContent) => ({ cose: decodeContent() })

function verifyRecord (raw) {
  if (raw.length > MAX_RECORD) throw new Bad('record larger than 64 KiB')
  checkDeterministic(raw, 'the envelope')
  const rec = decode(raw, { tags, useMaps: true })
  if (!rec || !Array.isArray(rec.cose) || rec.cose.length !== 4) throw new Bad('not a COSE_Sign1 (tag 18, 4 elements)')
  const [protRaw, unprot, payloadRaw, sig] = rec.cose
  if (![protRaw, payloadRaw, sig].every((x) => x instanceof Uint8Array) || !(unprot instanceof Map)) {
    throw new Bad('COSE_Sign1 fields have the wrong types')
  }
  let alg, kid, binding
  if (unprot.size > 0) {
    // A session record: signed by an in-memory Ed25519 key that the binding (a CWT the
    // device key signed, in header 13 "kcwt") names in its cnf claim.
    if (unprot.size !== 1 || !unprot.has(KCWT) || Buffer.compare(Buffer.from(protRaw), Buffer.from([0xa1, 0x01, 0x27])) !== 0) {
      throw new Bad('a session record has protected {1: -8} and only header 13 (kcwt) unprotected')
    }
    binding = checkBinding(unprot.get(KCWT))
    alg = binding.alg
    kid = binding.kid
  } else {
    checkDeterministic(protRaw, 'the protected header')
    const prot = decode(protRaw, { useMaps: true })
    if (!(prot instanceof Map) || prot.size !== 2 || !prot.has(1) || !prot.has(4)) {
      throw new Bad('the protected header must hold exactly alg (1) and kid (4)')
    }
    alg = prot.get(1)
    kid = prot.get(4)
  }

  // Nothing below the signatures is trusted until they pass.
  if (binding) checkSig(ALG_EDDSA, binding.key, protRaw, payloadRaw, sig, ' (session key)')
  else checkSig(alg, kid, protRaw, payloadRaw, sig, '')

  checkDeterministic(payloadRaw, 'the payload')
  const c = decode(payloadRaw, { useMaps: true })
  if (!(c instanceof Map) || ![1, 2, 3, 4, 5, 6, 7].every((k) => c.has(k)) || [...c.keys()].some((k) => !(k >= 1 && k <= 10))) {
    throw new Bad('the payload does not have the claim keys 1-7 (8, 9, 10 optional)')
  }
  const chain = c.get(1); const seq = BigInt(c.get(2)); const prev = c.get(3); const kind = c.get(5)
  if (!(chain instanceof Uint8Array) || chain.length !== 16 || seq < 1n || !(prev instanceof Uint8Array) ||
      prev.length !== 32 || typeof kind !== 'string' || kind === '') {
    throw new Bad('chain, seq, prev or kind out of range')
  }
  if (seq === 1n && prev.some((b) => b !== 0)) throw new Bad('seq 1 must have a zero prev')
  if (binding) {
    const boot = c.get(9)
    if (hex(binding.chain) !== hex(chain) || !(boot instanceof Uint8Array) || hex(binding.boot) !== hex(boot)) {
      throw new Bad('the session binding is for another chain or boot')
    }
    const t = BigInt(c.get(4))
    if (t < binding.nbf * 1000000000n || t >= binding.exp * 1000000000n) {
      throw new Bad("the record's time is outside its session binding's validity")
    }
  }
  return {
    chain: hex(chain),
    device: deviceID(kid, alg),
    kind,
    payload_sha256: createHash('sha256').update(payloadRaw).digest('hex'),
    prev: hex(prev),
    seq: Number(seq),
    source: c.get(6),
    time_ns: String(c.get(4))
  }
}

function main (argv) {
  const args = argv.filter((a) => a !== '--hex')
  if (args.length !== 1 || args[0] === '-h' || args[0] === '--help') {
    console.error('usage: edge-verify.mjs [--hex] FILE|-')
    return 2
  }
  let data = readFileSync(args[0] === '-' ? 0 : args[0])
  if (argv.includes('--hex')) data = Buffer.from(data.toString().trim(), 'hex')
  let rest = new Uint8Array(data)
  let bad = 0
  let n = 0
  const held = new Map() // device/chain -> Map(seq -> [prev, payload_sha256])
  for (; rest.length > 0; n++) {
    let raw
    try {
      const [, remainder] = decodeFirst(rest, { tags, useMaps: true })
      raw = rest.subarray(0, rest.length - remainder.length)
      rest = remainder
    } catch (e) {
      console.log(JSON.stringify({ error: `unreadable CBOR sequence: ${e.message}` }))
      return 1
    }
    try {
      const r = verifyRecord(raw)
      const k = r.device + '/' + r.chain
      if (!held.has(k)) held.set(k, new Map())
      held.get(k).set(r.seq, [r.prev, r.payload_sha256])
      console.log(JSON.stringify(r))
    } catch (e) {
      bad++
      console.log(JSON.stringify({ index: n, error: e.message }))
    }
  }
  for (const [k, seqs] of held) {
    for (const [seq, [prev]] of seqs) {
      const before = seqs.get(seq - 1)
      if (before && before[1] !== prev) {
        bad++
        const [device, chain] = k.split('/')
        console.log(JSON.stringify({ device, chain, seq, error: 'broken link' }))
      }
    }
  }
  console.error(`${n} records, ${bad} bad`)
  return bad ? 1 : 0
}

process.exitCode = main(process.argv.slice(2))
