# packaging/Makefile.mk: release binaries, .deb packages and their tests.
# Included by the top-level Makefile, which defines VERSION, COMMIT, BIN, GO.
# The work is done by the scripts next to this file so each step also runs
# by hand; see packaging/README.md.

PKG_DIST     ?= dist
# Debootstrap root tarballs and other downloads worth keeping between runs
# (CI: cache this directory).
PKG_CACHE    ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/edge-agent-packaging
PKG_NFPM     ?= bin/tools/nfpm
# Every timestamp inside a .deb; the commit time keeps rebuilds identical.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)

# Expanded once, here: a recursive VERSION runs git describe at every use, and
# a commit landing between `dist` and `deb` would name files the other step
# cannot find.
PKG_VERSION := $(VERSION)
PKG_COMMIT  := $(COMMIT)
PKG_SDE     := $(SOURCE_DATE_EPOCH)

PKG_ENV = VERSION='$(PKG_VERSION)' COMMIT='$(PKG_COMMIT)' GO='$(GO)' \
	NFPM='$(abspath $(PKG_NFPM))' SOURCE_DATE_EPOCH='$(PKG_SDE)' \
	PKG_CACHE='$(PKG_CACHE)' PKG_DIST='$(PKG_DIST)' BIN='$(BIN)' TAGS='$(TAGS)'

.PHONY: dist deb ipk apt-repo test-packaging test-ipk test-fleet check-reproducible qemu-smoke

dist: ## static stripped binaries in dist/: arm64, armv6 (armhf), armv7, amd64, and the small (no libp2p) mips and mipsle builds
	@$(PKG_ENV) packaging/build.sh $(PKG_DIST)

# nfpm is pinned in tools/go.mod; rebuilt only when the pin changes.
$(PKG_NFPM): tools/go.mod tools/go.sum
	$(GO) build -modfile=tools/go.mod -o $@ github.com/goreleaser/nfpm/v2/cmd/nfpm

deb: dist $(PKG_NFPM) ## one .deb per architecture (arm64, armhf, amd64) in dist/, built with the pinned nfpm
	@$(PKG_ENV) packaging/deb.sh $(PKG_DIST) $(PKG_DIST) >/dev/null
	@ls -l $(PKG_DIST)/*.deb

ipk: dist $(PKG_NFPM) ## OpenWrt .ipk packages of the small builds (mips_24kc, mipsel_24kc) in dist/
	@$(PKG_ENV) packaging/ipk.sh $(PKG_DIST) $(PKG_DIST) >/dev/null
	@ls -l $(PKG_DIST)/*.ipk

test-fleet: deb ## signed apt repository, phased rollout, health gate and rollback in a debootstrap root
	@$(PKG_ENV) packaging/fleet-test.sh

apt-repo: deb ## publish dist/*.deb to the signed apt repository APT_REPO (default dist/apt), signed by APT_REPO_KEY
	@packaging/apt-repo.sh publish $(or $(APT_REPO),$(PKG_DIST)/apt) $(PKG_DIST)/edge-agent_*.deb

test-ipk: ipk ## the .ipk control files and contents, and the small builds' 10 MiB budget
	@$(PKG_ENV) packaging/ipk-test.sh

test-packaging: deb ## package contents, lintian, systemd-analyze, install/upgrade/remove/purge in a debootstrap chroot
	@$(PKG_ENV) packaging/test.sh

check-reproducible: $(PKG_NFPM) ## build binaries and .debs twice (second time with an empty Go build cache) and compare sha256
	@$(PKG_ENV) packaging/check-reproducible.sh

qemu-smoke: dist build ## run the ARM and MIPS binaries under qemu user mode: version, config, keys, a verified demo, peak RSS
	@$(PKG_ENV) packaging/qemu-smoke.sh

# --- edge-collector (the network side; its own .deb) ---
.PHONY: deb-collector test-packaging-collector
deb-collector: $(PKG_NFPM) ## edge-collector binaries and one .deb per architecture in dist/
	@$(PKG_ENV) packaging/collector/deb.sh $(PKG_DIST) >/dev/null
	@ls -l $(PKG_DIST)/edge-collector_*.deb

test-packaging-collector: deb-collector ## edge-collector package: contents, conffile, lintian, unit verify and security
	@$(PKG_ENV) packaging/collector/test.sh

test-packaging: test-packaging-collector
