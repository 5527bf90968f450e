// A standard js-libp2p node acting as an edge-agent collector, written only
// from docs/interop.md: it joins the record topic, checks each record's
// COSE_Sign1 signature with Node's own crypto, and gossips a receipt per
// record, signed with its libp2p key. TestJSInterop (uplink/p2p) runs it.
//
//   node collector.mjs --network N --device ID --count K [--dial MULTIADDR]
//
// stdout: "READY <peer id> <listen multiaddr>", then one "RECORD <seq>" per
// verified record, then "DONE" (and it stays up). Any failure prints "FAIL <step>: <why>"
// naming the protocol step (start, dial, identify, gossipsub, record,
// signature, receipt, ping) and exits 1.
import './node20.mjs'
import { createHash, createPublicKey, verify } from 'node:crypto'
import { parseArgs } from 'node:util'
import { gossipsub } from '@chainsafe/libp2p-gossipsub'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

const { values: args } = parseArgs({
  options: {
    network: { type: 'string' },
    device: { type: 'string' },
    count: { type: 'string' },
    dial: { type: 'string' },
    timeout: { type: 'string', default: '30' }
  }
})

let step = 'start'
function fail (why, at = step) {
  console.log(`FAIL ${at}: ${why}`)
  process.exit(1)
}
function stepError (at, why) {
  const e = new Error(why)
  e.step = at
  return e
}
process.on('unhandledRejection', (e) => fail(e?.stack ?? e))
const deadline = setTimeout(() => fail(`timed out after ${args.timeout}s`), Number(args.timeout) * 1000)

// --- CBOR (RFC 8949), just what records and receipts use ---

function decodeCBOR (buf) {
  let i = 0
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  function arg (info) {
    if (info < 24) return info
    const n = { 24: 1, 25: 2, 26: 4, 27: 8 }[info]
    if (n === undefined || i + n > buf.length) throw new Error(`bad CBOR head at ${i}`)
    let v = 0n
    for (let k = 0; k < n; k++) v = (v << 8n) | BigInt(buf[i + k])
    i += n
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v
  }
  function item () {
    if (i >= buf.length) throw new Error('CBOR truncated')
    const b = buf[i++]
    const major = b >> 5
    const info = b & 31
    if (major === 7) {
      switch (info) {
        case 20: return false
        case 21: return true
        case 22: return null
        case 25: i += 2; return view.getFloat16 ? view.getFloat16(i - 2) : half(view.getUint16(i - 2))
        case 26: i += 4; return view.getFloat32(i - 4)
        case 27: i += 8; return view.getFloat64(i - 8)
      }
      throw new Error(`CBOR simple value ${info}`)
    }
    const a = arg(info)
    switch (major) {
      case 0: return a
      case 1: return typeof a === 'bigint' ? -1n - a : -1 - a
      case 2: case 3: {
        if (i + Number(a) > buf.length) throw new Error('CBOR string truncated')
        const s = buf.subarray(i, i + Number(a))
        i += Number(a)
        return major === 2 ? s : new TextDecoder('utf-8', { fatal: true }).decode(s)
      }
      case 4: return Array.from({ length: Number(a) }, item)
      case 5: {
        const m = new Map()
        for (let k = 0; k < a; k++) { const key = item(); m.set(key, item()) }
        return m
      }
      case 6: return { tag: a, value: item() }
    }
  }
  const v = item()
  if (i !== buf.length) throw new Error(`${buf.length - i} bytes after the CBOR item`)
  return v
}

function half (h) {
  const e = (h >> 10) & 31
  const f = h & 1023
  const s = h & 0x8000 ? -1 : 1
  if (e === 0) return s * f * 2 ** -24
  if (e === 31) return f ? NaN : s * Infinity
  return s * (1 + f / 1024) * 2 ** (e - 15)
}

// Encoders produce core deterministic CBOR: shortest heads, and maps are
// written by the caller with keys already in ascending order.
function head (major, n) {
  n = BigInt(n)
  if (n < 24n) return Buffer.from([(major << 5) | Number(n)])
  for (const [info, bytes] of [[24, 1], [25, 2], [26, 4], [27, 8]]) {
    if (n < 1n << BigInt(8 * bytes)) {
      const out = Buffer.alloc(1 + bytes)
      out[0] = (major << 5) | info
      for (let k = 0; k < bytes; k++) out[bytes - k] = Number((n >> BigInt(8 * k)) & 0xffn)
      return out
    }
  }
  throw new Error('integer too large for CBOR')
}
const uint = (n) => head(0, n)
const bstr = (b) => Buffer.concat([head(2, b.length), b])
const tstr = (s) => { const b = Buffer.from(s, 'utf8'); return Buffer.concat([head(3, b.length), b]) }
const array = (...items) => Buffer.concat([head(4, items.length), ...items])
const map = (...pairs) => Buffer.concat([head(5, pairs.length), ...pairs.flat()])

// --- the record: COSE_Sign1 (RFC 9052), EdDSA, kid = raw public key ---

