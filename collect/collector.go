package collect

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	bolt "go.etcd.io/bbolt"

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
}

// Collector receives records from the gossip network (and an MQTT broker if
// configured), verifies and dedupes them, stores them durably, keeps fork
// evidence, and answers with signed receipts. Create it with New.
type Collector struct {
	cfg    *Config
	log    *slog.Logger
	now    func() time.Time
	db     *bolt.DB
	node   *p2p.Node
	key    crypto.PrivKey
	sub    *mqtt.Subscriber
	intake chan item

	checker p2p.Checker

	mu    sync.Mutex
	stats Stats

	runDone chan struct{}
	stop    chan struct{} // closed when the writer stops taking records
	cancel  context.CancelFunc
}

// Stats are the collector's running counters.
type Stats struct {
	Accepted   uint64 `json:"accepted"`
	Duplicates uint64 `json:"duplicates"`
	Forks      uint64 `json:"forks"`
	Rejected   uint64 `json:"rejected"` // invalid records seen by this node's validator
	Receipts   uint64 `json:"receipts"` // receipts published
	Commits    uint64 `json:"commits"`
}

type item struct {
	rec  *attest.Record
	done chan error // non-nil for MQTT: answered after the commit
}

// intakeLen bounds records waiting for the writer; the gossip delivery
// goroutine blocks beyond it, and gossipsub then drops for this node only.
const intakeLen = 4096

// maxBatch bounds one commit.
const maxBatch = 1024

// New opens the key and database and starts the libp2p host. Call Run.
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
	db, err := openDB(cfg.DBPath(), false)
	if err != nil {
		return nil, err
	}
	c := &Collector{
		cfg: cfg, log: log, now: o.Now, db: db, key: key,
		intake:  make(chan item, intakeLen),
		checker: p2p.Checker{MaxClockSkew: cfg.MaxClockSkew.Duration, Now: o.Now},
		runDone: make(chan struct{}),
		stop:    make(chan struct{}),
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
			db.Close()
			return nil, fmt.Errorf("collect: %w", err)
		}
	}
	if m := cfg.MQTT; m.Enabled {
		mo := mqtt.DefaultOpts()
		mo.Servers, mo.ClientID, mo.Username, mo.Password = m.Servers, m.ClientID, m.Username, m.Password
		mo.CAFile, mo.CertFile, mo.KeyFile = m.CAFile, m.CertFile, m.KeyFile
		if m.TopicPrefix != "" {
			mo.TopicPrefix = m.TopicPrefix
		}
		mo.Logger, mo.Now = o.Logger, o.Now
		c.sub, err = mqtt.NewSubscriber(mo, c.onMQTT)
		if err != nil {
			c.closeParts()
			return nil, fmt.Errorf("collect: [mqtt]: %w", err)
		}
	}
	return c, nil
}

func (c *Collector) closeParts() {
	if c.node != nil {
		c.node.Close()
	}
	c.db.Close()
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

// Node is the gossip node (nil with MQTT only), for tests and status.
func (c *Collector) Node() *p2p.Node { return c.node }

// Stats returns the running counters.
func (c *Collector) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	if c.node != nil {
		_, _, s.Rejected, _ = c.node.ValidationCounts()
	}
	return s
}

func (c *Collector) onRecord(rec *attest.Record, _ peer.ID) {
	select {
	case c.intake <- item{rec: rec}:
	case <-c.stop:
		// Shutting down: the record is not receipted, so its device
		// publishes it again.
	}
}

// onMQTT verifies like the gossip validator and returns only after the
// record is committed, so the broker redelivers anything not yet durable.
func (c *Collector) onMQTT(device string, payload []byte) error {
	v, rec, err := c.checker.Check(payload)
	if v != p2p.Accept {
		// Acked and dropped: redelivering garbage would block the session.
		c.log.Warn("mqtt record not accepted", "topic_device", device, "verdict", v, "err", err)
		return nil
	}
	done := make(chan error, 1)
	select {
	case c.intake <- item{rec: rec, done: done}:
	case <-c.stop:
		return errors.New("collect: shutting down")
	}
	select {
	case err := <-done:
		return err
	case <-c.stop:
		return errors.New("collect: shutting down")
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
	err := c.write(ctx)
	close(c.stop)
	cancel()
	wg.Wait()
	return err
}

// write is the single writer: it commits what arrived in one transaction
// (group commit: the fsync cost is shared), then sends receipts.
func (c *Collector) write(ctx context.Context) error {
	batch := make([]item, 0, maxBatch)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return nil
		case it := <-c.intake:
			batch = append(batch, it)
		}
		for more := true; more && len(batch) < maxBatch; {
			select {
			case it := <-c.intake:
				batch = append(batch, it)
			default:
				more = false
			}
		}
		if err := c.commit(ctx, batch); err != nil {
			for _, it := range batch {
				if it.done != nil {
					it.done <- err
				}
			}
			return err
		}
	}
}

type verdictOf struct {
	rec     *attest.Record
	verdict attest.Verdict
	first   []byte // the earlier record, for a fork
}

