package collect

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/uplink/mqtt"
	"github.com/edge-agent/edge-agent/uplink/p2p"
)

// Options configures a Collector.
type Options struct {
	Config    *Config
	Logger    *slog.Logger
	Now       func() time.Time
	CreateKey bool // make the collector key if it does not exist (demo, first start)
	// SeenTTL overrides the gossip seen-cache period (tests); 0 = default.
	SeenTTL time.Duration
	// OpenStore opens a store = "postgres://…" URL. Only edge-collector
	// passes one (collect/pgstore); without it such a config is refused.
	OpenStore StoreOpener
	// Vouch admits devices not on admission.allow; nil = the list alone
	// decides, or, with admission.refuse_untrusted, the manufacturer
	// certificates (Trust).
	Vouch Voucher
	// Observer receives measurements (edge-collector: Prometheus); nil =
	// none. A config with metrics_listen needs one.
	Observer Observer
}

// Collector receives records from the gossip network (and an MQTT broker if
// configured), verifies and admits them, stores them (deduped, forks kept as
// evidence), and answers with signed receipts after the commit. Create it
// with New.
type Collector struct {
	cfg    *Config
	log    *slog.Logger
	now    func() time.Time
	store  Store
	node   *p2p.Node
	key    crypto.PrivKey
	sub    *mqtt.Subscriber
	admit  *admitter
	trust  *Trust // admission.trusted_manufacturers; nil = identities not checked
	met    Observer
	known  chan item // devices this collector knows: served first
	newDev chan item // devices it has not stored before: shed when full

	checker p2p.Checker

	mu    sync.Mutex
	stats Stats

	// MQTT receipts waiting for the next receipt_interval tick: device →
	// chain → seqs committed since the last one (see receipts.go).
	rmu      sync.Mutex
	rpending map[string]map[[16]byte][]uint64

	runDone chan struct{}
	stop    chan struct{} // closed when the writer stops taking records
	cancel  context.CancelFunc
}

// Stats are the collector's running counters.
type Stats struct {
	Accepted   uint64 `json:"accepted"`
	Duplicates uint64 `json:"duplicates"`
	Forks      uint64 `json:"forks"`
	Rejected   uint64 `json:"rejected"` // invalid records seen by this node's validator, and refused by admission
	Receipts   uint64 `json:"receipts"` // receipts published
	Commits    uint64 `json:"commits"`
}

type item struct {
	rec  *attest.Record
	ack  func(error) // non-nil for MQTT: answered after the commit
	mqtt bool
}

// intakeLen bounds records of known devices waiting for the writer; the
// delivery goroutines block beyond it (gossipsub then drops for this node
// only; the broker holds MQTT records).
const intakeLen = 4096

// maxBatch bounds one commit.
const maxBatch = 1024

// minFill is the batch size at which the writer stops waiting for an
// earlier commit to finish before starting the next.
const minFill = 128

// ErrNoStoreDriver is returned by New when collector.toml names a store
// this binary cannot open.
var ErrNoStoreDriver = errors.New("collect: this binary has only the embedded bbolt store")

