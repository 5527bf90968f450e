//go:build !linux

package main

import "syscall"

// childAttr: only Linux kills a child with its parent; elsewhere the demo's
// own exit paths stop edge-collector.
func childAttr() *syscall.SysProcAttr { return nil }
