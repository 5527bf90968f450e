// Node 20 (the one on Debian and this project's CI) lacks
// Promise.withResolvers (Node 22), which it-queue, a dependency of
// libp2p 2.x, calls. Imported first by collector.mjs.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve, reject
    const promise = new this((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}
