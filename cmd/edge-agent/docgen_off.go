//go:build !docgen

package main

// docCommands: none in the shipped binary (see docgen_on.go).
func docCommands() map[string]command { return nil }