// New opens the key and store and starts the libp2p host. Call Run.
func New(o Options) (*Collector, error) {
	if o.Config == nil {
		return nil, fmt.Errorf("collect: no config: %w", ErrConfig)
	}
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	cfg := o.Config
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger.With("component", "collect")
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("collect: data_dir: %w", err)
	}
	signer, err := attest.OpenSigner(cfg.KeyURI())
	if errors.Is(err, attest.ErrKeyNotFound) && o.CreateKey {
		signer, err = attest.CreateKey(cfg.KeyURI(), randReader{})
	}
	if err != nil {
		return nil, fmt.Errorf("collect: key: %w", err)
	}
	key, err := p2p.HostKey(signer)
	if err != nil {
		return nil, fmt.Errorf("collect: key: %w", err)
	}
	trust, err := LoadTrust(cfg.Admission)
	if err != nil {
		return nil, err
	}
	vouch := o.Vouch
	if vouch == nil && trust != nil && cfg.Admission.RefuseUntrusted {
		vouch = trust
	}
	st, err := OpenStore(context.Background(), cfg, o.OpenStore)
	if err != nil {
		return nil, err
	}
	c := &Collector{
		cfg: cfg, log: log, now: o.Now, store: st, key: key, trust: trust,
		admit:   newAdmitter(cfg.Admission, vouch),
		known:   make(chan item, intakeLen),
		newDev:  make(chan item, cfg.Admission.UnknownQueue),
		checker: p2p.Checker{MaxClockSkew: cfg.MaxClockSkew.Duration, Now: o.Now},
		runDone: make(chan struct{}),
		stop:    make(chan struct{}),
	}
	c.met = o.Observer
	if c.met == nil {
		if cfg.MetricsListen != "" {
			st.Close()
			return nil, fmt.Errorf("%w: metrics_listen is served by edge-collector; this binary has no collector metrics: remove the key or run edge-collector", ErrConfig)
		}
		c.met = noObserver{}
	}
	sum, err := st.Summary(context.Background())
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("collect: read what the store holds: %w", err)
	}
	c.admit.seed(sum)
	if trust != nil {
		if err := trust.Scan(func(w io.Writer) (int, error) { return st.Export(context.Background(), w) }); err != nil {
			st.Close()
			return nil, err
		}
	}
	if len(cfg.Admission.Allow) > 0 && vouch == nil {
		// Gossip: records of other devices are not forwarded either.
		c.checker.Allowed = c.admit.allow
	}
	if len(cfg.Listen) > 0 || len(cfg.Bootstrap) > 0 {
		c.node, err = p2p.NewNode(p2p.NodeOpts{
			Key:       key,
			Network:   cfg.Network,
			Listen:    cfg.Listen,
			Bootstrap: cfg.Bootstrap,
			MaxPeers:  cfg.MaxPeers,
			Memory:    int64(cfg.Memory),
			Checker:   c.checker,
			SeenTTL:   o.SeenTTL,
			OnRecord:  c.onRecord,
			Logger:    log,
			Now:       o.Now,
		})
		if err != nil {
			c.closeParts()
			return nil, fmt.Errorf("collect: %w", err)
		}
	}
	if m := cfg.MQTT; m.Enabled {
		mo := mqtt.DefaultOpts()
		mo.Servers, mo.ClientID, mo.Username, mo.Password = m.Servers, m.ClientID, m.Username, m.Password
		mo.CAFile, mo.CertFile, mo.KeyFile = m.CAFile, m.CertFile, m.KeyFile
		mo.SharedGroup = m.SharedGroup
		if m.TopicPrefix != "" {
			mo.TopicPrefix = m.TopicPrefix
		}
		mo.Logger, mo.Now = o.Logger, o.Now
		c.sub, err = mqtt.NewAsyncSubscriber(mo, c.onMQTT)
		if err != nil {
			c.closeParts()
			return nil, fmt.Errorf("collect: [mqtt]: %w", err)
		}
	}
	return c, nil
}

// OpenStore opens the store collector.toml names: bbolt in data_dir by
// default, or a postgres:// URL through open (nil: bbolt only).
func OpenStore(ctx context.Context, cfg *Config, open StoreOpener) (Store, error) {
	if cfg.Store == "" {
		return openBoltStore(cfg.DBPath())
	}
	if open == nil {
		return nil, fmt.Errorf("%w: store = %q needs the network-side binary: run `edge-collector run -c FILE` (package edge-collector), or leave store empty for bbolt: %w",
			ErrNoStoreDriver, redactURL(cfg.Store), ErrConfig)
	}
	st, err := open(ctx, cfg.Store)
	if err != nil {
		return nil, fmt.Errorf("collect: open store %s: %w", redactURL(cfg.Store), err)
	}
	return st, nil
}

