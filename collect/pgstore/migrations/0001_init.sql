-- edge-collector schema, version 1. Applied once, in one transaction, by the
-- first collector to start; never edit a released migration, add the next.

-- One row per (device key, chain, seq) ever stored: the exact dedupe and
-- fork-detection key. Its primary key is what keeps several collectors
-- inserting at once exact. Kept beyond record retention, so an old record
-- replayed is still a duplicate and chain audits stay complete.
CREATE TABLE seqs (
	kid      bytea  NOT NULL,
	chain    bytea  NOT NULL,
	seq      bigint NOT NULL,
	hash     bytea  NOT NULL, -- SHA-256 of the payload
	prev     bytea  NOT NULL, -- the payload's prev: SHA-256 of seq-1's payload
	gap_from bigint,          -- agent.gap records: the seqs they announce
	gap_to   bigint,
	PRIMARY KEY (kid, chain, seq)
);

-- The records themselves, partitioned by day of arrival so retention drops
-- whole partitions instead of deleting rows.
CREATE TABLE records (
	kid         bytea       NOT NULL,
	chain       bytea       NOT NULL,
	seq         bigint      NOT NULL,
	device      text        NOT NULL,
	kind        text        NOT NULL,
	signed_at   timestamptz NOT NULL, -- device clock
	received_at timestamptz NOT NULL, -- collector clock at commit
	raw         bytea       NOT NULL  -- the COSE_Sign1 bytes as signed
) PARTITION BY RANGE (received_at);
CREATE INDEX records_key ON records (kid, chain, seq);
CREATE INDEX records_device ON records (device, signed_at);
-- Catches rows when no daily partition exists yet (maintenance creates them ahead).
CREATE TABLE records_default PARTITION OF records DEFAULT;

-- Fork evidence: a second, validly signed payload for a stored seq. Stored
-- once per distinct payload, whichever collector saw which half; the first
-- record is copied in, so the evidence outlives record retention.
CREATE TABLE forks (
	kid         bytea       NOT NULL,
	chain       bytea       NOT NULL,
	seq         bigint      NOT NULL,
	hash        bytea       NOT NULL,
	prev        bytea       NOT NULL,
	device      text        NOT NULL,
	first_raw   bytea,
	raw         bytea       NOT NULL,
	detected_at timestamptz NOT NULL,
	PRIMARY KEY (kid, chain, seq, hash)
);

-- Running counters per chain, updated in the same transaction as the rows
-- they count.
CREATE TABLE chains (
	kid        bytea       NOT NULL,
	chain      bytea       NOT NULL,
	device     text        NOT NULL,
	records    bigint      NOT NULL,
	duplicates bigint      NOT NULL,
	forks      bigint      NOT NULL,
	boots      bigint      NOT NULL,
	bytes      bigint      NOT NULL,
	first_seen timestamptz NOT NULL,
	last_seen  timestamptz NOT NULL,
	PRIMARY KEY (kid, chain)
);
