package main

import (
	"context"
	"flag"
	"time"

	"github.com/edge-agent/edge-agent/agent"
	"github.com/edge-agent/edge-agent/doctor"
	"github.com/edge-agent/edge-agent/status"
)

func cmdDoctor(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "doctor", "doctor [--json] [-c FILE] [--socket PATH]")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	cfgPath := fs.configFlag(defaultConfigPath, "config `file`")
	socket := fs.String("socket", status.DefaultSocket, "the daemon's status `socket`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	setup := loadSetup(*cfgPath)
	socketSet := false
	fs.Visit(func(f *flag.Flag) { socketSet = socketSet || f.Name == "socket" })
	if !socketSet && setup.Config != nil {
		*socket = setup.Config.Status.Socket
	}
	setup.Socket = *socket
	r := doctor.Diagnose(ctx, doctor.Host{}, setup, &status.Client{Socket: *socket, Timeout: 10 * time.Second})
	var err error
	if *asJSON {
		err = r.WriteJSON(env.stdout)
	} else {
		err = r.WriteText(env.stdout)
	}
	if err != nil {
		return err
	}
	if code := r.ExitCode(); code != 0 {
		// The report said everything; the status is for scripts: 1 warn, 2 fail.
		return &exitError{code: code, err: errReported}
	}
	return nil
}

// loadSetup is doctor's view of the config, with the drivers the daemon
// would run built (not run) so that doctor probes through their Probe.
func loadSetup(path string) doctor.Setup {
	s := doctor.LoadSetup(path)
	if s.Config != nil {
		s.ProbeDrivers(agent.BuildDrivers(s.Config, agent.Options{}))
	}
	return s
}