// redactURL hides a password in a store URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func (c *Collector) closeParts() {
	if c.node != nil {
		c.node.Close()
	}
	c.store.Close()
}

// PeerID is the collector's peer id: what agents list in collectors.
func (c *Collector) PeerID() string {
	id, _ := peer.IDFromPrivateKey(c.key)
	return id.String()
}

// Addrs are the listen addresses with /p2p/<id>, for agents' bootstrap.
func (c *Collector) Addrs() []string {
	if c.node == nil {
		return nil
	}
	return c.node.Addrs()
}

// Gauges are the devices known to this collector and the verified records
// waiting for the store, for metrics.
func (c *Collector) Gauges() (devices, intake int) {
	return c.admit.known(), len(c.known) + len(c.newDev)
}

// Node is the gossip node (nil with MQTT only), for tests and status.
func (c *Collector) Node() *p2p.Node { return c.node }

// Stats returns the running counters.
func (c *Collector) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	if c.node != nil {
		_, _, rej, _ := c.node.ValidationCounts()
		s.Rejected += rej
	}
	return s
}

func (c *Collector) reject(reason string) {
	c.met.Rejected(reason)
	c.mu.Lock()
	c.stats.Rejected++
	c.mu.Unlock()
}

// enqueue admits a verified record and queues it for the writer. It
// reports false when the record was refused (counted, no receipt).
func (c *Collector) enqueue(it item) bool {
	known, reason := c.admit.admit(it.rec, c.now())
	if reason != "" {
		c.reject(reason)
		return false
	}
	if c.trust != nil {
		c.trust.Observe(it.rec)
	}
	if !known {
		select {
		case c.newDev <- it:
			return true
		case <-c.stop:
			return false
		default:
			c.reject(rejectShed)
			return false
		}
	}
	select {
	case c.known <- it:
		return true
	case <-c.stop:
		// Shutting down: the record is not receipted, so its device
		// publishes it again.
		return false
	}
}

func (c *Collector) onRecord(rec *attest.Record, _ peer.ID) {
	c.met.Verified()
	c.enqueue(item{rec: rec})
}

// onMQTT verifies like the gossip validator and acknowledges to the broker
// only after the record is committed, so the broker redelivers anything not
// yet durable. Records refused are acknowledged and dropped (redelivering
// them would block the session); they get no receipt.
func (c *Collector) onMQTT(device string, payload []byte, ack func(error)) {
	v, rec, err := c.checker.Check(payload)
	if v != p2p.Accept {
		reason := rejectMalformed
		switch {
		case v == p2p.Ignore && rec != nil && c.checker.Allowed != nil && !c.checker.Allowed[rec.DeviceID]:
			reason = rejectNotAllowed
		case v == p2p.Ignore:
			reason = rejectFuture
		case rec != nil:
			reason = rejectBadSignature
		}
		c.reject(reason)
		c.log.Debug("mqtt record not accepted", "topic_device", device, "verdict", v, "err", err)
		ack(nil)
		return
	}
	c.met.Verified()
	if !c.enqueue(item{rec: rec, ack: ack, mqtt: true}) {
		select {
		case <-c.stop:
			ack(errors.New("collect: shutting down"))
		default:
			ack(nil)
		}
	}
}

