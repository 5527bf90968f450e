package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/edge-agent/edge-agent/doctor"
	"github.com/edge-agent/edge-agent/status"
)

// criticalChecks are the doctor checks an upgraded release must pass: the
// daemon answers, its pipeline makes progress and its outbox is sound.
// Hardware and network checks are left out: an upgrade is not to blame for
// an unplugged antenna or a broker that is down.
var criticalChecks = map[string]bool{"daemon": true, "pipeline": true, "outbox": true}

// cmdHealth is the post-upgrade health gate's check (packaging/health-gate
// runs it and rolls the release back when it fails, exits abnormally or
// cannot run at all). Healthy means: the running daemon is VERSION, it has
// made a record durable since it started, and doctor's critical checks do
// not fail, all within --timeout.
func cmdHealth(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "health", "health [--timeout 2m] [--version V] [-c FILE] [--socket PATH]")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long the release has to prove itself")
	want := fs.String("version", "", "the version that must be running (default: this binary's)")
	cfgPath := fs.String("c", defaultConfigPath, "config `file`")
	socket := fs.String("socket", status.DefaultSocket, "the daemon's status `socket`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *want == "" {
		*want = version
	}
	setup := loadSetup(*cfgPath)
	socketSet := false
	fs.Visit(func(f *flag.Flag) { socketSet = socketSet || f.Name == "socket" })
	if !socketSet && setup.Config != nil {
		*socket = setup.Config.Status.Socket
	}
	setup.Socket = *socket
	client := &status.Client{Socket: *socket, Timeout: 5 * time.Second}

	deadline := time.Now().Add(*timeout)
	why := "no check ran"
	for {
		ok, reason := healthy(ctx, client, setup, *want)
		if ok {
			fmt.Fprintf(env.stdout, "healthy: %s\n", reason)
			return nil
		}
		why = reason
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	fmt.Fprintf(env.stdout, "unhealthy after %v: %s\n", *timeout, why)
	return &exitError{code: 1, err: errReported}
}

// healthy makes one check and says why it passed or failed.
func healthy(ctx context.Context, client *status.Client, setup doctor.Setup, want string) (bool, string) {
	doc, err := client.Fetch(ctx)
	if err != nil {
		return false, fmt.Sprintf("the daemon does not answer: %v", err)
	}
	if doc.Identity.Version != want {
		return false, fmt.Sprintf("the running daemon is %s, not %s", doc.Identity.Version, want)
	}
	if doc.Pipeline.Stored == 0 {
		return false, fmt.Sprintf("%s has made no record durable since it started", want)
	}
	r := doctor.Diagnose(ctx, doctor.Host{}, setup, client)
	for _, res := range r.Results {
		if criticalChecks[res.Name] && res.Level == doctor.Fail {
			return false, fmt.Sprintf("doctor: %s: %s", res.Name, res.Message)
		}
	}
	return true, fmt.Sprintf("%s is running, has stored %d records, doctor's daemon, pipeline and outbox checks pass", want, doc.Pipeline.Stored)
}
