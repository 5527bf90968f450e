package main

import "syscall"

// childAttr makes a child process die with this one (the demo's
// edge-collector), even when this one is SIGKILLed.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