// Run receives, stores and receipts until ctx is done, then closes the
// collector. Cancellation is a clean exit (nil).
func (c *Collector) Run(ctx context.Context) error {
	defer close(c.runDone)
	defer c.closeParts()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	if c.node != nil {
		c.log.Info("collector listening", "peer_id", c.PeerID(), "addrs", c.Addrs(), "network", c.cfg.Network)
		wg.Go(func() { _ = c.node.Run(ctx) })
	}
	if c.sub != nil {
		wg.Go(func() { _ = c.sub.Run(ctx) })
	}
	if iv := c.cfg.StatusInterval.Duration; iv > 0 {
		wg.Go(func() { c.logStatus(ctx, iv) })
	}
	if iv := c.cfg.MQTT.ReceiptInterval.Duration; c.sub != nil && iv > 0 {
		wg.Go(func() { c.receiptLoop(ctx, iv) })
	}
	err := c.write(ctx)
	close(c.stop)
	cancel()
	wg.Wait()
	// Records taken but not committed: not acknowledged, so they come again.
	for _, ch := range []chan item{c.known, c.newDev} {
		for more := true; more; {
			select {
			case it := <-ch:
				if it.ack != nil {
					it.ack(errors.New("collect: stopped before commit"))
				}
			default:
				more = false
			}
		}
	}
	return err
}

// write is the single writer: it commits what arrived in one batch (group
// commit: the fsync cost is shared), known devices first, then answers.
// Up to commitDepth batches commit at once (PostgreSQL: one per pooled
// connection), so records keep arriving and filling the next batch while
// one waits for its fsync; batches are answered in the order they were
// taken, so acknowledgements reach the broker in arrival order.
func (c *Collector) write(ctx context.Context) error {
	depth := c.commitDepth()
	sem := make(chan struct{}, depth)
	freed := make(chan struct{}, 1) // a commit was answered
	order := make(chan *inCommit, depth)
	finished := make(chan struct{})
	go func() { defer close(finished); c.finishCommits(ctx, order, sem, freed) }()
	defer func() { close(order); <-finished }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case sem <- struct{}{}:
		}
		batch := make([]item, 0, maxBatch)
		select {
		case <-ctx.Done():
			return nil
		case it := <-c.known:
			batch = append(batch, it)
		case it := <-c.newDev:
			batch = append(batch, it)
		}
		for {
			for more := true; more && len(batch) < maxBatch; {
				select {
				case it := <-c.known:
					batch = append(batch, it)
					continue
				default:
				}
				select {
				case it := <-c.newDev:
					batch = append(batch, it)
				default:
					more = false
				}
			}
			// Alone, commit at once (latency); behind other commits, let
			// the batch fill until one of them is done (fewer, larger
			// commits: the per-commit cost dominates small ones).
			if len(batch) >= minFill || len(sem) == 1 {
				break
			}
			select {
			case <-ctx.Done():
				for _, it := range batch {
					if it.ack != nil {
						it.ack(errors.New("collect: stopped before commit"))
					}
				}
				return nil
			case it := <-c.known:
				batch = append(batch, it)
				continue
			case it := <-c.newDev:
				batch = append(batch, it)
				continue
			case <-freed:
			}
			break
		}
		p := &inCommit{batch: batch, done: make(chan struct{})}
		order <- p // never blocks: sem holds at most depth
		go func() {
			defer close(p.done)
			recs := make([]*attest.Record, len(batch))
			for i, it := range batch {
				recs[i] = it.rec
			}
			t0 := time.Now()
			p.out, p.err = c.store.Commit(ctx, recs, c.now())
			p.took = time.Since(t0)
		}()
	}
}

// inCommit is one batch on its way into the store.
type inCommit struct {
	batch []item
	out   []Outcome
	err   error
	took  time.Duration
	done  chan struct{}
}

// commitDepth is how many batches commit at once: one for bbolt (it
// serializes writers anyway), up to the pool's connections for PostgreSQL,
// keeping one for status and maintenance.
func (c *Collector) commitDepth() int {
	if c.cfg.Store == "" {
		return 1
	}
	return max(c.cfg.Postgres.MaxConns-1, 1)
}

