package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/edge-agent/edge-agent/agent"
	"github.com/edge-agent/edge-agent/agent/sdnotify"
	"github.com/edge-agent/edge-agent/config"
)

const defaultConfigPath = "/etc/edge-agent/config.toml"

func cmdRun(ctx context.Context, env *cliEnv, args []string) error {
	fs := newFlags(env, "run", "run [-c FILE]")
	path := fs.configFlag(defaultConfigPath, "config `file`; drop-ins in config.d/ beside it are merged over it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	log, err := newLogger(env.stderr, level, cfg.Log.Level, cfg.Log.Format, env.getenv)
	if err != nil {
		return err
	}
	notifier, err := sdnotify.FromEnv(env.getenv, os.Getpid())
	if err != nil {
		log.Warn("not talking to systemd", "err", err)
	}
	a, err := agent.New(agent.Options{
		Config:     cfg,
		Version:    version,
		Commit:     commit,
		Logger:     log,
		Notifier:   notifier,
		CreateKey:  true,
		GovernCPUs: true,
	})
	if err != nil {
		return err
	}
	// SIGHUP (systemctl reload) re-reads the config; Run owns the agent.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for {
			select {
			case <-runCtx.Done():
				return
			case <-hup:
				reload(runCtx, a, *path, level, log, notifier)
			}
		}
	}()
	return a.Run(runCtx)
}

// reload loads, checks and applies the config; a config that fails any step
// is refused and logged, and the daemon goes on with the one it has.
func reload(ctx context.Context, a *agent.Agent, path string, level *slog.LevelVar, log *slog.Logger, n agent.Notifier) {
	log = log.With("component", "reload")
	if n != nil {
		var ts unix.Timespec
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		n.Notify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000))
		defer n.Notify("READY=1")
	}
	log.Info("SIGHUP: reloading the config", "config", path)
	cfg, err := config.Load(path)
	if err == nil {
		var l slog.Level
		if err = l.UnmarshalText([]byte(cfg.Log.Level)); err == nil {
			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			err = a.Reload(rctx, cfg)
			cancel()
			if err == nil {
				level.Set(l)
			}
		}
	}
	if err != nil {
		log.Error("the new config was refused; still running with the previous one", "err", err)
	}
}
