#!/usr/bin/env node
// Reference verifier for edge-agent records (docs/attestation.md, docs/consumers.md).
//
// Reads records as a CBOR sequence (what `edge-agent queue export`, the file uplink and
// `edge-agent collect export` write; one MQTT message is one record) or, with --hex, one
// record as hex text. For each record it checks the COSE_Sign1 envelope, the deterministic
// encoding and the Ed25519 signature, and prints one JSON object per line. It then checks
// the chain links between the records it holds. Exit status: 0 all good, 1 a bad record or
// link, 2 usage.
//
// Needs Node >= 18 (its crypto verifies Ed25519) and cborg, pinned in package-lock.json.
import { decode, decodeFirst, encode, Tokenizer, Type } from 'cborg'
import { createHash, createPublicKey, verify } from 'node:crypto'
import { readFileSync } from 'node:fs'

const MAX_RECORD = 64 << 10
const ALG_EDDSA = -8
const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

class Bad extends Error {}

const hex = (b) => Buffer.from(b).toString('hex')

// The libp2p peer ID of an Ed25519 key: base58btc(identity multihash(protobuf key)).
function deviceID (kid) {
  const mh = Buffer.concat([Buffer.from([0x00, 36, 0x08, 0x01, 0x12, 0x20]), kid])
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
  if (![protRaw, payloadRaw, sig].every((x) => x instanceof Uint8Array) || !(unprot instanceof Map) || unprot.size !== 0) {
    throw new Bad('COSE_Sign1 fields have the wrong types')
  }
  checkDeterministic(protRaw, 'the protected header')
  const prot = decode(protRaw, { useMaps: true })
  if (!(prot instanceof Map) || prot.size !== 2 || !prot.has(1) || !prot.has(4)) {
    throw new Bad('the protected header must hold exactly alg (1) and kid (4)')
  }
  if (prot.get(1) !== ALG_EDDSA) throw new Bad(`alg ${prot.get(1)} is not EdDSA (-8)`)
  const kid = prot.get(4)
  if (!(kid instanceof Uint8Array) || kid.length !== 32 || sig.length !== 64) {
    throw new Bad('kid must be a 32-byte Ed25519 key and the signature 64 bytes')
  }

  // Nothing below the signature is trusted until this passes.
  const tbs = encode(['Signature1', protRaw, new Uint8Array(0), payloadRaw])
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(kid).toString('base64url') }, format: 'jwk' })
  if (!verify(null, tbs, key, sig)) throw new Bad('bad signature')

  checkDeterministic(payloadRaw, 'the payload')
  const c = decode(payloadRaw, { useMaps: true })
  if (!(c instanceof Map) || ![1, 2, 3, 4, 5, 6, 7].every((k) => c.has(k)) || [...c.keys()].some((k) => !(k >= 1 && k <= 9))) {
    throw new Bad('the payload does not have the claim keys 1-7 (8, 9 optional)')
  }
  const chain = c.get(1); const seq = BigInt(c.get(2)); const prev = c.get(3); const kind = c.get(5)
  if (!(chain instanceof Uint8Array) || chain.length !== 16 || seq < 1n || !(prev instanceof Uint8Array) ||
      prev.length !== 32 || typeof kind !== 'string' || kind === '') {
    throw new Bad('chain, seq, prev or kind out of range')
  }
  if (seq === 1n && prev.some((b) => b !== 0)) throw new Bad('seq 1 must have a zero prev')
  return {
    chain: hex(chain),
    device: deviceID(kid),
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