const ed25519SPKI = Buffer.from('302a300506032b6570032100', 'hex')

function checkRecord (data) {
  const env = decodeCBOR(data)
  if (env?.tag !== 18 || !Array.isArray(env.value) || env.value.length !== 4) throw stepError('record', 'not a tagged COSE_Sign1')
  const [protectedBytes, , payload, signature] = env.value
  const hdr = decodeCBOR(protectedBytes)
  if (hdr.get(1) !== -8) throw stepError('record', `alg ${hdr.get(1)}, want -8 (EdDSA)`)
  const kid = hdr.get(4)
  if (!(kid instanceof Uint8Array) || kid.length !== 32) throw stepError('record', 'kid is not a 32-byte key')
  const sigStructure = array(tstr('Signature1'), bstr(protectedBytes), bstr(Buffer.alloc(0)), bstr(payload))
  const key = createPublicKey({ key: Buffer.concat([ed25519SPKI, kid]), format: 'der', type: 'spki' })
  if (!verify(null, sigStructure, key, signature)) throw stepError('signature', 'Ed25519 signature over Sig_structure does not verify')
  const claims = decodeCBOR(payload)
  // The device id is the peer id of the kid: identity multihash of the
  // protobuf PublicKey {Type: Ed25519, Data: kid}.
  const device = peerIdFromString(args.device)
  const want = Buffer.concat([Buffer.from([0x00, 0x24, 0x08, 0x01, 0x12, 0x20]), kid])
  if (!Buffer.from(device.toMultihash().bytes).equals(want)) throw stepError('record', `record signed by a key other than device ${args.device}`)
  return { chain: claims.get(1), seq: claims.get(2) }
}

// --- the node ---

const privateKey = await generateKeyPair('Ed25519')
const recordTopic = `edge-agent/${args.network}/att/1`
const receiptTopic = `edge-agent/${args.network}/rcpt/1`
const node = await createLibp2p({
  privateKey,
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    ping: ping(),
    pubsub: gossipsub({
      globalSignaturePolicy: 'StrictSign',
      // The network's message id: SHA-256 of the data.
      msgIdFn: (msg) => createHash('sha256').update(msg.data).digest(),
      emitSelf: false
    })
  }
})
const pubsub = node.services.pubsub
pubsub.subscribe(recordTopic)
pubsub.subscribe(receiptTopic)
console.log(`READY ${node.peerId} ${node.getMultiaddrs()[0]}`)

const agent = peerIdFromString(args.device)
const want = Number(args.count)
const seen = new Set()
let receipts = Promise.resolve()
const { promise: receipted, resolve: allReceipted } = Promise.withResolvers()

pubsub.addEventListener('message', (evt) => {
  const msg = evt.detail
  if (msg.topic !== recordTopic) return
  let rec
  try {
    rec = checkRecord(msg.data)
  } catch (e) {
    fail(e.message, e.step ?? 'record')
  }
  if (!seen.has(rec.seq)) console.log(`RECORD ${rec.seq}`)
  seen.add(rec.seq)
  // The receipt: [body, signature], body = {1: network, 2: collector peer id
  // bytes, 3: device, 4: [[chain, [[from, to]]]], 5: time ns}; signed over
  // "edge-agent/receipt/1\0" ‖ body with this node's libp2p key.
  const body = map(
    [uint(1), tstr(args.network)],
    [uint(2), bstr(Buffer.from(node.peerId.toMultihash().bytes))],
    [uint(3), tstr(args.device)],
    [uint(4), array(array(bstr(rec.chain), array(array(uint(rec.seq), uint(rec.seq)))))],
    [uint(5), uint(BigInt(Date.now()) * 1000000n)]
  )
  receipts = receipts.then(async () => {
    const sig = await privateKey.sign(Buffer.concat([Buffer.from('edge-agent/receipt/1\0'), body]))
    const res = await pubsub.publish(receiptTopic, array(bstr(body), bstr(Buffer.from(sig))))
    if (res.recipients.length === 0) fail('receipt reached no peer', 'receipt')
    if (seen.size >= want) allReceipted()
  }).catch((e) => fail(e.message, 'receipt'))
})

async function until (what, cond) {
  while (!(await cond())) {
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

if (args.dial) {
  step = 'dial'
  await until('dial', async () => {
    try { await node.dial(multiaddr(args.dial)); return true } catch { return false }
  })
}
step = 'identify'
await until('identify', async () => {
  try {
    const p = await node.peerStore.get(agent)
    return p.protocols.some((proto) => proto.startsWith('/meshsub/')) && p.protocols.includes('/ipfs/id/1.0.0')
  } catch { return false }
})
step = 'gossipsub'
await until('gossipsub', () => pubsub.getSubscribers(recordTopic).some((p) => p.equals(agent)))
step = 'ping'
await node.services.ping.ping(agent)
step = 'record' // what a timeout from here on means
await receipted
// Stay up: the receipts may still be on their way; the test kills us.
clearTimeout(deadline)
console.log('DONE')
