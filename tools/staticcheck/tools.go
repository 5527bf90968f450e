//go:build tools

// Package staticcheck pins the staticcheck version `make lint` builds.
package staticcheck

import _ "honnef.co/go/tools/cmd/staticcheck"