func (c *Collector) commit(ctx context.Context, batch []item) error {
	now := c.now().UnixNano()
	out := make([]verdictOf, len(batch))
	err := c.db.Update(func(tx *bolt.Tx) error {
		recs, forks, chains := tx.Bucket(bucketRecords), tx.Bucket(bucketForks), tx.Bucket(bucketChains)
		states := map[string]*chainState{}
		for i, it := range batch {
			r := it.rec
			ck := string(recordKey(r.KeyID, r.Claims.Chain, 0)[:48])
			cs := states[ck]
			if cs == nil {
				var err error
				if cs, err = getChain(chains, []byte(ck)); err != nil {
					return err
				}
				if cs == nil {
					cs = &chainState{Device: r.DeviceID, FirstSeen: now}
				}
				states[ck] = cs
			}
			cs.LastSeen = now
			key := recordKey(r.KeyID, r.Claims.Chain, r.Claims.Seq)
			h := attest.PayloadHash(r.Payload)
			out[i].rec = r
			old := recs.Get(key)
			switch {
			case old == nil:
				if err := recs.Put(key, append(h[:], r.Raw...)); err != nil {
					return err
				}
				cs.Records++
				cs.Held = addRange(cs.Held, r.Claims.Seq, r.Claims.Seq)
				if g, ok := gapOf(r); ok {
					cs.Announced = addRange(cs.Announced, g.From, g.To)
				}
				if r.Claims.Kind == attest.KindBoot {
					cs.Boots++
				}
				out[i].verdict = attest.Accepted
			case len(old) < 32:
				return fmt.Errorf("record %x: %w", key, ErrCorrupt)
			case bytes.Equal(old[:32], h[:]):
				cs.Duplicates++
				out[i].verdict = attest.Duplicate
			default:
				fk := append(key, h[:]...)
				if forks.Get(fk) != nil {
					cs.Duplicates++
					out[i].verdict = attest.Duplicate // the same fork again
					continue
				}
				if err := forks.Put(fk, r.Raw); err != nil {
					return err
				}
				cs.Forks++
				out[i].verdict = attest.Forked
				out[i].first = bytes.Clone(old[32:])
			}
		}
		for k, cs := range states {
			if err := putChain(chains, []byte(k), cs); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("collect: commit %d records: %w", len(batch), err)
	}
	// Durable now (bbolt fsyncs on commit): answer MQTT, then receipts.
	for _, it := range batch {
		if it.done != nil {
			it.done <- nil
		}
	}
	c.afterCommit(ctx, out)
	return nil
}

func (c *Collector) afterCommit(ctx context.Context, out []verdictOf) {
	seqs := map[string]map[[16]byte][]uint64{}
	var st Stats
	for _, v := range out {
		r := v.rec
		switch v.verdict {
		case attest.Accepted:
			st.Accepted++
		case attest.Duplicate:
			st.Duplicates++
		case attest.Forked:
			st.Forks++
			c.saveEvidence(r, v.first)
			continue // no receipt for the second history
		}
		m := seqs[r.DeviceID]
		if m == nil {
			m = map[[16]byte][]uint64{}
			seqs[r.DeviceID] = m
		}
		m[r.Claims.Chain] = append(m[r.Claims.Chain], r.Claims.Seq)
	}
	st.Commits = 1
	if c.node != nil {
		for dev, chains := range seqs {
			rc := &p2p.Receipt{Network: c.cfg.Network, Collector: c.node.ID(), Device: dev, Time: c.now().UnixNano()}
			for ch, s := range chains {
				rc.Chains = append(rc.Chains, p2p.ChainRanges{Chain: ch, Ranges: p2p.SeqRanges(s)})
			}
			raw, err := p2p.SignReceipt(c.key, rc)
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
		}
	}
	c.mu.Lock()
	c.stats.Accepted += st.Accepted
	c.stats.Duplicates += st.Duplicates
	c.stats.Forks += st.Forks
	c.stats.Receipts += st.Receipts
	c.stats.Commits += st.Commits
	c.mu.Unlock()
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

// Summary returns the per-device summary from the DB.
func (c *Collector) Summary() ([]DeviceSummary, error) {
	var out []DeviceSummary
	err := c.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = readSummaries(tx)
		return err
	})
	return out, err
}

// Forks returns the fork evidence held: for each, the first record stored
// and the conflicting one.
func (c *Collector) Forks() ([][2][]byte, error) {
	var out [][2][]byte
	err := c.db.View(func(tx *bolt.Tx) error {
		recs := tx.Bucket(bucketRecords)
		return tx.Bucket(bucketForks).ForEach(func(k, v []byte) error {
			first := recs.Get(k[:56])
			if len(first) < 32 {
				return fmt.Errorf("fork %x without its first record: %w", k, ErrCorrupt)
			}
			out = append(out, [2][]byte{bytes.Clone(first[32:]), bytes.Clone(v)})
			return nil
		})
	})
	return out, err
}

// Export writes every stored record to w as a CBOR sequence. After Run has
// ended it reads the closed collector's file.
func (c *Collector) Export(w io.Writer) (int, error) {
	select {
	case <-c.runDone:
		return ExportDB(c.cfg.DBPath(), w)
	default:
	}
	var n int
	err := c.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = exportTx(tx, w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("collect: export: %w", err)
	}
	return n, nil
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