// finishCommits answers the batches in order: the broker's acks and the
// receipts of each batch once it is durable, or no ack (the broker
// delivers them again) when its commit failed, then backs off.
func (c *Collector) finishCommits(ctx context.Context, order <-chan *inCommit, sem <-chan struct{}, freed chan<- struct{}) {
	failures := 0
	release := func() {
		<-sem
		select {
		case freed <- struct{}{}:
		default:
		}
	}
	for p := range order {
		<-p.done
		if p.err == nil {
			failures = 0
			c.met.Commit(p.took)
			c.committed(ctx, p.batch, p.out)
			release()
			continue
		}
		for _, it := range p.batch {
			c.admit.settle(it.rec.DeviceID, len(it.rec.Raw), false)
			if it.ack != nil {
				it.ack(p.err)
			}
		}
		if ctx.Err() != nil {
			release()
			continue
		}
		// A database restart or a network blip is not the end: back off
		// and go on; the unacknowledged records come again.
		c.met.StoreError()
		failures++
		wait := min(time.Duration(failures)*500*time.Millisecond, 10*time.Second)
		c.log.Error("store commit failed; records not acknowledged, retrying", "records", len(p.batch), "err", p.err, "retry_in", wait)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		release()
	}
}

// committed answers a durable batch: the broker first, then receipts.
func (c *Collector) committed(ctx context.Context, batch []item, out []Outcome) {
	now := c.now()
	for i, it := range batch {
		if it.ack != nil {
			it.ack(nil)
		}
		c.met.Lag(now.Sub(time.Unix(0, it.rec.Claims.Time)))
		c.admit.settle(it.rec.DeviceID, len(it.rec.Raw), out[i].Verdict == attest.Accepted)
	}
	c.afterCommit(ctx, batch, out)
}

func (c *Collector) afterCommit(ctx context.Context, batch []item, out []Outcome) {
	gossip, overMQTT := map[string]devChains{}, map[string]devChains{}
	var st Stats
	add := func(m map[string]devChains, r *attest.Record) {
		d := m[r.DeviceID]
		if d == nil {
			d = devChains{}
			m[r.DeviceID] = d
		}
		d[r.Claims.Chain] = append(d[r.Claims.Chain], r.Claims.Seq)
	}
	for i, v := range out {
		r := batch[i].rec
		switch v.Verdict {
		case attest.Accepted:
			st.Accepted++
			c.met.Stored(attest.Accepted)
		case attest.Duplicate:
			st.Duplicates++
			c.met.Stored(attest.Duplicate)
		case attest.Forked:
			st.Forks++
			c.met.Stored(attest.Forked)
			c.saveEvidence(r, v.First)
			continue // no receipt for the second history
		}
		if c.node != nil {
			add(gossip, r)
		}
		if batch[i].mqtt && c.cfg.MQTT.Receipts {
			add(overMQTT, r)
		}
	}
	st.Commits = 1
	for dev, chains := range gossip {
		raw, err := c.signReceipt(dev, chains)
		if err == nil {
			err = c.node.PublishReceipt(ctx, raw)
		}
		if err != nil {
			if ctx.Err() == nil {
				c.log.Warn("receipt not sent; the device will re-publish and get one later", "device", dev, "err", err)
			}
			continue
		}
		st.Receipts++
		c.met.Receipt("p2p")
	}
	if c.cfg.MQTT.ReceiptInterval.Duration > 0 {
		c.holdReceipts(overMQTT)
	} else {
		st.Receipts += c.publishReceipts(overMQTT)
	}
	c.mu.Lock()
	c.stats.Accepted += st.Accepted
	c.stats.Duplicates += st.Duplicates
	c.stats.Forks += st.Forks
	c.stats.Receipts += st.Receipts
	c.stats.Commits += st.Commits
	c.mu.Unlock()
}

func (c *Collector) peerID() peer.ID {
	id, _ := peer.IDFromPrivateKey(c.key)
	return id
}

