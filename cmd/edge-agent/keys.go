package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"

	"github.com/edge-agent/edge-agent/atomicfile"
	"github.com/edge-agent/edge-agent/attest"
	"github.com/edge-agent/edge-agent/attest/keys"
	"github.com/edge-agent/edge-agent/config"
)

// cmdKeysSub is one `keys` subcommand: one flag set each.
func cmdKeysSub(sub string) func(context.Context, *cliEnv, []string) error {
	return func(ctx context.Context, env *cliEnv, args []string) error { return cmdKeys(ctx, env, sub, args) }
}

func cmdKeys(_ context.Context, env *cliEnv, sub string, args []string) error {
	synopsis := map[string]string{
		"init":         "keys init [-c FILE | --key URI] [--json]",
		"show":         "keys show [-c FILE | --key URI] [--json]",
		"csr":          "keys csr [-c FILE | --key URI] [--org NAME] [--out FILE]",
		"install-cert": "keys install-cert [-c FILE | --key URI] [--cert DEST] FILE",
	}[sub]
	if synopsis == "" {
		return usagef("unknown keys subcommand %q: use init, show, csr or install-cert", sub)
	}
	fs := newFlags(env, "keys "+sub, synopsis)
	cfgPath := fs.configFlag("", "config `file` naming the key (default: "+defaultConfigPath+" if present)")
	keyURI := fs.String("key", "", "key `URI`: file:/var/lib/edge-agent/device.key, tpm:/dev/tpmrm0, ecc608:/dev/i2c-1?addr=0x60&slot=0")
	asJSON := fs.Bool("json", false, "print JSON")
	org := fs.String("org", "", "csr: subject organisation (the manufacturer)")
	out := fs.String("out", "", "csr: write the request to `file` instead of standard output")
	certDest := fs.String("cert", "", "install-cert: where to store the certificate (default: the config's device.cert)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if want := map[bool]int{true: 1, false: 0}[sub == "install-cert"]; fs.NArg() > want {
		return usagef("unexpected argument %q", fs.Arg(want))
	}
	uri, certPath, err := resolveKey(*cfgPath, *keyURI)
	if err != nil {
		return err
	}
	if *certDest != "" {
		certPath = *certDest
	}
	var s attest.Signer
	switch sub {
	case "init":
		s, err = keys.Create(uri, rand.Reader)
		if keys.IsExists(err) {
			return fmt.Errorf("%w\n(the device already has an identity: `edge-agent keys show` prints it; replace it only if you mean to give the device a new identity)", err)
		}
	default:
		s, err = keys.Open(uri)
	}
	if err != nil {
		return err
	}
	defer keys.Close(s)
	switch sub {
	case "csr":
		pemBytes, err := keys.CSR(s, *org)
		if err != nil {
			return err
		}
		if *out == "" {
			_, err = env.stdout.Write(pemBytes)
			return err
		}
		if err := os.WriteFile(*out, pemBytes, 0o644); err != nil {
			return fmt.Errorf("keys csr: %w", err)
		}
		fmt.Fprintf(env.stdout, "wrote a certificate request for %s to %s; have the factory CA sign it, then run `edge-agent keys install-cert CERT`\n", s.DeviceID(), *out)
		return nil
	case "install-cert":
		if fs.NArg() != 1 {
			return usagef("keys install-cert needs the certificate file")
		}
		c, der, err := keys.ReadCert(fs.Arg(0))
		if err != nil {
			return err
		}
		if err := keys.CheckCert(s, c); err != nil {
			return err
		}
		if err := atomicfile.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
			return fmt.Errorf("keys install-cert: %w", err)
		}
		fmt.Fprintf(env.stdout, "installed the certificate for %s (subject %q, issuer %q, expires %s) at %s; it is sent at the next start\n",
			s.DeviceID(), c.Subject.String(), c.Issuer.String(), c.NotAfter.UTC().Format("2006-01-02"), certPath)
		return nil
	}
	info := struct {
		DeviceID  string `json:"device_id"`
		PublicKey string `json:"public_key"`
		Algorithm string `json:"algorithm"`
		Key       string `json:"key"`
		Backend   string `json:"backend"`
		Hardware  bool   `json:"hardware"`
		Where     string `json:"where"`
	}{s.DeviceID(), hex.EncodeToString(s.KeyID()), s.Algorithm().String(), uri, keys.Backend(uri), keys.Hardware(uri), keys.Describe(s)}
	if *asJSON {
		return json.NewEncoder(env.stdout).Encode(info)
	}
	if sub == "init" {
		fmt.Fprintf(env.stdout, "created %s\n", uri)
	}
	fmt.Fprintf(env.stdout, "device id:  %s\npublic key: %s (%s)\n", info.DeviceID, info.PublicKey, info.Algorithm)
	if info.Hardware {
		fmt.Fprintf(env.stdout, "held by:    %s (not exportable)\n", info.Where)
	}
	return nil
}

// resolveKey is resolveKeyURI plus the certificate path of the same config.
func resolveKey(cfgPath, keyURI string) (uri, cert string, err error) {
	uri, err = resolveKeyURI(cfgPath, keyURI)
	if err != nil {
		return "", "", err
	}
	cfg := config.Default()
	if cfgPath == "" {
		if _, serr := os.Stat(defaultConfigPath); serr == nil {
			cfgPath = defaultConfigPath
		}
	}
	if cfgPath != "" {
		c, err := config.Load(cfgPath)
		if err != nil {
			return "", "", err
		}
		cfg = *c
	}
	return uri, cfg.CertPath(), nil
}

// resolveKeyURI picks the key: --key, else the config's, else the default
// config's if it exists, else the built-in default.
func resolveKeyURI(cfgPath, keyURI string) (string, error) {
	if keyURI != "" {
		return keyURI, nil
	}
	if cfgPath == "" {
		if _, err := os.Stat(defaultConfigPath); err != nil {
			return config.Default().Device.Key, nil
		}
		cfgPath = defaultConfigPath
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return "", err
	}
	return cfg.Device.Key, nil
}