// saveEvidence writes both records of a fork under evidence/<device>/ and
// reports it. The DB already holds both; the files are for humans and for
// handing to whoever slashes the device.
func (c *Collector) saveEvidence(second *attest.Record, first []byte) {
	dir := filepath.Join(c.cfg.EvidenceDir(), second.DeviceID)
	base := fmt.Sprintf("%s-%d-", hex.EncodeToString(second.Claims.Chain[:]), second.Claims.Seq)
	h := attest.PayloadHash(second.Payload)
	name2 := base + hex.EncodeToString(h[:4]) + ".cose"
	var err error
	if err = os.MkdirAll(dir, 0o750); err == nil {
		if err = writeFile(filepath.Join(dir, base+"first.cose"), first); err == nil {
			err = writeFile(filepath.Join(dir, name2), second.Raw)
		}
	}
	c.log.Warn("FORK: device signed two different records with one seq; evidence saved",
		"device", second.DeviceID, "chain", hex.EncodeToString(second.Claims.Chain[:]),
		"seq", second.Claims.Seq, "evidence", dir, "err", err)
}

func writeFile(path string, data []byte) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Summary returns the per-device summary from the store.
func (c *Collector) Summary() ([]DeviceSummary, error) {
	sum, err := c.store.Summary(context.Background())
	if err == nil && c.trust != nil {
		c.trust.Annotate(sum)
	}
	return sum, err
}

// Forks returns the fork evidence held: for each, the first record stored
// and the conflicting one.
func (c *Collector) Forks() ([][2][]byte, error) {
	return c.store.Forks(context.Background())
}

// Export writes every stored record to w as a CBOR sequence. After Run has
// ended it reads the closed collector's bbolt file.
func (c *Collector) Export(w io.Writer) (int, error) {
	select {
	case <-c.runDone:
		if c.cfg.Store == "" {
			return ExportDB(c.cfg.DBPath(), w)
		}
		return 0, errors.New("collect: export: the collector has stopped; use `edge-collector export`")
	default:
	}
	return c.store.Export(context.Background(), w)
}

// ExportFile exports to path (created or replaced), synced.
func (c *Collector) ExportFile(path string) (int, error) {
	return exportToFile(path, c.Export)
}

func exportToFile(path string, fn func(io.Writer) (int, error)) (int, error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return 0, fmt.Errorf("collect: export: %w", err)
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	n, err := fn(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("collect: export to %s: %w", path, err)
	}
	return n, nil
}

// ExportDBFile exports a collector.db (read-only) to path.
func ExportDBFile(dbPath, path string) (int, error) {
	return exportToFile(path, func(w io.Writer) (int, error) { return ExportDB(dbPath, w) })
}

func (c *Collector) logStatus(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sum, err := c.Summary()
		if err != nil {
			c.log.Error("status: read summary", "err", err)
			continue
		}
		for _, d := range sum {
			for _, ch := range d.Chains {
				level := slog.LevelInfo
				if ch.Forks > 0 || len(ch.UnannouncedGaps) > 0 {
					level = slog.LevelWarn
				}
				c.log.Log(ctx, level, "device", "device", d.Device, "chain", ch.Chain, "records", ch.Records,
					"last_seq", ch.LastSeq, "duplicates", ch.Duplicates, "forks", ch.Forks,
					"announced_gaps", len(ch.AnnouncedGaps), "unannounced_gaps", len(ch.UnannouncedGaps))
			}
		}
	}
}

// StartInProcess starts a collector in this process (the demo): New, then
// Run on a goroutine until ctx is done or Close.
func StartInProcess(ctx context.Context, o Options) (*Collector, error) {
	c, err := New(o)
	if err != nil {
		return nil, err
	}
	ctx, c.cancel = context.WithCancel(ctx)
	go func() { _ = c.Run(ctx) }()
	return c, nil
}

// Close stops a collector started with StartInProcess and waits for it.
func (c *Collector) Close() error {
	if c.cancel == nil {
		return errors.New("collect: close: not started with StartInProcess; cancel Run's context instead")
	}
	c.cancel()
	<-c.runDone
	return nil
}
